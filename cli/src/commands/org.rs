//! `amparo org invite`: an invitation for a new laptop of the organisation.

use crate::output::{say, write_file, Failure, Output};
use crate::unlock::open;
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum OrgCommand {
    /// Write an invitation for a new laptop and print its one-time passphrase
    /// (administrators).
    Invite {
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn run(command: OrgCommand, out: &mut Output) -> Result<(), Failure> {
    match command {
        OrgCommand::Invite { out: path } => {
            let store = open()?;
            // With a hub, the invitation carries a one-time token the hub knows (by its
            // hash), so the new laptop enrols itself.
            let hub = amparo_hub::laptop::hub_invite(&store)?;
            let (bytes, code) = store.invite_with(hub)?;
            write_file(&path, &bytes)?;
            out.line(say("cli.invite_written", &[("path", path.display().to_string())]));
            out.line(format!("\n    {}\n", code.as_str()));
        }
    }
    Ok(())
}
