//! `amparo policy`: the idle lock and the retention of closed cases.

use crate::output::{locale, say, Failure, Output};
use crate::unlock::open;
use amparo::i18n;
use clap::Args;

/// Show or change the store's policies (administrators change them).
#[derive(Args)]
pub struct PolicyArgs {
    /// Lock after this many idle minutes (1 to 60).
    #[arg(long)]
    idle_minutes: Option<u32>,
    /// Keep closed cases this many months.
    #[arg(long, conflicts_with = "keep_forever")]
    retention_months: Option<u32>,
    /// Keep closed cases until someone removes them.
    #[arg(long)]
    keep_forever: bool,
}

pub fn run(args: PolicyArgs, out: &mut Output) -> Result<(), Failure> {
    let mut store = open()?;
    let mut p = store.policy()?;
    if args.idle_minutes.is_some() || args.retention_months.is_some() || args.keep_forever {
        p.idle_lock_minutes = args.idle_minutes.unwrap_or(p.idle_lock_minutes);
        if args.keep_forever {
            p.retention_months = None;
        } else if args.retention_months.is_some() {
            p.retention_months = args.retention_months;
        }
        store.set_policy(&p)?;
    }
    out.line(say("cli.policy.idle", &[("minutes", p.idle_lock_minutes.to_string())]));
    out.line(match p.retention_months {
        Some(m) => say("cli.policy.retention", &[("months", m.to_string())]),
        None => i18n::t(locale(), "cli.policy.keep_forever"),
    });
    Ok(())
}
