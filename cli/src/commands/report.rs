//! `amparo report`: the fact sheet (counts only), or de-identified records for
//! partners.

use crate::output::{deliver, say, CsvOrJson, Failure, Output};
use crate::unlock::open;
use amparo::report::{ReportQuery, DEFAULT_K};
use amparo::store::StoreError;
use chrono::NaiveDate;
use clap::Args;
use std::path::PathBuf;

/// Which cases: a period of intake dates and filters (the fact sheet's, and the
/// exports').
#[derive(Args)]
pub struct Cases {
    /// First intake date counted (YYYY-MM-DD).
    #[arg(long)]
    from: Option<String>,
    /// Last intake date counted (YYYY-MM-DD).
    #[arg(long)]
    to: Option<String>,
    #[arg(long)]
    status: Option<String>,
    #[arg(long)]
    intake_channel: Option<String>,
    #[arg(long)]
    trafficking_type: Option<String>,
}

impl Cases {
    /// The query, with a threshold k where one is asked for.
    pub fn query(self, k: Option<u32>) -> Result<ReportQuery, Failure> {
        Ok(ReportQuery {
            from: date(self.from)?,
            to: date(self.to)?,
            status: self.status,
            intake_channel: self.intake_channel,
            trafficking_type: self.trafficking_type,
            k,
        })
    }
}

/// The fact sheet: cases, potential victims, venues, demographics (cases
/// involving), nationality, recruiter relation. Counts only.
#[derive(Args)]
pub struct ReportArgs {
    #[command(flatten)]
    cases: Cases,
    #[arg(long, value_enum, default_value_t = CsvOrJson::Json)]
    format: CsvOrJson,
    /// For sharing outside the organisation: counts below k become "<k".
    #[arg(long)]
    shareable: bool,
    /// The threshold k (with --shareable or --deidentified; default 11).
    #[arg(long)]
    k: Option<u32>,
    /// De-identified records for partners instead of counts (CSV): no personal
    /// detail, year-month dates, age bands, and no combination of gender, age
    /// band, nationality, venues and year shared by fewer than k people.
    #[arg(long, conflicts_with = "shareable")]
    deidentified: bool,
    /// Write to this file instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn date(d: Option<String>) -> Result<Option<NaiveDate>, Failure> {
    d.map(|d| {
        NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d")
            .map_err(|_| Failure::says("cli.bad_date", &[("value", d.clone())]))
    })
    .transpose()
}

pub fn run(args: ReportArgs, out: &mut Output) -> Result<(), Failure> {
    if args.k.is_some() && !args.shareable && !args.deidentified {
        return Err(Failure::says("cli.k_alone", &[]));
    }
    let q = args.cases.query((args.shareable || args.deidentified).then(|| args.k.unwrap_or(DEFAULT_K)))?;
    let store = open()?;
    let text = if args.deidentified {
        let export = store.deidentified_export(&q)?;
        let counts = [
            ("records", export.records.to_string()),
            ("dropped", export.dropped.to_string()),
            ("declined", export.declined.to_string()),
            ("k", export.k.to_string()),
        ];
        eprintln!("{}", say("cli.deidentified", &counts));
        export.csv
    } else {
        let sheet = store.fact_sheet(&q)?;
        match args.format {
            CsvOrJson::Csv => sheet.to_csv(),
            CsvOrJson::Json => serde_json::to_string_pretty(&sheet).map_err(StoreError::encode)? + "\n",
        }
    };
    deliver(args.out.as_deref(), &text, out)
}
