//! The de-identified record export for partners: one row per potential victim, the
//! way the Counter Trafficking Data Collaborative publishes victim records. Only the
//! columns below leave (codes, never a name, a number, a place finer than a country
//! or a day): intake dates become year-month, ages become bands. A row whose
//! combination of gender, age band, nationality, venues and year occurs fewer than k
//! times is dropped (k-anonymity over those quasi-identifiers), and the export says
//! how many. A survivor who declined de-identified statistics is left out too.

use super::{ReportQuery, DEFAULT_K};
use crate::intake::{self, years_between};
use crate::repositories::facts;
use crate::repositories::{audit::Action, users::Role};
use crate::store::{Store, StoreError};
use chrono::NaiveDate;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::HashMap;

/// The consent scope a survivor can decline to be counted in records.
pub const SCOPE: &str = "DeidentifiedStatistics";

/// The columns, in order. Nothing else is ever written.
pub const COLUMNS: &[&str] = &[
    "record",
    "intake_month",
    "intake_channel",
    "trafficking_type",
    "status",
    "intake_country",
    "crossed_border",
    "gender",
    "age_band",
    "majority_at_intake",
    "nationality",
    "venues",
    "type_of_sex_exploitation",
    "forced_labour_industry",
    "type_of_exploitation",
    "recruiter_relation",
    "method_of_recruitment",
    "methods_of_control",
];

/// The quasi-identifiers whose combination must occur at least k times.
pub const QUASI_IDENTIFIERS: &[&str] = &["gender", "age_band", "nationality", "venues", "intake_year"];

/// Age bands as the CTDC publishes them.
pub fn age_band(age: Option<i64>) -> &'static str {
    match age {
        None => "Unknown",
        Some(a) if a <= 8 => "0-8",
        Some(a) if a <= 17 => "9-17",
        Some(a) if a <= 20 => "18-20",
        Some(a) if a <= 23 => "21-23",
        Some(a) if a <= 26 => "24-26",
        Some(a) if a <= 29 => "27-29",
        Some(a) if a <= 38 => "30-38",
        Some(a) if a <= 47 => "39-47",
        Some(_) => "48+",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeidExport {
    /// The CSV, header first.
    #[serde(skip)]
    pub csv: String,
    /// Rows written.
    pub records: usize,
    /// Rows dropped because their combination occurs fewer than k times.
    pub dropped: usize,
    /// Potential victims left out because they declined de-identified statistics.
    pub declined: usize,
    pub k: u32,
}

/// One row: its columns by name, and its combination of quasi-identifiers.
struct Row {
    cells: HashMap<&'static str, String>,
    combo: String,
}

fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        // Multi-valued: sorted, so the same set is the same combination.
        Some(Value::Array(a)) => {
            let mut xs: Vec<&str> = a.iter().filter_map(Value::as_str).collect();
            xs.sort_unstable();
            xs.join(";")
        }
        _ => String::new(),
    }
}

/// The rows for one case's potential victims.
fn rows_of(case: &Value, today: NaiveDate) -> Vec<Row> {
    let intake =
        case.get("intake_date").and_then(Value::as_str).and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok());
    let month = intake.map(|d| d.format("%Y-%m").to_string()).unwrap_or_default();
    let year = intake.map(|d| d.format("%Y").to_string()).unwrap_or_default();
    let people = case.get("people").and_then(Value::as_array).into_iter().flatten();
    people
        .filter(|p| p.get("role").and_then(Value::as_str) == Some("PotentialVictim"))
        .map(|p| {
            let at = intake.unwrap_or(today);
            let birth = p.get("birth_date").and_then(Value::as_str).and_then(intake::validate::parse_date);
            let age = birth.map(|b| years_between(b, at)).or_else(|| p.get("age_estimate").and_then(Value::as_i64));
            let mut cells: HashMap<&'static str, String> = HashMap::new();
            cells.insert("intake_month", month.clone());
            for key in
                ["intake_channel", "trafficking_type", "status", "crossed_border", "venues", "recruiter_relation"]
            {
                cells.insert(key, text(case.get(key)));
            }
            for key in [
                "type_of_sex_exploitation",
                "forced_labour_industry",
                "type_of_exploitation",
                "method_of_recruitment",
                "methods_of_control",
            ] {
                cells.insert(key, text(case.get(key)));
            }
            cells.insert("intake_country", text(case.get("intake_place").and_then(|pl| pl.get("country"))));
            cells.insert("gender", text(p.get("gender")));
            cells.insert("age_band", age_band(age).to_string());
            cells.insert("majority_at_intake", text(p.get("majority_at_intake")));
            cells.insert("nationality", text(p.get("nationality")));
            let combo = [&cells["gender"], &cells["age_band"], &cells["nationality"], &cells["venues"], &year]
                .map(|s| s.as_str())
                .join("|");
            Row { cells, combo }
        })
        .collect()
}

/// Keep the rows whose combination occurs at least `k` times; the rest are counted.
fn k_anonymous(rows: Vec<Row>, k: u32) -> (Vec<Row>, usize) {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for r in &rows {
        *counts.entry(r.combo.clone()).or_default() += 1;
    }
    let before = rows.len();
    let kept: Vec<Row> = rows.into_iter().filter(|r| counts[&r.combo] >= k as usize).collect();
    let dropped = before - kept.len();
    (kept, dropped)
}

fn to_csv(mut rows: Vec<Row>) -> Result<String, StoreError> {
    // Sorted by month and combination, so the order says nothing about when a case
    // was entered or by whom.
    rows.sort_by(|a, b| (&a.cells["intake_month"], &a.combo).cmp(&(&b.cells["intake_month"], &b.combo)));
    let mut w = csv::Writer::from_writer(Vec::new());
    // Writing CSV into memory fails only on a bug: an encoding error, never "damaged".
    w.write_record(COLUMNS).map_err(StoreError::encode)?;
    for (i, r) in rows.iter().enumerate() {
        let n = (i + 1).to_string();
        let cell = |c: &str| r.cells.get(c).map_or("", String::as_str);
        w.write_record(COLUMNS.iter().map(|c| if *c == "record" { n.as_str() } else { cell(c) }))
            .map_err(StoreError::encode)?;
    }
    let bytes = w.into_inner().map_err(StoreError::encode)?;
    String::from_utf8(bytes).map_err(StoreError::encode)
}

/// Where a de-identified export was saved, and what it holds.
#[derive(Debug, Clone, Serialize)]
pub struct Saved {
    pub file: String,
    #[serde(flatten)]
    pub export: DeidExport,
}

impl Store {
    /// The de-identified records, saved as `amparo-deidentified-<date>.csv` in a
    /// folder (the app's way; the CLI writes where it is told).
    pub fn deidentified_to_folder(&self, q: &ReportQuery, folder: &str) -> Result<Saved, StoreError> {
        let folder = std::path::Path::new(folder.trim());
        crate::store::check_folder(folder)?; // before anything is counted or recorded
        let export = self.deidentified_export(q)?;
        let stamp = chrono::Local::now().format("%Y-%m-%d-%H%M%S");
        let file = format!("amparo-deidentified-{stamp}.csv");
        crate::store::write_into_folder(folder, &file, export.csv.as_bytes())?;
        Ok(Saved { file, export })
    }

    /// The de-identified records of the cases a report would count (supervisors, as
    /// for every export; audited with the counts).
    pub fn deidentified_export(&self, q: &ReportQuery) -> Result<DeidExport, StoreError> {
        self.require(Role::Supervisor)?;
        q.check()?;
        let k = q.k.unwrap_or(DEFAULT_K);
        let today = crate::repositories::cases::today();
        let (mut rows, mut declined) = (Vec::new(), 0);
        facts::each_case(self.conn(), &q.filter(), |_, _, case| {
            let of_case = rows_of(&case, today);
            if crate::consent::declined(&case, SCOPE, today) {
                declined += of_case.len();
            } else {
                rows.extend(of_case);
            }
        })?;
        let (kept, dropped) = k_anonymous(rows, k);
        let records = kept.len();
        let csv = to_csv(kept)?;
        self.record(
            Action::Export,
            None,
            json!({ "scope": "deidentified", "records": records, "dropped": dropped, "declined": declined, "k": k }),
        )?;
        Ok(DeidExport { csv, records, dropped, declined, k })
    }
}

#[cfg(test)]
#[path = "deid_tests.rs"]
mod tests;
