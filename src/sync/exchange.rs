//! Exchanging changes with the organisation's other laptops: what a bundle of this
//! laptop holds, merging one that arrived, and what the sync state is. Everything
//! here works on a connection or a transaction the caller holds; who may do it,
//! and its audit entry, are the caller's (`crate::store`).

use super::bundle::{self, Body, Header};
use super::*;
use super::{epoch, identity};
use crate::changelog::{self, flat, hlc};
use crate::database::{self, now_utc, DatabaseError};
use crate::repositories::cases::{rebuild_from, Bulk, Logged, Merged};
use crate::repositories::incoming;
use crate::repositories::RepositoryError;
use crate::repositories::{audit, users};
use rusqlite::{params, Connection, Transaction};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

impl From<RepositoryError> for SyncError {
    fn from(e: RepositoryError) -> Self {
        match e {
            RepositoryError::CaseNumberTaken { number } => SyncError::DeviceCodeClash { number },
            RepositoryError::Database(e) => SyncError::Database(e),
            // Only a save typed on this laptop is validated; merging a case stores
            // what the change log holds, so this would be a damaged log.
            RepositoryError::Invalid(_) => SyncError::Database(DatabaseError::Damaged { table: "change_log" }),
        }
    }
}

/// A bundle ready to be written, and what it holds.
pub(crate) struct Written {
    pub bytes: Vec<u8>,
    pub summary: ExportSummary,
    /// This laptop's last change in it: what is marked exported once it is written.
    pub own_last: i64,
}

/// Seal a bundle of every change (and audit entry) the laptops this one has heard
/// from may not have yet; with `all`, of every change it holds.
pub(crate) fn write_bundle(conn: &Connection, me: &str, device_code: &str, all: bool) -> Result<Written, SyncError> {
    let (org_id, epoch, key) = org::keys(conn)?;
    let identity = identity::load(conn)?;
    let floor_c = if all { None } else { floors(conn, me, "has_changes")? };
    let floor_a = if all { None } else { floors(conn, me, "has_audit")? };
    let mut body = Body { devices: devices(conn)?, members: users::members_to_send(conn)?, ..Default::default() };
    let mut header = Header {
        format: bundle::FORMAT,
        org: org_id,
        device: me.to_string(),
        device_code: device_code.to_string(),
        sign_key: identity.sign_key(),
        kx_key: identity.kx_key(),
        epoch,
        batch: 0,
        created_at: now_utc(),
        changes: BTreeMap::new(),
        audit: BTreeMap::new(),
        has_changes: vector(conn, Log::Changes)?,
        has_audit: vector(conn, Log::Audit)?,
        audit_head: String::new(),
        // A bundle carries every key epoch: a laptop that never met the hub learns
        // of revocations, and gets the new key if it was sealed to it.
        epochs: epoch::records(conn)?.iter().map(hex::encode).collect(),
    };
    header.audit_head = own_head(conn, me, &header.has_audit)?;
    (body.changes, header.changes) = changes_above(conn, floor_c.as_ref())?;
    (body.audit, header.audit) = audit_above(conn, floor_a.as_ref())?;
    // Changes after a gap are in the body (the ranges cover them) but not in
    // `has_changes`: the reader still knows to send what comes before them.
    let bytes = bundle::seal(&header, &body, &key, &identity)?;
    let cases: BTreeSet<&str> = body.changes.iter().map(|c| c.id.as_str()).collect();
    let summary = ExportSummary { changes: body.changes.len(), audit_entries: body.audit.len(), cases: cases.len() };
    let own_last = header.has_changes.get(me).copied().unwrap_or(0);
    Ok(Written { bytes, summary, own_last })
}

/// The bundle is written: the cases stop saying "not yet exported".
pub(crate) fn mark_exported(conn: &Connection, own_last: i64) -> Result<(), SyncError> {
    database::set_meta(conn, EXPORTED_KEY, &own_last.to_string())?;
    conn.prepare_cached("DELETE FROM unexported")?.execute([])?;
    Ok(())
}

/// Merge a bundle into this laptop (`me`) in the caller's transaction: every check
/// comes before anything is written. `progress(done, total)` is called per case
/// merged. Returns what it did and the device that wrote the bundle.
pub(crate) fn merge(
    tx: &Transaction,
    me: &str,
    bytes: &[u8],
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(ImportSummary, String), SyncError> {
    let (org_id, _, _) = org::keys(tx)?;
    let (header, _) = bundle::read_signed(bytes)?;
    if header.org != org_id {
        return Err(SyncError::ForeignOrg);
    }
    // Key epochs first: the bundle may be sealed under one they bring.
    for record in &header.epochs {
        let record = hex::decode(record).map_err(|_| SyncError::Damaged)?;
        epoch::apply(tx, &record)?;
    }
    let key = org::key_of(tx, header.epoch)?.ok_or(SyncError::EpochKey { device_code: header.device_code.clone() })?;
    let (header, body) = bundle::open(bytes, &org_id, &key)?;
    trust_signer(tx, &header)?;
    check_trails(tx, me, &header, &body)?;
    if let Some(latest) = body.changes.iter().map(|c| c.hlc).max() {
        // Refused before anything is written: a change from a clock far ahead would
        // win every later merge, and near the largest value it would stop our clock.
        if latest > hlc::physical_now().saturating_add(hlc::MAX_AHEAD) {
            return Err(SyncError::ClockAhead { device_code: header.device_code.clone() });
        }
        let now = changelog::read_hlc(tx)?;
        changelog::write_hlc(tx, hlc::observe(now, latest, hlc::physical_now()))?;
    }
    // Rule 6 (docs/hub.md): no form could have written a value this large or of
    // this kind. What is only not accepted here is held on rebuild instead.
    if let Some(c) = body.changes.iter().find(|c| c.entity == changelog::CASE && incoming::beyond_bounds(c)) {
        let device_code = body.devices.get(&c.device).cloned().unwrap_or_else(|| header.device_code.clone());
        return Err(SyncError::OutOfBounds { device_code, field: incoming::display_field(&c.field) });
    }
    let mut summary = ImportSummary { device_code: header.device_code.clone(), ..Default::default() };
    let mut touched = BTreeSet::new();
    let mut touched_directory = BTreeSet::new();
    let mut touched_keys = BTreeSet::new();
    let mut purged_here: HashMap<String, bool> = HashMap::new();
    let mut changes = body.changes;
    changes.sort_by(|a, b| (a.hlc, &a.device, a.seq).cmp(&(b.hlc, &b.device, b.seq)));
    for c in &mut changes {
        if c.entity == changelog::DIRECTORY {
            continue;
        }
        if c.entity == changelog::CASE_KEY {
            // A restricted case's key sealed to someone: bounded, opened only by her.
            let fits = c.value.as_ref().is_none_or(|v| {
                v.is_null()
                    || (c.field == crate::repositories::restricted::CURRENT
                        && v.as_str().is_some_and(|s| s.len() == 16))
                    || crate::repositories::restricted::is_seal_record(v)
            });
            if !fits {
                return Err(SyncError::Damaged);
            }
        }
        let gone = match purged_here.get(&c.id) {
            Some(g) => *g,
            None => {
                let g: bool = tx
                    .prepare_cached("SELECT EXISTS (SELECT 1 FROM purged_cases WHERE case_id = ?1)")?
                    .query_row([&c.id], |r| r.get(0))?;
                purged_here.insert(c.id.clone(), g);
                g
            }
        };
        // A purged case's words (and keys) never come back; the change's
        // identity is kept.
        if gone && (c.entity == changelog::CASE_KEY || c.field != flat::PURGED) {
            c.value = None;
        }
    }
    // Cases the log holds nothing of yet are rebuilt from the changes in hand,
    // and their changes are written with the case's row, so that the values the
    // row holds are not stored twice (`rebuild_from`).
    let mut fresh: HashMap<String, Vec<changelog::Change>> = HashMap::new();
    {
        let mut asked: HashSet<&str> = HashSet::new();
        for c in changes.iter().filter(|c| c.entity == changelog::CASE) {
            if asked.insert(&c.id) && !changelog::holds_entity(tx, changelog::CASE, &c.id)? {
                fresh.insert(c.id.clone(), Vec::new());
            }
        }
    }
    // All at once: the changes of one write are stored as one row.
    let new = changelog::which_new(tx, &changes)?;
    let unwritten = |c: &changelog::Change| c.entity == changelog::CASE && fresh.contains_key(&c.id);
    changelog::insert_new(tx, changes.iter().zip(&new).filter(|(c, n)| **n && !unwritten(c)).map(|(c, _)| c), None)?;
    for (c, _) in changes.into_iter().zip(new).filter(|(_, new)| *new) {
        summary.changes += 1;
        match c.entity.as_str() {
            changelog::DIRECTORY => {
                touched_directory.insert(c.id);
            }
            changelog::CASE_KEY => {
                touched_keys.insert(c.id);
            }
            _ => {
                if !touched.contains(&c.id) {
                    touched.insert(c.id.clone());
                }
                if let Some(of_case) = fresh.get_mut(&c.id) {
                    of_case.push(c);
                }
            }
        }
    }
    let total = touched.len();
    let mut bulk = Bulk::default();
    for (i, id) in touched.iter().enumerate() {
        let (merged, open) = match fresh.remove(id) {
            Some(changes) => rebuild_from(tx, id, incoming::fields_of(tx, changes)?, Logged::No, Some(&mut bulk))?,
            None => rebuild_from(tx, id, incoming::fields(tx, id)?, Logged::Yes, Some(&mut bulk))?,
        };
        match merged {
            Merged::New => summary.new_cases += 1,
            Merged::Updated => summary.updated_cases += 1,
            Merged::Removed => summary.removed_cases += 1,
            Merged::Unchanged | Merged::Waiting => {}
        }
        summary.conflicts += open.len();
        progress(i + 1, total);
    }
    // Before anything else may write a case again (sealing its keys, below).
    bulk.finish(tx)?;
    for id in &touched_keys {
        crate::repositories::restricted::settle(tx, id)?;
    }
    for id in &touched_directory {
        crate::repositories::directory::rebuild(tx, id)?;
        summary.directory_entries += 1;
    }
    // Audit entries: each device's chain grows only at its end, so it stays
    // verifiable; later entries come again with the next bundle. An entry that
    // does not continue its chain refuses the whole bundle (the transaction is the
    // caller's, and is not committed).
    let mut entries = body.audit;
    entries.sort_by(|a, b| (&a.device_id, a.device_seq).cmp(&(&b.device_id, b.device_seq)));
    for e in entries.iter().filter(|e| e.device_id != me) {
        let (last, last_hash) = audit::last_of(tx, &e.device_id)?;
        if e.device_seq == last + 1 {
            if !e.continues(&last_hash) {
                let code = body.devices.get(&e.device_id).cloned().unwrap_or_else(|| e.device_id.clone());
                return Err(SyncError::AuditChain { device_code: code });
            }
            audit::insert(tx, e)?;
        }
    }
    if body.members.len() > users::MEMBERS_MAX {
        return Err(SyncError::Damaged);
    }
    summary.members = users::take_members(tx, &body.members)?;
    for (id, code) in &body.devices {
        tx.prepare_cached("INSERT INTO sync_devices (device_id, device_code) VALUES (?1, ?2) ON CONFLICT DO NOTHING")?
            .execute([id, code])?;
    }
    if header.device != me {
        let has_c = vector_json(&header.has_changes);
        let has_a = vector_json(&header.has_audit);
        tx.prepare_cached(
            "INSERT INTO sync_peers (device_id, device_code, has_changes, has_audit, bundle_written_at, imported_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (device_id) DO UPDATE SET device_code = excluded.device_code,
                    has_changes = excluded.has_changes, has_audit = excluded.has_audit,
                    bundle_written_at = excluded.bundle_written_at, imported_at = excluded.imported_at
                 WHERE excluded.bundle_written_at >= sync_peers.bundle_written_at",
        )?
        .execute(params![header.device, header.device_code, has_c, has_a, header.created_at, now_utc()])?;
    }
    Ok((summary, header.device))
}

/// The hash of this laptop's entry number `has_audit[me]`: the head a bundle
/// carries, signed with it.
pub(crate) fn own_head(conn: &Connection, me: &str, has_audit: &bundle::Vector) -> Result<String, SyncError> {
    let n = has_audit.get(me).copied().unwrap_or(0);
    Ok(audit::hash_at(conn, me, n)?.unwrap_or_default())
}

/// Two copies of one laptop's activity log that differ at the same number prove
/// that it was rewritten, on that laptop or by someone holding its key: the
/// writer's signed head, every entry and the predecessor hash each one names are
/// compared with what this laptop already holds. Only the same numbers are compared, so a bundle read late is
/// never taken for a rewrite. Another laptop's rewritten log refuses the bundle;
/// our own, found rewritten in another laptop's copy, is noted (that laptop's
/// bundle is not to blame) and shown by `audit verify`.
fn check_trails(tx: &Transaction, me: &str, header: &Header, body: &Body) -> Result<(), SyncError> {
    let head = header
        .has_audit
        .get(&header.device)
        .filter(|_| !header.audit_head.is_empty())
        .map(|n| (header.device.as_str(), *n, header.audit_head.as_str()));
    // An entry also says what its predecessor's hash was.
    let entries = body.audit.iter().flat_map(|e| {
        let before = (e.device_seq > 1).then_some((e.device_id.as_str(), e.device_seq - 1, e.prev_hash.as_str()));
        before.into_iter().chain([(e.device_id.as_str(), e.device_seq, e.hash.as_str())])
    });
    for (device, number, hash) in head.into_iter().chain(entries) {
        let held = audit::hash_at(tx, device, number)?;
        if device == me {
            // Nothing of ours can be elsewhere that we do not hold as it was written.
            if held.as_deref() != Some(hash) {
                audit::note_fork(tx, device, number, hash)?;
            }
        } else if held.is_some_and(|h| h != hash) {
            let device_code = body.devices.get(device).cloned().unwrap_or_else(|| device.to_string());
            return Err(SyncError::AuditRewritten {
                device_code,
                device_id: device.to_string(),
                number,
                seen_hash: hash.to_string(),
            });
        }
    }
    Ok(())
}

/// After a refused bundle's transaction was rolled back, what it proved is kept:
/// a rewritten log stays reported by `audit verify`.
pub(crate) fn keep_evidence(conn: &Connection, refused: &SyncError) -> Result<(), SyncError> {
    if let SyncError::AuditRewritten { device_id, number, seen_hash, .. } = refused {
        audit::note_fork(conn, device_id, *number, seen_hash)?;
    }
    Ok(())
}

/// The bundle's signature is by the key pinned for the device it names, and that
/// device is not revoked. A device first seen is pinned to the key it signs with:
/// its bundle is sealed under the organisation key, so only a laptop of the
/// organisation can introduce it.
///
/// A revoked device's batches that the hub held when it was revoked are still
/// taken (they were written before); nothing else of it is.
fn trust_signer(tx: &Transaction, header: &Header) -> Result<(), SyncError> {
    let device_code = header.device_code.clone();
    match identity::known(tx, &header.device)? {
        Some(k) if k.revoked && !(header.batch >= 1 && header.batch <= k.revoked_after.unwrap_or(0)) => {
            Err(SyncError::Revoked { device_code })
        }
        Some(identity::Known { sign_key: Some(pinned), .. }) if pinned != header.sign_key => {
            Err(SyncError::WrongSigner { device_code })
        }
        _ => identity::pin(tx, &header.device, &header.device_code, &header.sign_key, &header.kx_key),
    }
}

/// A sequence vector as stored in `sync_peers` (device → number: always JSON).
fn vector_json(v: &bundle::Vector) -> String {
    Value::from(v.iter().map(|(d, n)| (d.clone(), Value::from(*n))).collect::<serde_json::Map<_, _>>()).to_string()
}

/// This laptop's sync state: what it has not exported, and each other laptop.
pub(crate) fn status(conn: &Connection, me: &str, device_code: &str) -> Result<SyncStatus, SyncError> {
    let exported = database::meta_number(conn, EXPORTED_KEY)?;
    let unexported = changelog::count_above(conn, me, exported)?;
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
        let held = Log::Changes.held(conn, &id)?;
        peers.push(Peer { device_code: code, bundle_written_at: written, imported_at: imported, changes_held: held });
    }
    Ok(SyncStatus { device_code: device_code.to_string(), unexported_changes: unexported, peers })
}

/// Per device, the name of the last person who changed something on it, as this
/// laptop has heard (the hub knows no names: this is how a list of laptops
/// shows whose each is).
pub(crate) fn last_users(conn: &Connection) -> Result<BTreeMap<String, String>, SyncError> {
    Ok(changelog::last_users(conn)?)
}

/// Has this case changed here since the last bundle was written?
pub(crate) fn is_unexported(conn: &Connection, case_id: &str) -> Result<bool, SyncError> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM unexported WHERE case_id = ?1)")?
        .query_row([case_id], |r| r.get(0))?)
}

/// Ids of cases with changes made here and not yet written into a bundle.
pub(crate) fn unexported_cases(conn: &Connection) -> Result<BTreeSet<String>, SyncError> {
    let mut st = conn.prepare_cached("SELECT case_id FROM unexported")?;
    let ids = st.query_map([], |r| r.get(0))?.collect::<Result<BTreeSet<_>, _>>()?;
    Ok(ids)
}

/// The open conflicts of one case, or of every case.
pub(crate) fn conflicts(conn: &Connection, case_id: Option<&str>) -> Result<Vec<Conflict>, SyncError> {
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
        let fields = incoming::fields(conn, &id)?;
        let Some(state) = fields.get(&field) else { continue };
        let data: serde_json::Map<String, Value> =
            serde_json::from_str(&data).map_err(|_| DatabaseError::Damaged { table: "cases" })?;
        if !state.is_conflict() {
            continue;
        }
        let heads = state.heads();
        let held = heads.iter().any(|c| state.is_held(c));
        let values = heads
            .into_iter()
            .filter_map(|c| {
                Some(ConflictValue {
                    choice: format!("{}:{}", c.device, c.seq),
                    value: c.value.clone()?,
                    device_code: codes.get(&c.device).cloned().unwrap_or_else(|| c.device.clone()),
                    user: c.user_name.clone(),
                    at: hlc::to_rfc3339(c.hlc),
                    held: state.is_held(c),
                })
            })
            .collect::<Vec<_>>();
        // A held value alone is listed too: it is there to review, and typing a
        // value the form accepts settles it.
        if values.len() > 1 || (held && !values.is_empty()) {
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

/// Does this laptop hold every change and audit entry a bundle's header lists?
pub(crate) fn holds_all(conn: &Connection, h: &Header) -> Result<bool, SyncError> {
    for (log, ranges) in [(Log::Changes, &h.changes), (Log::Audit, &h.audit)] {
        for (device, (_, last)) in ranges {
            if log.held(conn, device)? < *last {
                return Ok(false);
            }
        }
    }
    Ok(true)
}
