//! Identified cases in the UN/IOM Human Trafficking Case Data Standard (HTCDS),
//! version 2.0: export as CSV or JSON with the field names of its data dictionary
//! and the value names of its picklists, and import of the same columns for
//! organisations moving from the HTCDS toolkit. `docs/htcds.md` lists the columns
//! and holds the table of how each of our codes is written and read back
//! ([`mapping`]).
//!
//! One row per potential victim (the standard's "Person Victim Context"); the rows
//! of one case share `amp_CaseNumber`. Multi-select values are separated by `;` in
//! CSV, as in the toolkit's multi-select template. Only cases whose survivor's
//! consent to share with another organisation is in force are exported: this is
//! identified data.

mod mapping;
mod sheet;

use crate::consent::{self, Sharing};
use crate::form::{self, codes, Field, Kind};
use crate::intake::{FieldError, Issue};
use crate::report::ReportQuery;
use crate::repositories::{audit::Action, users::Role};
use crate::store::{Store, StoreError};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Whose value a column holds: the case's (the same on every row of the case) or
/// the potential victim's the row is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Case,
    Person,
}

/// What a column's cell is made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// A text field, as it is.
    Text(Level, &'static str),
    /// A date, phone number or email: left empty for a non-answer.
    Typed(Level, &'static str),
    /// ISO 3166-1 country codes of a person's field (non-answers left out).
    Countries(&'static str),
    /// HTCDS values, from our codes through the table in `docs/htcds.md`;
    /// `single`: the standard's field takes one value.
    Values {
        single: bool,
    },
    /// One code of a field whose codes are the standard's value names.
    Code(Level, &'static str),
    /// Our codes, exactly: the twin of a field whose HTCDS column loses detail.
    Ours(Level, &'static str),
    /// The name of the user the case is assigned to.
    Owner,
    /// The latest referral's organisation, reason (from its service) and date.
    ReferralOrganisation,
    ReferralReason,
    ReferralDate,
    /// The survivor's latest decision to let us store her data: `TRUE` or `FALSE`.
    Consent,
}

/// A column: its name in the file, and what its cells hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub cell: Cell,
}

const fn col(name: &'static str, cell: Cell) -> Column {
    Column { name, cell }
}

/// The columns, in order: the standard's, in its dictionary's order, then ours.
pub const COLUMNS: &[Column] = &[
    col("prs_FirstName", Cell::Text(Level::Person, "given_name")),
    col("prs_SecondName", Cell::Text(Level::Person, "family_name")),
    col("prs_Birthdate", Cell::Typed(Level::Person, "birth_date")),
    col("prs_Gender", Cell::Values { single: true }),
    col("prs_Citizenship", Cell::Countries("nationality")),
    col("prs_Email", Cell::Typed(Level::Person, "email")),
    col("prs_MobilePhone", Cell::Typed(Level::Person, "safe_phone")),
    col("vic_TraffickingStatus", Cell::Code(Level::Person, "trafficking_status")),
    col("vic_TraffickingStatusDecisionMakingOrg", Cell::Code(Level::Person, "trafficking_status_decided_by")),
    col("vic_RelationshipToTrafficker", Cell::Values { single: true }),
    col("vic_MethodOfRecruitment", Cell::Values { single: false }),
    col("vic_MethodsOfControl", Cell::Values { single: false }),
    col("vic_TypeOfExploitation", Cell::Values { single: false }),
    col("vic_ForcedLabourIndustry", Cell::Values { single: true }),
    col("vic_TypeOfSexExploitation", Cell::Values { single: false }),
    col("cas_Status", Cell::Values { single: true }),
    col("cas_ReasonForCaseClosure", Cell::Text(Level::Case, "closure_reason")),
    col("cas_CaseOwner", Cell::Owner),
    col("cas_ReferringOrganisation", Cell::Text(Level::Case, "incoming_referral.organisation")),
    col("cas_IncomingReferralDate", Cell::Typed(Level::Case, "incoming_referral.date")),
    col("cas_ReasonForIncomingReferral", Cell::Code(Level::Case, "incoming_referral.reason")),
    col("cas_IncomingReferralDetails", Cell::Text(Level::Case, "incoming_referral.details")),
    col("cas_ReferredOrganisation", Cell::ReferralOrganisation),
    col("cas_ReasonForOutgoingReferral", Cell::ReferralReason),
    col("cas_OutgoingReferralDate", Cell::ReferralDate),
    col("con_Consent", Cell::Consent),
    col("amp_CaseNumber", Cell::Text(Level::Case, "case_number")),
    col("amp_IntakeChannel", Cell::Ours(Level::Case, "intake_channel")),
    col("amp_Gender", Cell::Ours(Level::Person, "gender")),
    col("amp_RecruiterRelation", Cell::Ours(Level::Case, "recruiter_relation")),
    col("amp_MethodOfRecruitment", Cell::Ours(Level::Case, "method_of_recruitment")),
    col("amp_MethodsOfControl", Cell::Ours(Level::Case, "methods_of_control")),
    col("amp_ThreatTargets", Cell::Ours(Level::Case, "threat_targets")),
    col("amp_ForcedLabourIndustry", Cell::Ours(Level::Case, "forced_labour_industry")),
    col("amp_Vulnerabilities", Cell::Ours(Level::Person, "vulnerabilities")),
];

/// Our questions that are the standard's own (our codes are its value names):
/// where one is answered, its column is written from it alone; the other fields
/// that map to the column only stand in for it.
const OWN_QUESTIONS: &[(&str, &str)] = &[
    ("vic_TypeOfExploitation", "type_of_exploitation"),
    ("vic_ForcedLabourIndustry", "forced_labour_industry"),
    ("vic_MethodOfRecruitment", "recruitment_channel"),
];

/// Fields whose codes the export before HTCDS 2.0 wrote into a column that now
/// holds another field's: still read there.
const FORMER: &[(&str, &str)] = &[
    ("vic_MethodOfRecruitment", "method_of_recruitment"),
    ("vic_ForcedLabourIndustry", "type_of_labour_exploitation"),
];

/// Column names of the export before HTCDS 2.0, still read: each holds what the
/// named column of today holds, in our codes.
const OLD_NAMES: &[(&str, &str)] = &[
    ("cas_CaseNumber", "amp_CaseNumber"),
    ("prs_Nationality", "prs_Citizenship"),
    ("vic_TypeOfLabourExploitation", "vic_ForcedLabourIndustry"),
    ("vic_Vulnerabilities", "amp_Vulnerabilities"),
    // The toolkit's spreadsheet spells it so.
    ("vic_TraffickinStatusDecisionMakingOrg", "vic_TraffickingStatusDecisionMakingOrg"),
];

/// The column a file's header names: today's name or the one before 2.0, as the
/// toolkit and KoboToolbox write them (`prs_First_Name`; a group's path before a
/// `/`; any case).
fn column_named(name: &str) -> Option<&'static Column> {
    let mut path = name.rsplit('/');
    let name = path.next().unwrap_or(name);
    // KoboToolbox adds a 0/1 column for each choice of a multi-select
    // (`field/choice`): the field's own column holds them all.
    if path.next().is_some_and(|parent| column_named(parent).is_some()) {
        return None;
    }
    let key = key_of(name);
    let name = OLD_NAMES.iter().find(|(old, _)| key_of(old) == key).map_or(name, |(_, new)| new);
    let key = key_of(name);
    COLUMNS.iter().find(|c| key_of(c.name) == key)
}

/// Is this row the toolkit's second header row, the labels of the fields named
/// above them ("First Name" under `prs_FirstName`)? Most of its cells say so.
fn is_label_row(columns: &[Option<&Column>], row: &[String]) -> bool {
    let (mut cells, mut labels) = (0, 0);
    for (column, cell) in columns.iter().zip(row) {
        let (Some(column), cell) = (column, key_of(cell)) else { continue };
        if cell.is_empty() {
            continue;
        }
        cells += 1;
        let name = key_of(column.name.split_once('_').map_or(column.name, |(_, n)| n));
        if name.starts_with(&cell) || cell.starts_with(&name) {
            labels += 1;
        }
    }
    cells > 0 && labels * 2 >= cells
}

/// ISO 3166-1's English short names (the toolkit's validation sheet lists them)
/// where they are not our English or Spanish label.
const ISO_NAMES: &[(&str, &str)] = &[
    ("BN", "Brunei Darussalam"),
    ("US", "United States of America"),
    ("VE", "Venezuela (Bolivarian Republic of)"),
    ("BO", "Bolivia (Plurinational State of)"),
    ("KR", "Korea, Republic of"),
    ("RU", "Russian Federation"),
    ("CD", "Congo, Democratic Republic of the"),
    ("FM", "Micronesia (Federated States of)"),
    ("GB", "United Kingdom of Great Britain and Northern Ireland"),
    ("IR", "Iran (Islamic Republic of)"),
    ("KP", "Korea (Democratic People's Republic of)"),
    ("LA", "Lao People's Democratic Republic"),
    ("MD", "Moldova, Republic of"),
    ("PS", "Palestine, State of"),
    ("SY", "Syrian Arab Republic"),
    ("TR", "Turkey"),
    ("TW", "Taiwan, Province of China"),
    ("TZ", "Tanzania, United Republic of"),
    ("VA", "Holy See"),
    ("VG", "Virgin Islands (British)"),
    ("VI", "Virgin Islands (U.S.)"),
];

/// A country as a file may give it: an ISO 3166-1 code, its ISO name, or its
/// name in English or Spanish (with or without accents). Anything else is kept as
/// written, for the form's rules to refuse by name.
fn country_code(cell: &str) -> String {
    let code = cell.trim().to_ascii_uppercase();
    if codes::COUNTRY.contains(&code) {
        return code;
    }
    let key = folded(cell);
    if let Some((code, _)) = ISO_NAMES.iter().find(|(_, name)| folded(name) == key) {
        return (*code).to_string();
    }
    let named = |c: &&&str| codes::UI_LOCALES.iter().any(|l| folded(&crate::i18n::code_label(l, "country", c)) == key);
    codes::COUNTRY.codes.iter().find(named).map_or_else(|| cell.trim().to_string(), |c| (*c).to_string())
}

/// Letters and digits, lower case, without accents (`México` and `mexico` agree).
fn folded(s: &str) -> String {
    let plain = |c: char| match c {
        'á' | 'à' | 'â' | 'ä' | 'ã' | 'Á' | 'À' | 'Â' | 'Ä' | 'Ã' => 'a',
        'é' | 'è' | 'ê' | 'ë' | 'É' | 'È' | 'Ê' | 'Ë' => 'e',
        'í' | 'ì' | 'î' | 'ï' | 'Í' | 'Ì' | 'Î' | 'Ï' => 'i',
        'ó' | 'ò' | 'ô' | 'ö' | 'õ' | 'Ó' | 'Ò' | 'Ô' | 'Ö' | 'Õ' => 'o',
        'ú' | 'ù' | 'û' | 'ü' | 'Ú' | 'Ù' | 'Û' | 'Ü' => 'u',
        'ñ' | 'Ñ' => 'n',
        'ç' | 'Ç' => 'c',
        c => c,
    };
    key_of(&s.chars().map(plain).collect::<String>())
}

/// Labels the toolkit's spreadsheets use where they differ from the value names by
/// more than spaces and punctuation (the 2.0 validation sheet, and the draft before).
const LABELS: &[(&str, &str)] = &[
    ("notspecifiedunknown", "NonSpecifiedUnknown"),
    ("threatsoflawenforcement", "ThreatsLawEnforcement"),
    ("internetsocialmediaonlineadvertisement", "Internet"),
    ("internationalmarriagebrokerimb", "InternationalMarriageBroker"),
    ("intimatepartnermarriageproposition", "IntimatePartnerOrMarriageProposition"),
    ("jobofferadvertisement", "JobOffer"),
];

/// A value or label reduced to its letters and digits, lower case.
fn key_of(s: &str) -> String {
    s.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_lowercase()
}

/// The form's definition of one of our fields (a person's, or the case's), by
/// its path within a group (`incoming_referral.reason`).
fn field_def(level: Level, path: &str) -> Option<Field> {
    let mut keys = path.split('.');
    let first = keys.next()?;
    let mut field = match level {
        Level::Person => form::person_fields().into_iter().find(|f| f.key == first),
        Level::Case => form::case_fields().iter().find(|f| f.key == first).cloned(),
    }?;
    for key in keys {
        let Kind::Group { fields } = field.kind else { return None };
        field = fields.into_iter().find(|f| f.key == key)?;
    }
    Some(field)
}

/// A value at a path within a case or person.
fn at_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(obj, |v, k| v.get(k))
}

/// Set a value at a path within a case or person, making its groups.
fn set_path(obj: &mut Map<String, Value>, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            obj.insert(path.to_string(), value);
        }
        Some((group, rest)) => {
            let inner = obj.entry(group.to_string()).or_insert_with(|| json!({}));
            if let Some(inner) = inner.as_object_mut() {
                set_path(inner, rest, value);
            }
        }
    }
}

fn level_of(key: &str) -> Level {
    let first = key.split('.').next().unwrap_or(key);
    if form::person_fields().iter().any(|f| f.key == first) {
        Level::Person
    } else {
        Level::Case
    }
}

/// A field's code list, and whether it holds a list of codes.
fn codes_of(key: &str) -> (&'static [&'static str], bool) {
    match field_def(level_of(key), key).map(|f| f.kind) {
        Some(Kind::Choice { set, .. } | Kind::Derived { set }) => (set.codes, false),
        Some(Kind::Multi { set }) => (set.codes, true),
        _ if key == "service" => (codes::NEED_SERVICE.codes, false),
        _ => (&[], false),
    }
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
        w.write_record(COLUMNS.iter().map(|c| c.name)).map_err(StoreError::encode)?;
        for row in &self.rows {
            let cell = |c: &str| match row.get(c) {
                Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(";"),
                Some(Value::String(s)) => s.clone(),
                Some(Value::Bool(b)) => (if *b { "TRUE" } else { "FALSE" }).to_string(),
                Some(v) => v.to_string(),
                None => String::new(),
            };
            w.write_record(COLUMNS.iter().map(|c| cell(c.name))).map_err(StoreError::encode)?;
        }
        String::from_utf8(w.into_inner().map_err(StoreError::encode)?).map_err(StoreError::encode)
    }

    /// JSON: the same rows as objects (lists as arrays; a column without a value is left out).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.rows).unwrap_or_default()
    }
}

/// A field's codes as they are in the case or person (one, or a list).
fn codes_in(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    }
}

fn is_non_answer(s: &str) -> bool {
    codes::NON_ANSWERS.contains(&s)
}

/// The referral made last (by its date; the later in the list on the same day).
fn latest_referral(case: &Value) -> Option<&Map<String, Value>> {
    let referrals = case.get("referrals").and_then(Value::as_array).into_iter().flatten();
    let dated =
        referrals.filter_map(Value::as_object).map(|r| (r.get("date").and_then(Value::as_str).unwrap_or(""), r));
    dated.enumerate().max_by_key(|(i, (d, _))| (*d, *i)).map(|(_, (_, r))| r)
}

/// One cell of a victim's row; `None` when it is empty.
fn cell_of(column: &Column, case: &Value, person: &Value, owner: Option<&str>) -> Option<Value> {
    let at = |level: Level, path: &str| match level {
        Level::Case => at_path(case, path),
        Level::Person => at_path(person, path),
    };
    let text = |v: Option<&Value>| v.and_then(Value::as_str).filter(|s| !s.is_empty()).map(|s| json!(s));
    let list = |codes: Vec<&str>, single: bool| match (codes.first(), single) {
        (None, _) => None,
        (Some(first), true) => Some(json!(first)),
        (Some(_), false) => Some(json!(codes)),
    };
    let today = crate::repositories::cases::today();
    match column.cell {
        Cell::Text(level, key) => text(at(level, key)),
        Cell::Typed(level, key) => text(at(level, key)).filter(|v| !v.as_str().is_some_and(is_non_answer)),
        Cell::Countries(key) => {
            list(codes_in(person.get(key)).into_iter().filter(|c| !is_non_answer(c)).collect(), false)
        }
        Cell::Values { single } => {
            let mut values: Vec<&str> = Vec::new();
            let answered = |f: &str| codes_in(at(level_of(f), f)).iter().any(|c| !is_non_answer(c));
            let own = OWN_QUESTIONS.iter().find(|(c, f)| *c == column.name && answered(f)).map(|(_, f)| *f);
            for &field in mapping::fields_of(column.name).iter().filter(|f| own.is_none_or(|o| o == **f)) {
                let source = person.get(field).or_else(|| case.get(field));
                for v in mapping::written(column.name, field, codes_in(source)) {
                    if !values.contains(&v) {
                        values.push(v);
                    }
                }
            }
            // In the table's order of values, whichever of our codes gave each:
            // the same values are always written the same way.
            let order = mapping::values_of(column.name);
            values.sort_by_key(|v| order.iter().position(|o| o == v));
            list(values, single)
        }
        Cell::Code(level, path) => text(at(level, path)).filter(|v| !v.as_str().is_some_and(is_non_answer)),
        Cell::Ours(level, key) => match at(level, key) {
            Some(Value::Array(a)) if a.is_empty() => None,
            Some(v @ (Value::Array(_) | Value::String(_))) => Some(v.clone()),
            _ => None,
        },
        Cell::Owner => owner.map(|o| json!(o)),
        Cell::ReferralOrganisation => text(latest_referral(case)?.get("organisation_name")),
        Cell::ReferralReason => {
            let service = codes_in(latest_referral(case)?.get("service"));
            list(mapping::written(column.name, "service", service), true)
        }
        Cell::ReferralDate => text(latest_referral(case)?.get("date")),
        Cell::Consent => match consent::latest(case, "StoreData", today)?.get("decision").and_then(Value::as_str) {
            Some("Granted") => Some(json!(true)),
            Some("Declined") => Some(json!(false)),
            _ => None,
        },
    }
}

/// The rows of one case: one per potential victim.
fn rows_of(case: &Value, owner: Option<&str>) -> Vec<Map<String, Value>> {
    let people = case.get("people").and_then(Value::as_array).into_iter().flatten();
    people
        .filter(|p| p.get("role").and_then(Value::as_str) == Some("PotentialVictim"))
        .map(|p| {
            let cells = COLUMNS.iter().filter_map(|c| Some((c.name.to_string(), cell_of(c, case, p, owner)?)));
            cells.collect()
        })
        .collect()
}

/// One item of a cell read as our fields and codes: a value name of the standard
/// (or its label), one of our codes (or its label), or a non-answer. Empty when it
/// is none of them.
fn read_item(column: &Column, item: &str) -> Vec<(&'static str, String)> {
    let key = key_of(item);
    let label = LABELS.iter().find(|(l, _)| *l == key).map(|(_, v)| *v);
    let fields = match column.cell {
        Cell::Code(_, path) => vec![path],
        _ => {
            // The standard's values, by name or label (an industry also without its
            // `A_`, and its label runs on past its value name: "… and remediation").
            let standard = mapping::values_of(column.name).iter().copied().find(|v| {
                Some(*v) == label
                    || key_of(v) == key
                    || v.split_once('_').is_some_and(|(_, rest)| key.starts_with(&key_of(rest)))
            });
            if let Some(v) = standard {
                return mapping::read(column.name, v).into_iter().map(|(f, c)| (f, c.to_string())).collect();
            }
            let former = FORMER.iter().filter(|(c, _)| *c == column.name).map(|(_, f)| *f);
            mapping::fields_of(column.name).iter().copied().chain(former).collect()
        }
    };
    for field in &fields {
        let (list, _) = codes_of(field);
        if let Some(code) = list.iter().find(|c| Some(**c) == label || key_of(c) == key) {
            return vec![(field, (*code).to_string())];
        }
        // A code of an earlier version, read as it is now when the case is saved.
        if let Some((_, old, _, _)) = codes::RENAMED.iter().find(|(f, old, _, _)| f == field && key_of(old) == key) {
            return vec![(field, (*old).to_string())];
        }
    }
    match (codes::NON_ANSWERS.iter().find(|c| key_of(c) == key), fields.first()) {
        (Some(non_answer), Some(field)) => vec![(field, (*non_answer).to_string())],
        _ => Vec::new(),
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
    /// Columns of the file that were not read: not ours, or not read back (the
    /// case owner and referrals), by their names in the file.
    pub ignored: Vec<String>,
}

/// A case being read from the rows that share a case number.
struct Group {
    lines: Vec<usize>,
    case: Map<String, Value>,
    people: Vec<Value>,
    /// The case's cells as the first row that filled each gave them, and its line.
    cells: BTreeMap<&'static str, (String, usize)>,
}

/// Does a column hold one of the case's values (the same on each of its rows)?
fn is_case_level(column: &Column) -> bool {
    match column.cell {
        Cell::Text(level, _) | Cell::Typed(level, _) | Cell::Ours(level, _) | Cell::Code(level, _) => {
            level == Level::Case
        }
        Cell::Values { .. } => mapping::fields_of(column.name).iter().all(|f| level_of(f) == Level::Case),
        Cell::Countries(_) => false,
        Cell::Owner | Cell::ReferralOrganisation | Cell::ReferralReason | Cell::ReferralDate | Cell::Consent => true,
    }
}

/// Is a column read back by the import?
fn is_read(column: &Column) -> bool {
    !matches!(
        column.cell,
        Cell::Owner | Cell::ReferralOrganisation | Cell::ReferralReason | Cell::ReferralDate | Cell::Consent
    )
}

/// Does a column hold our `field` (of a person, or of the case)?
fn holds(column: &Column, field: &str, level: Level) -> bool {
    match column.cell {
        Cell::Text(l, k) | Cell::Typed(l, k) | Cell::Ours(l, k) | Cell::Code(l, k) => l == level && k == field,
        Cell::Countries(k) => level == Level::Person && k == field,
        Cell::Values { .. } => level_of(field) == level && mapping::fields_of(column.name).contains(&field),
        _ => false,
    }
}

/// The items of a multi-select cell.
fn items(cell: &str) -> impl Iterator<Item = &str> {
    cell.split(';').map(str::trim).filter(|s| !s.is_empty())
}

/// The trafficking type the exploitation read implies: sexual and labour (or a
/// kind of labour) together make `SexAndLabour`.
fn trafficking_type(case: &Map<String, Value>, read: &[String]) -> Option<&'static str> {
    let has = |k: &str| case.get(k).and_then(Value::as_array).is_some_and(|a| !a.is_empty());
    let sex = read.iter().any(|c| c == "Sex") || has("type_of_sex_exploitation");
    let labour = read.iter().any(|c| c == "Labour") || has("forced_labour_industry");
    match (sex, labour) {
        (true, true) => Some("SexAndLabour"),
        (true, false) => Some("Sex"),
        (false, true) => Some("Labour"),
        _ => read.iter().any(|c| c == "Other").then_some("Other"),
    }
}

/// Which of our fields fills a column: its name in the file, and the label keys
/// of our fields (the help beside the export shows them in the UI's language).
#[derive(Debug, Clone, Serialize)]
pub struct ColumnHelp {
    pub column: &'static str,
    pub fields: Vec<String>,
}

/// Every column, with the fields it is made from.
pub fn column_help() -> Vec<ColumnHelp> {
    let label = |level: Level, path: &str| match level {
        Level::Case => format!("field.{path}"),
        Level::Person => format!("field.people.{path}"),
    };
    let fields = |c: &Column| -> Vec<String> {
        match c.cell {
            Cell::Text(level, path) | Cell::Typed(level, path) | Cell::Ours(level, path) | Cell::Code(level, path) => {
                vec![label(level, path)]
            }
            Cell::Countries(key) => vec![label(Level::Person, key)],
            Cell::Values { .. } => mapping::fields_of(c.name).iter().map(|f| label(level_of(f), f)).collect(),
            Cell::Owner => vec!["case.assigned_to".into()],
            Cell::ReferralOrganisation => vec!["field.referrals.organisation_name".into()],
            Cell::ReferralReason => vec!["field.referrals.service".into()],
            Cell::ReferralDate => vec!["field.referrals.date".into()],
            Cell::Consent => vec!["field.consents".into()],
        }
    };
    COLUMNS.iter().map(|c| ColumnHelp { column: c.name, fields: fields(c) }).collect()
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
    pub fn htcds_to_folder(&self, folder: &str, format: &str, q: &ReportQuery) -> Result<Saved, StoreError> {
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
        let export = self.htcds_export(q)?;
        let text = if json { export.to_json() } else { export.to_csv()? };
        let stamp = chrono::Local::now().format("%Y-%m-%d-%H%M%S");
        let file = format!("amparo-htcds-{stamp}.{format}");
        crate::store::write_into_folder(folder, &file, text.as_bytes())?;
        Ok(Saved { file, cases: export.cases, left_out: export.left_out })
    }

    /// Import an HTCDS file on this computer: CSV, or the toolkit's spreadsheet
    /// itself (`.xlsx`, `.ods`). A path that is not a file is refused next to the
    /// `file` field.
    pub fn htcds_import_file(&mut self, path: &str) -> Result<HtcdsImport, StoreError> {
        let path = std::path::Path::new(path.trim());
        if !path.is_file() {
            return Err(crate::intake::ValidationErrors(vec![Issue::new("file", FieldError::NotAFile)]).into());
        }
        self.require(Role::Supervisor)?;
        let table = match sheet::is_book(path) {
            true => sheet::read_book(path),
            false => sheet::read_csv(std::fs::File::open(path)?),
        };
        self.htcds_import_table(table)
    }

    /// Cases with their identifying details, for another organisation's system
    /// (supervisors; audited): those of a period and filters as the fact sheet
    /// chooses them, and only where the survivor's consent to share with another
    /// organisation is in force today.
    pub fn htcds_export(&self, q: &ReportQuery) -> Result<HtcdsExport, StoreError> {
        self.require(Role::Supervisor)?;
        q.check()?;
        let today = crate::repositories::cases::today();
        let mut out = HtcdsExport { rows: vec![], cases: 0, left_out: 0 };
        let mut exported_ids = Vec::new();
        let mut failed = None;
        crate::repositories::facts::each_case(self.conn(), &q.filter(), |id, number, mut case| {
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
            let assigned = case.get("assigned_to").and_then(Value::as_str);
            let owner = match assigned.map(|u| crate::repositories::users::name_of(self.conn(), u)).transpose() {
                Ok(owner) => owner.flatten(),
                Err(e) => {
                    failed.get_or_insert(e.into());
                    return;
                }
            };
            out.rows.extend(rows_of(&case, owner.as_deref()));
            out.cases += 1;
            exported_ids.push(id);
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        let detail = json!({ "scope": "htcds", "cases": out.cases, "left_out": out.left_out, "ids": exported_ids,
                             "query": q });
        self.record(Action::Export, None, detail)?;
        Ok(out)
    }

    /// Import the HTCDS CSV columns: rows with the same `amp_CaseNumber` are one
    /// case (a row without one is a case of its own). All or nothing; every problem
    /// is named by line and column. Columns that are not read are named in the
    /// report.
    pub fn htcds_import_csv(&mut self, input: impl std::io::Read) -> Result<HtcdsImport, StoreError> {
        self.require(Role::Supervisor)?;
        self.htcds_import_table(sheet::read_csv(input))
    }

    fn htcds_import_table(&mut self, table: Result<sheet::Table, Vec<CellIssue>>) -> Result<HtcdsImport, StoreError> {
        self.require(Role::Supervisor)?;
        let mut report = HtcdsImport::default();
        let mut table = match table {
            Ok(t) => t,
            Err(issues) => {
                report.rejected = issues;
                return Ok(report);
            }
        };
        let header: Vec<String> = table.header.iter().map(|c| c.trim().to_string()).collect();
        let columns: Vec<Option<&'static Column>> = header.iter().map(|h| column_named(h)).collect();
        if !columns.iter().flatten().any(|c| is_read(c)) {
            let issue = Issue::new("", FieldError::NotHtcds);
            report.rejected.push(CellIssue { line: 1, column: String::new(), issue });
            return Ok(report);
        }
        // The toolkit's spreadsheet has a second header row: the fields' labels.
        if table.rows.first().is_some_and(|(_, row)| is_label_row(&columns, row)) {
            table.rows.remove(0);
        }
        // Rows with nothing we read (the toolkit numbers a thousand empty rows).
        let read_here =
            |row: &[String]| columns.iter().zip(row).any(|(c, v)| c.is_some_and(is_read) && !v.trim().is_empty());
        table.rows.retain(|(_, row)| read_here(row));
        // Columns not read are named when they hold something that is left behind;
        // not those without a name (the toolkit's row numbers), KoboToolbox's own
        // (`_id`, `_uuid`, …) or its column for each choice.
        for (i, (name, column)) in header.iter().zip(&columns).enumerate() {
            let filled = table.rows.iter().any(|(_, row)| row.get(i).is_some_and(|v| !v.trim().is_empty()));
            let theirs = name.is_empty()
                || name.starts_with('_')
                || name.rsplit_once('/').is_some_and(|(parent, _)| column_named(parent).is_some());
            if filled && !theirs && !column.is_some_and(is_read) && !report.ignored.contains(name) {
                report.ignored.push(name.clone());
            }
        }
        // A field whose exact twin (`amp_`) is in the file is read from there only.
        let twins: BTreeSet<&str> = columns
            .iter()
            .flatten()
            .filter_map(|c| if let Cell::Ours(_, f) = c.cell { Some(f) } else { None })
            .collect();
        let in_file: Vec<&Column> = columns.iter().flatten().copied().collect();
        let column_of = |field: &str, level: Level| {
            let found = in_file.iter().copied().find(|c| holds(c, field, level));
            found.or_else(|| COLUMNS.iter().find(|c| holds(c, field, level))).map_or("", |c| c.name)
        };
        let mut groups: Vec<Group> = Vec::new();
        let mut by_number: BTreeMap<String, usize> = BTreeMap::new();
        for (line, record) in table.rows {
            let mut case = Map::new();
            let mut person = Map::new();
            person.insert("role".into(), json!("PotentialVictim"));
            let mut read: BTreeMap<&'static str, (Vec<String>, &'static str)> = BTreeMap::new();
            let mut cells: BTreeMap<&'static str, String> = BTreeMap::new();
            for (column, cell) in columns.iter().zip(record.iter()) {
                let (Some(column), cell) = (column, cell.trim()) else { continue };
                if cell.is_empty() || !is_read(column) {
                    continue;
                }
                if is_case_level(column) {
                    cells.insert(column.name, cell.to_string());
                }
                let into =
                    |level: Level, case: &mut Map<String, Value>, person: &mut Map<String, Value>, path: &str, v| {
                        match level {
                            Level::Case => set_path(case, path, v),
                            Level::Person => set_path(person, path, v),
                        }
                    };
                match column.cell {
                    Cell::Text(level, key) | Cell::Typed(level, key) => {
                        into(level, &mut case, &mut person, key, json!(cell))
                    }
                    Cell::Countries(key) => {
                        person.insert(key.to_string(), json!(items(cell).map(country_code).collect::<Vec<_>>()));
                    }
                    Cell::Ours(level, key) => {
                        let value = if codes_of(key).1 { json!(items(cell).collect::<Vec<_>>()) } else { json!(cell) };
                        into(level, &mut case, &mut person, key, value);
                    }
                    Cell::Code(level, path) => match read_item(column, cell).pop() {
                        Some((_, code)) => into(level, &mut case, &mut person, path, json!(code)),
                        // Left as written, for the form's rules to name.
                        None => into(level, &mut case, &mut person, path, json!(cell)),
                    },
                    Cell::Values { single } => {
                        // A single value may hold `;` (an industry's label does); a
                        // KoboToolbox export separates a multi-select's value names
                        // with spaces (its form lets several industries be picked:
                        // they are read, into our list of them).
                        let mut values: Vec<&str> = if single { vec![cell] } else { items(cell).collect() };
                        if values.len() == 1 && read_item(column, cell).is_empty() {
                            // (A list in a single column: our export before 2.0.)
                            let split: Vec<&str> = match cell.contains(';') {
                                true => items(cell).collect(),
                                false => cell.split_whitespace().collect(),
                            };
                            if split.iter().all(|n| !read_item(column, n).is_empty()) {
                                values = split;
                            }
                        }
                        for item in values {
                            let found = read_item(column, item);
                            for (field, code) in found.iter().filter(|(f, _)| !twins.contains(f)) {
                                let (codes, _) = read.entry(field).or_insert_with(|| (Vec::new(), column.name));
                                if !codes.contains(code) {
                                    codes.push(code.clone());
                                }
                            }
                            if found.is_empty() {
                                report.rejected.push(CellIssue {
                                    line,
                                    column: column.name.to_string(),
                                    issue: Issue::new(column.name, FieldError::UnknownCode { code: item.to_string() }),
                                });
                            }
                        }
                    }
                    _ => {}
                }
            }
            for (field, (codes, column)) in &read {
                if *field == "trafficking_type" {
                    continue;
                }
                // A field of an earlier form (its codes move on save) keeps the list.
                let list = codes_of(field).1 || field_def(level_of(field), field).is_none();
                let value = match (list, &codes[..]) {
                    (true, _) => json!(codes),
                    (false, [one]) => json!(one),
                    (false, _) => {
                        let issue = Issue::new(*column, FieldError::UnknownCode { code: codes.join(";") });
                        report.rejected.push(CellIssue { line, column: column.to_string(), issue });
                        continue;
                    }
                };
                match level_of(field) {
                    Level::Case => case.insert(field.to_string(), value),
                    Level::Person => person.insert(field.to_string(), value),
                };
            }
            // Codes of an earlier version, as they are now, before the type of
            // trafficking is read from the forms of exploitation they give.
            let mut upgraded = Value::Object(std::mem::take(&mut case));
            crate::intake::upgrade_codes(&mut upgraded);
            if let Value::Object(m) = upgraded {
                case = m;
            }
            let mut kinds = read.get("trafficking_type").map(|(codes, _)| codes.clone()).unwrap_or_default();
            for form in codes_in(case.get("type_of_exploitation")) {
                let implied = mapping::read("vic_TypeOfExploitation", form).into_iter();
                kinds.extend(implied.filter(|(f, _)| *f == "trafficking_type").map(|(_, c)| c.to_string()));
            }
            if let Some(kind) = trafficking_type(&case, &kinds) {
                case.insert("trafficking_type".into(), json!(kind));
            }
            // A case another organisation referred to us came by referral (the
            // form asks about the referral only then).
            if case.contains_key("incoming_referral") && !case.contains_key("intake_channel") {
                case.insert("intake_channel".into(), json!("OrganisationReferral"));
            }
            let number = case.get("case_number").and_then(Value::as_str).map(str::to_string);
            match number.as_ref().and_then(|n| by_number.get(n).copied()) {
                Some(g) => {
                    let group = &mut groups[g];
                    for (column, cell) in cells {
                        match group.cells.get(column) {
                            Some((first, first_line)) if *first != cell => report.rejected.push(CellIssue {
                                line,
                                column: column.to_string(),
                                issue: Issue::new(column, FieldError::RowsDisagree { line: *first_line }),
                            }),
                            Some(_) => {}
                            None => {
                                group.cells.insert(column, (cell, line));
                            }
                        }
                    }
                    for (k, v) in case {
                        group.case.entry(k).or_insert(v);
                    }
                    group.lines.push(line);
                    group.people.push(Value::Object(person));
                }
                None => {
                    if let Some(n) = number {
                        by_number.insert(n, groups.len());
                    }
                    let cells = cells.into_iter().map(|(c, v)| (c, (v, line))).collect();
                    groups.push(Group { lines: vec![line], case, people: vec![Value::Object(person)], cells });
                }
            }
        }
        let cases: Vec<Value> = groups
            .iter()
            .map(|g| {
                let mut c = g.case.clone();
                c.insert("format".into(), json!(crate::intake::CASE_FORMAT));
                c.insert("people".into(), Value::Array(g.people.clone()));
                Value::Object(c)
            })
            .collect();
        // Name each problem by the file's line and column, not our field path.
        let name = |g: &Group, issues: &[Issue]| -> Vec<CellIssue> {
            let mut named = Vec::new();
            for issue in issues {
                let mut parts = issue.path.split('.');
                let (line, column) = match (parts.next(), parts.next()) {
                    (Some("people"), Some(n)) => {
                        let n: usize = n.parse().unwrap_or(0);
                        let field = parts.next().unwrap_or_default();
                        (g.lines.get(n).copied().unwrap_or(g.lines[0]), column_of(field, Level::Person))
                    }
                    // A group's field by its path (`incoming_referral.date`), else the field.
                    (Some(field), _) => {
                        let column = Some(column_of(&issue.path, Level::Case)).filter(|c| !c.is_empty());
                        (g.lines[0], column.unwrap_or_else(|| column_of(field, Level::Case)))
                    }
                    _ => (g.lines[0], ""),
                };
                named.push(CellIssue { line, column: column.to_string(), issue: issue.clone() });
            }
            named
        };
        if !report.rejected.is_empty() {
            // Nothing is written; the form's rules still name every other problem.
            let today = crate::repositories::cases::today();
            for (g, case) in groups.iter().zip(cases) {
                if let Err(e) = crate::intake::prepare(case, today) {
                    report.rejected.extend(name(g, &e.0));
                }
            }
            report.rejected.sort_by_key(|c| c.line);
            return Ok(report);
        }
        let mut jsonl = String::new();
        for case in &cases {
            jsonl.push_str(&case.to_string());
            jsonl.push('\n');
        }
        let result = self.import_jsonl(jsonl.as_bytes(), false, &mut |_| {})?;
        for rejected in &result.rejected {
            report.rejected.extend(name(&groups[rejected.line - 1], &rejected.issues));
        }
        report.rejected.sort_by_key(|c| c.line);
        report.imported = result.imported;
        Ok(report)
    }
}

#[cfg(test)]
mod tests;
