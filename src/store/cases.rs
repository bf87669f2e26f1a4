//! Cases, notes and drafts: every read and write of them, each write in one
//! transaction.

use super::audit::{self, Action};
use super::users::Role;
use super::{Session, Store, StoreError};
use crate::changelog::{self, flat};
use crate::database::{new_id, now_utc};
use crate::intake::{self, FieldError, Issue, ValidationErrors, CASE_FORMAT};
use chrono::{Datelike, Local, NaiveDate};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// Largest draft we keep (the whole form as JSON); far above any real intake.
pub const DRAFT_MAX_BYTES: usize = 4 * 1024 * 1024;
/// Longest page of a case list.
pub const LIST_LIMIT_MAX: usize = 500;

/// One row of the case list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseSummary {
    pub id: String,
    pub case_number: String,
    /// `None` as well when the case is locked for this user.
    pub alias: Option<String>,
    pub status: String,
    pub intake_date: Option<String>,
    pub primary_language: Option<String>,
    pub updated_at: String,
    pub restricted: bool,
    /// Restricted, and this user may not open it: listed by number only.
    pub locked: bool,
    /// Changed on this laptop since its last sync bundle was written.
    pub unexported: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListQuery {
    /// Search as you type: every word must match the start of a word in the case
    /// number, a name or alias, the city or a note.
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub limit: Option<usize>,
    #[serde(default)]
    pub offset: Option<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DraftSummary {
    pub id: String,
    pub case_id: Option<String>,
    pub alias: Option<String>,
    pub updated_at: String,
}

/// Drafts this user may see (?1 = the user): their own, and those written before
/// there were users (by the one who set the store up).
const MY_DRAFT: &str = "(user_id = ?1 OR user_id IS NULL)";

/// Does the new version drop anything the old one had (a person, a name, a field)?
/// Then the old words must not linger in the WAL.
fn removes_anything(before: &Value, after: &Map<String, Value>) -> bool {
    fn covered(old: &Value, new: Option<&Value>) -> bool {
        match (old, new) {
            (_, None) => false,
            (Value::Object(o), Some(Value::Object(n))) => o.iter().all(|(k, v)| covered(v, n.get(k))),
            (Value::Array(o), Some(Value::Array(n))) => {
                // Items keep their ids; match them by id where they have one.
                o.iter().enumerate().all(|(i, v)| match v.get("id") {
                    Some(id) => n.iter().any(|w| w.get("id") == Some(id) && covered(v, Some(w))),
                    None => covered(v, n.get(i)),
                })
            }
            (o, Some(n)) => o == n || !o.is_string(),
        }
    }
    let skip = ["id", "case_number", "created_at", "updated_at", "format", "notes"];
    before
        .as_object()
        .is_some_and(|b| b.iter().filter(|(k, _)| !skip.contains(&k.as_str())).any(|(k, v)| !covered(v, after.get(k))))
}

/// Who recorded each consent: kept from the saved case for consents already there
/// (the form does not carry it), the current user for new ones. (Import keeps what
/// the file says: it does not come through here.)
fn stamp_consents(case: &mut Value, existing: Option<&Value>, user: &str) {
    let before: Vec<&Value> =
        existing.and_then(|e| e.get("consents")).and_then(Value::as_array).into_iter().flatten().collect();
    let Some(Value::Array(items)) = case.get_mut("consents") else { return };
    for item in items.iter_mut().filter_map(Value::as_object_mut) {
        let kept = item
            .get("id")
            .and_then(|id| before.iter().find(|b| b.get("id") == Some(id)))
            .and_then(|b| b.get("recorded_by"));
        // Never what the form says: it does not know, and must not claim.
        let by = kept.cloned().unwrap_or_else(|| user.into());
        item.insert("recorded_by".into(), by);
    }
}

/// The caseworker's calendar date: "in the future" is judged by it.
pub fn today() -> NaiveDate {
    Local::now().date_naive()
}

/// Build the FTS5 query for what was typed: each word a quoted prefix term, all
/// required. Quoting makes every character literal, so no input is FTS syntax.
pub fn fts_query(text: &str) -> Option<String> {
    let terms: Vec<String> = text
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .map(|w| format!("\"{}\"*", w.replace('"', "")))
        .collect();
    (!terms.is_empty()).then(|| terms.join(" "))
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(*k))?.as_str()
}

/// The text the search index holds for a case.
fn fts_columns(case: &Value) -> (String, String) {
    let mut names = Vec::new();
    for p in case.get("people").and_then(Value::as_array).into_iter().flatten() {
        for k in ["given_name", "family_name", "alias"] {
            if let Some(s) = p.get(k).and_then(Value::as_str) {
                names.push(s);
            }
        }
    }
    let mut places: Vec<&str> = Vec::new();
    places.extend(str_at(case, &["intake_place", "city"]));
    for e in case.get("trafficking_events").and_then(Value::as_array).into_iter().flatten() {
        places.extend(str_at(e, &["place", "city"]));
    }
    (names.join(" "), places.join(" "))
}

/// Give every item of a list (person, need, event, consent, referral) an id, so sync
/// can address it.
fn assign_item_ids(case: &mut Value) {
    for list in crate::changelog::flat::ITEM_LISTS {
        if let Some(Value::Array(items)) = case.get_mut(list) {
            for it in items.iter_mut().filter_map(Value::as_object_mut) {
                if it.get("id").and_then(Value::as_str).is_none_or(|s| uuid::Uuid::parse_str(s).is_err()) {
                    it.insert("id".into(), new_id().into());
                }
            }
        }
    }
}

/// A prepared case split into what goes into columns and what into `data`.
struct Row {
    id: String,
    case_number: Option<String>,
    status: String,
    intake_date: Option<String>,
    alias: Option<String>,
    primary_language: Option<String>,
    created_at: Option<String>,
    updated_at: Option<String>,
    assigned_to: Option<String>,
    restricted: bool,
    notes: Vec<Value>,
    data: Map<String, Value>,
    names: String,
    places: String,
}

fn to_row(mut case: Value) -> Row {
    assign_item_ids(&mut case);
    let (names, places) = fts_columns(&case);
    let primary = intake::primary_person(&case);
    let alias = primary.and_then(|p| p.get("alias")).and_then(Value::as_str).map(str::to_string);
    let primary_language =
        primary.and_then(|p| p.get("preferred_language")).and_then(Value::as_str).map(str::to_string);
    let mut data = match case {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let take = |data: &mut Map<String, Value>, k: &str| data.remove(k).and_then(|v| v.as_str().map(str::to_string));
    let id = take(&mut data, "id").filter(|s| uuid::Uuid::parse_str(s).is_ok()).unwrap_or_else(new_id);
    let case_number = take(&mut data, "case_number");
    let created_at = take(&mut data, "created_at");
    let updated_at = take(&mut data, "updated_at");
    data.remove("format");
    let notes = match data.remove("notes") {
        Some(Value::Array(n)) => n,
        _ => Vec::new(),
    };
    if !data.contains_key("status") {
        data.insert("status".into(), "Active".into());
    }
    let status = data.get("status").and_then(Value::as_str).unwrap_or("Active").to_string();
    let intake_date = data.get("intake_date").and_then(Value::as_str).map(str::to_string);
    let assigned_to = data.get("assigned_to").and_then(Value::as_str).map(str::to_string);
    // Stored only when set, so unrestricted cases read and export as before.
    let restricted = data.remove("restricted").and_then(|v| v.as_bool()).unwrap_or(false);
    if restricted {
        data.insert("restricted".into(), true.into());
    }
    Row {
        id,
        case_number,
        status,
        intake_date,
        alias,
        primary_language,
        created_at,
        updated_at,
        assigned_to,
        restricted,
        notes,
        data,
        names,
        places,
    }
}

/// The row of a case whose data was rebuilt from its fields (item order and key
/// order as every laptop has them).
fn reshape(id: &str, mut data: Map<String, Value>) -> Row {
    data.insert("id".into(), id.into());
    to_row(Value::Object(data))
}

fn next_case_number(tx: &Transaction, device: &str, year: i32) -> Result<String, StoreError> {
    loop {
        let n: i64 = tx.query_row(
            "INSERT INTO case_numbers (device, year, last) VALUES (?1, ?2, 1)
             ON CONFLICT (device, year) DO UPDATE SET last = last + 1 RETURNING last",
            params![device, year],
            |r| r.get(0),
        )?;
        let number = format!("{device}-{year}-{n:04}");
        let taken: bool =
            tx.query_row("SELECT EXISTS (SELECT 1 FROM cases WHERE case_number = ?1)", [&number], |r| r.get(0))?;
        if !taken {
            return Ok(number);
        }
    }
}

/// Remember a case number that came from elsewhere, so ours never repeat it.
fn note_case_number(tx: &Transaction, number: &str) -> Result<(), StoreError> {
    let parts: Vec<&str> = number.split('-').collect();
    if let [device, year, n] = parts[..] {
        if let (Ok(year), Ok(n)) = (year.parse::<i32>(), n.parse::<i64>()) {
            tx.execute(
                "INSERT INTO case_numbers (device, year, last) VALUES (?1, ?2, ?3)
                 ON CONFLICT (device, year) DO UPDATE SET last = max(last, excluded.last)",
                params![device, year, n],
            )?;
        }
    }
    Ok(())
}

/// A note as it is kept: what the form gave, with id, author and time filled in.
fn note_fields(note: &Map<String, Value>, session: &Session, now: &str) -> Value {
    let get = |k: &str| note.get(k).and_then(Value::as_str).map(str::to_string);
    let id = get("id").filter(|s| uuid::Uuid::parse_str(s).is_ok()).unwrap_or_else(new_id);
    let author = get("author").unwrap_or_else(|| session.user_name.clone());
    let created_at = get("created_at").unwrap_or_else(|| now.to_string());
    note_json(id, get("text").unwrap_or_default(), get("language"), author, created_at)
}

/// Write a note row; one that is already there stays as it is (notes never change).
fn insert_note(tx: &Connection, case_id: &str, note: &Map<String, Value>) -> Result<bool, StoreError> {
    let get = |k: &str| note.get(k).and_then(Value::as_str);
    let n = tx
        .prepare_cached(
            "INSERT INTO notes (id, case_id, text, language, author, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (id) DO NOTHING",
        )?
        .execute(params![
            get("id"),
            case_id,
            get("text").unwrap_or_default(),
            get("language"),
            get("author").unwrap_or_default(),
            get("created_at").unwrap_or_default()
        ])?;
    Ok(n == 1)
}

/// Record a write of a case in the change log (one change per field that differs
/// from what the log says now), and give back the case's data as every laptop will
/// rebuild it from those fields.
fn log_case(
    tx: &Connection,
    session: &Session,
    id: &str,
    data: &Map<String, Value>,
    meta: &[(&str, Value)],
    new_notes: &[Value],
) -> Result<Map<String, Value>, StoreError> {
    let fields = changelog::load(tx, changelog::CASE, id)?;
    let before = changelog::winners(&fields);
    let mut after = flat::flatten(data, &before);
    let kept =
        before.iter().filter(|(k, _)| k.starts_with(flat::NOTE_PREFIX) || flat::META_FIELDS.contains(&k.as_str()));
    after.extend(kept.map(|(k, v)| (k.clone(), v.clone())));
    after.extend(meta.iter().map(|(k, v)| (k.to_string(), v.clone())));
    for n in new_notes {
        if let Some(nid) = n.get("id").and_then(Value::as_str) {
            after.insert(format!("{}{nid}", flat::NOTE_PREFIX), n.clone());
        }
    }
    let mut w = changelog::Writer::begin(tx, session.author())?;
    changelog::record_case(tx, &mut w, id, &fields, &before, &after)?;
    Ok(flat::unflatten(&after))
}

fn note_json(id: String, text: String, language: Option<String>, author: String, created_at: String) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), id.into());
    m.insert("text".into(), text.into());
    if let Some(l) = language {
        m.insert("language".into(), l.into());
    }
    m.insert("author".into(), author.into());
    m.insert("created_at".into(), created_at.into());
    Value::Object(m)
}

/// A case as case JSON: format tag first, then what the store assigned, the fields,
/// the notes, and the timestamps.
fn assemble(
    id: String,
    number: String,
    data: Map<String, Value>,
    notes: Vec<Value>,
    created: String,
    updated: String,
) -> Value {
    let mut out = Map::new();
    out.insert("format".into(), CASE_FORMAT.into());
    out.insert("id".into(), id.into());
    out.insert("case_number".into(), number.into());
    out.extend(data);
    if !notes.is_empty() {
        out.insert("notes".into(), Value::Array(notes));
    }
    out.insert("created_at".into(), created.into());
    out.insert("updated_at".into(), updated.into());
    Value::Object(out)
}

/// All of a case's note text, for its search entry.
fn notes_text(tx: &Connection, seq: i64) -> Result<String, StoreError> {
    Ok(tx.query_row(
        "SELECT coalesce(group_concat(n.text, char(10)), '') FROM notes n JOIN cases c ON c.id = n.case_id WHERE c.seq = ?1",
        [seq],
        |r| r.get(0),
    )?)
}

fn refresh_fts(
    tx: &Connection,
    seq: i64,
    case_number: &str,
    names: &str,
    places: &str,
    notes: &str,
) -> Result<(), StoreError> {
    tx.execute("DELETE FROM cases_fts WHERE rowid = ?1", [seq])?;
    tx.execute(
        "INSERT INTO cases_fts (rowid, case_number, names, places, notes) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![seq, case_number, names, places, notes],
    )?;
    Ok(())
}

/// Insert one prepared (validated) case. Shared by the form and by import.
pub(super) fn insert_case(tx: &Transaction, session: &Session, case: Value, now: &str) -> Result<Value, StoreError> {
    let row = to_row(case);
    let exists: bool = tx.query_row("SELECT EXISTS (SELECT 1 FROM cases WHERE id = ?1)", [&row.id], |r| r.get(0))?;
    if exists {
        return Err(ValidationErrors(vec![Issue::new("id", FieldError::DuplicateId)]).into());
    }
    let case_number = match &row.case_number {
        Some(n) => {
            let taken: bool =
                tx.query_row("SELECT EXISTS (SELECT 1 FROM cases WHERE case_number = ?1)", [n], |r| r.get(0))?;
            if taken {
                let e = FieldError::DuplicateCaseNumber { number: n.clone() };
                return Err(ValidationErrors(vec![Issue::new("case_number", e)]).into());
            }
            note_case_number(tx, n)?;
            n.clone()
        }
        None => next_case_number(tx, &session.device_code, Local::now().year())?,
    };
    let created_at = row.created_at.clone().unwrap_or_else(|| now.to_string());
    let updated_at = row.updated_at.clone().unwrap_or_else(|| created_at.clone());
    let notes: Vec<Value> =
        row.notes.iter().filter_map(Value::as_object).map(|n| note_fields(n, session, now)).collect();
    let meta = [
        ("case_number", Value::from(case_number.clone())),
        ("created_at", created_at.clone().into()),
        ("updated_at", updated_at.clone().into()),
        ("created_by", session.user_id.clone().into()),
        ("updated_by", session.user_id.clone().into()),
    ];
    let row = reshape(&row.id, log_case(tx, session, &row.id, &row.data, &meta, &notes)?);
    let data = serde_json::to_string(&row.data).map_err(|_| StoreError::Corrupt)?;
    tx.execute(
        "INSERT INTO cases (id, case_number, status, intake_date, alias, primary_language,
                            created_at, updated_at, created_by, updated_by, data, assigned_to, restricted, closed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11, ?12,
                 CASE WHEN ?3 IN ('Closed', 'ClosedReferred') THEN ?8 END)",
        params![
            row.id,
            case_number,
            row.status,
            row.intake_date,
            row.alias,
            row.primary_language,
            created_at,
            updated_at,
            session.user_id,
            data,
            row.assigned_to,
            row.restricted
        ],
    )?;
    let seq = tx.last_insert_rowid();
    refresh_facts(tx, seq, &data)?;
    for n in notes.iter().filter_map(Value::as_object) {
        insert_note(tx, &row.id, n)?;
    }
    // A new case: its notes are the ones just written, no need to read them back.
    let text: Vec<&str> = notes.iter().filter_map(|n| n.get("text").and_then(Value::as_str)).collect();
    refresh_fts(tx, seq, &case_number, &row.names, &row.places, &text.join("\n"))?;
    audit::append(tx, &session.device_id, Some(&session.user_id), Action::Create, Some(&row.id), json!({}), None)?;
    Ok(assemble(row.id, case_number, row.data, notes, created_at, updated_at))
}

/// Put the cases of a store written before the change log into it, as changes of
/// this device, so that they sync like every later one.
pub(crate) fn backfill(tx: &Connection) -> Result<(), StoreError> {
    let device = crate::database::required_meta(tx, "device_id")?;
    let session = Session {
        org: String::new(),
        device_code: String::new(),
        device_id: device,
        user_id: String::new(),
        user_name: String::new(),
        role: Role::Administrator,
    };
    type Existing = (String, String, String, String, String, String, String);
    let rows: Vec<Existing> = {
        let mut st = tx.prepare(
            "SELECT id, case_number, created_at, updated_at, created_by, updated_by, data FROM cases ORDER BY seq",
        )?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        rows
    };
    for (id, number, created_at, updated_at, created_by, updated_by, data) in rows {
        let data: Map<String, Value> = serde_json::from_str(&data).map_err(|_| StoreError::Corrupt)?;
        let notes: Vec<Value> = {
            let mut st = tx.prepare("SELECT id, text, language, author, created_at FROM notes WHERE case_id = ?1")?;
            let n = st
                .query_map([&id], |r| Ok(note_json(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            n
        };
        let meta = [
            ("case_number", Value::from(number)),
            ("created_at", created_at.into()),
            ("updated_at", updated_at.into()),
            ("created_by", created_by.into()),
            ("updated_by", updated_by.into()),
        ];
        let rebuilt = log_case(tx, &session, &id, &data, &meta, &notes)?;
        let json = serde_json::to_string(&rebuilt).map_err(|_| StoreError::Corrupt)?;
        tx.execute("UPDATE cases SET data = ?2 WHERE id = ?1", [&id, &json])?;
    }
    Ok(())
}

/// Keep what the fact sheet counts in step with a case's data (see `schema::FACTS`).
fn refresh_facts(tx: &Connection, seq: i64, data: &str) -> Result<(), StoreError> {
    tx.prepare_cached("DELETE FROM case_facts WHERE case_seq = ?1")?.execute([seq])?;
    tx.prepare_cached(crate::database::schema::FACTS)?.execute(params![seq, data])?;
    tx.prepare_cached(crate::database::schema::FACT_ROW)?.execute(params![seq, data])?;
    Ok(())
}

/// When the fact-sheet counts began to be kept (`meta`).
const FACTS_SINCE: &str = "facts_since";

/// Fill the fact-sheet counts of cases saved before they were kept (once).
pub(crate) fn backfill_facts(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    if crate::database::meta(&tx, FACTS_SINCE)?.is_none() {
        let rows: Vec<(i64, String)> = {
            let mut st = tx.prepare("SELECT seq, data FROM cases")?;
            let r = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<Vec<_>, _>>()?;
            r
        };
        for (seq, data) in rows {
            refresh_facts(&tx, seq, &data)?;
        }
        crate::database::set_meta(&tx, FACTS_SINCE, &now_utc())?;
    }
    tx.commit()?;
    Ok(())
}

/// Rewrite a case's row from its rebuilt data. Closing starts the retention clock;
/// reopening stops it.
fn update_row(
    tx: &Connection,
    id: &str,
    row: &Row,
    data: &str,
    updated_at: &str,
    updated_by: &str,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "UPDATE cases SET status = ?2, intake_date = ?3, alias = ?4, primary_language = ?5,
                          updated_at = ?6, updated_by = ?7, data = ?8, assigned_to = ?9, restricted = ?10,
                          closed_at = CASE WHEN ?2 IN ('Closed', 'ClosedReferred') THEN coalesce(closed_at, ?6) END
         WHERE id = ?1",
    )?
    .execute(params![
        id,
        row.status,
        row.intake_date,
        row.alias,
        row.primary_language,
        updated_at,
        updated_by,
        data,
        row.assigned_to,
        row.restricted
    ])?;
    Ok(())
}

/// What merging changes did to one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Merged {
    New,
    Updated,
    Unchanged,
    Removed,
    /// Changes of a case whose creation has not arrived yet: kept, not shown.
    Waiting,
}

/// Rebuild a case's row, notes and search entry from its changes, after changes
/// arrived from another laptop. Returns what happened and its open conflicts.
pub(crate) fn materialize(tx: &Transaction, id: &str) -> Result<(Merged, Vec<String>), StoreError> {
    let fields = changelog::load(tx, changelog::CASE, id)?;
    let existing: Option<(i64, String, String)> = tx
        .query_row("SELECT seq, data, updated_at FROM cases WHERE id = ?1", [id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    if changelog::is_purged(&fields) {
        let was_here = existing.is_some();
        remove_case(tx, id)?;
        return Ok((if was_here { Merged::Removed } else { Merged::Unchanged }, Vec::new()));
    }
    let open = changelog::settle(tx, id, &fields)?;
    let current = changelog::winners(&fields);
    let text = |k: &str| current.get(k).and_then(Value::as_str).map(str::to_string);
    let Some(number) = text("case_number") else { return Ok((Merged::Waiting, open)) };
    let created_at = text("created_at").unwrap_or_default();
    let updated_at = text("updated_at").unwrap_or_else(|| created_at.clone());
    let created_by = text("created_by").unwrap_or_default();
    let updated_by = text("updated_by").unwrap_or_else(|| created_by.clone());
    let row = reshape(id, flat::unflatten(&current));
    let data = serde_json::to_string(&row.data).map_err(|_| StoreError::Corrupt)?;
    let outcome = match &existing {
        Some(_) => Merged::Updated,
        None => {
            let taken: Option<String> =
                tx.query_row("SELECT id FROM cases WHERE case_number = ?1", [&number], |r| r.get(0)).optional()?;
            if taken.is_some() {
                // Two laptops numbering with the same device code: never merge two
                // different cases into one number.
                return Err(crate::sync::SyncError::DeviceCodeClash { number }.into());
            }
            note_case_number(tx, &number)?;
            tx.execute(
                "INSERT INTO cases (id, case_number, status, created_at, updated_at, created_by, updated_by, data)
                 VALUES (?1, ?2, '', ?3, ?3, ?4, ?4, '{}')",
                params![id, number, created_at, created_by],
            )?;
            Merged::New
        }
    };
    let mut notes_added = false;
    for (_, n) in current.iter().filter(|(k, _)| k.starts_with(flat::NOTE_PREFIX)) {
        if let Some(n) = n.as_object() {
            notes_added |= insert_note(tx, id, n)?;
        }
    }
    if let Some((_, old, old_updated)) = &existing {
        if *old == data && *old_updated == updated_at && !notes_added {
            return Ok((Merged::Unchanged, open));
        }
    }
    update_row(tx, id, &row, &data, &updated_at, &updated_by)?;
    let seq: i64 = tx.query_row("SELECT seq FROM cases WHERE id = ?1", [id], |r| r.get(0))?;
    refresh_facts(tx, seq, &data)?;
    refresh_fts(tx, seq, &number, &row.names, &row.places, &notes_text(tx, seq)?)?;
    Ok((outcome, open))
}

/// Remove a case for good (a retention purge, here or on another laptop): its row,
/// notes, drafts and search entry go, its changes keep only their identity, and its
/// id stays as a tombstone.
pub(crate) fn remove_case(tx: &Connection, id: &str) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO purged_cases (case_id, purged_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        [id, &now_utc()],
    )?;
    let seq: Option<i64> = tx.query_row("SELECT seq FROM cases WHERE id = ?1", [id], |r| r.get(0)).optional()?;
    tx.execute("DELETE FROM notes WHERE case_id = ?1", [id])?;
    if let Some(seq) = seq {
        tx.execute("DELETE FROM cases_fts WHERE rowid = ?1", [seq])?;
        tx.execute("DELETE FROM case_facts WHERE case_seq = ?1", [seq])?;
        tx.execute("DELETE FROM case_report WHERE case_seq = ?1", [seq])?;
    }
    tx.execute("DELETE FROM drafts WHERE case_id = ?1", [id])?;
    tx.execute("DELETE FROM cases WHERE id = ?1", [id])?;
    tx.execute(
        "UPDATE changes SET value = NULL WHERE entity = 'case' AND entity_id = ?1 AND field != ?2",
        [id, flat::PURGED],
    )?;
    tx.execute("DELETE FROM open_conflicts WHERE entity_id = ?1", [id])?;
    Ok(())
}

fn summary(r: &rusqlite::Row) -> rusqlite::Result<CaseSummary> {
    let open: bool = r.get(8)?;
    Ok(CaseSummary {
        id: r.get(0)?,
        case_number: r.get(1)?,
        alias: if open { r.get(2)? } else { None },
        status: r.get(3)?,
        intake_date: r.get(4)?,
        primary_language: if open { r.get(5)? } else { None },
        updated_at: r.get(6)?,
        restricted: r.get(7)?,
        locked: !open,
        unexported: r.get(9)?,
    })
}

/// Top-level fields whose value differs between two versions of a case: what an
/// update audit entry names (field names only, never values).
fn changed_fields(before: &Value, after: &Map<String, Value>) -> Vec<String> {
    let skip = ["id", "case_number", "created_at", "updated_at", "format", "notes"];
    let empty = Map::new();
    let before = before.as_object().unwrap_or(&empty);
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).filter(|k| !skip.contains(&k.as_str())).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter().filter(|k| before.get(*k) != after.get(*k)).cloned().collect()
}

impl Store {
    fn today(&self) -> NaiveDate {
        today()
    }

    /// Save a new intake. Validates, assigns id, case number and timestamps, writes
    /// the case, its notes and its search entry, and removes the draft it came from:
    /// all in one transaction.
    pub fn create_case(&mut self, case: Value, draft_id: Option<&str>) -> Result<Value, StoreError> {
        let mut case = case;
        // The form never sets these; refuse to let it pretend to.
        if let Some(m) = case.as_object_mut() {
            for k in ["id", "case_number", "created_at", "updated_at"] {
                m.remove(k);
            }
            // A new intake is assigned to whoever records it; only supervisors assign
            // it to someone else.
            let me = Value::from(self.session.user_id.clone());
            let assigned = m.entry("assigned_to").or_insert_with(|| me.clone());
            if *assigned != me && self.session.role < Role::Supervisor {
                return Err(ValidationErrors(vec![Issue::new("assigned_to", FieldError::SupervisorOnly)]).into());
            }
        }
        stamp_consents(&mut case, None, &self.session.user_id);
        crate::consent::check_new_referrals(&case, None, self.today())?;
        let prepared = intake::prepare(case, self.today())?;
        let now = now_utc();
        let tx = self.conn.transaction()?;
        let saved = insert_case(&tx, &self.session, prepared, &now)?;
        if let Some(d) = draft_id {
            tx.execute("DELETE FROM drafts WHERE id = ?1", [d])?;
        }
        tx.commit()?;
        Ok(saved)
    }

    /// Replace a case's fields with `case` (the whole form). Notes already saved stay
    /// as they are; notes without an id are appended. Case number, id and creation
    /// time never change.
    pub fn update_case(&mut self, id: &str, case: Value, draft_id: Option<&str>) -> Result<Value, StoreError> {
        let existing = self.load_case("id", id)?;
        self.check_open(&existing)?;
        let mut case = case;
        let new_notes: Vec<Value> = match case.as_object_mut().and_then(|m| m.remove("notes")) {
            Some(Value::Array(ns)) => ns.into_iter().filter(|n| n.get("id").is_none()).collect(),
            _ => Vec::new(),
        };
        if let Some(m) = case.as_object_mut() {
            for k in ["id", "case_number", "created_at", "updated_at", "format"] {
                m.remove(k);
            }
            // The form does not carry the assignment, the restriction or the
            // referrals; an edit keeps them.
            for k in ["assigned_to", "restricted", "referrals"] {
                if let (false, Some(a)) = (m.contains_key(k), existing.get(k)) {
                    m.insert(k.into(), a.clone());
                }
            }
            let supervisor = self.session.role >= Role::Supervisor;
            if m.get("assigned_to") != existing.get("assigned_to") && !supervisor {
                return Err(ValidationErrors(vec![Issue::new("assigned_to", FieldError::SupervisorOnly)]).into());
            }
            // Restricting or opening up a case: its supervisors or its assigned user.
            let restricted = |v: Option<&Value>| v.and_then(Value::as_bool).unwrap_or(false);
            let mine = existing.get("assigned_to").and_then(Value::as_str) == Some(self.session.user_id.as_str());
            if restricted(m.get("restricted")) != restricted(existing.get("restricted")) && !(supervisor || mine) {
                return Err(ValidationErrors(vec![Issue::new("restricted", FieldError::SupervisorOnly)]).into());
            }
            if !new_notes.is_empty() {
                m.insert("notes".into(), Value::Array(new_notes));
            }
        }
        stamp_consents(&mut case, Some(&existing), &self.session.user_id);
        crate::consent::check_new_referrals(&case, Some(&existing), self.today())?;
        let prepared = intake::prepare(case, self.today())?;
        let mut row = to_row(prepared);
        let now = now_utc();
        let case_number = existing.get("case_number").and_then(Value::as_str).unwrap_or_default().to_string();
        let changed = changed_fields(&existing, &row.data);
        let tx = self.conn.transaction()?;
        let seq: i64 = tx.query_row("SELECT seq FROM cases WHERE id = ?1", [id], |r| r.get(0))?;
        let notes: Vec<Value> = std::mem::take(&mut row.notes)
            .iter()
            .filter_map(Value::as_object)
            .map(|n| note_fields(n, &self.session, &now))
            .collect();
        let meta = [("updated_at", Value::from(now.clone())), ("updated_by", self.session.user_id.clone().into())];
        let row = reshape(id, log_case(&tx, &self.session, id, &row.data, &meta, &notes)?);
        let data = serde_json::to_string(&row.data).map_err(|_| StoreError::Corrupt)?;
        update_row(&tx, id, &row, &data, &now, &self.session.user_id)?;
        refresh_facts(&tx, seq, &data)?;
        let added_notes = notes.len();
        for n in notes.iter().filter_map(Value::as_object) {
            insert_note(&tx, id, n)?;
        }
        refresh_fts(&tx, seq, &case_number, &row.names, &row.places, &notes_text(&tx, seq)?)?;
        if let Some(d) = draft_id {
            tx.execute("DELETE FROM drafts WHERE id = ?1", [d])?;
        }
        let detail = json!({ "fields": changed, "notes_added": added_notes });
        audit::append(
            &tx,
            &self.session.device_id,
            Some(&self.session.user_id),
            Action::Update,
            Some(id),
            detail,
            None,
        )?;
        tx.commit()?;
        // Someone who was removed from the case may not hold its words any longer:
        // the WAL still has the page images from before this save, so fold them into
        // the (securely deleting) database and empty it.
        if removes_anything(&existing, &row.data) {
            self.conn.pragma_update(None, "wal_checkpoint", "TRUNCATE")?;
        }
        self.load_case("id", id)
    }

    /// Append a note to a case.
    pub fn add_note(&mut self, case_id: &str, text: &str, language: Option<&str>) -> Result<Value, StoreError> {
        let mut note = Map::new();
        note.insert("text".into(), text.into());
        if let Some(l) = language.filter(|l| !l.is_empty()) {
            note.insert("language".into(), l.into());
        }
        // Validate the note with the same rules as the form, via a minimal case.
        let probe = serde_json::json!({ "people": [{ "role": "PotentialVictim" }], "notes": [note.clone()] });
        intake::validate(&probe, self.today())?;
        let now = now_utc();
        // Unchecked: the permission check below reads the store while it is open.
        let tx = self.conn.unchecked_transaction()?;
        let row: Option<(i64, String, String)> = tx
            .query_row("SELECT seq, case_number, data FROM cases WHERE id = ?1", [case_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        let (seq, case_number, data) = row.ok_or_else(|| StoreError::NotFound(case_id.to_string()))?;
        let data: Value = serde_json::from_str(&data).map_err(|_| StoreError::Corrupt)?;
        self.check_open(&data)?;
        let saved = note_fields(&note, &self.session, &now);
        if let Some(n) = saved.as_object() {
            insert_note(&tx, case_id, n)?;
        }
        let meta = [("updated_at", Value::from(now.clone())), ("updated_by", self.session.user_id.clone().into())];
        let current = data.as_object().cloned().unwrap_or_default();
        log_case(&tx, &self.session, case_id, &current, &meta, std::slice::from_ref(&saved))?;
        tx.execute(
            "UPDATE cases SET updated_at = ?2, updated_by = ?3 WHERE id = ?1",
            params![case_id, now, self.session.user_id],
        )?;
        let (names, places) = fts_columns(&data);
        refresh_fts(&tx, seq, &case_number, &names, &places, &notes_text(&tx, seq)?)?;
        let me = Some(self.session.user_id.as_str());
        audit::append(&tx, &self.session.device_id, me, Action::AddNote, Some(case_id), json!({}), None)?;
        tx.commit()?;
        Ok(saved)
    }

    fn notes_of(&self, case_id: &str) -> Result<Vec<Value>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT id, text, language, author, created_at FROM notes WHERE case_id = ?1 ORDER BY created_at, id",
        )?;
        let notes = st
            .query_map([case_id], |r| Ok(note_json(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(notes)
    }

    /// May this user open this case? Restricted cases: its assigned user and
    /// supervisors only.
    fn may_open(&self, restricted: bool, assigned_to: Option<&str>) -> bool {
        !restricted || self.session.role >= Role::Supervisor || assigned_to == Some(self.session.user_id.as_str())
    }

    pub(crate) fn check_open(&self, case: &Value) -> Result<(), StoreError> {
        let restricted = case.get("restricted").and_then(Value::as_bool).unwrap_or(false);
        if self.may_open(restricted, case.get("assigned_to").and_then(Value::as_str)) {
            Ok(())
        } else {
            Err(StoreError::Restricted)
        }
    }

    /// A case by id or number, with no permission check and no audit entry: for the
    /// store's own use.
    pub(super) fn load_case(&self, column: &str, value: &str) -> Result<Value, StoreError> {
        let sql = format!("SELECT id, case_number, created_at, updated_at, data FROM cases WHERE {column} = ?1");
        let row: Option<(String, String, String, String, String)> = self
            .conn
            .query_row(&sql, [value], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            .optional()?;
        let (id, number, created, updated, data) = row.ok_or_else(|| StoreError::NotFound(value.to_string()))?;
        let data: Map<String, Value> = serde_json::from_str(&data).map_err(|_| StoreError::Corrupt)?;
        let notes = self.notes_of(&id)?;
        Ok(assemble(id, number, data, notes, created, updated))
    }

    /// A case by id, for the core's own use (no permission check, no audit entry).
    pub(crate) fn load_case_unchecked(&self, id: &str) -> Result<Value, StoreError> {
        self.load_case("id", id)
    }

    /// Open a case to read it, as case JSON: refused for a restricted case this user
    /// may not open, and recorded in the audit trail.
    pub fn get_case(&self, id: &str) -> Result<Value, StoreError> {
        self.view_case("id", id)
    }

    /// The id of the case with this number (no permission needed: it reveals nothing).
    pub fn case_id(&self, case_number: &str) -> Result<String, StoreError> {
        self.conn
            .query_row("SELECT id FROM cases WHERE case_number = ?1", [case_number.trim().to_uppercase()], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::NotFound(case_number.to_string()))
    }

    pub fn get_case_by_number(&self, case_number: &str) -> Result<Value, StoreError> {
        self.view_case("case_number", case_number)
    }

    fn view_case(&self, column: &str, value: &str) -> Result<Value, StoreError> {
        let case = self.load_case(column, value)?;
        let id = case.get("id").and_then(Value::as_str).unwrap_or_default();
        if let Err(e) = self.check_open(&case) {
            // A refused look is worth knowing about too.
            self.record(Action::View, Some(id), json!({ "refused": true }))?;
            return Err(e);
        }
        self.record(Action::View, Some(id), json!({}))?;
        Ok(case)
    }

    /// The case list, newest first, optionally searched and filtered by status.
    pub fn list_cases(&self, q: &ListQuery) -> Result<Vec<CaseSummary>, StoreError> {
        let limit = q.limit.unwrap_or(100).min(LIST_LIMIT_MAX) as i64;
        let offset = q.offset.unwrap_or(0) as i64;
        let status = q.status.as_deref().filter(|s| !s.is_empty());
        // ?1 = this user, ?2 = may open every case.
        const COLS: &str = "c.id, c.case_number, c.alias, c.status, c.intake_date, c.primary_language, c.updated_at,
             c.restricted, (c.restricted = 0 OR ?2 OR c.assigned_to = ?1),
             EXISTS (SELECT 1 FROM unexported u WHERE u.case_id = c.id)";
        let me = self.session.user_id.as_str();
        let all = self.session.role >= Role::Supervisor;
        let rows = match (fts_query(&q.text), status) {
            // A search matches names and notes: cases this user may not open must not
            // even show up in it.
            (Some(m), st) => {
                let sql = format!(
                    "SELECT {COLS} FROM cases_fts f JOIN cases c ON c.seq = f.rowid
                     WHERE cases_fts MATCH ?3 AND (?4 IS NULL OR c.status = ?4)
                       AND (c.restricted = 0 OR ?2 OR c.assigned_to = ?1)
                     ORDER BY f.rowid DESC LIMIT ?5 OFFSET ?6"
                );
                let mut st_ = self.conn.prepare_cached(&sql)?;
                let rows =
                    st_.query_map(params![me, all, m, st, limit, offset], summary)?.collect::<Result<Vec<_>, _>>()?;
                rows
            }
            (None, Some(st)) => {
                let sql =
                    format!("SELECT {COLS} FROM cases c WHERE c.status = ?3 ORDER BY c.seq DESC LIMIT ?4 OFFSET ?5");
                let mut st_ = self.conn.prepare_cached(&sql)?;
                let rows =
                    st_.query_map(params![me, all, st, limit, offset], summary)?.collect::<Result<Vec<_>, _>>()?;
                rows
            }
            (None, None) => {
                let sql = format!("SELECT {COLS} FROM cases c ORDER BY c.seq DESC LIMIT ?3 OFFSET ?4");
                let mut st_ = self.conn.prepare_cached(&sql)?;
                let rows = st_.query_map(params![me, all, limit, offset], summary)?.collect::<Result<Vec<_>, _>>()?;
                rows
            }
        };
        Ok(rows)
    }

    /// Scripted corrections: `assignments` are `(path, value)` pairs such as
    /// `("status", "Closed")` or `("people.0.alias", "Rosa")`; an empty value clears
    /// the field. The result is validated like any save.
    pub fn set_fields(&mut self, case_number: &str, assignments: &[(String, String)]) -> Result<Value, StoreError> {
        let mut case = self.load_case("case_number", case_number)?;
        self.check_open(&case)?;
        let id = case.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
        let mut issues = Vec::new();
        for (path, raw) in assignments {
            if let Err(i) = intake::assign(&mut case, path, raw) {
                issues.push(i);
            }
        }
        if !issues.is_empty() {
            return Err(ValidationErrors(issues).into());
        }
        self.update_case(&id, case, None)
    }

    /// Keep the form as it is now. Returns the draft's id (new when `id` is None).
    pub fn save_draft(&mut self, id: Option<&str>, case_id: Option<&str>, data: &Value) -> Result<String, StoreError> {
        let json = serde_json::to_string(data).map_err(|_| StoreError::Corrupt)?;
        if json.len() > DRAFT_MAX_BYTES {
            let e = FieldError::TooLong { max: DRAFT_MAX_BYTES };
            return Err(ValidationErrors(vec![Issue::new("", e)]).into());
        }
        let id = id.map(str::to_string).unwrap_or_else(new_id);
        let now = now_utc();
        // Another user's draft id is never overwritten: the update matches nothing.
        // A draft from before there were users becomes the draft of whoever resumes it.
        let n = self.conn.execute(
            "INSERT INTO drafts (id, case_id, created_at, updated_at, data, user_id) VALUES (?1, ?2, ?3, ?3, ?4, ?5)
             ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at, data = excluded.data,
                                            user_id = excluded.user_id
             WHERE drafts.user_id IS excluded.user_id OR drafts.user_id IS NULL",
            params![id, case_id, now, json, self.session.user_id],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(id));
        }
        Ok(id)
    }

    pub fn list_drafts(&self) -> Result<Vec<DraftSummary>, StoreError> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT id, case_id, updated_at, data FROM drafts WHERE {MY_DRAFT} ORDER BY updated_at DESC"
        ))?;
        let rows = st
            .query_map([&self.session.user_id], |r| {
                let data: String = r.get(3)?;
                let v: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
                let alias =
                    intake::primary_person(&v).and_then(|p| p.get("alias")).and_then(Value::as_str).map(str::to_string);
                Ok(DraftSummary { id: r.get(0)?, case_id: r.get(1)?, alias, updated_at: r.get(2)? })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    pub fn get_draft(&self, id: &str) -> Result<Value, StoreError> {
        let data: String = self
            .conn
            .query_row(
                &format!("SELECT data FROM drafts WHERE id = ?2 AND {MY_DRAFT}"),
                [&self.session.user_id, id],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        serde_json::from_str(&data).map_err(|_| StoreError::Corrupt)
    }

    pub fn delete_draft(&mut self, id: &str) -> Result<(), StoreError> {
        self.conn.execute(&format!("DELETE FROM drafts WHERE id = ?2 AND {MY_DRAFT}"), [&self.session.user_id, id])?;
        Ok(())
    }

    /// A case with its personal details, for sharing outside the organisation (a
    /// referral packet, law enforcement): only with the survivor's matching,
    /// unexpired consent, and recorded in the audit trail either way.
    pub fn share_case(&self, id: &str, sharing: crate::consent::Sharing) -> Result<Value, StoreError> {
        let case = self.load_case("id", id)?;
        self.check_open(&case)?;
        let consent_id = match crate::consent::check(&case, sharing, self.today()) {
            Ok(c) => c.get("id").cloned().unwrap_or(Value::Null),
            Err(e) => {
                self.record(Action::Export, Some(id), json!({ "scope": sharing.scope(), "refused": true }))?;
                return Err(e.into());
            }
        };
        self.record(Action::Export, Some(id), json!({ "scope": sharing.scope(), "consent": consent_id }))?;
        Ok(case)
    }

    /// Check a case without saving it (for validation as the user types).
    pub fn check_case(&self, case: Value) -> (Value, Vec<Issue>) {
        intake::check(case, self.today())
    }
}
