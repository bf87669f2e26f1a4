//! Sync between the laptops of one organisation, with no network: each laptop
//! writes the changes the others may not have into an encrypted *bundle* file, and
//! reads theirs. The same batches can later travel through a hub.
//!
//! - [`log`]: the change log written with every save, and the merge rules;
//! - [`flat`]: a case as the fields that change and merge;
//! - [`hlc`]: the hybrid logical clock that orders changes;
//! - [`bundle`]: the file format (`docs/sync-bundle.md`);
//! - [`org`]: the organisation's sync key, and invitations to join it;
//! - [`folder`]: the USB stick or shared folder bundles travel through.
//!
//! Importing is safe in any order and any number of times: a change is identified
//! by its device and sequence number, so one already held is skipped, and the
//! merged case is a function of the set of changes held, not of their order.

pub mod bundle;
pub mod folder;
pub mod org;

use crate::changelog::{self, flat, hlc};
use crate::database;
use crate::database::now_utc;
use crate::i18n::Localized;
use crate::store::audit::{self, Action};
use crate::store::cases::{materialize, Merged};
use crate::store::users::Role;
use crate::store::{Store, StoreError};
use bundle::{Body, Header, Vector};
use rusqlite::{params, Connection};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, thiserror::Error)]
pub enum SyncError {
    #[error("this file is not an Amparo sync bundle")]
    NotABundle,
    #[error("the bundle is damaged or was altered")]
    Damaged,
    #[error("the bundle was written by a newer Amparo (format {found}, this one reads {supported})")]
    NewerFormat { found: u64, supported: u32 },
    #[error("the bundle belongs to another organisation")]
    ForeignOrg,
    #[error("case number {number} is used by two different cases: two laptops share a device code")]
    DeviceCodeClash { number: String },
    #[error("this file is not an Amparo invitation")]
    NotAnInvitation,
    #[error("the invitation passphrase is not correct")]
    WrongInvitePassphrase,
    #[error("this field has no open conflict")]
    NoConflict,
    #[error("that value is not one of the conflict's values")]
    NoSuchChoice,
}

impl Localized for SyncError {
    fn i18n_key(&self) -> &'static str {
        match self {
            SyncError::NotABundle => "error.sync.not_a_bundle",
            SyncError::Damaged => "error.sync.damaged",
            SyncError::NewerFormat { .. } => "error.sync.newer_format",
            SyncError::ForeignOrg => "error.sync.foreign_org",
            SyncError::DeviceCodeClash { .. } => "error.sync.device_code_clash",
            SyncError::NotAnInvitation => "error.sync.not_an_invitation",
            SyncError::WrongInvitePassphrase => "error.sync.wrong_invite_passphrase",
            SyncError::NoConflict => "error.sync.no_conflict",
            SyncError::NoSuchChoice => "error.sync.no_such_choice",
        }
    }
    fn args(&self) -> Vec<(&'static str, String)> {
        match self {
            SyncError::NewerFormat { found, supported } => {
                vec![("found", found.to_string()), ("supported", supported.to_string())]
            }
            SyncError::DeviceCodeClash { number } => vec![("number", number.clone())],
            _ => vec![],
        }
    }
}

const EXPORTED_KEY: &str = "sync_exported_seq";
const BACKFILLED_KEY: &str = "sync_log_since";

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ImportSummary {
    /// The laptop that wrote the bundle.
    pub device_code: String,
    /// Changes this laptop did not have yet.
    pub changes: usize,
    pub new_cases: usize,
    pub updated_cases: usize,
    pub removed_cases: usize,
    /// Open conflicts on the cases this import touched.
    pub conflicts: usize,
    /// Service directory entries added or changed.
    pub directory_entries: usize,
}

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ExportSummary {
    pub changes: usize,
    pub audit_entries: usize,
    pub cases: usize,
}

/// Another laptop, as this one last heard from it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Peer {
    pub device_code: String,
    /// When its last bundle was written there, and imported here.
    pub bundle_written_at: String,
    pub imported_at: String,
    /// How many of its own changes this laptop holds.
    pub changes_held: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncStatus {
    pub device_code: String,
    /// This laptop's changes not yet written into a bundle.
    pub unexported_changes: i64,
    pub peers: Vec<Peer>,
}

/// One value of a conflict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConflictValue {
    /// Identifies the value when resolving: `<device code>-<n>`... as `device:seq`.
    pub choice: String,
    pub value: Value,
    pub device_code: String,
    pub user: Option<String>,
    pub at: String,
}

/// Two or more values of one field written without seeing each other.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Conflict {
    pub case_id: String,
    pub case_number: String,
    /// The field as `amparo set` names it (`status`, `people.0.alias`).
    pub path: String,
    /// The field's stored name.
    pub field: String,
    /// The value that shows now first, then the others, newest first.
    pub values: Vec<ConflictValue>,
}

/// How a supervisor settles a conflict.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    /// One of the values, by its `choice`.
    Keep(String),
    /// A new value, typed as `amparo set` takes it.
    Value(String),
}

/// After unlock and migrations: make sure the store has an organisation key, knows
/// its own device, and that cases written before the change log existed are in it.
pub(crate) fn prepare(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    org::ensure(&tx)?;
    if database::meta(&tx, BACKFILLED_KEY)?.is_none() {
        crate::store::cases::backfill(&tx)?;
        database::set_meta(&tx, BACKFILLED_KEY, &now_utc())?;
    }
    tx.commit()?;
    Ok(())
}

/// Every device this laptop holds rows of in `table` (changes or audit).
fn devices_in(conn: &Connection, table: &str) -> Result<Vec<String>, StoreError> {
    let mut st = conn.prepare(&format!("SELECT DISTINCT device_id FROM {table}"))?;
    let d = st.query_map([], |r| r.get(0))?.collect::<Result<Vec<_>, _>>()?;
    Ok(d)
}

fn vector(conn: &Connection, table: &str) -> Result<Vector, StoreError> {
    let mut out = Vector::new();
    for d in devices_in(conn, table)? {
        let n = changelog::contiguous(conn, table, &d)?;
        if n > 0 {
            out.insert(d, n);
        }
    }
    Ok(out)
}

/// Per device, the highest number every laptop this one has heard from holds:
/// what a bundle can leave out. Nothing, if it has heard from none.
fn floors(conn: &Connection, own: &str, column: &str) -> Result<Option<Vector>, StoreError> {
    let mut st = conn.prepare(&format!("SELECT {column} FROM sync_peers WHERE device_id != ?1"))?;
    let mut peers: Vec<Vector> = Vec::new();
    for text in st.query_map([own], |r| r.get::<_, String>(0))? {
        let vector =
            serde_json::from_str(&text?).map_err(|_| database::DatabaseError::Damaged { table: "sync_peers" })?;
        peers.push(vector);
    }
    if peers.is_empty() {
        return Ok(None);
    }
    let devices: BTreeSet<&String> = peers.iter().flat_map(|v| v.keys()).collect();
    Ok(Some(
        devices
            .into_iter()
            .map(|d| (d.clone(), peers.iter().map(|v| v.get(d).copied().unwrap_or(0)).min().unwrap_or(0)))
            .collect(),
    ))
}

type Ranges = BTreeMap<String, (i64, i64)>;

/// Every row of `table` (changes or audit entries) above each device's floor, every
/// device this laptop holds rows of, with the range of numbers per device.
fn rows_above<T>(
    conn: &Connection,
    table: &str,
    columns: &str,
    floors: Option<&Vector>,
    read: fn(&rusqlite::Row) -> rusqlite::Result<T>,
    number: fn(&T) -> i64,
) -> Result<(Vec<T>, Ranges), StoreError> {
    let devices = devices_in(conn, table)?;
    let mut st = conn.prepare(&format!(
        "SELECT {columns} FROM {table} WHERE device_id = ?1 AND device_seq > ?2 ORDER BY device_seq"
    ))?;
    let (mut out, mut ranges) = (Vec::new(), Ranges::new());
    for d in devices {
        let from = floors.and_then(|f| f.get(&d)).copied().unwrap_or(0);
        let rows = st.query_map(params![d, from], read)?.collect::<Result<Vec<_>, _>>()?;
        if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
            ranges.insert(d, (number(first), number(last)));
        }
        out.extend(rows);
    }
    Ok((out, ranges))
}

fn devices(conn: &Connection) -> Result<BTreeMap<String, String>, StoreError> {
    let mut st = conn.prepare("SELECT device_id, device_code FROM sync_devices")?;
    let d = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<BTreeMap<_, _>, _>>()?;
    Ok(d)
}

impl Store {
    /// Write a bundle with every change (and audit entry) the laptops this one has
    /// heard from may not have yet; with `all`, every change it holds. `write` puts
    /// the bytes where they go; only once it succeeded do the cases stop saying
    /// "not yet exported". Any user may sync: the bundle is the organisation's own,
    /// sealed under its key.
    pub fn sync_export(
        &mut self,
        all: bool,
        write: impl FnOnce(&[u8]) -> Result<(), StoreError>,
    ) -> Result<ExportSummary, StoreError> {
        let me = self.session().device_id.clone();
        let conn = self.conn();
        let (org_id, key) = org::keys(conn)?;
        let floor_c = if all { None } else { floors(conn, &me, "has_changes")? };
        let floor_a = if all { None } else { floors(conn, &me, "has_audit")? };
        let mut body = Body { devices: devices(conn)?, ..Default::default() };
        let mut header = Header {
            format: bundle::FORMAT,
            org: org_id,
            device: me.clone(),
            device_code: self.session().device_code.clone(),
            created_at: now_utc(),
            changes: BTreeMap::new(),
            audit: BTreeMap::new(),
            has_changes: vector(conn, "changes")?,
            has_audit: vector(conn, "audit")?,
        };
        let (changes, ranges) =
            rows_above(conn, "changes", changelog::CHANGE_COLUMNS, floor_c.as_ref(), changelog::change, |c| c.seq)?;
        (body.changes, header.changes) = (changes, ranges);
        let (entries, ranges) =
            rows_above(conn, "audit", audit::ENTRY_COLUMNS, floor_a.as_ref(), audit::entry, |e| e.device_seq)?;
        (body.audit, header.audit) = (entries, ranges);
        // Changes after a gap are in the body (the ranges cover them) but not in
        // `has_changes`: the reader still knows to send what comes before them.
        let bytes = bundle::seal(&header, &body, &key).map_err(StoreError::from)?;
        let cases: BTreeSet<&str> = body.changes.iter().map(|c| c.id.as_str()).collect();
        let summary =
            ExportSummary { changes: body.changes.len(), audit_entries: body.audit.len(), cases: cases.len() };
        let own_last = header.has_changes.get(&me).copied().unwrap_or(0);
        write(&bytes)?;
        let tx = self.conn().unchecked_transaction()?;
        database::set_meta(&tx, EXPORTED_KEY, &own_last.to_string())?;
        tx.execute("DELETE FROM unexported", [])?;
        let detail = json!({ "changes": summary.changes, "cases": summary.cases });
        audit::append(&tx, &me, Some(&self.session().user_id), Action::SyncExport, None, detail, None)?;
        tx.commit()?;
        Ok(summary)
    }

    /// Read a bundle and merge it. Every check comes before anything is written, and
    /// everything is written in one transaction: a refused bundle leaves no trace
    /// but the message. `progress(done, total)` is called per case merged.
    pub fn sync_import(
        &mut self,
        bytes: &[u8],
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<ImportSummary, StoreError> {
        let me = self.session().device_id.clone();
        let user = self.session().user_id.clone();
        let (org_id, key) = org::keys(self.conn())?;
        let (header, body) = bundle::open(bytes, &org_id, &key)?;
        let tx = self.conn().unchecked_transaction()?;
        if let Some(latest) = body.changes.iter().map(|c| c.hlc).max() {
            let now = changelog::read_hlc(&tx)?;
            changelog::write_hlc(&tx, hlc::observe(now, latest, hlc::physical_now()))?;
        }
        let mut summary = ImportSummary { device_code: header.device_code.clone(), ..Default::default() };
        let mut touched = BTreeSet::new();
        let mut touched_directory = BTreeSet::new();
        let mut purged_here: BTreeMap<String, bool> = BTreeMap::new();
        let mut changes = body.changes;
        changes.sort_by(|a, b| (a.hlc, &a.device, a.seq).cmp(&(b.hlc, &b.device, b.seq)));
        for mut c in changes {
            if c.entity == changelog::DIRECTORY {
                if changelog::insert(&tx, &c)? {
                    summary.changes += 1;
                    touched_directory.insert(c.id);
                }
                continue;
            }
            let gone = match purged_here.get(&c.id) {
                Some(g) => *g,
                None => {
                    let g: bool =
                        tx.query_row("SELECT EXISTS (SELECT 1 FROM purged_cases WHERE case_id = ?1)", [&c.id], |r| {
                            r.get(0)
                        })?;
                    purged_here.insert(c.id.clone(), g);
                    g
                }
            };
            // A purged case's words never come back; the change's identity is kept.
            if gone && c.field != flat::PURGED {
                c.value = None;
            }
            if changelog::insert(&tx, &c)? {
                summary.changes += 1;
                touched.insert(c.id);
            }
        }
        let total = touched.len();
        for (i, id) in touched.iter().enumerate() {
            let (merged, open) = materialize(&tx, id)?;
            match merged {
                Merged::New => summary.new_cases += 1,
                Merged::Updated => summary.updated_cases += 1,
                Merged::Removed => summary.removed_cases += 1,
                Merged::Unchanged | Merged::Waiting => {}
            }
            summary.conflicts += open.len();
            progress(i + 1, total);
        }
        for id in &touched_directory {
            crate::directory::materialize(&tx, id)?;
            summary.directory_entries += 1;
        }
        // Audit entries: each device's chain grows only at its end, so it stays
        // verifiable; later entries come again with the next bundle.
        let mut entries = body.audit;
        entries.sort_by(|a, b| (&a.device_id, a.device_seq).cmp(&(&b.device_id, b.device_seq)));
        for e in entries.iter().filter(|e| e.device_id != me) {
            let last: i64 = tx.query_row(
                "SELECT coalesce(max(device_seq), 0) FROM audit WHERE device_id = ?1",
                [&e.device_id],
                |r| r.get(0),
            )?;
            if e.device_seq == last + 1 {
                audit::insert(&tx, e)?;
            }
        }
        for (id, code) in &body.devices {
            tx.execute(
                "INSERT INTO sync_devices (device_id, device_code) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                [id, code],
            )?;
        }
        if header.device != me {
            let has_c = serde_json::to_string(&header.has_changes).map_err(|_| StoreError::Corrupt)?;
            let has_a = serde_json::to_string(&header.has_audit).map_err(|_| StoreError::Corrupt)?;
            tx.execute(
                "INSERT INTO sync_peers (device_id, device_code, has_changes, has_audit, bundle_written_at, imported_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (device_id) DO UPDATE SET device_code = excluded.device_code,
                    has_changes = excluded.has_changes, has_audit = excluded.has_audit,
                    bundle_written_at = excluded.bundle_written_at, imported_at = excluded.imported_at
                 WHERE excluded.bundle_written_at >= sync_peers.bundle_written_at",
                params![header.device, header.device_code, has_c, has_a, header.created_at, now_utc()],
            )?;
        }
        let detail = json!({
            "device": header.device, "changes": summary.changes, "new": summary.new_cases,
            "updated": summary.updated_cases, "removed": summary.removed_cases, "conflicts": summary.conflicts,
        });
        audit::append(&tx, &me, Some(&user), Action::SyncImport, None, detail, None)?;
        tx.commit()?;
        // Replaced values, removed people and purged cases were blanked: fold the WAL
        // into the (securely deleting) database so their words do not linger.
        self.conn().pragma_update(None, "wal_checkpoint", "TRUNCATE")?;
        Ok(summary)
    }

    /// This laptop's sync state: what it has not exported, and each other laptop.
    pub fn sync_status(&self) -> Result<SyncStatus, StoreError> {
        let conn = self.conn();
        let me = &self.session().device_id;
        let exported: i64 = match database::meta(conn, EXPORTED_KEY)? {
            None => 0,
            Some(v) => v.parse().map_err(|_| database::DatabaseError::Damaged { table: "meta" })?,
        };
        let unexported: i64 = conn.query_row(
            "SELECT count(*) FROM changes WHERE device_id = ?1 AND device_seq > ?2",
            params![me, exported],
            |r| r.get(0),
        )?;
        let mut st = conn.prepare(
            "SELECT device_id, device_code, bundle_written_at, imported_at FROM sync_peers ORDER BY device_code",
        )?;
        let rows = st
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut peers = Vec::new();
        for (id, code, written, imported) in rows {
            let held = changelog::contiguous(conn, "changes", &id)?;
            peers.push(Peer {
                device_code: code,
                bundle_written_at: written,
                imported_at: imported,
                changes_held: held,
            });
        }
        Ok(SyncStatus { device_code: self.session().device_code.clone(), unexported_changes: unexported, peers })
    }

    /// Has this case changed here since the last bundle was written?
    pub fn is_unexported(&self, case_id: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT EXISTS (SELECT 1 FROM unexported WHERE case_id = ?1)", [case_id], |r| r.get(0))?)
    }

    /// Ids of cases with changes made here and not yet written into a bundle.
    pub fn unexported_cases(&self) -> Result<BTreeSet<String>, StoreError> {
        let mut st = self.conn().prepare_cached("SELECT case_id FROM unexported")?;
        let ids = st.query_map([], |r| r.get(0))?.collect::<Result<BTreeSet<_>, _>>()?;
        Ok(ids)
    }

    fn conflicts_where(&self, case_id: Option<&str>) -> Result<Vec<Conflict>, StoreError> {
        let conn = self.conn();
        let codes = devices(conn)?;
        let mut st = conn.prepare(
            "SELECT o.entity_id, o.field, c.case_number, c.data FROM open_conflicts o JOIN cases c ON c.id = o.entity_id
             WHERE ?1 IS NULL OR o.entity_id = ?1 ORDER BY c.case_number, o.field",
        )?;
        let rows = st
            .query_map([case_id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = Vec::new();
        for (id, field, number, data) in rows {
            let fields = changelog::load(conn, changelog::CASE, &id)?;
            let Some(state) = fields.get(&field) else { continue };
            let data: serde_json::Map<String, Value> = serde_json::from_str(&data).unwrap_or_default();
            if !state.is_conflict() {
                continue;
            }
            let values = state
                .heads()
                .into_iter()
                .filter_map(|c| {
                    Some(ConflictValue {
                        choice: format!("{}:{}", c.device, c.seq),
                        value: c.value.clone()?,
                        device_code: codes.get(&c.device).cloned().unwrap_or_else(|| c.device.clone()),
                        user: c.user_name.clone(),
                        at: hlc::to_rfc3339(c.hlc),
                    })
                })
                .collect::<Vec<_>>();
            if values.len() > 1 {
                out.push(Conflict {
                    case_id: id,
                    case_number: number,
                    path: flat::display_path(&field, &data),
                    field,
                    values,
                });
            }
        }
        Ok(out)
    }

    /// Every open conflict (supervisors).
    pub fn conflicts(&self) -> Result<Vec<Conflict>, StoreError> {
        self.require(Role::Supervisor)?;
        self.conflicts_where(None)
    }

    /// The open conflicts of one case, for whoever may open it.
    pub fn case_conflicts(&self, case_id: &str) -> Result<Vec<Conflict>, StoreError> {
        let case = self.load_case_unchecked(case_id)?;
        self.check_open(&case)?;
        self.conflicts_where(Some(case_id))
    }

    /// Settle a conflict (supervisors): keep one of its values or type a new one.
    /// The resolution is a change like any other, so it reaches every laptop.
    pub fn resolve_conflict(&mut self, case_id: &str, field: &str, how: &Resolution) -> Result<Value, StoreError> {
        self.require(Role::Supervisor)?;
        let conflict =
            self.conflicts_where(Some(case_id))?.into_iter().find(|c| c.field == field).ok_or(SyncError::NoConflict)?;
        let session = self.session().clone();
        let tx = self.conn().unchecked_transaction()?;
        let fields = changelog::load(&tx, changelog::CASE, case_id)?;
        let state = fields.get(field).ok_or(SyncError::NoConflict)?;
        let value = match how {
            Resolution::Keep(choice) => {
                conflict.values.iter().find(|v| v.choice == *choice).ok_or(SyncError::NoSuchChoice)?.value.clone()
            }
            Resolution::Value(raw) => {
                // Typed like `amparo set`, and checked like any save.
                let mut case = self.load_case_unchecked(case_id)?;
                crate::intake::assign(&mut case, &conflict.path, raw)
                    .map_err(|i| crate::intake::ValidationErrors(vec![i]))?;
                let prepared = crate::intake::prepare(case, crate::store::cases::today())?;
                let data = prepared.as_object().cloned().unwrap_or_default();
                flat::flatten(&data, &changelog::winners(&fields)).get(field).cloned().unwrap_or(Value::Null)
            }
        };
        let mut w = changelog::Writer::begin(&tx, session.author())?;
        changelog::resolve(&tx, &mut w, case_id, field, state, &value)?;
        // Who changed the case last, and when: recorded like any other save.
        let meta = ["updated_at", "updated_by"];
        let before: flat::Flat =
            changelog::winners(&fields).into_iter().filter(|(k, _)| meta.contains(&k.as_str())).collect();
        let after: flat::Flat =
            [("updated_at".to_string(), now_utc().into()), ("updated_by".to_string(), session.user_id.clone().into())]
                .into();
        changelog::record_case(&tx, &mut w, case_id, &fields, &before, &after)?;
        materialize(&tx, case_id)?;
        let detail = json!({ "field": field });
        audit::append(
            &tx,
            &session.device_id,
            Some(&session.user_id),
            Action::ConflictResolved,
            Some(case_id),
            detail,
            None,
        )?;
        tx.commit()?;
        self.conn().pragma_update(None, "wal_checkpoint", "TRUNCATE")?;
        self.load_case_unchecked(case_id)
    }
}

impl Store {
    /// Invite a new laptop into this organisation (administrators): the invitation
    /// file's content and the one-time passphrase to give with it.
    pub fn invite(&self) -> Result<(Vec<u8>, zeroize::Zeroizing<String>), StoreError> {
        self.require(Role::Administrator)?;
        let (inv, passphrase) = org::invite(self.conn(), &self.session().org, self.kdf())?;
        let bytes = serde_json::to_vec_pretty(&inv).map_err(|_| StoreError::Corrupt)?;
        self.record(Action::OrgInvite, None, json!({}))?;
        Ok((bytes, passphrase))
    }

    /// First start of a laptop joining an organisation: set up the store as usual
    /// (its own data key, device and first user) with the organisation's id, name and
    /// sync key from the invitation. Refused before anything is written when the
    /// invitation or its passphrase is wrong, or the device code is taken.
    pub fn join(
        dir: &std::path::Path,
        invitation: &[u8],
        invite_passphrase: &str,
        setup: &crate::store::Setup,
        kdf: crate::database::keys::KdfParams,
    ) -> Result<Store, StoreError> {
        let inv = org::open_invitation(invitation, invite_passphrase)?;
        let code = setup.device_code.trim().to_uppercase();
        if inv.about.device_codes.iter().any(|c| c.eq_ignore_ascii_case(&code)) {
            let e = crate::intake::Issue::new("device_code", crate::intake::FieldError::DeviceCodeTaken { code });
            return Err(crate::intake::ValidationErrors(vec![e]).into());
        }
        let setup = crate::store::Setup { org: inv.about.org.clone(), ..setup.clone() };
        let store = Store::create(dir, &setup, kdf)?;
        org::adopt(store.conn(), &inv.org_id, &inv.key, &inv.about.org)?;
        Ok(store)
    }
}

#[cfg(test)]
mod tests;
