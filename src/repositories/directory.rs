//! The service directory: organisations on both sides of the border that survivors
//! can be referred to (name, country, subdivision, city, services, phone, languages,
//! hours, notes). It starts with the two national hotlines; anyone can add and edit
//! entries, or import them from a CSV file. Searched by words (accents and case do
//! not matter), service, country or state, and language.

use super::Session;
use crate::changelog::{self, flat::Flat};
use crate::database::DatabaseError;
use crate::form;
use crate::intake::{self, FieldError, Issue, ValidationErrors};
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The national hotlines every store starts with. Fixed ids: every laptop's copy is
/// the same entry.
pub const SEEDS: [(&str, &str); 2] = [
    (
        "00000000-0000-7000-8000-000000000001",
        r#"{"name": "National Human Trafficking Hotline", "country": "US", "services": ["SafetyPlanning", "Other"],
            "phone": "+18883737888", "text_number": "233733", "languages": ["en", "es"], "hours": "24/7", "hotline": true}"#,
    ),
    (
        "00000000-0000-7000-8000-000000000002",
        r#"{"name": "Línea Nacional contra la Trata de Personas", "country": "MX", "services": ["SafetyPlanning", "Other"],
            "phone": "+528005533000", "languages": ["es"], "hours": "24/7", "hotline": true}"#,
    ),
];

/// An entry as the directory shows it: its id, its fields, when it last changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    pub id: String,
    #[serde(flatten)]
    pub data: Map<String, Value>,
    pub updated_at: String,
}

/// What to look for. Every part is optional; all given parts must match.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DirectoryQuery {
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub service: Option<String>,
    /// A country (`MX`) or a subdivision (`MX-CHH`).
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub language: Option<String>,
}

/// One refused row of an import: its line in the file (the header is line 1).
#[derive(Debug, Clone, Serialize)]
pub struct RowIssues {
    pub line: usize,
    pub issues: Vec<Issue>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    pub imported: usize,
    pub rejected: Vec<RowIssues>,
}

/// The CSV columns, in order; lists are separated by `;`.
pub const CSV_COLUMNS: &[&str] =
    &["name", "country", "subdivision", "city", "services", "phone", "text_number", "languages", "hours", "notes"];

pub use super::fold;

/// Normalise and check an entry: the form's rules, a name, a country.
pub fn validate_entry(mut entry: Value) -> Result<Map<String, Value>, ValidationErrors> {
    let Some(obj) = entry.as_object_mut() else {
        return Err(ValidationErrors(vec![Issue::new("", FieldError::WrongType { expected: "group" })]));
    };
    obj.remove("id");
    obj.remove("updated_at");
    intake::normalize_fields(form::directory_fields(), obj);
    obj.retain(|_, v| !matches!(v, Value::Null) && v != "" && v.as_array().is_none_or(|a| !a.is_empty()));
    let mut issues = intake::validate::validate_fields(form::directory_fields(), obj, super::cases::today());
    for key in ["name", "country"] {
        if !obj.contains_key(key) {
            issues.push(Issue::new(key, FieldError::Required));
        }
    }
    if issues.is_empty() {
        Ok(std::mem::take(obj))
    } else {
        Err(ValidationErrors(issues))
    }
}

pub(crate) fn matches(e: &Map<String, Value>, q: &DirectoryQuery) -> bool {
    let has = |key: &str, code: &str| e.get(key).and_then(Value::as_array).is_some_and(|a| a.iter().any(|v| v == code));
    let given = |o: &Option<String>| o.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
    if let Some(s) = given(&q.service) {
        if !has("services", &s) {
            return false;
        }
    }
    if let Some(l) = given(&q.language) {
        if !has("languages", &l) {
            return false;
        }
    }
    if let Some(r) = given(&q.region) {
        let field = if r.contains('-') { "subdivision" } else { "country" };
        if e.get(field).and_then(Value::as_str) != Some(r.as_str()) {
            return false;
        }
    }
    if let Some(t) = given(&q.text) {
        let hay = fold(
            &["name", "city", "subdivision", "notes", "phone", "hours"]
                .iter()
                .filter_map(|k| e.get(*k).and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(" "),
        );
        if !fold(&t).split_whitespace().all(|w| hay.contains(w)) {
            return false;
        }
    }
    true
}

/// Record a local write of an entry in the change log (so it travels with sync),
/// field by field against what this laptop held.
pub(crate) fn log_entry(
    tx: &rusqlite::Transaction,
    session: &Session,
    id: &str,
    before: Option<&Map<String, Value>>,
    after: &Map<String, Value>,
) -> Result<(), DatabaseError> {
    let fields = changelog::load(tx, changelog::DIRECTORY, id)?;
    let flat = |m: Option<&Map<String, Value>>| -> Flat {
        m.into_iter().flatten().map(|(k, v)| (k.clone(), v.clone())).collect()
    };
    let mut w = changelog::Writer::begin(tx, session.author())?;
    changelog::log_diff(tx, &mut w, (changelog::DIRECTORY, id), &fields, &flat(before), &flat(Some(after)), None)?;
    Ok(())
}

/// Rebuild an entry from the changes this laptop holds: what it held (or the seed,
/// for a hotline it has never changed) with every changed field's newest value. The
/// directory has no conflicts to review: the newest value of a field wins.
pub(crate) fn rebuild(conn: &rusqlite::Connection, id: &str) -> Result<(), DatabaseError> {
    let held: Option<String> =
        conn.prepare_cached("SELECT data FROM directory WHERE id = ?1")?.query_row([id], |r| r.get(0)).optional()?;
    let base = held.or_else(|| SEEDS.iter().find(|(s, _)| *s == id).map(|(_, d)| (*d).to_string()));
    let mut data: Map<String, Value> = match base {
        Some(d) => serde_json::from_str(&d).map_err(|_| DatabaseError::Damaged { table: "directory" })?,
        None => Map::new(),
    };
    let fields = changelog::load(conn, changelog::DIRECTORY, id)?;
    for (field, state) in &fields {
        // A winner without a value (cleared, or blanked once replaced) clears the field.
        match state.winner().and_then(|c| c.value.clone()).filter(|v| !v.is_null()) {
            Some(v) => data.insert(field.clone(), v),
            None => data.remove(field),
        };
    }
    let newest = fields.values().flat_map(|f| &f.changes).max_by_key(|c| c.hlc);
    let (at, by) = match newest {
        Some(c) => (crate::changelog::hlc::to_rfc3339(c.hlc), c.user.clone()),
        None => (crate::database::now_utc(), None),
    };
    conn.prepare_cached(
        "INSERT INTO directory (id, data, created_at, updated_at, updated_by) VALUES (?1, ?2, ?3, ?3, ?4)
         ON CONFLICT (id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at,
                                        updated_by = excluded.updated_by",
    )?
    .execute(params![id, Value::Object(data).to_string(), at, by])?;
    Ok(())
}

/// Put the hotlines in a store that has none of them yet (setup, and stores from
/// before the directory). An entry someone edited is left as it is.
pub(crate) fn seed(conn: &rusqlite::Connection) -> Result<(), DatabaseError> {
    let now = crate::database::now_utc();
    for (id, data) in SEEDS {
        let data: Value = serde_json::from_str(data).map_err(|_| DatabaseError::Damaged { table: "directory" })?;
        conn.prepare_cached(
            "INSERT OR IGNORE INTO directory (id, data, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
        )?
        .execute(params![id, data.to_string(), now])?;
    }
    Ok(())
}

fn parse(text: &str) -> Result<Map<String, Value>, DatabaseError> {
    serde_json::from_str(text).map_err(|_| DatabaseError::Damaged { table: "directory" })
}

/// Every entry, in no particular order.
pub(crate) fn all(conn: &rusqlite::Connection) -> Result<Vec<Entry>, DatabaseError> {
    let mut st = conn.prepare_cached("SELECT id, data, updated_at FROM directory")?;
    let rows: Vec<(String, String, String)> =
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<Result<_, _>>()?;
    rows.into_iter().map(|(id, data, updated_at)| Ok(Entry { id, data: parse(&data)?, updated_at })).collect()
}

/// One entry, if there is one with this id.
pub(crate) fn get(conn: &rusqlite::Connection, id: &str) -> Result<Option<Entry>, DatabaseError> {
    let row: Option<(String, String)> = conn
        .prepare_cached("SELECT data, updated_at FROM directory WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    row.map(|(data, updated_at)| Ok(Entry { id: id.to_string(), data: parse(&data)?, updated_at })).transpose()
}

/// Write an entry as this laptop's user changed it (new, or replacing the row).
pub(crate) fn put(
    conn: &rusqlite::Connection,
    id: &str,
    data: &Map<String, Value>,
    now: &str,
    user: &str,
) -> Result<(), DatabaseError> {
    conn.prepare_cached(
        "INSERT INTO directory (id, data, created_at, updated_at, updated_by) VALUES (?1, ?2, ?3, ?3, ?4)
         ON CONFLICT (id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at,
                                        updated_by = excluded.updated_by",
    )?
    .execute(params![id, Value::Object(data.clone()).to_string(), now, user])?;
    Ok(())
}
