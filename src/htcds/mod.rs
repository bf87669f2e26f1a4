//! Identified cases in the UN/IOM Human Trafficking Case Data Standard (HTCDS):
//! export as CSV or JSON with the standard's field names (`cas_`, `prs_`, `vic_`
//! prefixes, as in its field reference) and picklist values (our codes are the
//! standard's value names where it has a picklist, DOMAIN.md), and import of the
//! same columns for organisations moving from the HTCDS spreadsheet toolkit.
//!
//! One row per potential victim (the standard's "Person Victim Context"); the rows
//! of one case share `cas_CaseNumber` (the identifier of the Salesforce Case object
//! the standard's case table extends). Multi-select values are separated by `;`, as
//! in the toolkit's multi-select template. Only cases whose survivor's consent to
//! share with another organisation is in force are exported: this is identified
//! data.

use crate::consent::{self, Sharing};
use crate::intake::{FieldError, Issue};
use crate::repositories::{audit::Action, users::Role};
use crate::store::{Store, StoreError};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Where a column's value lives in a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A field of the case (the same on every row of the case).
    Case(&'static str),
    /// A field of the potential victim the row is about.
    Person(&'static str),
}

/// The columns, in order: the standard's field name, and our field.
pub const COLUMNS: &[(&str, Target)] = &[
    ("cas_CaseNumber", Target::Case("case_number")),
    ("cas_Status", Target::Case("status")),
    ("prs_FirstName", Target::Person("given_name")),
    ("prs_SecondName", Target::Person("family_name")),
    ("prs_Birthdate", Target::Person("birth_date")),
    ("prs_Gender", Target::Person("gender")),
    ("prs_Nationality", Target::Person("nationality")),
    ("prs_Email", Target::Person("email")),
    ("prs_MobilePhone", Target::Person("safe_phone")),
    ("vic_MethodOfRecruitment", Target::Case("method_of_recruitment")),
    ("vic_MethodsOfControl", Target::Case("methods_of_control")),
    ("vic_TypeOfLabourExploitation", Target::Case("type_of_labour_exploitation")),
    ("vic_TypeOfSexExploitation", Target::Case("type_of_sex_exploitation")),
    ("vic_Vulnerabilities", Target::Person("vulnerabilities")),
];

/// Labels the toolkit's spreadsheets use where they differ from the value names
/// by more than spaces and punctuation.
const LABELS: &[(&str, &str)] = &[
    ("internetsocialmediaonlineadvertisement", "Internet"),
    ("internationalmarriagebrokerimb", "InternationalMarriageBroker"),
    ("intimatepartnermarriageproposition", "IntimatePartnerOrMarriageProposition"),
    ("jobofferadvertisement", "JobOffer"),
];

fn column_of(field: &str, person: bool) -> Option<&'static str> {
    COLUMNS
        .iter()
        .find(|(_, t)| match t {
            Target::Case(f) => !person && *f == field,
            Target::Person(f) => person && *f == field,
        })
        .map(|(c, _)| *c)
}

fn is_multi(field: &str) -> bool {
    matches!(
        field,
        "nationality"
            | "method_of_recruitment"
            | "methods_of_control"
            | "type_of_labour_exploitation"
            | "type_of_sex_exploitation"
            | "vulnerabilities"
    )
}

/// An export: rows keyed by column, and what was left out.
#[derive(Debug, Clone, Serialize)]
pub struct HtcdsExport {
    pub rows: Vec<Map<String, Value>>,
    /// Cases exported.
    pub cases: usize,
    /// Cases without the survivor's consent in force to share with another organisation.
    pub left_out: usize,
}

impl HtcdsExport {
    /// CSV: the column names, then a row per potential victim; lists joined by `;`.
    pub fn to_csv(&self) -> Result<String, StoreError> {
        let mut w = csv::Writer::from_writer(Vec::new());
        // Writing CSV into memory fails only on a bug: an encoding error, never "damaged".
        w.write_record(COLUMNS.iter().map(|(c, _)| *c)).map_err(StoreError::encode)?;
        for row in &self.rows {
            let cell = |c: &str| match row.get(c) {
                Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(";"),
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => String::new(),
            };
            w.write_record(COLUMNS.iter().map(|(c, _)| cell(c))).map_err(StoreError::encode)?;
        }
        String::from_utf8(w.into_inner().map_err(StoreError::encode)?).map_err(StoreError::encode)
    }

    /// JSON: the same rows as objects (lists as arrays; a column without a value is left out).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.rows).unwrap_or_default()
    }
}

/// The rows of one case: one per potential victim.
fn rows_of(case: &Value) -> Vec<Map<String, Value>> {
    let people = case.get("people").and_then(Value::as_array).into_iter().flatten();
    people
        .filter(|p| p.get("role").and_then(Value::as_str) == Some("PotentialVictim"))
        .map(|p| {
            let mut row = Map::new();
            for (col, target) in COLUMNS {
                let v = match target {
                    Target::Case(f) => case.get(*f),
                    Target::Person(f) => p.get(*f),
                };
                if let Some(v) = v {
                    row.insert((*col).to_string(), v.clone());
                }
            }
            row
        })
        .collect()
}

/// A cell as a code: exactly, or from a spreadsheet label ("Job offer/advertisement",
/// "Transgender/NonConforming") when it names exactly one code of the field's list.
fn code_of(cell: &str, codes: &[&str]) -> String {
    let key: String = cell.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_lowercase();
    if let Some((_, code)) = LABELS.iter().find(|(l, _)| *l == key) {
        return (*code).to_string();
    }
    codes
        .iter()
        .chain(crate::form::codes::NON_ANSWERS.iter())
        .find(|c| c.to_lowercase() == key)
        .map_or_else(|| cell.to_string(), |c| (*c).to_string())
}

/// The code list of one of our fields, for reading labels.
fn codes_for(field: &str) -> &'static [&'static str] {
    use crate::form::codes::*;
    match field {
        "status" => STATUS.codes,
        "gender" => GENDER.codes,
        "nationality" => COUNTRY.codes,
        "method_of_recruitment" => RECRUITMENT.codes,
        "methods_of_control" => CONTROL.codes,
        "type_of_labour_exploitation" => LABOUR_EXPLOITATION.codes,
        "type_of_sex_exploitation" => SEX_EXPLOITATION.codes,
        "vulnerabilities" => VULNERABILITY.codes,
        _ => &[],
    }
}

/// One refused cell or row: its line in the file (the header is line 1) and column.
#[derive(Debug, Clone, Serialize)]
pub struct CellIssue {
    pub line: usize,
    pub column: String,
    #[serde(flatten)]
    pub issue: Issue,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct HtcdsImport {
    /// Cases written.
    pub imported: usize,
    /// Every problem; when there is one, nothing was written.
    pub rejected: Vec<CellIssue>,
}

/// A case being read from the rows that share a case number.
struct Group {
    lines: Vec<usize>,
    case: Map<String, Value>,
    people: Vec<Value>,
}

/// Where an export was saved, and how many cases it holds and left out.
#[derive(Debug, Clone, Serialize)]
pub struct Saved {
    pub file: String,
    pub cases: usize,
    pub left_out: usize,
}

impl Store {
    /// The export as `amparo-htcds-<time>.csv` or `.json` in a folder (the app's way).
    pub fn htcds_to_folder(&self, folder: &str, format: &str) -> Result<Saved, StoreError> {
        let folder = std::path::Path::new(folder.trim());
        crate::store::check_folder(folder)?; // before anything is read or recorded
        let json = match format {
            "json" => true,
            "csv" => false,
            other => {
                let e = Issue::new("format", FieldError::UnknownCode { code: other.to_string() });
                return Err(crate::intake::ValidationErrors(vec![e]).into());
            }
        };
        let export = self.htcds_export()?;
        let text = if json { export.to_json() } else { export.to_csv()? };
        let stamp = chrono::Local::now().format("%Y-%m-%d-%H%M%S");
        let file = format!("amparo-htcds-{stamp}.{format}");
        crate::store::write_into_folder(folder, &file, text.as_bytes())?;
        Ok(Saved { file, cases: export.cases, left_out: export.left_out })
    }

    /// Import an HTCDS CSV file on this computer; a path that is not a file is
    /// refused next to the `file` field.
    pub fn htcds_import_file(&mut self, path: &str) -> Result<HtcdsImport, StoreError> {
        let path = std::path::Path::new(path.trim());
        if !path.is_file() {
            return Err(crate::intake::ValidationErrors(vec![Issue::new("file", FieldError::NotAFile)]).into());
        }
        self.htcds_import_csv(std::io::BufReader::new(std::fs::File::open(path)?))
    }

    /// Cases with their identifying details, for another organisation's system
    /// (supervisors; audited): only where the survivor's consent to share with
    /// another organisation is in force today.
    pub fn htcds_export(&self) -> Result<HtcdsExport, StoreError> {
        self.require(Role::Supervisor)?;
        let today = crate::repositories::cases::today();
        let mut out = HtcdsExport { rows: vec![], cases: 0, left_out: 0 };
        let mut exported_ids = Vec::new();
        let mut failed = None;
        crate::repositories::cases::each(self.conn(), |id, number, mut case| {
            // A restricted case's personal values are sealed: opened with this
            // supervisor's keys (left sealed, they would be no use to the other system).
            if crate::repositories::restricted::is_restricted(&case) {
                match self.case_keys(&id) {
                    Ok(keys) => {
                        if let Some(m) = case.as_object_mut() {
                            keys.open_data(&id, m);
                        }
                    }
                    Err(e) => {
                        failed.get_or_insert(e);
                        return;
                    }
                }
            }
            if consent::check(&case, Sharing::Referral, today).is_err() {
                out.left_out += 1;
                return;
            }
            case["case_number"] = json!(number);
            out.rows.extend(rows_of(&case));
            out.cases += 1;
            exported_ids.push(id);
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        let detail = json!({ "scope": "htcds", "cases": out.cases, "left_out": out.left_out, "ids": exported_ids });
        self.record(Action::Export, None, detail)?;
        Ok(out)
    }

    /// Import the HTCDS CSV columns: rows with the same `cas_CaseNumber` are one
    /// case (a row without one is a case of its own). All or nothing; every problem
    /// is named by line and column.
    pub fn htcds_import_csv(&mut self, input: impl std::io::Read) -> Result<HtcdsImport, StoreError> {
        self.require(Role::Supervisor)?;
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
        let header: Vec<String> =
            reader.headers().map(|h| h.iter().map(|c| c.trim().to_string()).collect()).unwrap_or_default();
        let mut report = HtcdsImport::default();
        for c in header.iter().filter(|c| !COLUMNS.iter().any(|(n, _)| n == c)) {
            report.rejected.push(CellIssue {
                line: 1,
                column: c.clone(),
                issue: Issue::new(c.clone(), FieldError::UnknownField),
            });
        }
        if header.is_empty() || !report.rejected.is_empty() {
            if header.is_empty() {
                let issue = Issue::new("", FieldError::Format { format: "CSV".into() });
                report.rejected.push(CellIssue { line: 1, column: String::new(), issue });
            }
            return Ok(report);
        }
        let mut groups: Vec<Group> = Vec::new();
        let mut by_number: BTreeMap<String, usize> = BTreeMap::new();
        for (i, record) in reader.records().enumerate() {
            let line = i + 2;
            let Ok(record) = record else {
                let issue = Issue::new("", FieldError::Format { format: "CSV".into() });
                report.rejected.push(CellIssue { line, column: String::new(), issue });
                continue;
            };
            let mut case = Map::new();
            let mut person = Map::new();
            person.insert("role".into(), json!("PotentialVictim"));
            for (col, cell) in header.iter().zip(record.iter()) {
                let cell = cell.trim();
                let Some((_, target)) = COLUMNS.iter().find(|(n, _)| n == col) else { continue };
                if cell.is_empty() {
                    continue;
                }
                let (field, into) = match target {
                    Target::Case(f) => (*f, &mut case),
                    Target::Person(f) => (*f, &mut person),
                };
                let codes = codes_for(field);
                let value = if is_multi(field) {
                    Value::Array(
                        cell.split(';')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(|s| json!(code_of(s, codes)))
                            .collect(),
                    )
                } else if codes.is_empty() {
                    json!(cell)
                } else {
                    json!(code_of(cell, codes))
                };
                into.insert(field.to_string(), value);
            }
            let number = case.get("case_number").and_then(Value::as_str).map(str::to_string);
            let existing = number.as_ref().and_then(|n| by_number.get(n).copied());
            match existing {
                Some(g) => {
                    groups[g].lines.push(line);
                    groups[g].people.push(Value::Object(person));
                }
                None => {
                    if let Some(n) = number {
                        by_number.insert(n, groups.len());
                    }
                    groups.push(Group { lines: vec![line], case, people: vec![Value::Object(person)] });
                }
            }
        }
        if !report.rejected.is_empty() {
            return Ok(report);
        }
        let mut jsonl = String::new();
        for g in &groups {
            let mut c = g.case.clone();
            c.insert("format".into(), json!(crate::intake::CASE_FORMAT));
            // The standard has no trafficking type; the exploitation types imply it.
            let has = |k: &str| c.get(k).and_then(Value::as_array).is_some_and(|a| !a.is_empty());
            let kind = match (has("type_of_sex_exploitation"), has("type_of_labour_exploitation")) {
                (true, true) => Some("SexAndLabour"),
                (true, false) => Some("Sex"),
                (false, true) => Some("Labour"),
                _ => None,
            };
            if let Some(k) = kind {
                c.insert("trafficking_type".into(), json!(k));
            }
            c.insert("people".into(), Value::Array(g.people.clone()));
            jsonl.push_str(&Value::Object(c).to_string());
            jsonl.push('\n');
        }
        let result = self.import_jsonl(jsonl.as_bytes(), false, &mut |_| {})?;
        // Name each problem by the file's line and column, not our field path.
        for rejected in &result.rejected {
            let g = &groups[rejected.line - 1];
            for issue in &rejected.issues {
                let mut parts = issue.path.split('.');
                let (line, column) = match (parts.next(), parts.next()) {
                    (Some("people"), Some(n)) => {
                        let n: usize = n.parse().unwrap_or(0);
                        let field = parts.next().unwrap_or_default();
                        (g.lines.get(n).copied().unwrap_or(g.lines[0]), column_of(field, true))
                    }
                    (Some(field), _) => (g.lines[0], column_of(field, false)),
                    _ => (g.lines[0], None),
                };
                report.rejected.push(CellIssue {
                    line,
                    column: column.unwrap_or_default().to_string(),
                    issue: issue.clone(),
                });
            }
        }
        report.rejected.sort_by_key(|c| c.line);
        report.imported = result.imported;
        Ok(report)
    }
}

#[cfg(test)]
mod tests;
