//! The change log and the merge: the layer between the database and the
//! repositories. It works on a connection or a transaction the caller holds, so a
//! change is written in the same transaction as the write it records.
//!
//! - [`flat`]: an entity as a flat map of field paths (`people.<id>.alias`);
//! - [`hlc`]: the hybrid logical clock every change is stamped with.
//!
//! Every write of a case adds, in the same transaction, one row per changed field:
//! which device, its own sequence number, a hybrid-logical-clock time, the field and
//! its new value, and the *parents*: the change(s) this one knowingly replaced (the
//! value the writer saw). Merging is then a pure function of the set of changes, so
//! every laptop that holds the same changes shows the same case, whatever order the
//! changes arrived in and however often:
//!
//! - the *heads* of a field are its changes that no other change replaced;
//! - the field's value is the newest head (by clock, then device id);
//! - every other head is a *conflict*: two people changed the same field without
//!   seeing each other's value. It stays, with who and when, until a supervisor
//!   resolves it with a change whose parents are all the heads.
//!
//! A replaced value is no longer needed to merge, only its identity is: its bytes
//! are blanked at once (`value` NULL), so that a name someone corrected or removed
//! is gone from the store, as the safety work requires.

pub mod flat;
pub mod hlc;

use crate::database::{self, DatabaseError};
use flat::{Flat, PURGED};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};

pub const CASE: &str = "case";
/// A service directory entry: fields are the entry's top-level keys.
pub const DIRECTORY: &str = "directory";
/// A restricted case's keys (docs/restricted.md): `current` names the key new
/// values are sealed under, `<key id>.<user id>` is that key sealed to her.
pub const CASE_KEY: &str = "case_key";
/// What a bundle may carry.
pub const ENTITIES: [&str; 3] = [CASE, DIRECTORY, CASE_KEY];
const HLC_KEY: &str = "hlc";

/// One change, as stored and as carried in a bundle (see `bundle` for the wire form).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub device: String,
    pub seq: i64,
    pub hlc: i64,
    pub entity: String,
    pub id: String,
    pub field: String,
    /// `None` once blanked (replaced, or its item or case removed); `Some(null)`
    /// when the field was cleared.
    pub value: Option<Value>,
    pub parents: Vec<(String, i64)>,
    pub user: Option<String>,
    pub user_name: Option<String>,
}

/// The columns [`change`] reads, in its order.
pub const CHANGE_COLUMNS: &str =
    "device_id, device_seq, hlc, entity, entity_id, field, value, parents, user_id, user_name";

/// Read one change; a value or parent list that is not the JSON the store wrote is
/// a conversion failure (see [`database::read_error`]), never an empty value.
pub fn change(r: &rusqlite::Row) -> rusqlite::Result<Change> {
    let value: Option<String> = r.get(6)?;
    let parents: String = r.get(7)?;
    Ok(Change {
        device: r.get(0)?,
        seq: r.get(1)?,
        hlc: r.get(2)?,
        entity: r.get(3)?,
        id: r.get(4)?,
        field: r.get(5)?,
        // NULL is a blanked value; anything else is the JSON the store wrote.
        value: value.map(|v| database::json_column(6, &v)).transpose()?,
        // Most changes replaced nothing: skip parsing the empty list.
        parents: if parents == "[]" { Vec::new() } else { database::json_column(7, &parents)? },
        user: r.get(8)?,
        user_name: r.get(9)?,
    })
}

/// Insert a change unless it is already there. True if it was new.
pub fn insert(conn: &Connection, c: &Change) -> Result<bool, DatabaseError> {
    let value = c.value.as_ref().map(Value::to_string);
    // A list of (text, integer) pairs always serialises.
    let parents = serde_json::Value::from(c.parents.iter().map(|(d, s)| serde_json::json!([d, s])).collect::<Vec<_>>())
        .to_string();
    let n = conn.prepare_cached(
        "INSERT INTO changes (device_id, device_seq, hlc, entity, entity_id, field, value, parents, user_id, user_name)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT DO NOTHING",
    )?
    .execute(params![c.device, c.seq, c.hlc, c.entity, c.id, c.field, value, parents, c.user, c.user_name])?;
    Ok(n == 1)
}

/// Writes this laptop's changes: one clock tick and consecutive sequence numbers.
pub struct Writer {
    device: String,
    user: String,
    user_name: String,
    pub hlc: i64,
    next_seq: i64,
    /// Cases already marked as not yet exported by this write.
    marked: HashSet<String>,
}

/// This laptop's clock: the last time it stamped or observed (0 before the first).
pub fn read_hlc(conn: &Connection) -> Result<i64, DatabaseError> {
    database::meta_number(conn, HLC_KEY)
}

pub fn write_hlc(conn: &Connection, value: i64) -> Result<(), DatabaseError> {
    database::set_meta(conn, HLC_KEY, &value.to_string())
}

/// Who writes: this laptop, and the person unlocked on it.
#[derive(Debug, Clone, Copy)]
pub struct Author<'a> {
    pub device: &'a str,
    pub user: &'a str,
    pub user_name: &'a str,
}

impl Writer {
    pub fn begin(conn: &Connection, author: Author) -> Result<Writer, DatabaseError> {
        let hlc = hlc::tick(read_hlc(conn)?, hlc::physical_now());
        write_hlc(conn, hlc)?;
        let last: i64 = conn
            .prepare_cached("SELECT coalesce(max(device_seq), 0) FROM changes WHERE device_id = ?1")?
            .query_row([author.device], |r| r.get(0))?;
        Ok(Writer {
            device: author.device.to_string(),
            user: author.user.to_string(),
            user_name: author.user_name.to_string(),
            hlc,
            next_seq: last + 1,
            marked: HashSet::new(),
        })
    }

    /// The time of this write, as stored in `updated_at`.
    pub fn time(&self) -> String {
        hlc::to_rfc3339(self.hlc)
    }

    pub fn write(
        &mut self,
        conn: &Connection,
        id: &str,
        field: &str,
        value: &Value,
        parents: Vec<(String, i64)>,
    ) -> Result<(), DatabaseError> {
        self.write_entity(conn, CASE, id, field, value, parents)
    }

    pub fn write_entity(
        &mut self,
        conn: &Connection,
        entity: &str,
        id: &str,
        field: &str,
        value: &Value,
        parents: Vec<(String, i64)>,
    ) -> Result<(), DatabaseError> {
        let c = Change {
            device: self.device.clone(),
            seq: self.next_seq,
            hlc: self.hlc,
            entity: entity.into(),
            id: id.into(),
            field: field.into(),
            value: Some(value.clone()),
            parents,
            user: Some(self.user.clone()),
            user_name: Some(self.user_name.clone()),
        };
        insert(conn, &c)?;
        self.next_seq += 1;
        // "Not yet synced" is a mark on cases; the directory has none.
        if entity == CASE && self.marked.insert(id.to_string()) {
            conn.prepare_cached("INSERT INTO unexported (case_id) VALUES (?1) ON CONFLICT DO NOTHING")?
                .execute([id])?;
        }
        Ok(())
    }
}

/// One field of an entity: every change of it this laptop holds.
#[derive(Debug, Default)]
pub struct FieldState {
    pub changes: Vec<Change>,
    /// Changes (device, seq) whose value this laptop's form does not accept: kept
    /// for review, but they never show and replace nothing, so the value they
    /// were written over stays current. Marked by the caller, who knows the form.
    pub held: HashSet<(String, i64)>,
}

impl FieldState {
    /// Is this change one the form does not accept here?
    pub fn is_held(&self, c: &Change) -> bool {
        !self.held.is_empty() && self.held.contains(&(c.device.clone(), c.seq))
    }

    /// Changes no other change replaced, newest first.
    pub fn heads(&self) -> Vec<&Change> {
        let replaced: HashSet<(&str, i64)> = self
            .changes
            .iter()
            .filter(|c| !self.is_held(c))
            .flat_map(|c| c.parents.iter().map(|(d, s)| (d.as_str(), *s)))
            .collect();
        let mut heads: Vec<&Change> =
            self.changes.iter().filter(|c| !replaced.contains(&(c.device.as_str(), c.seq))).collect();
        heads.sort_by(|a, b| (b.hlc, &b.device).cmp(&(a.hlc, &a.device)));
        heads
    }

    /// Do heads disagree, or is one of them held? (Two people typing the same
    /// value is no conflict.)
    pub fn is_conflict(&self) -> bool {
        let heads = self.heads();
        if heads.iter().any(|c| self.is_held(c) && c.value.is_some()) {
            return true;
        }
        let mut values = heads.into_iter().filter_map(|c| c.value.as_ref());
        let first = values.next();
        values.any(|v| Some(v) != first)
    }

    /// The head whose value shows: the newest one that still has its value and
    /// is not held.
    pub fn winner(&self) -> Option<&Change> {
        self.heads().into_iter().find(|c| c.value.is_some() && !self.is_held(c))
    }
}

/// Every change of an entity, by field.
pub fn load(conn: &Connection, entity: &str, id: &str) -> Result<BTreeMap<String, FieldState>, DatabaseError> {
    let mut st =
        conn.prepare_cached(&format!("SELECT {CHANGE_COLUMNS} FROM changes WHERE entity = ?1 AND entity_id = ?2"))?;
    let mut out: BTreeMap<String, FieldState> = BTreeMap::new();
    for c in st.query_map([entity, id], change)? {
        let c = c.map_err(database::read_error("changes"))?;
        out.entry(c.field.clone()).or_default().changes.push(c);
    }
    Ok(out)
}

/// The current value of every field.
pub fn winners(fields: &BTreeMap<String, FieldState>) -> Flat {
    fields
        .iter()
        .filter_map(|(f, s)| Some((f.clone(), s.winner()?.value.clone()?)))
        .filter(|(_, v)| !v.is_null())
        .collect()
}

/// Blank the value of changes that no longer count: replaced ones, and those of
/// removed items. Their identity stays (for merging and for the sequence numbers).
pub fn blank(conn: &Connection, c: &Change) -> Result<(), DatabaseError> {
    conn.prepare_cached(
        "UPDATE changes SET value = NULL WHERE device_id = ?1 AND device_seq = ?2 AND value IS NOT NULL",
    )?
    .execute(params![c.device, c.seq])?;
    Ok(())
}

/// Record a local write of a case: one change per field that differs, each
/// replacing the value the writer saw. Fields of a removed item are not rewritten
/// one by one: the item's removal hides them, and their values are blanked.
pub fn log_case_diff(
    conn: &Connection,
    w: &mut Writer,
    id: &str,
    fields: &BTreeMap<String, FieldState>,
    before: &Flat,
    after: &Flat,
) -> Result<usize, DatabaseError> {
    log_diff(conn, w, CASE, id, fields, before, after)
}

/// Record a local write of any entity (a case, a directory entry): one change per
/// field that differs, each replacing the value the writer saw.
pub fn log_diff(
    conn: &Connection,
    w: &mut Writer,
    entity: &str,
    id: &str,
    fields: &BTreeMap<String, FieldState>,
    before: &Flat,
    after: &Flat,
) -> Result<usize, DatabaseError> {
    let mut written = 0;
    let removed_items: HashSet<String> = before
        .keys()
        .filter(|k| flat::item_marker(k).as_deref() == Some(k.as_str()) && !after.contains_key(*k))
        .cloned()
        .collect();
    let paths: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for path in paths {
        let new = after.get(path);
        if before.get(path) == new {
            continue;
        }
        let state = fields.get(path.as_str());
        if flat::item_marker(path).is_some_and(|m| m != *path && removed_items.contains(&m)) {
            for c in state.into_iter().flat_map(|s| &s.changes) {
                blank(conn, c)?;
            }
            continue;
        }
        let winner = state.and_then(FieldState::winner);
        let parents = winner.map(|c| vec![(c.device.clone(), c.seq)]).unwrap_or_default();
        w.write_entity(conn, entity, id, path, new.unwrap_or(&Value::Null), parents)?;
        if let Some(c) = winner {
            blank(conn, c)?;
        }
        written += 1;
    }
    Ok(written)
}

/// Resolve a conflict: one change that replaces every head of the field.
pub fn resolve(
    conn: &Connection,
    w: &mut Writer,
    id: &str,
    field: &str,
    state: &FieldState,
    value: &Value,
) -> Result<(), DatabaseError> {
    let heads = state.heads();
    let parents = heads.iter().map(|c| (c.device.clone(), c.seq)).collect();
    w.write(conn, id, field, value, parents)?;
    for c in heads {
        blank(conn, c)?;
    }
    Ok(())
}

/// After changes arrived: blank what is now replaced (or belongs to a removed item),
/// and note which tracked fields have open conflicts. Returns the open conflicts.
pub fn settle(
    conn: &Connection,
    id: &str,
    fields: &BTreeMap<String, FieldState>,
) -> Result<Vec<String>, DatabaseError> {
    // Removed items: those whose marker's value is null. (A marker that has not
    // arrived yet is not a removal: blanking is for good, so only what is final.)
    let removed = |marker: &str| {
        fields.get(marker).and_then(FieldState::winner).is_some_and(|c| c.value.as_ref().is_some_and(Value::is_null))
    };
    let mut open = Vec::new();
    for (field, state) in fields {
        let heads: HashSet<(&str, i64)> = state.heads().iter().map(|c| (c.device.as_str(), c.seq)).collect();
        let item_gone = flat::item_marker(field).is_some_and(|m| m != *field && removed(&m));
        for c in state.changes.iter().filter(|c| c.value.is_some()) {
            if item_gone || !heads.contains(&(c.device.as_str(), c.seq)) {
                blank(conn, c)?;
            }
        }
        if !item_gone && flat::is_conflict_tracked(field) && state.is_conflict() {
            open.push(field.clone());
        }
    }
    conn.prepare_cached("DELETE FROM open_conflicts WHERE entity_id = ?1")?.execute([id])?;
    for f in &open {
        conn.prepare_cached("INSERT INTO open_conflicts (entity, entity_id, field) VALUES (?1, ?2, ?3)")?
            .execute(params![CASE, id, f])?;
    }
    Ok(open)
}

/// Is this case removed by a purge (here or on another laptop)?
pub fn is_purged(fields: &BTreeMap<String, FieldState>) -> bool {
    fields.get(PURGED).is_some_and(|s| !s.changes.is_empty())
}

/// The longest run 1..=n of this device's changes held here.
pub fn contiguous(conn: &Connection, table: &str, device: &str) -> Result<i64, DatabaseError> {
    let (max, count): (i64, i64) = conn.query_row(
        &format!("SELECT coalesce(max(device_seq), 0), count(*) FROM {table} WHERE device_id = ?1"),
        [device],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if max == count {
        return Ok(max);
    }
    // A gap: the first number whose successor is missing.
    let first_gap: Option<i64> = conn
        .query_row(
            &format!(
                "SELECT min(device_seq) FROM {table} t WHERE device_id = ?1
                   AND NOT EXISTS (SELECT 1 FROM {table} u WHERE u.device_id = t.device_id AND u.device_seq = t.device_seq + 1)"
            ),
            [device],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    let has_first: bool = conn.query_row(
        &format!("SELECT EXISTS (SELECT 1 FROM {table} WHERE device_id = ?1 AND device_seq = 1)"),
        [device],
        |r| r.get(0),
    )?;
    Ok(if has_first { first_gap.unwrap_or(0) } else { 0 })
}
