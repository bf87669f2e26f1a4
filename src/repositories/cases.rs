//! Cases, notes and drafts: every read and write of them, each write in one
//! transaction.

use super::audit::{self, Action};
use super::facts;
use super::restricted::{Keys, Opener};
use super::users::Role;
use super::RepositoryError;
use super::Session;
use crate::changelog::{self, flat, FieldState};
use crate::database::keys::RestrictedKey;
use crate::database::DatabaseError;
use crate::database::{new_id, now_utc};
use crate::intake::{self, FieldError, Issue, ValidationErrors, CASE_FORMAT};
use chrono::{Datelike, Local, NaiveDate};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

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

/// Does the new version drop anything the old one had (a person, a name, a field)?
/// Then the old words must not linger in the WAL.
pub(crate) fn removes_anything(before: &Value, after: &Map<String, Value>) -> bool {
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
    // Restricting takes the case's words out of the search index.
    let restricts =
        after.get("restricted") == Some(&Value::Bool(true)) && before.get("restricted") != after.get("restricted");
    restricts
        || before.as_object().is_some_and(|b| {
            b.iter().filter(|(k, _)| !skip.contains(&k.as_str())).any(|(k, v)| !covered(v, after.get(k)))
        })
}

/// Who recorded each consent: kept from the saved case for consents already there
/// (the form does not carry it), the current user for new ones. (Import keeps what
/// the file says: it does not come through here.)
pub(crate) fn stamp_consents(case: &mut Value, existing: Option<&Value>, user: &str) {
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

pub(crate) fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(*k))?.as_str()
}

/// The text the search index holds for a case.
pub(crate) fn fts_columns(case: &Value) -> (String, String) {
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
pub(crate) fn assign_item_ids(case: &mut Value) {
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
pub(crate) struct Row {
    pub(crate) id: String,
    pub(crate) case_number: Option<String>,
    pub(crate) status: String,
    pub(crate) intake_date: Option<String>,
    pub(crate) alias: Option<String>,
    pub(crate) primary_language: Option<String>,
    pub(crate) created_at: Option<String>,
    pub(crate) updated_at: Option<String>,
    pub(crate) assigned_to: Option<String>,
    pub(crate) restricted: bool,
    pub(crate) notes: Vec<Value>,
    pub(crate) data: Map<String, Value>,
    pub(crate) names: String,
    pub(crate) places: String,
}

pub(crate) fn to_row(mut case: Value) -> Row {
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
pub(crate) fn reshape(id: &str, mut data: Map<String, Value>) -> Row {
    data.insert("id".into(), id.into());
    to_row(Value::Object(data))
}

pub(crate) fn next_case_number(tx: &Transaction, device: &str, year: i32) -> Result<String, DatabaseError> {
    loop {
        let n: i64 = tx
            .prepare_cached(
                "INSERT INTO case_numbers (device, year, last) VALUES (?1, ?2, 1)
             ON CONFLICT (device, year) DO UPDATE SET last = last + 1 RETURNING last",
            )?
            .query_row(params![device, year], |r| r.get(0))?;
        let number = format!("{device}-{year}-{n:04}");
        let taken: bool = tx
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM cases WHERE case_number = ?1)")?
            .query_row([&number], |r| r.get(0))?;
        if !taken {
            return Ok(number);
        }
    }
}

/// Remember a case number that came from elsewhere, so ours never repeat it.
pub(crate) fn note_case_number(tx: &Transaction, number: &str) -> Result<(), DatabaseError> {
    let parts: Vec<&str> = number.split('-').collect();
    if let [device, year, n] = parts[..] {
        if let (Ok(year), Ok(n)) = (year.parse::<i32>(), n.parse::<i64>()) {
            tx.prepare_cached(
                "INSERT INTO case_numbers (device, year, last) VALUES (?1, ?2, ?3)
                 ON CONFLICT (device, year) DO UPDATE SET last = max(last, excluded.last)",
            )?
            .execute(params![device, year, n])?;
        }
    }
    Ok(())
}

/// A note as it is kept: what the form gave, with id, author and time filled in.
pub(crate) fn note_fields(note: &Map<String, Value>, session: &Session, now: &str) -> Value {
    let get = |k: &str| note.get(k).and_then(Value::as_str).map(str::to_string);
    let id = get("id").filter(|s| uuid::Uuid::parse_str(s).is_ok()).unwrap_or_else(new_id);
    let author = get("author").unwrap_or_else(|| session.user_name.clone());
    let created_at = get("created_at").unwrap_or_else(|| now.to_string());
    flat::note(id, get("text").unwrap_or_default(), get("language"), author, created_at)
}

/// Write a note row; one that is already there stays as it is (notes never change).
pub(crate) fn insert_note(tx: &Connection, case_id: &str, note: &Map<String, Value>) -> Result<bool, DatabaseError> {
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

/// How a write treats a case's personal values (docs/restricted.md): what opens
/// the ones stored sealed, and the key to seal them under when the case is
/// restricted (`None`: written in the clear).
pub(crate) struct Sealing<'a> {
    pub(crate) open: &'a Keys,
    pub(crate) seal: Option<&'a RestrictedKey>,
    /// What the caller writes from what [`log_case`] gives back.
    pub(crate) follows: Follows,
}

/// What a caller of [`log_case`] writes from what it gives back, right after it, in
/// the same transaction. The log only marks the values those hold, instead of
/// storing them twice (`changelog::flat::row_fields`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Follows {
    /// The case's row (data and stamps) and its new notes.
    Row,
    /// The new notes and the stamps of the write (`updated_at`, `updated_by`).
    NotesAndStamps,
    /// Nothing: the row is rebuilt from the log instead (it would be read from
    /// the row before it is written).
    Nothing,
}

impl Sealing<'_> {
    /// An unrestricted case that never was: nothing to open or seal.
    pub(crate) const CLEAR: Sealing<'static> = Sealing { open: &Keys::NONE, seal: None, follows: Follows::Row };
}

/// Record a write of a case in the change log (one change per field that differs
/// from what the log says now), and give back the case's data as every laptop will
/// rebuild it from those fields, and all its notes, both as stored (sealed in a
/// restricted case).
pub(crate) fn log_case(
    tx: &Connection,
    session: &Session,
    id: &str,
    data: &Map<String, Value>,
    meta: &[(&str, Value)],
    new_notes: &[Value],
    sealing: &Sealing,
) -> Result<(Map<String, Value>, Vec<Value>), DatabaseError> {
    let fields = super::incoming::fields(tx, id)?;
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
    // Opened, then sealed again: unchanged values seal to the same bytes, so only
    // real edits are logged; restricting, lifting and a new key rewrite them all.
    // (A case that never was restricted has nothing to open or seal.)
    let crypt = !sealing.open.is_empty() || sealing.seal.is_some();
    for (path, v) in after.iter_mut().filter(|_| crypt) {
        *v = sealing.open.open_in(id, path, v);
        if let Some(key) = sealing.seal {
            *v = super::restricted::seal_value(key, id, path, v)?;
        }
    }
    let data = flat::unflatten(&after);
    let mut row = match sealing.follows {
        Follows::Row => flat::row_fields(&data),
        _ => flat::Flat::new(),
    };
    if sealing.follows != Follows::Nothing {
        let restricted = super::restricted::restricted_data(&data);
        row.extend(in_table(&after, restricted));
    }
    let row = (sealing.follows != Follows::Nothing).then_some(row);
    let mut w = changelog::Writer::begin(tx, session.author())?;
    changelog::log_case_diff(tx, &mut w, id, &fields, &before, &after, row.as_ref())?;
    let notes = after.iter().filter(|(k, _)| k.starts_with(flat::NOTE_PREFIX)).map(|(_, v)| v.clone()).collect();
    Ok((data, notes))
}

/// What the notes table and the row's stamps hold of a case's fields (`after`,
/// as written): its stamps, and its notes unless it is restricted.
fn in_table(after: &flat::Flat, restricted: bool) -> flat::Flat {
    after
        .iter()
        .filter(|(k, v)| {
            flat::META_FIELDS.contains(&k.as_str())
                || (!restricted && k.starts_with(flat::NOTE_PREFIX) && !super::restricted::is_sealed(v))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The notes table holds a case's notes in the clear, for reading and search:
/// only while the case is not restricted. A restricted case's notes are only in
/// the change log, sealed.
pub(crate) fn keep_notes(tx: &Connection, id: &str, restricted: bool, notes: &[Value]) -> Result<bool, DatabaseError> {
    if restricted {
        tx.prepare_cached("DELETE FROM notes WHERE case_id = ?1")?.execute([id])?;
        return Ok(false);
    }
    let mut added = false;
    for n in notes.iter().filter(|n| !super::restricted::is_sealed(n)).filter_map(Value::as_object) {
        added |= insert_note(tx, id, n)?;
    }
    Ok(added)
}

/// A restricted case's notes as the change log holds them (sealed), by field.
pub(crate) fn sealed_notes(conn: &Connection, id: &str) -> Result<Vec<(String, Value)>, DatabaseError> {
    let current = changelog::winners(&changelog::load(conn, changelog::CASE, id)?);
    Ok(current.into_iter().filter(|(k, _)| k.starts_with(flat::NOTE_PREFIX)).collect())
}

/// A case as case JSON: format tag first, then what the store assigned, the fields,
/// the notes, and the timestamps.
pub(crate) fn assemble(
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
pub(crate) fn notes_text(tx: &Connection, seq: i64) -> Result<String, DatabaseError> {
    Ok(tx.prepare_cached("SELECT coalesce(group_concat(n.text, char(10)), '') FROM notes n JOIN cases c ON c.id = n.case_id WHERE c.seq = ?1")?.query_row([seq],
        |r| r.get(0),
    )?)
}

/// The words a case is found by: its number, names, places and notes.
pub(crate) struct SearchWords<'a> {
    pub number: &'a str,
    pub names: &'a str,
    pub places: &'a str,
    pub notes: &'a str,
}

pub(crate) fn refresh_fts(tx: &Connection, seq: i64, w: &SearchWords) -> Result<(), DatabaseError> {
    let case_number = w.number;
    let (status, [names, places, notes]) = fts_entry(tx, seq, w)?;
    // An entry that stays as it is is left alone: replacing it costs FTS5 a
    // delete and an insert in every prefix index (most of a rebuild that changes
    // only codes, and of a save that edits no name, place, note or status).
    let same: bool = tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM cases_fts_text WHERE seq = ?1 AND case_number = ?2 AND names = ?3
                              AND places = ?4 AND notes = ?5 AND status = ?6)",
        )?
        .query_row(params![seq, case_number, names, places, notes, status], |r| r.get(0))?;
    if same {
        return Ok(());
    }
    forget_fts(tx, seq)?;
    insert_fts_text(tx, seq, case_number, [names, places, notes], &status)?;
    tx.prepare_cached(
        "INSERT INTO cases_fts (rowid, case_number, names, places, notes, status)
         SELECT seq, case_number, names, places, notes, status FROM cases_fts_text WHERE seq = ?1",
    )?
    .execute([seq])?;
    Ok(())
}

/// What a case's search entry holds besides its number: its status, and its
/// names, places and notes unless it is restricted.
fn fts_entry<'a>(tx: &Connection, seq: i64, w: &SearchWords<'a>) -> Result<(String, [&'a str; 3]), DatabaseError> {
    // A restricted case's words are never in the index, which anyone holding the
    // store's key could read: only its number. Those who may open it find it by
    // name all the same (`restricted_matches`).
    // The status too (a code, never personal): a filtered search is answered in
    // the index.
    let (restricted, status): (bool, String) = tx
        .prepare_cached("SELECT restricted, status FROM cases WHERE seq = ?1")?
        .query_row([seq], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok((status, if restricted { ["", "", ""] } else { [w.names, w.places, w.notes] }))
}

fn insert_fts_text(
    tx: &Connection,
    seq: i64,
    case_number: &str,
    [names, places, notes]: [&str; 3],
    status: &str,
) -> Result<(), DatabaseError> {
    tx.prepare_cached(
        "INSERT INTO cases_fts_text (seq, case_number, names, places, notes, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![seq, case_number, names, places, notes, status])?;
    Ok(())
}

/// The text a case's search entry is made of, kept beside the index.
fn write_fts_text(tx: &Connection, seq: i64, w: &SearchWords) -> Result<(), DatabaseError> {
    let (status, words) = fts_entry(tx, seq, w)?;
    insert_fts_text(tx, seq, w.number, words, &status)
}

/// What a bulk write (an import, a merge) writes together rather than case by
/// case: the search entries of new cases, and the cases' shares of the fact
/// sheet's running counts. FTS5 writes out what it holds at every later statement
/// that opens a savepoint, so an entry written between a case's other rows costs
/// an index segment of its own, and then merging them; the counts are a few rows
/// that every case would otherwise update again.
#[derive(Debug, Default)]
pub(crate) struct Bulk {
    seqs: Vec<i64>,
    /// Whole batches already put into the index.
    batches: usize,
    counts: facts::Tally,
}

impl Bulk {
    /// How many entries wait before they are put into the index: memory stays
    /// bounded whatever the size of the import.
    const BATCH: usize = 2000;

    /// The entry of a new case (one the index does not hold): its text is kept
    /// now, and it goes into the index with the others.
    fn add(&mut self, tx: &Connection, seq: i64, w: &SearchWords) -> Result<(), DatabaseError> {
        write_fts_text(tx, seq, w)?;
        self.seqs.push(seq);
        if self.seqs.len() >= Self::BATCH {
            self.flush(tx)?;
            self.batches += 1;
        }
        Ok(())
    }

    /// Put the waiting entries into the index at the end of the bulk write. After
    /// whole batches, merge its segments into one: entries put in by the thousand
    /// leave segments that later saves' small ones would otherwise be merged into,
    /// a save at a time (a 14 ms save in a hundred at 10,000 cases). A smaller
    /// write leaves one small segment, as a few saves do, and no merge of the
    /// whole index.
    pub(crate) fn finish(&mut self, tx: &Connection) -> Result<(), DatabaseError> {
        self.counts.flush(tx)?;
        let batches = self.batches;
        self.flush(tx)?;
        if batches > 0 {
            tx.prepare_cached("INSERT INTO cases_fts (cases_fts) VALUES ('optimize')")?.execute([])?;
        }
        Ok(())
    }

    /// Put the waiting entries into the index, with one statement.
    fn flush(&mut self, tx: &Connection) -> Result<(), DatabaseError> {
        if self.seqs.is_empty() {
            return Ok(());
        }
        let seqs = Value::from(std::mem::take(&mut self.seqs)).to_string();
        tx.prepare_cached(
            "INSERT INTO cases_fts (rowid, case_number, names, places, notes, status)
             SELECT seq, case_number, names, places, notes, status FROM cases_fts_text
              WHERE seq IN (SELECT value FROM json_each(?1)) ORDER BY seq",
        )?
        .execute([seqs])?;
        Ok(())
    }
}

/// The index query for what was typed, within the text columns (a typed word
/// never matches a status), and with the status filter when there is one.
fn fts_match(typed: &str, status: Option<&str>) -> Option<String> {
    let words = format!("{{case_number names places notes}} : ({})", fts_query(typed)?);
    Some(match status {
        Some(code) => format!("{words} AND status : \"{}\"", code.replace('"', "")),
        None => words,
    })
}

/// Take a case's words out of the search index: the index is told which words
/// they were (its `delete` command, with the text it was given), and with
/// `secure-delete` they leave its pages at once; then the text itself goes.
fn forget_fts(tx: &Connection, seq: i64) -> Result<(), DatabaseError> {
    tx.prepare_cached(
        "INSERT INTO cases_fts (cases_fts, rowid, case_number, names, places, notes, status)
         SELECT 'delete', seq, case_number, names, places, notes, status FROM cases_fts_text WHERE seq = ?1",
    )?
    .execute([seq])?;
    tx.prepare_cached("DELETE FROM cases_fts_text WHERE seq = ?1")?.execute([seq])?;
    Ok(())
}

/// Fill the search index after the migration that remade it (schema 11): once.
pub(crate) fn backfill_fts(conn: &mut Connection) -> Result<(), DatabaseError> {
    let tx = crate::database::write_tx(conn)?;
    if crate::database::meta(&tx, FTS_FILLED)?.is_none() {
        let rows: Vec<(i64, String, String)> = {
            let mut st = tx.prepare("SELECT seq, case_number, data FROM cases")?;
            let r = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<Result<Vec<_>, _>>()?;
            r
        };
        for (seq, number, data) in rows {
            let case: Value = serde_json::from_str(&data).map_err(|_| DatabaseError::Damaged { table: "cases" })?;
            let (names, places) = fts_columns(&case);
            let notes = notes_text(&tx, seq)?;
            refresh_fts(&tx, seq, &SearchWords { number: &number, names: &names, places: &places, notes: &notes })?;
        }
        crate::database::set_meta(&tx, FTS_FILLED, &now_utc())?;
    }
    // Stores indexed before restricted cases were kept out of the index: once.
    let cleared = crate::database::meta(&tx, RESTRICTED_OUT)?.is_none();
    if cleared {
        let rows: Vec<(i64, String)> = {
            let mut st = tx.prepare("SELECT seq, case_number FROM cases WHERE restricted = 1")?;
            let r = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<Vec<_>, _>>()?;
            r
        };
        for (seq, number) in rows {
            refresh_fts(&tx, seq, &SearchWords { number: &number, names: "", places: "", notes: "" })?;
        }
        crate::database::set_meta(&tx, RESTRICTED_OUT, &now_utc())?;
    }
    tx.commit()?;
    if cleared {
        crate::database::fold_wal(conn)?;
    }
    Ok(())
}

/// Insert one prepared (validated) case. Shared by the form and by import.
pub(crate) fn insert_case(
    tx: &Transaction,
    session: &Session,
    case: Value,
    now: &str,
    sealing: &Sealing,
    bulk: Option<&mut Bulk>,
) -> Result<Value, RepositoryError> {
    let row = to_row(case);
    let exists: bool =
        tx.prepare_cached("SELECT EXISTS (SELECT 1 FROM cases WHERE id = ?1)")?.query_row([&row.id], |r| r.get(0))?;
    if exists {
        return Err(ValidationErrors(vec![Issue::new("id", FieldError::DuplicateId)]).into());
    }
    let case_number = match &row.case_number {
        Some(n) => {
            let taken: bool = tx
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM cases WHERE case_number = ?1)")?
                .query_row([n], |r| r.get(0))?;
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
    let (logged, stored_notes) = log_case(tx, session, &row.id, &row.data, &meta, &notes, sealing)?;
    let row = reshape(&row.id, logged);
    let data = serde_json::to_string(&row.data).map_err(|_| DatabaseError::Damaged { table: "cases" })?;
    let me = session.user_id.as_str();
    let seq = insert_row(tx, &row, &case_number, &data, [&created_at, &updated_at, me, me])?;
    keep_notes(tx, &row.id, row.restricted, &stored_notes)?;
    // A new case: its notes are the ones just written, no need to read them back.
    let text: Vec<&str> = notes.iter().filter_map(|n| n.get("text").and_then(Value::as_str)).collect();
    let text = text.join("\n");
    let words = SearchWords { number: &case_number, names: &row.names, places: &row.places, notes: &text };
    match bulk {
        None => {
            facts::refresh(tx, seq, &row.data)?;
            refresh_fts(tx, seq, &words)?
        }
        Some(bulk) => {
            facts::refresh_into(tx, seq, &row.data, &mut bulk.counts)?;
            bulk.add(tx, seq, &words)?
        }
    }
    audit::append(tx, &session.device_id, Some(&session.user_id), Action::Create, Some(&row.id), json!({}), None)?;
    Ok(assemble(row.id, case_number, row.data, notes, created_at, updated_at))
}

/// Put the cases of a store written before the change log into it, as changes of
/// this device, so that they sync like every later one.
pub(crate) fn backfill(tx: &Connection) -> Result<(), DatabaseError> {
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
        let data: Map<String, Value> =
            serde_json::from_str(&data).map_err(|_| DatabaseError::Damaged { table: "cases" })?;
        let notes: Vec<Value> = {
            let mut st = tx.prepare("SELECT id, text, language, author, created_at FROM notes WHERE case_id = ?1")?;
            let n = st
                .query_map([&id], |r| Ok(flat::note(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
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
        let (rebuilt, _) = log_case(tx, &session, &id, &data, &meta, &notes, &Sealing::CLEAR)?;
        let json = serde_json::to_string(&rebuilt).map_err(|_| DatabaseError::Damaged { table: "cases" })?;
        tx.prepare_cached("UPDATE cases SET data = ?2 WHERE id = ?1")?.execute([&id, &json])?;
    }
    Ok(())
}

/// When the fact-sheet counts began to be kept (`meta`).
pub(crate) const FACTS_SINCE: &str = "facts_since";
/// Set once the search index was filled after schema 11 remade it.
const FTS_FILLED: &str = "fts_filled_at";
const RESTRICTED_OUT: &str = "fts_restricted_out_at";

/// Fill the fact-sheet counts of cases saved before they were kept (once).
pub(crate) fn backfill_facts(conn: &mut Connection) -> Result<(), DatabaseError> {
    let tx = crate::database::write_tx(conn)?;
    if crate::database::meta(&tx, FACTS_SINCE)?.is_none() {
        let rows: Vec<(i64, String)> = {
            let mut st = tx.prepare("SELECT seq, data FROM cases")?;
            let r = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<Vec<_>, _>>()?;
            r
        };
        // From nothing: whatever was kept before is counted again, not twice.
        tx.execute_batch(
            "DELETE FROM case_facts; DELETE FROM case_report; DELETE FROM month_counts; DELETE FROM fact_counts;",
        )?;
        for (seq, data) in rows {
            let data = serde_json::from_str(&data).map_err(|_| DatabaseError::Damaged { table: "cases" })?;
            facts::refresh(&tx, seq, &data)?;
        }
        crate::database::set_meta(&tx, FACTS_SINCE, &now_utc())?;
    }
    tx.commit()?;
    Ok(())
}

/// Mark left by schema 21 until every case shows HTCDS 2.0's codes.
const CODES_UPGRADE: &str = "codes_upgrade_pending";

/// Stores from before schema 21 hold codes of an earlier version. Each case that
/// does is rebuilt from its changes, which shows its codes as they are now
/// (`intake::upgrade_codes`); the changes keep what was written (a value its row
/// held is stored in the log first), so they travel on as they were, and its facts
/// and running counts follow. One transaction: a crash only delays it.
pub(crate) fn upgrade_codes(conn: &mut Connection) -> Result<(), RepositoryError> {
    let tx = crate::database::write_tx(conn)?;
    if crate::database::meta(&tx, CODES_UPGRADE)?.is_some() {
        // Only the ids of the cases to rebuild are kept: memory stays small
        // whatever the size of the store.
        let mut stale = Vec::new();
        {
            let mut st = tx.prepare("SELECT id, data FROM cases")?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                let data: String = r.get(1)?;
                let mut case: Value =
                    serde_json::from_str(&data).map_err(|_| DatabaseError::Damaged { table: "cases" })?;
                if intake::upgrade_codes(&mut case) {
                    stale.push(r.get::<_, String>(0)?);
                }
            }
        }
        let mut bulk = Bulk::default();
        for id in &stale {
            rebuild_from(&tx, id, super::incoming::fields(&tx, id)?, Logged::Yes, Some(&mut bulk))?;
        }
        bulk.finish(&tx)?;
        tx.execute("DELETE FROM meta WHERE key = ?1", [CODES_UPGRADE])?;
    }
    tx.commit()?;
    Ok(())
}

/// Write the row of a case new to this laptop: its columns from `row`, its data
/// as stored, and its stamps (`created_at`, `updated_at`, `created_by`,
/// `updated_by`). A case written closed starts its retention clock. Returns the
/// row's number.
fn insert_row(tx: &Connection, row: &Row, number: &str, data: &str, stamps: [&str; 4]) -> Result<i64, DatabaseError> {
    let [created_at, updated_at, created_by, updated_by] = stamps;
    tx.prepare_cached(
        "INSERT INTO cases (id, case_number, status, intake_date, alias, primary_language,
                            created_at, updated_at, created_by, updated_by, data, assigned_to, restricted, closed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,
                 CASE WHEN ?3 IN ('Closed', 'ClosedReferred') THEN ?8 END)",
    )?
    .execute(params![
        row.id,
        number,
        row.status,
        row.intake_date,
        row.alias,
        row.primary_language,
        created_at,
        updated_at,
        created_by,
        updated_by,
        data,
        row.assigned_to,
        row.restricted
    ])?;
    Ok(tx.last_insert_rowid())
}

/// Rewrite a case's row from its rebuilt data. Closing starts the retention clock;
/// reopening stops it.
pub(crate) fn update_row(
    tx: &Connection,
    id: &str,
    row: &Row,
    data: &str,
    updated_at: &str,
    updated_by: &str,
) -> Result<(), DatabaseError> {
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
pub(crate) fn rebuild(tx: &Transaction, id: &str) -> Result<(Merged, Vec<String>), RepositoryError> {
    let fields = super::incoming::fields(tx, id)?;
    rebuild_from(tx, id, fields, Logged::Yes, None)
}

/// Are the changes a rebuild is given in the change log already?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Logged {
    Yes,
    /// No: they are all the case's changes (the log holds none of it), and the
    /// rebuild writes them, marking the values the case's row holds as there.
    No,
}

/// [`rebuild`], in a bulk write (a merge), from every change of the case by field
/// as the caller has them (`incoming::fields`): the search entry of a new case and
/// the case's share of the counts wait in `bulk` to be written with the others.
pub(crate) fn rebuild_from(
    tx: &Transaction,
    id: &str,
    fields: BTreeMap<String, FieldState>,
    logged: Logged,
    bulk: Option<&mut Bulk>,
) -> Result<(Merged, Vec<String>), RepositoryError> {
    // With the stamps a rebuild leaves as they are.
    type Existing = (i64, String, String, [String; 3]);
    let existing: Option<Existing> = tx
        .prepare_cached("SELECT seq, data, updated_at, case_number, created_at, created_by FROM cases WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, [r.get(3)?, r.get(4)?, r.get(5)?])))
        .optional()?;
    if changelog::is_purged(&fields) {
        if logged == Logged::No {
            changelog::insert_new(tx, fields.values().flat_map(|s| &s.changes), None)?;
        }
        let was_here = existing.is_some();
        remove_case(tx, id)?;
        return Ok((if was_here { Merged::Removed } else { Merged::Unchanged }, Vec::new()));
    }
    let current = changelog::winners(&fields);
    let text = |k: &str| current.get(k).and_then(Value::as_str).map(str::to_string);
    // Codes of an earlier version (from a laptop not yet upgraded, or in changes
    // made before) show as they are now; the changes keep what was written.
    let mut data = Value::Object(flat::unflatten(&current));
    intake::upgrade_codes(&mut data);
    let Value::Object(data) = data else { return Err(DatabaseError::Damaged { table: "cases" }.into()) };
    let row = reshape(id, data);
    let number = text("case_number");
    let created_at = text("created_at").unwrap_or_default();
    let updated_at = text("updated_at").unwrap_or_else(|| created_at.clone());
    let created_by = text("created_by").unwrap_or_default();
    let updated_by = text("updated_by").unwrap_or_else(|| created_by.clone());
    // What the row and the notes table will hold: a change whose value is read
    // from there and that they stop holding gets its value kept in the log, and
    // the changes of a case new here are written marking what they hold.
    let reads_row = logged == Logged::No || fields.values().any(|s| !s.in_row.is_empty());
    let will_hold = number.as_ref().filter(|_| reads_row).map(|number| {
        let mut holds = flat::row_fields(&row.data);
        let first = match &existing {
            Some((_, _, _, stamps)) => stamps.clone(),
            None => [number.clone(), created_at.clone(), created_by.clone()],
        };
        let stamps = first.into_iter().chain([updated_at.clone(), updated_by.clone()]);
        let names = ["case_number", "created_at", "created_by", "updated_at", "updated_by"];
        holds.extend(names.into_iter().map(str::to_string).zip(stamps.map(Value::from)));
        holds.extend(in_table(&current, row.restricted).into_iter().filter(|(k, _)| k.starts_with(flat::NOTE_PREFIX)));
        holds
    });
    if logged == Logged::No {
        // Marked only for a row written whole just below (a row already here
        // keeps stamps of its own).
        let marks = will_hold.as_ref().filter(|_| existing.is_none());
        changelog::insert_new(tx, fields.values().flat_map(|s| &s.changes), marks)?;
    }
    let open = changelog::settle(tx, id, &fields, will_hold.as_ref())?;
    let Some(number) = number else { return Ok((Merged::Waiting, open)) };
    let data = serde_json::to_string(&row.data).map_err(|_| DatabaseError::Damaged { table: "cases" })?;
    let notes: Vec<Value> =
        current.iter().filter(|(k, _)| k.starts_with(flat::NOTE_PREFIX)).map(|(_, n)| n.clone()).collect();
    // Notes are taken out of the notes table once the row says restricted (the
    // table allows nothing else), below.
    let (outcome, seq) = match &existing {
        None => {
            let taken: Option<String> = tx
                .prepare_cached("SELECT id FROM cases WHERE case_number = ?1")?
                .query_row([&number], |r| r.get(0))
                .optional()?;
            if taken.is_some() {
                // Two laptops numbering with the same device code: never merge two
                // different cases into one number.
                return Err(RepositoryError::CaseNumberTaken { number });
            }
            note_case_number(tx, &number)?;
            let stamps = [created_at.as_str(), &updated_at, &created_by, &updated_by];
            let seq = insert_row(tx, &row, &number, &data, stamps)?;
            if !row.restricted {
                keep_notes(tx, id, false, &notes)?;
            }
            (Merged::New, seq)
        }
        Some((seq, old, old_updated, _)) => {
            let notes_added = !row.restricted && keep_notes(tx, id, false, &notes)?;
            if *old == data && *old_updated == updated_at && !notes_added {
                return Ok((Merged::Unchanged, open));
            }
            update_row(tx, id, &row, &data, &updated_at, &updated_by)?;
            (Merged::Updated, *seq)
        }
    };
    if row.restricted {
        keep_notes(tx, id, true, &[])?;
    }
    let notes = notes_text(tx, seq)?;
    let words = SearchWords { number: &number, names: &row.names, places: &row.places, notes: &notes };
    match bulk {
        Some(bulk) => {
            facts::refresh_into(tx, seq, &row.data, &mut bulk.counts)?;
            match outcome {
                Merged::New => bulk.add(tx, seq, &words)?,
                _ => refresh_fts(tx, seq, &words)?,
            }
        }
        None => {
            facts::refresh(tx, seq, &row.data)?;
            refresh_fts(tx, seq, &words)?
        }
    }
    Ok((outcome, open))
}

/// Remove a case for good (a retention purge, here or on another laptop): its row,
/// notes, drafts and search entry go, its changes keep only their identity, and its
/// id stays as a tombstone.
pub(crate) fn remove_case(tx: &Connection, id: &str) -> Result<(), DatabaseError> {
    tx.prepare_cached("INSERT INTO purged_cases (case_id, purged_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING")?
        .execute([id, &now_utc()])?;
    let seq: Option<i64> =
        tx.prepare_cached("SELECT seq FROM cases WHERE id = ?1")?.query_row([id], |r| r.get(0)).optional()?;
    tx.prepare_cached("DELETE FROM notes WHERE case_id = ?1")?.execute([id])?;
    if let Some(seq) = seq {
        forget_fts(tx, seq)?;
        facts::forget(tx, seq)?;
    }
    tx.prepare_cached("DELETE FROM drafts WHERE case_id = ?1")?.execute([id])?;
    tx.prepare_cached("DELETE FROM cases WHERE id = ?1")?.execute([id])?;
    changelog::blank_entity(tx, changelog::CASE, id, Some(flat::PURGED))?;
    // A restricted case's keys go too: kept, they would still open the sealed
    // values of the case in batches a hub holds.
    changelog::blank_entity(tx, changelog::CASE_KEY, id, None)?;
    tx.prepare_cached("DELETE FROM open_conflicts WHERE entity_id = ?1")?.execute([id])?;
    Ok(())
}

pub(crate) fn summary(r: &rusqlite::Row) -> rusqlite::Result<CaseSummary> {
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
pub(crate) fn changed_fields(before: &Value, after: &Map<String, Value>) -> Vec<String> {
    let skip = ["id", "case_number", "created_at", "updated_at", "format", "notes"];
    let empty = Map::new();
    let before = before.as_object().unwrap_or(&empty);
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).filter(|k| !skip.contains(&k.as_str())).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter().filter(|k| before.get(*k) != after.get(*k)).cloned().collect()
}

/// How a case is looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseKey {
    Id,
    Number,
}

/// A case by id or number, with its notes, if there is one (no permission check).
pub(crate) fn load(conn: &Connection, key: CaseKey, value: &str) -> Result<Option<Value>, DatabaseError> {
    let column = match key {
        CaseKey::Id => "id",
        CaseKey::Number => "case_number",
    };
    let sql = format!("SELECT id, case_number, created_at, updated_at, data FROM cases WHERE {column} = ?1");
    let row: Option<(String, String, String, String, String)> = conn
        .prepare_cached(&sql)?
        .query_row([value], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .optional()?;
    let Some((id, number, created, updated, data)) = row else { return Ok(None) };
    let data: Map<String, Value> =
        serde_json::from_str(&data).map_err(|_| DatabaseError::Damaged { table: "cases" })?;
    // A restricted case's notes are sealed in the change log: whoever holds its
    // key adds them (`restricted::Keys::open_notes`).
    let restricted = data.get("restricted").and_then(Value::as_bool).unwrap_or(false);
    let notes = if restricted { Vec::new() } else { notes_of(conn, &id)? };
    Ok(Some(assemble(id, number, data, notes, created, updated)))
}

/// A case's notes, oldest first.
pub(crate) fn notes_of(conn: &Connection, case_id: &str) -> Result<Vec<Value>, DatabaseError> {
    let mut st = conn.prepare_cached(
        "SELECT id, text, language, author, created_at FROM notes WHERE case_id = ?1 ORDER BY created_at, id",
    )?;
    let notes = st
        .query_map([case_id], |r| Ok(flat::note(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(notes)
}

/// The id of the case with this number (typed loosely: spaces and case do not matter).
pub(crate) fn id_of_number(conn: &Connection, case_number: &str) -> Result<Option<String>, DatabaseError> {
    Ok(conn
        .prepare_cached("SELECT id FROM cases WHERE case_number = ?1")?
        .query_row([case_number.trim().to_uppercase()], |r| r.get(0))
        .optional()?)
}

/// Every case id, oldest first.
pub(crate) fn all_ids(conn: &Connection) -> Result<Vec<String>, DatabaseError> {
    let mut st = conn.prepare("SELECT id FROM cases ORDER BY seq")?;
    let ids = st.query_map([], |r| r.get(0))?.collect::<Result<Vec<_>, _>>()?;
    Ok(ids)
}

/// Every restricted case, oldest first, with whom it is assigned to.
pub(crate) fn restricted_cases(conn: &Connection) -> Result<Vec<(String, Option<String>)>, DatabaseError> {
    let mut st = conn.prepare_cached(RESTRICTED_CASES)?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Closed cases whose closing is before `cutoff` (an RFC 3339 time).
pub(crate) fn closed_before(conn: &Connection, cutoff: &str) -> Result<Vec<String>, DatabaseError> {
    let mut st = conn.prepare(
        "SELECT id FROM cases WHERE closed_at IS NOT NULL AND closed_at < ?1 AND status IN ('Closed', 'ClosedReferred') ORDER BY seq",
    )?;
    let ids = st.query_map([cutoff], |r| r.get(0))?.collect::<Result<Vec<_>, _>>()?;
    Ok(ids)
}

/// A page of the case list, newest first: matching `q`, each row saying whether
/// `user` may open it (`sees_all`: supervisors open every case). Restricted cases
/// this user may not open never match a search.
pub(crate) fn list(
    conn: &Connection,
    q: &ListQuery,
    opener: &Opener,
    sees_all: bool,
) -> Result<Vec<CaseSummary>, DatabaseError> {
    let mut rows = list_rows(conn, q, opener, sees_all)?;
    // A restricted case's alias is sealed: shown to whoever holds its key.
    for row in rows.iter_mut().filter(|r| r.restricted && !r.locked && r.alias.is_none()) {
        if let Some(case) = stored(conn, &row.id)? {
            row.alias = opened_alias(conn, opener, &row.id, case.data)?;
        }
    }
    Ok(rows)
}

/// The primary person's alias of a restricted case, opened with this user's keys.
fn opened_alias(conn: &Connection, opener: &Opener, id: &str, data: Value) -> Result<Option<String>, DatabaseError> {
    let Value::Object(mut data) = data else { return Ok(None) };
    opener.keys(conn, id)?.open_data(id, &mut data);
    let case = Value::Object(data);
    Ok(intake::primary_person(&case).and_then(|p| p.get("alias")).and_then(Value::as_str).map(str::to_string))
}

fn list_rows(
    conn: &Connection,
    q: &ListQuery,
    opener: &Opener,
    sees_all: bool,
) -> Result<Vec<CaseSummary>, DatabaseError> {
    let user = opener.user_id;
    let limit = q.limit.unwrap_or(100).min(LIST_LIMIT_MAX) as i64;
    let offset = q.offset.unwrap_or(0) as i64;
    let status = q.status.as_deref().filter(|s| !s.is_empty());
    // ?1 = this user, ?2 = may open every case. `restricted` and `assigned_to`
    // come after the case JSON in the row, so reading them reads its overflow
    // pages: restricted cases are known by their partial index instead, and the
    // assignment is read for them only.
    const COLS: &str = "c.id, c.case_number, c.alias, c.status, c.intake_date, c.primary_language, c.updated_at,
         c.seq IN (SELECT seq FROM cases WHERE restricted = 1),
         CASE WHEN c.seq IN (SELECT seq FROM cases WHERE restricted = 1) THEN (?2 OR c.assigned_to = ?1) ELSE 1 END,
         EXISTS (SELECT 1 FROM unexported u WHERE u.case_id = c.id)";
    let rows = match (fts_match(&q.text, status), status) {
        (Some(m), st) => {
            // The index's matches that are not restricted, and the restricted cases
            // this user may open that match (read apart: the index holds only their
            // numbers), newest first, one page.
            let sql = format!(
                "SELECT {COLS}, c.seq FROM cases_fts f JOIN cases c ON c.seq = f.rowid
                 WHERE cases_fts MATCH ?3 AND f.rowid NOT IN (SELECT seq FROM cases WHERE restricted = 1)
                 ORDER BY f.rowid DESC LIMIT ?4"
            );
            let mut st_ = conn.prepare_cached(&sql)?;
            let indexed = st_
                .query_map(params![user, sees_all, m, limit.saturating_add(offset)], |r| {
                    Ok((r.get::<_, i64>(10)?, summary(r)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let mut all = restricted_matches(conn, &q.text, st, opener, sees_all)?;
            all.retain(|(seq, _)| !indexed.iter().any(|(s, _)| s == seq));
            all.extend(indexed);
            all.sort_by_key(|(seq, _)| std::cmp::Reverse(*seq));
            all.into_iter().skip(offset as usize).take(limit as usize).map(|(_, row)| row).collect()
        }
        (None, Some(st)) => {
            let sql = format!("SELECT {COLS} FROM cases c WHERE c.status = ?3 ORDER BY c.seq DESC LIMIT ?4 OFFSET ?5");
            let mut st_ = conn.prepare_cached(&sql)?;
            let rows =
                st_.query_map(params![user, sees_all, st, limit, offset], summary)?.collect::<Result<Vec<_>, _>>()?;
            rows
        }
        (None, None) => {
            let sql = format!("SELECT {COLS} FROM cases c ORDER BY c.seq DESC LIMIT ?3 OFFSET ?4");
            let mut st_ = conn.prepare_cached(&sql)?;
            let rows =
                st_.query_map(params![user, sees_all, limit, offset], summary)?.collect::<Result<Vec<_>, _>>()?;
            rows
        }
    };
    Ok(rows)
}

/// Restricted cases this user may open whose names, places, notes or number
/// hold every word typed, as the index would match them (each word the start
/// of one there, lowercased and without accents), with their `seq`. Restricted
/// cases are few, and are read here, never indexed.
/// The restricted cases a user may open (?1 the user, ?2 may open all, ?3 a
/// status or null); by the partial index, never by reading every case.
const RESTRICTED_MATCHES: &str =
    "SELECT c.id, c.case_number, c.alias, c.status, c.intake_date, c.primary_language, c.updated_at,
            c.restricted, 1, EXISTS (SELECT 1 FROM unexported u WHERE u.case_id = c.id), c.seq, c.data
       FROM cases c
      WHERE c.restricted = 1 AND (?2 OR c.assigned_to = ?1) AND (?3 IS NULL OR c.status = ?3)";

const RESTRICTED_CASES: &str = "SELECT id, assigned_to FROM cases WHERE restricted = 1 ORDER BY seq";

fn restricted_matches(
    conn: &Connection,
    text: &str,
    status: Option<&str>,
    opener: &Opener,
    sees_all: bool,
) -> Result<Vec<(i64, CaseSummary)>, DatabaseError> {
    let user = opener.user_id;
    let typed: Vec<String> =
        text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(super::fold).collect();
    if typed.is_empty() {
        return Ok(Vec::new());
    }
    let mut st = conn.prepare_cached(RESTRICTED_MATCHES)?;
    let rows = st
        .query_map(params![user, sees_all, status], |r| {
            Ok((r.get::<_, i64>(10)?, r.get::<_, String>(11)?, summary(r)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::new();
    for (seq, data, mut row) in rows {
        let Value::Object(mut data) =
            serde_json::from_str(&data).map_err(|_| DatabaseError::Damaged { table: "cases" })?
        else {
            return Err(DatabaseError::Damaged { table: "cases" });
        };
        // Sealed: read with this user's keys, here only, never indexed.
        let keys = opener.keys(conn, &row.id)?;
        keys.open_data(&row.id, &mut data);
        let mut case = Value::Object(data);
        keys.open_notes(conn, &row.id, &mut case)?;
        let (names, places) = fts_columns(&case);
        let notes: Vec<&str> = case
            .get("notes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|n| n.get("text").and_then(Value::as_str))
            .collect();
        row.alias =
            intake::primary_person(&case).and_then(|p| p.get("alias")).and_then(Value::as_str).map(str::to_string);
        let hay = super::fold(&[row.case_number.as_str(), &names, &places, &notes.join("\n")].join(" "));
        let words: Vec<&str> = hay.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
        if typed.iter().all(|t| words.iter().any(|w| w.starts_with(t.as_str()))) {
            out.push((seq, row));
        }
    }
    Ok(out)
}

/// How much the store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub cases: i64,
    pub people: i64,
    pub notes: i64,
}

pub(crate) fn counts(conn: &Connection) -> Result<Counts, DatabaseError> {
    let count = |sql: &str| -> Result<i64, DatabaseError> { Ok(conn.query_row(sql, [], |r| r.get(0))?) };
    Ok(Counts {
        cases: count("SELECT count(*) FROM cases")?,
        people: count("SELECT coalesce(sum(json_array_length(data, '$.people')), 0) FROM cases")?,
        notes: count("SELECT count(*) FROM notes")?,
    })
}

/// Write a prepared edit of case `id` (numbered `case_number`) as `session`'s user:
/// its row, its changes, fact counts, new notes and search entry. Returns the row as
/// written and how many notes were added.
pub(crate) fn update(
    tx: &Transaction,
    session: &Session,
    id: &str,
    mut row: Row,
    case_number: &str,
    now: &str,
    sealing: &Sealing,
) -> Result<(Row, usize), DatabaseError> {
    let seq: i64 = tx.prepare_cached("SELECT seq FROM cases WHERE id = ?1")?.query_row([id], |r| r.get(0))?;
    let notes: Vec<Value> = std::mem::take(&mut row.notes)
        .iter()
        .filter_map(Value::as_object)
        .map(|n| note_fields(n, session, now))
        .collect();
    let meta = [("updated_at", Value::from(now)), ("updated_by", session.user_id.clone().into())];
    let (logged, stored_notes) = log_case(tx, session, id, &row.data, &meta, &notes, sealing)?;
    let row = reshape(id, logged);
    let data = Value::Object(row.data.clone()).to_string();
    update_row(tx, id, &row, &data, now, &session.user_id)?;
    facts::refresh(tx, seq, &row.data)?;
    keep_notes(tx, id, row.restricted, &stored_notes)?;
    let notes = notes_text(tx, seq)?;
    refresh_fts(tx, seq, &SearchWords { number: case_number, names: &row.names, places: &row.places, notes: &notes })?;
    Ok((row, notes.len()))
}

/// A case's row as stored, for a write that adds to it.
pub(crate) struct Stored {
    seq: i64,
    case_number: String,
    /// The case's fields (without notes): what permission checks look at.
    pub(crate) data: Value,
}

pub(crate) fn stored(conn: &Connection, id: &str) -> Result<Option<Stored>, DatabaseError> {
    let row: Option<(i64, String, String)> = conn
        .prepare_cached("SELECT seq, case_number, data FROM cases WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((seq, case_number, data)) = row else { return Ok(None) };
    let data = serde_json::from_str(&data).map_err(|_| DatabaseError::Damaged { table: "cases" })?;
    Ok(Some(Stored { seq, case_number, data }))
}

/// Add a (validated) note to a stored case as `session`'s user: the note, its
/// change, the case's update time and its search entry. Returns the note as saved.
pub(crate) fn append_note(
    tx: &Transaction,
    session: &Session,
    id: &str,
    case: &Stored,
    note: &Map<String, Value>,
    now: &str,
    sealing: &Sealing,
) -> Result<Value, DatabaseError> {
    let saved = note_fields(note, session, now);
    let meta = [("updated_at", Value::from(now)), ("updated_by", session.user_id.clone().into())];
    let current = case.data.as_object().cloned().unwrap_or_default();
    let (_, stored_notes) = log_case(tx, session, id, &current, &meta, std::slice::from_ref(&saved), sealing)?;
    let restricted = super::restricted::is_restricted(&case.data);
    keep_notes(tx, id, restricted, &stored_notes)?;
    tx.prepare_cached("UPDATE cases SET updated_at = ?2, updated_by = ?3 WHERE id = ?1")?.execute(params![
        id,
        now,
        session.user_id
    ])?;
    let (names, places) = fts_columns(&case.data);
    let notes = notes_text(tx, case.seq)?;
    refresh_fts(
        tx,
        case.seq,
        &SearchWords { number: &case.case_number, names: &names, places: &places, notes: &notes },
    )?;
    Ok(saved)
}

#[cfg(test)]
mod tests {
    /// Search and unlock read restricted cases apart: by the partial index, so
    /// that neither reads every case of a large store.
    #[test]
    fn restricted_cases_are_found_by_their_index_not_a_scan() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::database::schema::migrations().to_latest(&mut conn).unwrap();
        let plan = |sql: &str, params: &[&dyn rusqlite::ToSql]| -> Vec<String> {
            let mut st = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            st.query_map(params, |r| r.get::<_, String>(3)).unwrap().collect::<Result<_, _>>().unwrap()
        };
        let none: Option<String> = None;
        for (sql, steps) in [
            (super::RESTRICTED_MATCHES, plan(super::RESTRICTED_MATCHES, &[&"u1", &false, &none])),
            (super::RESTRICTED_CASES, plan(super::RESTRICTED_CASES, &[])),
        ] {
            let of_cases: Vec<&String> = steps.iter().filter(|s| !s.contains("unexported")).collect();
            assert!(of_cases.iter().any(|s| s.contains("INDEX cases_restricted")), "{sql}: {steps:?}");
            // Walking the partial index reads restricted rows only; a bare scan reads all.
            assert!(!of_cases.iter().any(|s| s.as_str() == "SCAN c" || s.as_str() == "SCAN cases"), "{sql}: {steps:?}");
        }
    }
}
