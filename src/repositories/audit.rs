//! The audit trail: who did what, when, to which case, on which device.
//!
//! Entries are written in the same transaction as what they record, and hold ids,
//! codes and counts only: never a name or any case text. Each device's entries form a
//! hash chain: an entry's hash covers its fields and the previous entry's hash, and
//! the newest hash of this device is kept apart (in `meta`), so that altering,
//! removing or reordering any entry — even the last one, even with direct SQL through
//! the key — breaks the chain at a place `verify` can name. Chains are per device so
//! that another laptop's entries can later be merged without re-chaining anything.

use crate::database::DatabaseError;
use crate::database::{new_id, now_utc, stored_id};
use crate::i18n::Localized;
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};

/// The hash a device's first entry follows.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
pub(crate) const HASH_DOMAIN: &str = "amparo.audit/1";
pub(crate) const HEAD_KEY: &str = "audit_head";

macro_rules! actions {
    ($($v:ident),* $(,)?) => {
        /// What an entry records. Stored as its code (the variant name).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum Action { $($v),* }
        impl Action {
            pub const ALL: &'static [Action] = &[$(Action::$v),*];
            pub fn code(self) -> &'static str {
                match self { $(Action::$v => stringify!($v)),* }
            }
        }
    };
}

actions!(
    View,
    Create,
    Update,
    AddNote,
    Export,
    Import,
    Print,
    Unlock,
    FailedUnlock,
    Recover,
    Lock,
    QuickExit,
    UserAdded,
    UserRemoved,
    RoleChanged,
    PassphraseChanged,
    PolicyChanged,
    Purge,
    RecoveryKeyRenewed,
    SyncExport,
    SyncImport,
    ConflictResolved,
    OrgInvite,
    Report,
    DirectoryChanged,
    HubConnected,
    HubSync,
    DeviceRevoked,
    KeyEpoch,
    RoleRefused,
);

impl Action {
    pub fn parse(code: &str) -> Option<Action> {
        Action::ALL.iter().copied().find(|a| a.code() == code)
    }
    pub fn label_key(self) -> String {
        format!("audit.action.{}", self.code())
    }
}

/// One entry as stored, and as carried in a sync bundle (without the local `seq`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The order it was written in on this laptop; not carried.
    #[serde(skip)]
    pub seq: i64,
    pub id: String,
    pub device_id: String,
    pub device_seq: i64,
    pub at: String,
    pub user_id: Option<String>,
    pub action: String,
    pub case_id: Option<String>,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

impl Entry {
    /// The hash of this entry's content and its predecessor's hash.
    fn compute_hash(&self) -> String {
        let canon = serde_json::json!([
            HASH_DOMAIN,
            self.id,
            self.device_id,
            self.device_seq,
            self.at,
            self.user_id,
            self.action,
            self.case_id,
            self.detail,
            self.prev_hash,
        ]);
        hex::encode(Sha256::digest(canon.to_string().as_bytes()))
    }

    /// Does this entry follow `prev_hash`, and is its own hash its content's?
    pub(crate) fn continues(&self, prev_hash: &str) -> bool {
        self.prev_hash == prev_hash && self.hash == self.compute_hash()
    }

    /// What someone rewriting an entry with the key would compute.
    #[cfg(test)]
    pub(crate) fn rehash_for_tests(&self) -> String {
        self.compute_hash()
    }
}

/// Write an entry as it is (its own device's, or another laptop's from a bundle).
pub(crate) fn insert(conn: &Connection, e: &Entry) -> Result<(), DatabaseError> {
    conn.prepare_cached(
        "INSERT INTO audit (id, device_id, device_seq, at, user_id, action, case_id, detail, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        stored_id(&e.id),
        stored_id(&e.device_id),
        e.device_seq,
        e.at,
        e.user_id.as_deref().map(stored_id),
        e.action,
        e.case_id.as_deref().map(stored_id),
        e.detail,
        stored_hash(&e.prev_hash),
        stored_hash(&e.hash)
    ])?;
    Ok(())
}

/// The number and hash of a device's newest entry here (0 and [`GENESIS`] if none).
pub(crate) fn last_of(conn: &Connection, device_id: &str) -> Result<(i64, String), DatabaseError> {
    let last = conn
        .prepare_cached("SELECT device_seq, hash FROM audit WHERE device_id = ?1 ORDER BY device_seq DESC LIMIT 1")?
        .query_row([stored_id(device_id)], |r| Ok((r.get(0)?, text_at(r, 1)?)))
        .optional()?;
    Ok(last.unwrap_or((0, GENESIS.to_string())))
}

/// Append an entry. Call it inside the transaction of what it records.
pub(crate) fn append(
    conn: &Connection,
    device_id: &str,
    user_id: Option<&str>,
    action: Action,
    case_id: Option<&str>,
    detail: Value,
    at: Option<&str>,
) -> Result<(), DatabaseError> {
    let (last, prev_hash) = last_of(conn, device_id)?;
    let device_seq = last + 1;
    let mut e = Entry {
        seq: 0,
        id: new_id(),
        device_id: device_id.to_string(),
        device_seq,
        at: at.map(str::to_string).unwrap_or_else(now_utc),
        user_id: user_id.map(str::to_string),
        action: action.code().to_string(),
        case_id: case_id.map(str::to_string),
        detail: if detail.is_null() { "{}".to_string() } else { detail.to_string() },
        prev_hash,
        hash: String::new(),
    };
    e.hash = e.compute_hash();
    insert(conn, &e)?;
    crate::database::set_meta(conn, HEAD_KEY, &format!("{}:{}", e.device_seq, e.hash))?;
    Ok(())
}

/// What is wrong with the chain, at the first entry where it shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    /// The entry's content no longer matches its hash.
    Altered { device: String, number: i64 },
    /// The entry does not follow the one before it (its predecessor was changed and
    /// re-hashed, or it was put in another's place).
    Broken { device: String, number: i64 },
    /// The entry is gone.
    Missing { device: String, number: i64 },
    /// The entry is not where it was written.
    OutOfOrder { device: String, number: i64 },
    /// Another laptop's copy of the entry differs: the device's trail was
    /// rewritten (found at a sync, kept in `audit_forks`).
    Rewritten { device: String, number: i64 },
}

impl Problem {
    pub fn number(&self) -> i64 {
        match self {
            Problem::Altered { number, .. }
            | Problem::Broken { number, .. }
            | Problem::Missing { number, .. }
            | Problem::OutOfOrder { number, .. }
            | Problem::Rewritten { number, .. } => *number,
        }
    }
}

impl Localized for Problem {
    fn i18n_key(&self) -> &'static str {
        match self {
            Problem::Altered { .. } => "audit.verify.altered",
            Problem::Broken { .. } => "audit.verify.broken",
            Problem::Missing { .. } => "audit.verify.missing",
            Problem::OutOfOrder { .. } => "audit.verify.out_of_order",
            Problem::Rewritten { .. } => "audit.verify.rewritten",
        }
    }
    fn args(&self) -> Vec<(&'static str, String)> {
        let (Problem::Altered { device, number }
        | Problem::Broken { device, number }
        | Problem::Missing { device, number }
        | Problem::OutOfOrder { device, number }
        | Problem::Rewritten { device, number }) = self;
        vec![("number", number.to_string()), ("device", device.clone())]
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub entries: usize,
    pub devices: usize,
    /// The first problem found, in local order; `None` when the chain is intact.
    pub problem: Option<Problem>,
}

/// Filters for the audit list.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub case_number: Option<String>,
    /// First and last day (YYYY-MM-DD, UTC), both included.
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub limit: Option<usize>,
    #[serde(default)]
    pub offset: Option<usize>,
}

/// One row of the audit list, with the names a supervisor needs to read it.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRow {
    pub number: i64,
    pub at: String,
    pub device_id: String,
    pub device_code: Option<String>,
    pub user_id: Option<String>,
    pub user_name: Option<String>,
    pub action: String,
    pub case_id: Option<String>,
    pub case_number: Option<String>,
    pub detail: Value,
}

/// How a hash is stored: 64 lower-case hex digits in 32 bytes, anything else as text.
fn stored_hash(hash: &str) -> SqlValue {
    let lower_hex = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    match hex::decode(hash) {
        Ok(bytes) if lower_hex => SqlValue::Blob(bytes),
        _ => SqlValue::Text(hash.to_string()),
    }
}

/// An id or hash column as the text it was written as.
fn text_at(r: &rusqlite::Row, i: usize) -> rusqlite::Result<String> {
    match r.get_ref(i)? {
        ValueRef::Blob(b) if b.len() == 32 => Ok(hex::encode(b)),
        _ => crate::database::id_at(r, i),
    }
}

fn optional_text_at(r: &rusqlite::Row, i: usize) -> rusqlite::Result<Option<String>> {
    match r.get_ref(i)? {
        ValueRef::Null => Ok(None),
        _ => text_at(r, i).map(Some),
    }
}

/// The columns [`entry`] reads, in its order.
pub(crate) const ENTRY_COLUMNS: &str =
    "seq, id, device_id, device_seq, at, user_id, action, case_id, detail, prev_hash, hash";

pub(crate) fn entry(r: &rusqlite::Row) -> rusqlite::Result<Entry> {
    Ok(Entry {
        seq: r.get(0)?,
        id: text_at(r, 1)?,
        device_id: text_at(r, 2)?,
        device_seq: r.get(3)?,
        at: r.get(4)?,
        user_id: optional_text_at(r, 5)?,
        action: r.get(6)?,
        case_id: optional_text_at(r, 7)?,
        detail: r.get(8)?,
        prev_hash: text_at(r, 9)?,
        hash: text_at(r, 10)?,
    })
}

/// Check every chain. Reads the whole trail once, in local order. Problems name
/// this laptop by its device code, others by their device id.
pub(crate) fn verify(conn: &Connection, own_device: &str, own_code: &str) -> Result<Verification, DatabaseError> {
    let label = |d: &str| if d == own_device { own_code.to_string() } else { d.to_string() };
    let mut st = conn.prepare(&format!("SELECT {ENTRY_COLUMNS} FROM audit ORDER BY seq"))?;
    let entries = st.query_map([], entry)?.collect::<Result<Vec<_>, _>>()?;
    let present: HashSet<(&str, i64)> = entries.iter().map(|e| (e.device_id.as_str(), e.device_seq)).collect();
    // Per device: the next number expected and the hash it must follow.
    let mut chains: HashMap<&str, (i64, &str)> = HashMap::new();
    let mut problem = None;
    for e in &entries {
        let (expected, prev) = chains.get(e.device_id.as_str()).copied().unwrap_or((1, GENESIS));
        let device = label(&e.device_id);
        let found = if e.device_seq < expected {
            Some(Problem::OutOfOrder { device, number: e.device_seq })
        } else if e.device_seq > expected {
            if present.contains(&(e.device_id.as_str(), expected)) {
                Some(Problem::OutOfOrder { device, number: e.device_seq })
            } else {
                Some(Problem::Missing { device, number: expected })
            }
        } else if e.compute_hash() != e.hash {
            Some(Problem::Altered { device, number: e.device_seq })
        } else if e.prev_hash != prev {
            Some(Problem::Broken { device, number: e.device_seq })
        } else {
            None
        };
        if found.is_some() {
            problem = found;
            break;
        }
        chains.insert(e.device_id.as_str(), (e.device_seq + 1, e.hash.as_str()));
    }
    // The newest entry of this device is anchored: removing it is detected too.
    if problem.is_none() {
        let head = crate::database::meta(conn, HEAD_KEY)?;
        if let Some((n, hash)) = head.as_deref().and_then(|h| h.split_once(':')) {
            let n: i64 = n.parse().unwrap_or(0);
            let (next, last_hash) = chains.get(own_device).copied().unwrap_or((1, GENESIS));
            if next - 1 < n {
                problem = Some(Problem::Missing { device: own_code.to_string(), number: next });
            } else if next - 1 == n && last_hash != hash {
                problem = Some(Problem::Altered { device: own_code.to_string(), number: n });
            }
        }
    }
    // What no chain here can show: another laptop's copy that differed.
    if problem.is_none() {
        let fork: Option<(String, i64, Option<String>)> = conn
            .prepare_cached(
                "SELECT f.device_id, f.device_seq, d.device_code FROM audit_forks f
                 LEFT JOIN sync_devices d ON d.device_id = f.device_id
                 ORDER BY f.found_at, f.device_id, f.device_seq LIMIT 1",
            )?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        problem =
            fork.map(|(d, number, code)| Problem::Rewritten { device: code.unwrap_or_else(|| label(&d)), number });
    }
    Ok(Verification { entries: entries.len(), devices: chains.len(), problem })
}

/// The hash of a device's entry `number`, if this laptop holds it.
pub(crate) fn hash_at(conn: &Connection, device_id: &str, number: i64) -> Result<Option<String>, DatabaseError> {
    Ok(conn
        .prepare_cached("SELECT hash FROM audit WHERE device_id = ?1 AND device_seq = ?2")?
        .query_row(params![stored_id(device_id), number], |r| text_at(r, 0))
        .optional()?)
}

/// Keep the proof that a device's entry `number` exists elsewhere as `seen_hash`,
/// unlike (or missing from) this laptop's copy.
pub(crate) fn note_fork(conn: &Connection, device_id: &str, number: i64, seen_hash: &str) -> Result<(), DatabaseError> {
    conn.prepare_cached(
        "INSERT INTO audit_forks (device_id, device_seq, seen_hash, found_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT DO NOTHING",
    )?
    .execute(params![device_id, number, seen_hash, now_utc()])?;
    Ok(())
}

/// The trail, newest first, filtered; `own` is this laptop's device id and code
/// (other laptops' codes arrive with sync).
pub(crate) fn list(conn: &Connection, q: &AuditQuery, own: (&str, &str)) -> Result<Vec<AuditRow>, DatabaseError> {
    let limit = q.limit.unwrap_or(100).min(crate::repositories::cases::LIST_LIMIT_MAX) as i64;
    let offset = q.offset.unwrap_or(0) as i64;
    let blank = |s: &Option<String>| s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
    // Whole days: `to` includes everything written on that day.
    let to = blank(&q.to).map(|d| format!("{d}T99"));
    // The case by its number first: then the index of entries by case serves.
    let case_id: Option<String> = match blank(&q.case_number) {
        None => None,
        Some(n) => {
            let id = conn
                .prepare_cached("SELECT id FROM cases WHERE case_number = ?1")?
                .query_row([n.to_uppercase()], |r| r.get(0))
                .optional()?;
            match id {
                Some(id) => Some(id),
                None => return Ok(Vec::new()),
            }
        }
    };
    let mut st = conn.prepare_cached(
        "SELECT device_seq, at, device_id, user_id, action, case_id, detail FROM audit
          WHERE (?1 IS NULL OR action = ?1)
            AND (?2 IS NULL OR user_id = ?2)
            AND (?3 IS NULL OR case_id = ?3)
            AND (?4 IS NULL OR at >= ?4)
            AND (?5 IS NULL OR at <= ?5)
          ORDER BY seq DESC LIMIT ?6 OFFSET ?7",
    )?;
    let found = st
        .query_map(
            params![
                blank(&q.action),
                blank(&q.user_id).as_deref().map(stored_id),
                case_id.as_deref().map(stored_id),
                blank(&q.from),
                to,
                limit,
                offset
            ],
            |r| {
                let detail: String = r.get(6)?;
                Ok(AuditRow {
                    number: r.get(0)?,
                    at: r.get(1)?,
                    device_id: text_at(r, 2)?,
                    device_code: None,
                    user_id: optional_text_at(r, 3)?,
                    user_name: None,
                    action: r.get(4)?,
                    case_id: optional_text_at(r, 5)?,
                    case_number: None,
                    detail: crate::database::json_column(6, &detail)?,
                })
            },
        )?
        .collect::<Result<Vec<AuditRow>, _>>()
        .map_err(crate::database::read_error("audit"))?;
    // Names, numbers and codes as they are now (a page of rows: a lookup each).
    let mut rows = found;
    for row in &mut rows {
        // Other laptops' entries arrive with sync, and their codes too.
        row.device_code = if row.device_id == own.0 {
            Some(own.1.to_string())
        } else {
            conn.prepare_cached("SELECT device_code FROM sync_devices WHERE device_id = ?1")?
                .query_row([&row.device_id], |r| r.get(0))
                .optional()?
        };
        if let Some(u) = &row.user_id {
            row.user_name =
                conn.prepare_cached("SELECT name FROM users WHERE id = ?1")?.query_row([u], |r| r.get(0)).optional()?;
        }
        if let Some(c) = &row.case_id {
            row.case_number = conn
                .prepare_cached("SELECT case_number FROM cases WHERE id = ?1")?
                .query_row([c], |r| r.get(0))
                .optional()?;
        }
    }
    Ok(rows)
}

/// The longest run 1..=n of this device's audit entries held here.
pub(crate) fn held(conn: &Connection, device: &str) -> Result<i64, DatabaseError> {
    let (max, count): (i64, i64) = conn
        .prepare_cached("SELECT coalesce(max(device_seq), 0), count(*) FROM audit WHERE device_id = ?1")?
        .query_row([stored_id(device)], |r| Ok((r.get(0)?, r.get(1)?)))?;
    if max == count {
        return Ok(max);
    }
    // A gap: the first number whose successor is missing.
    let first_gap: Option<i64> = conn
        .prepare_cached("SELECT min(device_seq) FROM audit t WHERE device_id = ?1
               AND NOT EXISTS (SELECT 1 FROM audit u WHERE u.device_id = t.device_id AND u.device_seq = t.device_seq + 1)")?.query_row([stored_id(device)],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    let has_first: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM audit WHERE device_id = ?1 AND device_seq = 1)")?
        .query_row([stored_id(device)], |r| r.get(0))?;
    Ok(if has_first { first_gap.unwrap_or(0) } else { 0 })
}

/// Every device whose audit entries this laptop holds.
pub(crate) fn devices(conn: &Connection) -> Result<Vec<String>, DatabaseError> {
    let mut st = conn.prepare_cached("SELECT DISTINCT device_id FROM audit")?;
    let d = st.query_map([], |r| text_at(r, 0))?.collect::<Result<Vec<_>, _>>()?;
    Ok(d)
}
