//! `amparo directory`: the organisations survivors can be referred to.

use crate::output::{line_issue, refused, say, Failure, Output, TextOrJson};
use crate::unlock::open;
use amparo::repositories::directory::{DirectoryQuery, Entry};
use clap::Subcommand;
use serde_json::Value;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum DirectoryCommand {
    /// Organisations matching every word given, hotlines first.
    List {
        text: Vec<String>,
        /// A service code (Shelter, Legal, …).
        #[arg(long)]
        service: Option<String>,
        /// A country (MX, US) or a state (MX-CHH).
        #[arg(long)]
        region: Option<String>,
        /// A language code (es, en, nah, …).
        #[arg(long)]
        language: Option<String>,
        #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
        format: TextOrJson,
    },
    /// Add organisations from a CSV file (all or nothing; every bad row named).
    Import { file: PathBuf },
}

/// A field of an entry as one cell: lists joined with `;`.
fn cell(e: &Entry, key: &str) -> String {
    match e.data.get(key) {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(";"),
        Some(v) => v.as_str().unwrap_or_default().to_string(),
        None => String::new(),
    }
}

pub fn run(command: DirectoryCommand, out: &mut Output) -> Result<(), Failure> {
    match command {
        DirectoryCommand::List { text, service, region, language, format } => {
            let q = DirectoryQuery { text: Some(text.join(" ")), service, region, language };
            let entries = open()?.directory(&q)?;
            if format == TextOrJson::Json {
                return out.json(&entries);
            }
            for e in &entries {
                let cols = ["name", "country", "subdivision", "city", "services", "phone", "languages"];
                out.line(cols.map(|c| cell(e, c)).join("\t"));
            }
        }
        DirectoryCommand::Import { file } => {
            let report = open()?.import_directory_file(&file.display().to_string())?;
            if !report.rejected.is_empty() {
                let headline = say("cli.directory_refused", &[("count", report.rejected.len().to_string())]);
                let issues =
                    report.rejected.iter().flat_map(|r| r.issues.iter().map(|i| line_issue(r.line, &i.path, &i.error)));
                return Err(refused(headline, issues.collect::<Vec<_>>()));
            }
            out.line(say("cli.directory_imported", &[("count", report.imported.to_string())]));
        }
    }
    Ok(())
}
