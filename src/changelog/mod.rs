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
//!
//! A current value is stored once: where a case's row holds the very value a
//! change wrote, the log only marks it as there (`packed`), and reads it from the
//! row. Whatever writes a row keeps that true: a write marks only what the row it
//! writes next holds (a local save, and a merge writing the changes of a case new
//! to the laptop with its row: [`insert_new`]), and a merge stores in the log the
//! value of a change that stays (a conflict) but that the row stops showing
//! (`settle`).

pub mod flat;
pub mod hlc;
mod packed;
#[cfg(test)]
pub(crate) mod tests;

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

/// Small numbers for what every row of the log would otherwise repeat as text.
/// `log_devices`: a device id; created on first use.
fn device_number(conn: &Connection, device: &str) -> Result<i64, DatabaseError> {
    let found: Option<i64> = conn
        .prepare_cached("SELECT n FROM log_devices WHERE device_id = ?1")?
        .query_row([device], |r| r.get(0))
        .optional()?;
    match found {
        Some(n) => Ok(n),
        None => {
            conn.prepare_cached("INSERT INTO log_devices (device_id) VALUES (?1)")?.execute([device])?;
            Ok(conn.last_insert_rowid())
        }
    }
}

/// The number of an entity (a case, a directory entry, a case's keys), if the log
/// has any change of it; with `create`, a new one if not.
fn entity_number(conn: &Connection, entity: &str, id: &str, create: bool) -> Result<Option<i64>, DatabaseError> {
    let found: Option<i64> = conn
        .prepare_cached("SELECT n FROM log_entities WHERE entity_id = ?1 AND entity = ?2")?
        .query_row(params![database::stored_id(id), entity], |r| r.get(0))
        .optional()?;
    if found.is_some() || !create {
        return Ok(found);
    }
    conn.prepare_cached("INSERT INTO log_entities (entity, entity_id) VALUES (?1, ?2)")?
        .execute(params![entity, database::stored_id(id)])?;
    Ok(Some(conn.last_insert_rowid()))
}

/// Who wrote (user id and the name she had then); none for a change that came
/// without.
fn author_number(conn: &Connection, user: Option<&str>, name: Option<&str>) -> Result<Option<i64>, DatabaseError> {
    if user.is_none() && name.is_none() {
        return Ok(None);
    }
    let found: Option<i64> = conn
        .prepare_cached("SELECT n FROM log_authors WHERE user_id IS ?1 AND user_name IS ?2")?
        .query_row(params![user, name], |r| r.get(0))
        .optional()?;
    if found.is_some() {
        return Ok(found);
    }
    conn.prepare_cached("INSERT INTO log_authors (user_id, user_name) VALUES (?1, ?2)")?
        .execute(params![user, name])?;
    Ok(Some(conn.last_insert_rowid()))
}

/// Every device number and its id, to name the parents of the rows read.
fn device_ids(conn: &Connection) -> Result<std::collections::HashMap<i64, String>, DatabaseError> {
    let mut st = conn.prepare_cached("SELECT n, device_id FROM log_devices")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
    Ok(rows)
}

/// A row of the log, with its names joined in.
const ROWS: &str =
    "SELECT d.device_id, l.first_seq, l.last_seq, l.hlc, e.entity, e.entity_id, a.user_id, a.user_name, l.fields
     FROM change_log l JOIN log_devices d ON d.n = l.device JOIN log_entities e ON e.n = l.entity
     LEFT JOIN log_authors a ON a.n = l.author";

/// The changes of the rows `filter` selects (a condition on `l`, with `args`), in
/// row order; only those whose sequence number `keep` accepts. A row whose bytes
/// are not what the store wrote is a damaged log, never an empty one.
fn read<P: rusqlite::Params>(
    conn: &Connection,
    filter: &str,
    args: P,
    keep: impl Fn(i64) -> bool,
) -> Result<Vec<Change>, DatabaseError> {
    Ok(read_marked(conn, filter, args, keep)?.into_iter().map(|(c, _)| c).collect())
}

/// [`read`], each change with whether its value is the one its case's row holds
/// (read from there).
fn read_marked<P: rusqlite::Params>(
    conn: &Connection,
    filter: &str,
    args: P,
    keep: impl Fn(i64) -> bool,
) -> Result<Vec<(Change, bool)>, DatabaseError> {
    let devices = device_ids(conn)?;
    let damaged = || DatabaseError::Damaged { table: "change_log" };
    // The fields of the last case row read: the rows of one write are of one case,
    // and an entity's rows come together; keeping only one bounds the memory of
    // reading a whole device's changes.
    let mut case_row: Option<(String, Flat)> = None;
    let mut st = conn.prepare_cached(&format!("{ROWS} WHERE {filter}"))?;
    let mut rows = st.query(args)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let (device, first, last, hlc): (String, i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        let (entity, id, user, user_name): (String, String, Option<String>, Option<String>) =
            (r.get(4)?, database::id_at(r, 5)?, r.get(6)?, r.get(7)?);
        let bytes = r.get_ref(8)?.as_blob().map_err(|_| damaged())?;
        let fields = packed::decode(bytes).ok_or_else(damaged)?;
        if i64::try_from(fields.len()).ok() != last.checked_sub(first).and_then(|n| n.checked_add(1)) {
            return Err(damaged());
        }
        for (seq, f) in (first..).zip(fields) {
            if !keep(seq) {
                continue;
            }
            let in_row = f.value == packed::Stored::InRow;
            let value = match f.value {
                packed::Stored::Json(v) => Some(serde_json::from_str(&v).map_err(|_| damaged())?),
                packed::Stored::Blank => None,
                packed::Stored::InRow => {
                    if case_row.as_ref().is_none_or(|(of, _)| *of != id) {
                        case_row = Some((id.clone(), row_fields_of(conn, &entity, &id)?));
                    }
                    // The row was written with this value: without it, the store is damaged.
                    let row = case_row.as_ref().map(|(_, r)| r).ok_or_else(damaged)?;
                    Some(row.get(&f.path).ok_or(DatabaseError::Damaged { table: "cases" })?.clone())
                }
            };
            let parents = f
                .parents
                .into_iter()
                .map(|(d, s)| Ok((devices.get(&d).ok_or_else(damaged)?.clone(), s)))
                .collect::<Result<Vec<_>, DatabaseError>>()?;
            let change = Change {
                device: device.clone(),
                seq,
                hlc,
                entity: entity.clone(),
                id: id.clone(),
                field: f.path,
                value,
                parents,
                user: user.clone(),
                user_name: user_name.clone(),
            };
            out.push((change, in_row));
        }
    }
    Ok(out)
}

/// The fields a case's row holds (its data, its stamps) and its notes in the
/// notes table, for the changes whose value is there.
fn row_fields_of(conn: &Connection, entity: &str, id: &str) -> Result<Flat, DatabaseError> {
    let damaged = || DatabaseError::Damaged { table: "cases" };
    if entity != CASE {
        return Err(DatabaseError::Damaged { table: "change_log" });
    }
    let (data, stamps): (String, [String; 5]) = conn
        .prepare_cached(
            "SELECT data, case_number, created_at, updated_at, created_by, updated_by FROM cases WHERE id = ?1",
        )?
        .query_row([id], |r| Ok((r.get(0)?, [r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?])))
        .optional()?
        .ok_or_else(damaged)?;
    let data: serde_json::Map<String, Value> = serde_json::from_str(&data).map_err(|_| damaged())?;
    let mut out = flat::row_fields(&data);
    out.extend(flat::META_FIELDS.iter().map(|k| k.to_string()).zip(stamps.into_iter().map(Value::from)));
    let mut st = conn.prepare_cached("SELECT id, text, language, author, created_at FROM notes WHERE case_id = ?1")?;
    let notes = st.query_map([id], |r| {
        let id: String = r.get(0)?;
        Ok((format!("{}{id}", flat::NOTE_PREFIX), flat::note(id, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
    })?;
    for n in notes {
        let (path, note) = n?;
        out.insert(path, note);
    }
    Ok(out)
}

/// What the changes of one row share: one device, clock time, entity and author,
/// numbers `first`, `first + 1`, ….
struct Head<'a> {
    device: &'a str,
    first: i64,
    hlc: i64,
    entity: &'a str,
    id: &'a str,
    user: Option<&'a str>,
    user_name: Option<&'a str>,
}

impl<'a> Head<'a> {
    fn of(c: &'a Change) -> Head<'a> {
        Head {
            device: &c.device,
            first: c.seq,
            hlc: c.hlc,
            entity: &c.entity,
            id: &c.id,
            user: c.user.as_deref(),
            user_name: c.user_name.as_deref(),
        }
    }
}

/// Write the changes of one write as one row: each a field, its value (none once
/// blanked) and the changes it replaced. A value that `row` (the fields of the
/// case's row as it is written with them) holds at its path is marked as there,
/// not stored again.
fn insert_row<'a>(
    conn: &Connection,
    head: &Head,
    changes: impl Iterator<Item = (&'a str, Option<&'a Value>, &'a [(String, i64)])>,
    row: Option<&Flat>,
) -> Result<(), DatabaseError> {
    let device = device_number(conn, head.device)?;
    // Parents name few devices, most often the writer itself.
    let mut devices: Vec<(&str, i64)> = vec![(head.device, device)];
    let mut fields = Vec::new();
    for (path, value, parents) in changes {
        let mut numbered = Vec::with_capacity(parents.len());
        for (d, seq) in parents {
            let n = match devices.iter().find(|(id, _)| *id == d.as_str()) {
                Some((_, n)) => *n,
                None => {
                    let n = device_number(conn, d)?;
                    devices.push((d.as_str(), n));
                    n
                }
            };
            numbered.push((n, *seq));
        }
        let value = match value {
            None => packed::Stored::Blank,
            Some(v) if row.and_then(|r| r.get(path)) == Some(v) => packed::Stored::InRow,
            Some(v) => packed::Stored::Json(v.to_string()),
        };
        fields.push(packed::Field { path: path.to_string(), value, parents: numbered });
    }
    if fields.is_empty() {
        return Ok(());
    }
    let entity =
        entity_number(conn, head.entity, head.id, true)?.ok_or(DatabaseError::Damaged { table: "log_entities" })?;
    let author = author_number(conn, head.user, head.user_name)?;
    let last = head.first + fields.len() as i64 - 1;
    conn.prepare_cached(
        "INSERT INTO change_log (device, first_seq, last_seq, hlc, entity, author, fields)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![device, head.first, last, head.hlc, entity, author, packed::encode(&fields)])?;
    Ok(())
}

/// A run of changes of one write, as [`insert_row`] takes them.
fn insert_run(conn: &Connection, run: &[&Change], row: Option<&Flat>) -> Result<(), DatabaseError> {
    let Some(first) = run.first() else { return Ok(()) };
    let changes = run.iter().map(|c| (c.field.as_str(), c.value.as_ref(), c.parents.as_slice()));
    insert_row(conn, &Head::of(first), changes, row)
}

/// The row holding change `seq` of device number `device`: its id, first number and bytes.
fn row_of(conn: &Connection, device: i64, seq: i64) -> Result<Option<(i64, i64, Vec<u8>)>, DatabaseError> {
    Ok(conn
        .prepare_cached(
            "SELECT rowid, first_seq, fields FROM change_log
              WHERE device = ?1 AND first_seq <= ?2 AND last_seq >= ?2 ORDER BY first_seq DESC LIMIT 1",
        )?
        .query_row(params![device, seq], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?)
}

/// The ranges of numbers the log holds of a device between `from` and `to`,
/// in order (rows never overlap).
fn held_ranges(conn: &Connection, device: &str, from: i64, to: i64) -> Result<Vec<(i64, i64)>, DatabaseError> {
    let mut st = conn.prepare_cached(
        "SELECT first_seq, last_seq FROM change_log
          WHERE device = (SELECT n FROM log_devices WHERE device_id = ?1) AND last_seq >= ?2 AND first_seq <= ?3
          ORDER BY first_seq",
    )?;
    let rows = st.query_map(params![device, from, to], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Which of `changes` the log does not hold yet (of a change that came twice,
/// the first).
pub fn which_new(conn: &Connection, changes: &[Change]) -> Result<Vec<bool>, DatabaseError> {
    // What the log holds of each device, over the numbers that came: one query
    // per device, not one per change.
    let mut span: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for c in changes {
        let e = span.entry(c.device.as_str()).or_insert((c.seq, c.seq));
        *e = (e.0.min(c.seq), e.1.max(c.seq));
    }
    let mut held: BTreeMap<&str, Vec<(i64, i64)>> = BTreeMap::new();
    for (device, (from, to)) in span {
        held.insert(device, held_ranges(conn, device, from, to)?);
    }
    let holds = |device: &str, seq: i64| {
        held.get(device).is_some_and(|ranges| {
            let i = ranges.partition_point(|(_, last)| *last < seq);
            ranges.get(i).is_some_and(|(first, _)| *first <= seq)
        })
    };
    // By device and number (stable: of a change that came twice, the first is
    // the one that counts), so that a repeat is next to its first.
    let mut sorted: Vec<usize> = (0..changes.len()).collect();
    sorted.sort_by(|&a, &b| (&changes[a].device, changes[a].seq).cmp(&(&changes[b].device, changes[b].seq)));
    let mut new = vec![false; changes.len()];
    let mut last: Option<(&str, i64)> = None;
    for &i in &sorted {
        let c = &changes[i];
        let key = Some((c.device.as_str(), c.seq));
        new[i] = key != last && !holds(&c.device, c.seq);
        last = key;
    }
    Ok(new)
}

/// Insert changes the log does not hold (each once: see [`which_new`]), by
/// device and number, the changes of one write as one row. A value that `row`
/// holds at its path (the fields of the case's row as it is written next, in
/// the same transaction: `flat::row_fields`, its stamps and notes) is marked as
/// there instead of stored again; `row` is for changes of that one case.
pub fn insert_new<'a>(
    conn: &Connection,
    changes: impl IntoIterator<Item = &'a Change>,
    row: Option<&Flat>,
) -> Result<(), DatabaseError> {
    let mut order: Vec<&Change> = changes.into_iter().collect();
    order.sort_by(|a, b| (&a.device, a.seq).cmp(&(&b.device, b.seq)));
    let mut start = 0;
    for i in 1..=order.len() {
        if i == order.len() || !same_write(order[i - 1], order[i]) {
            insert_run(conn, &order[start..i], row)?;
            start = i;
        }
    }
    Ok(())
}

/// Does `b` continue the write of `a` (so that both go in one row)?
fn same_write(a: &Change, b: &Change) -> bool {
    a.device == b.device
        && a.seq.checked_add(1) == Some(b.seq)
        && a.hlc == b.hlc
        && a.entity == b.entity
        && a.id == b.id
        && a.user == b.user
        && a.user_name == b.user_name
}

/// A store from before schema 18 kept one row per field; the migration renamed
/// that table `changes_v17`. Carry every change into the compact log and drop it,
/// in one transaction: a crash only means it runs again at the next unlock. One
/// write at a time, so memory does not grow with the store.
pub fn carry_over(conn: &mut Connection) -> Result<(), DatabaseError> {
    let pending: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'changes_v17')")?
        .query_row([], |r| r.get(0))?;
    if !pending {
        return Ok(());
    }
    let tx = database::write_tx(conn)?;
    {
        let mut st = tx.prepare(
            "SELECT device_id, device_seq, hlc, entity, entity_id, field, value, parents, user_id, user_name
               FROM changes_v17 ORDER BY device_id, device_seq",
        )?;
        let mut rows = st.query([])?;
        let mut run: Vec<Change> = Vec::new();
        while let Some(r) = rows.next()? {
            let c = old_change(r).map_err(database::read_error("changes"))?;
            if run.last().is_some_and(|last| !same_write(last, &c)) {
                insert_run(&tx, &run.iter().collect::<Vec<_>>(), None)?;
                run.clear();
            }
            run.push(c);
        }
        insert_run(&tx, &run.iter().collect::<Vec<_>>(), None)?;
    }
    tx.execute_batch("DROP TABLE changes_v17")?;
    tx.commit()?;
    Ok(())
}

/// A row of the log before schema 18; a value or parent list that is not the JSON
/// the store wrote is a damaged row, never an empty value.
fn old_change(r: &rusqlite::Row) -> rusqlite::Result<Change> {
    let value: Option<String> = r.get(6)?;
    let parents: String = r.get(7)?;
    Ok(Change {
        device: r.get(0)?,
        seq: r.get(1)?,
        hlc: r.get(2)?,
        entity: r.get(3)?,
        id: r.get(4)?,
        field: r.get(5)?,
        value: value.map(|v| database::json_column(6, &v)).transpose()?,
        parents: if parents == "[]" { Vec::new() } else { database::json_column(7, &parents)? },
        user: r.get(8)?,
        user_name: r.get(9)?,
    })
}

/// Every change the log holds, by device and number (for checks and tests).
pub fn all(conn: &Connection) -> Result<Vec<Change>, DatabaseError> {
    read(conn, "1 ORDER BY l.device, l.first_seq", [], |_| true)
}

/// Every device the log holds changes of.
pub fn devices(conn: &Connection) -> Result<Vec<String>, DatabaseError> {
    let mut st = conn.prepare_cached(
        "SELECT device_id FROM log_devices d WHERE EXISTS (SELECT 1 FROM change_log l WHERE l.device = d.n)",
    )?;
    let rows = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    Ok(rows)
}

/// A device's changes numbered above `from` and up to `upto` (all above, if none).
pub fn range(conn: &Connection, device: &str, from: i64, upto: Option<i64>) -> Result<Vec<Change>, DatabaseError> {
    let upto = upto.unwrap_or(i64::MAX);
    read(
        conn,
        "l.device = (SELECT n FROM log_devices WHERE device_id = ?1) AND l.last_seq > ?2 AND l.first_seq <= ?3
         ORDER BY l.first_seq",
        params![device, from, upto],
        |seq| seq > from && seq <= upto,
    )
}

/// How many of a device's changes are numbered above `from`.
pub fn count_above(conn: &Connection, device: &str, from: i64) -> Result<i64, DatabaseError> {
    Ok(conn
        .prepare_cached(
            "SELECT coalesce(sum(last_seq - max(first_seq, ?2 + 1) + 1), 0) FROM change_log
              WHERE device = (SELECT n FROM log_devices WHERE device_id = ?1) AND last_seq > ?2",
        )?
        .query_row(params![device, from], |r| r.get(0))?)
}

/// The longest run 1..=n of a device's changes the log holds.
pub fn held(conn: &Connection, device: &str) -> Result<i64, DatabaseError> {
    let Some(n) = conn
        .prepare_cached("SELECT n FROM log_devices WHERE device_id = ?1")?
        .query_row([device], |r| r.get::<_, i64>(0))
        .optional()?
    else {
        return Ok(0);
    };
    // Rows never overlap: each holds the numbers first..=last of one write.
    let (max, count): (i64, i64) = conn
        .prepare_cached("SELECT coalesce(max(last_seq), 0), coalesce(sum(last_seq - first_seq + 1), 0) FROM change_log WHERE device = ?1")?
        .query_row([n], |r| Ok((r.get(0)?, r.get(1)?)))?;
    if max == count {
        return Ok(max);
    }
    let has_first: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM change_log WHERE device = ?1 AND first_seq = 1)")?
        .query_row([n], |r| r.get(0))?;
    if !has_first {
        return Ok(0);
    }
    // A gap: the first row no row continues.
    let gap: Option<i64> = conn
        .prepare_cached(
            "SELECT min(last_seq) FROM change_log t WHERE device = ?1
               AND NOT EXISTS (SELECT 1 FROM change_log u WHERE u.device = t.device AND u.first_seq = t.last_seq + 1)",
        )?
        .query_row([n], |r| r.get(0))?;
    Ok(gap.unwrap_or(0))
}

/// Per device, the name of the last person whose change the log holds.
pub fn last_users(conn: &Connection) -> Result<BTreeMap<String, String>, DatabaseError> {
    let mut st = conn.prepare_cached(
        "SELECT d.device_id,
                (SELECT a.user_name FROM change_log l JOIN log_authors a ON a.n = l.author
                  WHERE l.device = d.n AND a.user_name IS NOT NULL ORDER BY l.first_seq DESC LIMIT 1) AS name
           FROM log_devices d WHERE name IS NOT NULL",
    )?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
    Ok(rows)
}

/// A field, its new value, and the changes it replaces.
pub type FieldWrite = (String, Value, Vec<(String, i64)>);

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
            .prepare_cached(
                "SELECT coalesce((SELECT last_seq FROM change_log
                    WHERE device = (SELECT n FROM log_devices WHERE device_id = ?1) ORDER BY first_seq DESC LIMIT 1), 0)",
            )?
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
        self.write_all(conn, entity, id, vec![(field.to_string(), value.clone(), parents)], None)
    }

    /// Several fields of one entity at once: one row of the log.
    /// `row`: the fields of the case's row as the caller writes it right after,
    /// in the same transaction (see [`insert_row`]).
    pub fn write_all(
        &mut self,
        conn: &Connection,
        entity: &str,
        id: &str,
        fields: Vec<FieldWrite>,
        row: Option<&Flat>,
    ) -> Result<(), DatabaseError> {
        if fields.is_empty() {
            return Ok(());
        }
        let head = Head {
            device: &self.device,
            first: self.next_seq,
            hlc: self.hlc,
            entity,
            id,
            user: Some(&self.user),
            user_name: Some(&self.user_name),
        };
        insert_row(conn, &head, fields.iter().map(|(f, v, p)| (f.as_str(), Some(v), p.as_slice())), row)?;
        self.next_seq += fields.len() as i64;
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
    /// Changes whose value the case's row holds (and was read from there): before
    /// the row shows another value, theirs must be stored in the log, or be blanked.
    pub in_row: HashSet<(String, i64)>,
}

impl FieldState {
    /// Is this change one the form does not accept here?
    pub fn is_held(&self, c: &Change) -> bool {
        !self.held.is_empty() && self.held.contains(&(c.device.clone(), c.seq))
    }

    /// Changes no other change replaced, newest first.
    pub fn heads(&self) -> Vec<&Change> {
        if let Some(only) = self.only() {
            return vec![only];
        }
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

    /// The field's one change, when it was written once (most are): nothing
    /// there replaced it, and it is its only head.
    fn only(&self) -> Option<&Change> {
        match self.changes.as_slice() {
            [only] => Some(only),
            _ => None,
        }
    }

    /// Do heads disagree, or is one of them held? (Two people typing the same
    /// value is no conflict, nor a laptop not yet upgraded writing it with an
    /// earlier version's code: values are compared as they read now.)
    pub fn is_conflict(&self) -> bool {
        if let Some(only) = self.only() {
            return self.is_held(only) && only.value.is_some();
        }
        let heads = self.heads();
        if heads.iter().any(|c| self.is_held(c) && c.value.is_some()) {
            return true;
        }
        let mut values = heads.into_iter().filter_map(|c| Some((c.field.as_str(), c.value.as_ref()?)));
        let Some((field, first)) = values.next() else { return false };
        // The form's key: the last part of a flat path (`people.<id>.gender`).
        let key = field.rsplit('.').next().unwrap_or(field);
        let now = |v: &Value| crate::intake::reads_as(key, v);
        let first_now = now(first);
        values.any(|(_, v)| v != first && now(v) != first_now)
    }

    /// The head whose value shows: the newest one that still has its value and
    /// is not held.
    pub fn winner(&self) -> Option<&Change> {
        if let Some(only) = self.only() {
            return Some(only).filter(|c| c.value.is_some() && !self.is_held(c));
        }
        self.heads().into_iter().find(|c| c.value.is_some() && !self.is_held(c))
    }
}

/// Every change of an entity, by field.
pub fn load(conn: &Connection, entity: &str, id: &str) -> Result<BTreeMap<String, FieldState>, DatabaseError> {
    let mut out: BTreeMap<String, FieldState> = BTreeMap::new();
    let Some(n) = entity_number(conn, entity, id, false)? else { return Ok(out) };
    for (c, in_row) in read_marked(conn, "l.entity = ?1", [n], |_| true)? {
        let state = out.entry(c.field.clone()).or_default();
        if in_row {
            state.in_row.insert((c.device.clone(), c.seq));
        }
        state.changes.push(c);
    }
    Ok(out)
}

/// Every change of an entity, by field, as [`load`] reads them once
/// [`insert_new`] wrote them all at once (by device, then number): for an entity
/// the log held nothing of before.
pub fn by_field(mut changes: Vec<Change>) -> BTreeMap<String, FieldState> {
    // (device, number) is a change's identity: no two are equal.
    changes.sort_unstable_by(|a, b| (&a.device, a.seq).cmp(&(&b.device, b.seq)));
    let mut out: BTreeMap<String, FieldState> = BTreeMap::new();
    for c in changes {
        out.entry(c.field.clone()).or_default().changes.push(c);
    }
    out
}

/// Has the log any change of this entity?
pub fn holds_entity(conn: &Connection, entity: &str, id: &str) -> Result<bool, DatabaseError> {
    Ok(entity_number(conn, entity, id, false)?.is_some())
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
    let Some(device) = conn
        .prepare_cached("SELECT n FROM log_devices WHERE device_id = ?1")?
        .query_row([&c.device], |r| r.get::<_, i64>(0))
        .optional()?
    else {
        return Ok(());
    };
    let Some((row, first, bytes)) = row_of(conn, device, c.seq)? else { return Ok(()) };
    let mut fields = packed::decode(&bytes).ok_or(DatabaseError::Damaged { table: "change_log" })?;
    let slot = usize::try_from(c.seq - first).ok().and_then(|i| fields.get_mut(i));
    let Some(slot) = slot.filter(|f| !f.value.is_blank()) else { return Ok(()) };
    slot.value = packed::Stored::Blank;
    rewrite(conn, row, &fields)?;
    emptied(conn, &c.device, c.seq, c.seq)
}

/// Store in the log the value of a change that its case's row is about to stop
/// showing (it lost to a change from another laptop, and stays as a conflict).
fn keep_value(conn: &Connection, c: &Change) -> Result<(), DatabaseError> {
    let damaged = || DatabaseError::Damaged { table: "change_log" };
    let device: i64 = conn
        .prepare_cached("SELECT n FROM log_devices WHERE device_id = ?1")?
        .query_row([&c.device], |r| r.get(0))
        .optional()?
        .ok_or_else(damaged)?;
    let (row, first, bytes) = row_of(conn, device, c.seq)?.ok_or_else(damaged)?;
    let mut fields = packed::decode(&bytes).ok_or_else(damaged)?;
    let slot = usize::try_from(c.seq - first).ok().and_then(|i| fields.get_mut(i)).ok_or_else(damaged)?;
    let value = c.value.as_ref().ok_or_else(damaged)?;
    if slot.value == packed::Stored::InRow {
        slot.value = packed::Stored::Json(value.to_string());
        rewrite(conn, row, &fields)?;
    }
    Ok(())
}

/// Store a row's fields again (after blanking some).
fn rewrite(conn: &Connection, row: i64, fields: &[packed::Field]) -> Result<(), DatabaseError> {
    conn.prepare_cached("UPDATE change_log SET fields = ?2 WHERE rowid = ?1")?
        .execute(params![row, packed::encode(fields)])?;
    Ok(())
}

/// A batch waiting for the hub holds no value blanked since it was sealed: one
/// whose range of this laptop's changes holds a blanked one loses its sealed bytes,
/// and is sealed again from the log before it is sent (`sync::hub`).
fn emptied(conn: &Connection, device: &str, from: i64, to: i64) -> Result<(), DatabaseError> {
    conn.prepare_cached(
        "UPDATE hub_outbox SET bytes = X'', first_sha256 = coalesce(first_sha256, sha256)
          WHERE device = ?1 AND own_from <= ?3 AND own_to >= ?2 AND length(bytes) > 0",
    )?
    .execute(params![device, from, to])?;
    Ok(())
}

/// Blank every value of an entity but those of `keep` (a purge keeps the case's
/// tombstone).
pub fn blank_entity(conn: &Connection, entity: &str, id: &str, keep: Option<&str>) -> Result<(), DatabaseError> {
    let Some(n) = entity_number(conn, entity, id, false)? else { return Ok(()) };
    let rows: Vec<(i64, String, i64, i64, Vec<u8>)> = conn
        .prepare_cached(
            "SELECT l.rowid, d.device_id, l.first_seq, l.last_seq, l.fields FROM change_log l
               JOIN log_devices d ON d.n = l.device WHERE l.entity = ?1",
        )?
        .query_map([n], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
        .collect::<Result<_, _>>()?;
    for (row, device, first, last, bytes) in rows {
        let mut fields = packed::decode(&bytes).ok_or(DatabaseError::Damaged { table: "change_log" })?;
        let mut changed = false;
        for f in fields.iter_mut().filter(|f| !f.value.is_blank() && Some(f.path.as_str()) != keep) {
            f.value = packed::Stored::Blank;
            changed = true;
        }
        if changed {
            rewrite(conn, row, &fields)?;
            emptied(conn, &device, first, last)?;
        }
    }
    Ok(())
}

/// Record a local write of a case: one change per field that differs, each
/// replacing the value the writer saw. Fields of a removed item are not rewritten
/// one by one: the item's removal hides them, and their values are blanked.
/// `row`: the fields of the row written right after (see [`Writer::write_all`]).
pub fn log_case_diff(
    conn: &Connection,
    w: &mut Writer,
    id: &str,
    fields: &BTreeMap<String, FieldState>,
    before: &Flat,
    after: &Flat,
    row: Option<&Flat>,
) -> Result<usize, DatabaseError> {
    log_diff(conn, w, (CASE, id), fields, before, after, row)
}

/// Record a local write of any entity (a case, a directory entry): one change per
/// field that differs, each replacing the value the writer saw.
pub fn log_diff(
    conn: &Connection,
    w: &mut Writer,
    target: (&str, &str),
    fields: &BTreeMap<String, FieldState>,
    before: &Flat,
    after: &Flat,
    row: Option<&Flat>,
) -> Result<usize, DatabaseError> {
    let (entity, id) = target;
    let mut writes = Vec::new();
    let removed_items: HashSet<String> = before
        .keys()
        .filter(|k| flat::item_marker(k) == Some(k.as_str()) && !after.contains_key(*k))
        .cloned()
        .collect();
    let paths: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for path in paths {
        let new = after.get(path);
        if before.get(path) == new {
            continue;
        }
        let state = fields.get(path.as_str());
        if flat::item_marker(path).is_some_and(|m| m != *path && removed_items.contains(m)) {
            for c in state.into_iter().flat_map(|s| &s.changes) {
                blank(conn, c)?;
            }
            continue;
        }
        let winner = state.and_then(FieldState::winner);
        let parents = winner.map(|c| vec![(c.device.clone(), c.seq)]).unwrap_or_default();
        writes.push((path.clone(), new.cloned().unwrap_or(Value::Null), parents));
        if let Some(c) = winner {
            blank(conn, c)?;
        }
    }
    let written = writes.len();
    w.write_all(conn, entity, id, writes, row)?;
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
/// `row`: the fields of the case's row as it is written next (none if it is not):
/// a change that stays and whose value the row held but will not hold any more
/// gets its value stored in the log.
pub fn settle(
    conn: &Connection,
    id: &str,
    fields: &BTreeMap<String, FieldState>,
    row: Option<&Flat>,
) -> Result<Vec<String>, DatabaseError> {
    // Removed items: those whose marker's value is null. (A marker that has not
    // arrived yet is not a removal: blanking is for good, so only what is final.)
    let removed = |marker: &str| {
        fields.get(marker).and_then(FieldState::winner).is_some_and(|c| c.value.as_ref().is_some_and(Value::is_null))
    };
    let mut open = Vec::new();
    for (field, state) in fields {
        let heads = state.heads();
        let item_gone = flat::item_marker(field).is_some_and(|m| m != *field && removed(m));
        for c in state.changes.iter().filter(|c| c.value.is_some()) {
            if item_gone || !heads.iter().any(|h| h.seq == c.seq && h.device == c.device) {
                blank(conn, c)?;
            } else if !state.in_row.is_empty()
                && state.in_row.contains(&(c.device.clone(), c.seq))
                && row.and_then(|r| r.get(field)) != c.value.as_ref()
            {
                keep_value(conn, c)?;
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
