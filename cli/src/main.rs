//! `amparo`: the administrators' and scripts' way into a store, on the same core as
//! the app. The store is the one in `AMPARO_DATA_DIR` (default: the OS data folder,
//! as for the app), unlocked by `AMPARO_PASSPHRASE` or a prompt, as the user named by
//! `AMPARO_USER` (needed when several people share the laptop), with that user's
//! rights. Messages follow the environment's language (`AMPARO_LOCALE`, `LC_ALL`,
//! `LANG`); data is printed as codes, so scripts do not depend on the language. Any
//! failure exits non-zero.
//!
//! Each subcommand is a module of [`commands`] with its arguments and its `run`;
//! [`output`] is how anything is said, [`unlock`] how the store is opened.

mod commands;
mod output;
mod unlock;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Parser, Subcommand};
use commands::*;
use output::{Failure, Output};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "amparo", version, about = "Amparo case store, from the command line")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Init(init::InitArgs),
    Import(import::ImportArgs),
    Export(export::ExportArgs),
    List(list::ListArgs),
    Search(list::SearchArgs),
    Show(show::ShowArgs),
    Set(set::SetArgs),
    /// Store and schema version, counts.
    Info,
    /// Manage who can unlock this store (administrators; anyone for their own
    /// passphrase).
    User {
        #[command(subcommand)]
        command: user::UserCommand,
    },
    /// The audit trail (supervisors and administrators).
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    Share(share::ShareArgs),
    Policy(policy::PolicyArgs),
    /// Make a new recovery key and show it once; the old one stops working
    /// (administrators).
    RecoveryKey,
    Purge(purge::PurgeArgs),
    /// The organisation this laptop belongs to.
    Org {
        #[command(subcommand)]
        command: org::OrgCommand,
    },
    /// Identified cases in the UN/IOM HTCDS columns: export (only with consent to
    /// share with another organisation) and import (from the HTCDS spreadsheet).
    Htcds {
        #[command(subcommand)]
        command: htcds::HtcdsCommand,
    },
    /// The service directory: organisations survivors can be referred to.
    Directory {
        #[command(subcommand)]
        command: directory::DirectoryCommand,
    },
    /// Exchange changes with the organisation's other laptops through bundle files.
    Sync {
        #[command(subcommand)]
        command: sync::SyncCommand,
    },
    /// The organisation's hub: network sync.
    Hub {
        #[command(subcommand)]
        command: hub::HubCommand,
    },
    /// The laptops enrolled with the hub.
    Devices {
        #[command(subcommand)]
        command: hub::DevicesCommand,
    },
    Conflicts(conflicts::ConflictsArgs),
    Report(report::ReportArgs),
    Recover(recover::RecoverArgs),
}

fn run(command: Command, out: &mut Output) -> Result<(), Failure> {
    match command {
        Command::Init(args) => init::run(args, out),
        Command::Import(args) => import::run(args, out),
        Command::Export(args) => export::run(args, out),
        Command::List(args) => list::list(args, out),
        Command::Search(args) => list::search(args, out),
        Command::Show(args) => show::run(args, out),
        Command::Set(args) => set::run(args, out),
        Command::Info => info::run(out),
        Command::User { command } => user::run(command, out),
        Command::Audit { command } => audit::run(command, out),
        Command::Share(args) => share::run(args, out),
        Command::Policy(args) => policy::run(args, out),
        Command::RecoveryKey => recovery_key::run(out),
        Command::Purge(args) => purge::run(args, out),
        Command::Org { command } => org::run(command, out),
        Command::Htcds { command } => htcds::run(command, out),
        Command::Directory { command } => directory::run(command, out),
        Command::Sync { command } => sync::run(command, out),
        Command::Hub { command } => hub::run(command, out),
        Command::Devices { command } => hub::devices(command, out),
        Command::Conflicts(args) => conflicts::run(args, out),
        Command::Report(args) => report::run(args, out),
        Command::Recover(args) => recover::run(args, out),
    }
}

/// A value clap refused (`--format xml`), said in the user's language with the
/// values it takes; any other usage error as clap writes it.
fn usage_failure(e: &clap::Error) -> Option<Failure> {
    if e.kind() != ErrorKind::InvalidValue {
        return None;
    }
    let text = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::Strings(v)) => Some(v.join(", ")),
        _ => None,
    };
    let (arg, value, valid) =
        (text(ContextKind::InvalidArg)?, text(ContextKind::InvalidValue)?, text(ContextKind::ValidValue)?);
    let key = if arg.starts_with("--format") { "cli.bad_format" } else { "cli.bad_value" };
    Some(Failure::says(key, &[("format", value.clone()), ("value", value), ("arg", arg), ("valid", valid)]))
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => match usage_failure(&e) {
            Some(Failure(msg)) => {
                eprintln!("{msg}");
                return ExitCode::from(2);
            }
            None => e.exit(),
        },
    };
    match run(cli.command, &mut Output::stdout()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(msg)) => {
            eprintln!("{msg}");
            ExitCode::FAILURE
        }
    }
}
