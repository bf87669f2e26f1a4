//! `amparo htcds`: identified cases in the UN/IOM HTCDS columns, out and in.

use crate::commands::report::Cases;
use crate::output::{deliver, file_failure, line_issue, refused, say, CsvOrJson, Failure, Output};
use crate::unlock::open;
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum HtcdsCommand {
    /// Cases whose survivor consented to sharing with another organisation, of a
    /// period and filters as for `amparo report`.
    Export {
        #[command(flatten)]
        cases: Cases,
        #[arg(long, value_enum, default_value_t = CsvOrJson::Csv)]
        format: CsvOrJson,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Cases from an HTCDS CSV, or the toolkit's .xlsx / .ods itself (all or
    /// nothing; every bad cell named, columns not read named).
    Import { file: PathBuf },
}

pub fn run(command: HtcdsCommand, out: &mut Output) -> Result<(), Failure> {
    match command {
        HtcdsCommand::Export { cases, format, out: path } => {
            let export = open()?.htcds_export(&cases.query(None)?)?;
            let text = match format {
                CsvOrJson::Csv => export.to_csv()?,
                CsvOrJson::Json => export.to_json() + "\n",
            };
            let counts = [("cases", export.cases.to_string()), ("left_out", export.left_out.to_string())];
            eprintln!("{}", say("cli.htcds_exported", &counts));
            deliver(path.as_deref(), &text, out)?;
        }
        HtcdsCommand::Import { file } => {
            // Opened here first, so that a missing or unreadable file is named as such.
            std::fs::File::open(&file).map_err(|e| file_failure(&file, &e))?;
            let report = open()?.htcds_import_file(&file.to_string_lossy())?;
            if !report.ignored.is_empty() {
                eprintln!("{}", say("cli.htcds_ignored", &[("columns", report.ignored.join(", "))]));
            }
            if !report.rejected.is_empty() {
                let headline = say("cli.htcds_refused", &[("count", report.rejected.len().to_string())]);
                let issues = report.rejected.iter().map(|c| line_issue(c.line, &c.column, &c.issue.error));
                return Err(refused(headline, issues.collect::<Vec<_>>()));
            }
            out.line(say("cli.imported", &[("count", report.imported.to_string())]));
        }
    }
    Ok(())
}
