//! `amparo audit`: check and list the audit trail (supervisors).

use crate::output::{say, Failure, Output};
use crate::unlock::open;
use amparo::repositories::audit::{Action, AuditQuery};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain; names the first entry altered, removed or reordered.
    Verify,
    /// Entries, newest first.
    List {
        #[arg(long)]
        action: Option<String>,
        #[arg(long)]
        case: Option<String>,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

pub fn run(command: AuditCommand, out: &mut Output) -> Result<(), Failure> {
    match command {
        AuditCommand::Verify => {
            let v = open()?.verify_audit()?;
            match v.problem {
                None => {
                    let args = [("entries", v.entries.to_string()), ("devices", v.devices.to_string())];
                    out.line(say("audit.verify.ok", &args));
                }
                Some(p) => return Err(p.into()),
            }
        }
        AuditCommand::List { action, case, from, to, limit } => {
            if let Some(a) = action.as_deref().filter(|a| Action::parse(a).is_none()) {
                return Err(Failure::says("cli.bad_action", &[("action", a.to_string())]));
            }
            let q = AuditQuery { action, case_number: case, from, to, limit: Some(limit), ..Default::default() };
            for r in open()?.audit_list(&q)? {
                out.line(format!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    r.at,
                    r.device_code.as_deref().unwrap_or(&r.device_id),
                    r.number,
                    r.user_name.as_deref().unwrap_or("-"),
                    r.action,
                    r.case_number.as_deref().or(r.case_id.as_deref()).unwrap_or("-"),
                    r.detail
                ));
            }
        }
    }
    Ok(())
}
