//! `amparo export`: every case as JSON Lines (the organisation's own backup).

use crate::output::{say, Failure, Output};
use crate::unlock::open;
use amparo::database::files;
use clap::Args;
use std::path::PathBuf;

/// Export every case as JSON Lines (to standard output, or a file).
#[derive(Args)]
pub struct ExportArgs {
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: ExportArgs, _out: &mut Output) -> Result<(), Failure> {
    let store = open()?;
    let n = match &args.out {
        // Whole or not at all, readable by its owner only.
        Some(p) => files::write_atomic_with(p, |out| store.export_jsonl(out))?,
        None => store.export_jsonl(std::io::stdout().lock())?,
    };
    eprintln!("{}", say("cli.exported", &[("count", n.to_string())]));
    Ok(())
}
