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
            let (bytes, code) = open()?.invite()?;
            write_file(&path, &bytes)?;
            out.line(say("cli.invite_written", &[("path", path.display().to_string())]));
            out.line(format!("\n    {}\n", code.as_str()));
        }
    }
    Ok(())
}
