//! `amparo list` and `amparo search`: case numbers, status, intake date, alias.

use crate::output::{locale, Failure, Output};
use crate::unlock::open;
use amparo::i18n;
use amparo::repositories::cases::{CaseSummary, ListQuery};
use clap::Args;

/// List cases, newest first: case number, status, intake date, alias.
#[derive(Args)]
pub struct ListArgs {
    #[arg(long)]
    status: Option<String>,
    #[arg(long, default_value_t = 100)]
    limit: usize,
}

/// Search case numbers, names, aliases, cities and notes.
#[derive(Args)]
pub struct SearchArgs {
    text: Vec<String>,
}

pub fn list(args: ListArgs, out: &mut Output) -> Result<(), Failure> {
    let q = ListQuery { status: args.status, limit: Some(args.limit), ..Default::default() };
    print_rows(&open()?.list_cases(&q)?, out);
    Ok(())
}

pub fn search(args: SearchArgs, out: &mut Output) -> Result<(), Failure> {
    let q = ListQuery { text: args.text.join(" "), ..Default::default() };
    print_rows(&open()?.list_cases(&q)?, out);
    Ok(())
}

fn print_rows(rows: &[CaseSummary], out: &mut Output) {
    if rows.is_empty() {
        eprintln!("{}", i18n::t(locale(), "cli.no_cases"));
    }
    for r in rows {
        out.line(format!(
            "{}\t{}\t{}\t{}",
            r.case_number,
            r.status,
            r.intake_date.as_deref().unwrap_or("-"),
            r.alias.as_deref().unwrap_or("-")
        ));
    }
}
