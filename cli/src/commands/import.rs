//! `amparo import`: cases from a JSON Lines file, all or nothing.

use crate::output::{file_failure, line_issue, locale, refused, say, Failure, Output};
use crate::unlock::open;
use amparo::i18n::tr;
use amparo::store::jsonl::ImportReport;
use clap::Args;
use std::io::{BufReader, IsTerminal};
use std::path::PathBuf;

/// Import cases from a JSON Lines file (all or nothing).
#[derive(Args)]
pub struct ImportArgs {
    file: PathBuf,
    /// Import the valid lines and list the others.
    #[arg(long)]
    skip_invalid: bool,
}

fn line_issues(report: &ImportReport) -> Vec<String> {
    report.rejected.iter().flat_map(|r| r.issues.iter().map(move |i| line_issue(r.line, &i.path, &i.error))).collect()
}

pub fn run(args: ImportArgs, out: &mut Output) -> Result<(), Failure> {
    let l = locale();
    let f = std::fs::File::open(&args.file).map_err(|e| file_failure(&args.file, &e))?;
    let mut store = open()?;
    let interactive = std::io::stderr().is_terminal();
    let mut progress = |n: usize| {
        if interactive && n % 1000 == 0 {
            eprint!("\r{}", tr(l, "cli.progress", &[("count", n.to_string())]));
        }
    };
    let report = store.import_jsonl(BufReader::new(f), args.skip_invalid, &mut progress)?;
    if interactive {
        eprint!("\r");
    }
    let rejected = report.rejected.len().to_string();
    if !report.rejected.is_empty() && !args.skip_invalid {
        return Err(refused(say("cli.nothing_imported", &[("count", rejected)]), line_issues(&report)));
    }
    out.line(say("cli.imported", &[("count", report.imported.to_string())]));
    if !report.rejected.is_empty() {
        eprintln!("{}", say("cli.skipped", &[("count", rejected)]));
        for line in line_issues(&report) {
            eprintln!("{line}");
        }
    }
    Ok(())
}
