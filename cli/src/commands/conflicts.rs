//! `amparo conflicts`: values of one field written on two laptops without seeing
//! each other, and how a supervisor settles one.

use crate::output::{locale, say, Failure, Output, TextOrJson};
use crate::unlock::open;
use amparo::i18n;
use amparo::sync::{Resolution, SyncError};
use clap::{Args, Subcommand};

/// Open conflicts: values of one field written on two laptops without seeing each
/// other (supervisors). `resolve` settles one.
#[derive(Args)]
pub struct ConflictsArgs {
    #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
    format: TextOrJson,
    #[command(subcommand)]
    command: Option<ConflictsCommand>,
}

#[derive(Subcommand)]
pub enum ConflictsCommand {
    /// Keep one of a conflict's values, or type a new one.
    Resolve {
        case_number: String,
        /// The field, as `amparo conflicts` shows it (e.g. people.0.alias).
        field: String,
        /// The value to keep, by its choice (as `amparo conflicts` shows it).
        #[arg(long, conflicts_with = "value", required_unless_present = "value")]
        keep: Option<String>,
        /// A new value, as `amparo set` takes it.
        #[arg(long)]
        value: Option<String>,
    },
}

pub fn run(args: ConflictsArgs, out: &mut Output) -> Result<(), Failure> {
    let l = locale();
    let mut store = open()?;
    match args.command {
        None => {
            let conflicts = store.conflicts()?;
            if args.format == TextOrJson::Json {
                return out.json(&conflicts);
            }
            if conflicts.is_empty() {
                eprintln!("{}", i18n::t(l, "cli.no_conflicts"));
            }
            for c in conflicts {
                out.line(format!("{}\t{}", c.case_number, c.path));
                // `*` the value shown now, `!` one this laptop's form does not accept.
                let shown = c.values.iter().position(|v| !v.held);
                for (i, v) in c.values.iter().enumerate() {
                    let mark = if v.held {
                        "!"
                    } else if Some(i) == shown {
                        "*"
                    } else {
                        " "
                    };
                    let who = v.user.as_deref().unwrap_or("-");
                    out.line(format!("  {mark} {}\t{}\t{}\t{who}\t{}", v.choice, v.value, v.device_code, v.at));
                }
            }
        }
        Some(ConflictsCommand::Resolve { case_number, field, keep, value }) => {
            let how = match (keep, value) {
                (Some(k), _) => Resolution::Keep(k),
                (None, Some(v)) => Resolution::Value(v),
                (None, None) => return Err(Failure(i18n::t(l, "cli.resolve_how"))),
            };
            let id = store.case_id(&case_number)?;
            let conflict = store.case_conflicts(&id)?.into_iter().find(|c| c.path == field || c.field == field);
            let Some(conflict) = conflict else { return Err(SyncError::NoConflict.into()) };
            store.resolve_conflict(&id, &conflict.field, &how)?;
            out.line(say("cli.conflict_resolved", &[("field", field), ("number", case_number)]));
        }
    }
    Ok(())
}
