//! Sync through the organisation's hub (`docs/hub.md`), without the network: the
//! network is the [`Transport`] the caller hands in (the hub crate's client, or a
//! test's). What this laptop made is sealed into numbered batches of its own
//! changes and kept in an outbox until the hub acknowledged them, so a push cut
//! off at any point is sent again, byte for byte; what it pulled is remembered
//! per device, in the same transaction as the merge, so a pull resumes where it
//! stopped.

use super::bundle::{self, Body, Header, Vector};
use super::exchange;
use super::identity;
use super::*;
use crate::changelog;
use crate::database::{self, now_utc, DatabaseError};
use crate::repositories::{audit, users};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::Deserialize;

/// Changes in one batch at most: a batch stays a few megabytes, so a slow link
/// moves it whole, and a long backlog goes as several.
pub const BATCH_CHANGES: i64 = 2000;
/// How many batches a listing asks for at a time.
pub const PAGE: usize = 200;

const URL_KEY: &str = "hub_url";
const FINGERPRINT_KEY: &str = "hub_fingerprint";
/// This laptop's last change and audit entry put into a batch, and that batch's number.
const BATCHED_CHANGES: &str = "hub_batched_changes";
const BATCHED_AUDIT: &str = "hub_batched_audit";
const BATCH_NUMBER: &str = "hub_batch_number";
/// Per device, the last of its batches merged here.
const PULLED: &str = "hub_pulled";
/// Set on the laptop that registered the organisation with the hub: the hub takes
/// key epochs and revocations from it.
pub(crate) const ADMIN_KEY: &str = "hub_admin";
/// A joined laptop's enrolment token, until the hub took it.
pub(crate) const ENROL_TOKEN: &str = "hub_enrol_token";

/// One batch the hub holds and this laptop lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub device: String,
    pub number: i64,
    /// Hex SHA-256 of its bytes, as the hub indexed them.
    pub sha256: String,
}

/// The way to one hub, as this laptop's device.
pub trait Transport {
    /// Store batch `number` of this laptop. Ok only once the hub committed it
    /// (or held the same bytes already).
    fn push(&mut self, number: i64, bytes: &[u8]) -> Result<(), SyncError>;
    /// Up to `limit` batches above `since`, in order per device.
    fn list(&mut self, since: &Vector, limit: usize) -> Result<Vec<Listed>, SyncError>;
    fn fetch(&mut self, device: &str, number: i64) -> Result<Vec<u8>, SyncError>;
    /// Several batches in one exchange, in the order asked: all of them, or the
    /// first few (never none), the caller asking again for the rest.
    fn fetch_many(&mut self, wanted: &[Listed]) -> Result<Vec<Vec<u8>>, SyncError> {
        let first = wanted.first().ok_or(SyncError::Damaged)?;
        Ok(vec![self.fetch(&first.device, first.number)?])
    }
    /// The key epoch records numbered above `since`, in order.
    fn epochs(&mut self, since: u32) -> Result<Vec<Vec<u8>>, SyncError>;
    /// Store key epoch record `number` (administrators). Ok only once committed.
    fn put_epoch(&mut self, number: u32, bytes: &[u8]) -> Result<(), SyncError>;
    /// Revoke a device (administrators); returns the last of its batches the hub
    /// holds, the last still taken from it.
    fn revoke(&mut self, device: &str) -> Result<i64, SyncError>;
}

/// Where this laptop's hub is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HubSettings {
    pub url: String,
    pub fingerprint: String,
}

/// What an invitation carries for the hub: where it is, the certificate to
/// trust, and the one-time enrolment token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubInvite {
    pub url: String,
    pub fingerprint: String,
    pub token: String,
}

/// A new one-time enrolment token (32 random bytes, hex).
pub fn new_token() -> String {
    use rand::RngCore;
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    hex::encode(raw)
}

/// How long an invitation's token works, unless the administrator says otherwise.
pub const TOKEN_LIFETIME_S: i64 = 7 * 24 * 3600;

/// What one sync with the hub did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HubSummary {
    pub pushed_batches: usize,
    pub pulled_batches: usize,
    /// What the pulled batches brought, added up.
    pub imported: ImportSummary,
}

pub(crate) fn settings(conn: &Connection) -> Result<Option<HubSettings>, SyncError> {
    let url = database::meta(conn, URL_KEY)?;
    let fingerprint = database::meta(conn, FINGERPRINT_KEY)?;
    Ok(url.zip(fingerprint).map(|(url, fingerprint)| HubSettings { url, fingerprint }))
}

pub(crate) fn set_settings(conn: &Connection, s: &HubSettings) -> Result<(), SyncError> {
    database::set_meta(conn, URL_KEY, &s.url)?;
    database::set_meta(conn, FINGERPRINT_KEY, &s.fingerprint)?;
    Ok(())
}

fn number_meta(conn: &Connection, key: &str) -> Result<i64, SyncError> {
    match database::meta(conn, key)? {
        None => Ok(0),
        Some(v) => v.parse().map_err(|_| DatabaseError::Damaged { table: "meta" }.into()),
    }
}

pub(crate) fn pulled(conn: &Connection) -> Result<Vector, SyncError> {
    match database::meta(conn, PULLED)? {
        None => Ok(Vector::new()),
        Some(v) => serde_json::from_str(&v).map_err(|_| DatabaseError::Damaged { table: "meta" }.into()),
    }
}

/// How many of this laptop's changes are in no batch yet, and how many batches
/// wait for the hub's acknowledgement: what the header shows.
pub(crate) fn waiting(conn: &Connection, me: &str) -> Result<(i64, i64), SyncError> {
    let batched = number_meta(conn, BATCHED_CHANGES)?;
    let own = Log::Changes.held(conn, me)?;
    let mut st = conn.prepare("SELECT header, bytes FROM hub_outbox")?;
    let (mut sealed, mut batches) = (0i64, 0i64);
    for row in st.query_map([], |r| Ok((r.get::<_, Option<String>>(0)?, r.get::<_, Vec<u8>>(1)?)))? {
        // Its bytes may be emptied, waiting to be sealed again; its header stays.
        let header = match row? {
            (Some(h), _) => serde_json::from_str(&h).map_err(|_| DatabaseError::Damaged { table: "hub_outbox" })?,
            (None, bytes) => bundle::read_signed(&bytes)?.0,
        };
        sealed += header.changes.get(me).map_or(0, |(first, last)| last - first + 1);
        batches += 1;
    }
    Ok(((own - batched).max(0) + sealed, batches))
}

/// Seal this laptop's next batch of changes and audit entries into the outbox, if
/// it made any since the last one. Returns whether it did.
pub(crate) fn make_batch(tx: &Transaction, me: &str, device_code: &str) -> Result<bool, SyncError> {
    let from_c = number_meta(tx, BATCHED_CHANGES)?;
    let from_a = number_meta(tx, BATCHED_AUDIT)?;
    let upto_c = Log::Changes.held(tx, me)?.min(from_c.saturating_add(BATCH_CHANGES));
    let upto_a = Log::Audit.held(tx, me)?.min(from_a.saturating_add(BATCH_CHANGES));
    if upto_c <= from_c && upto_a <= from_a {
        return Ok(false);
    }
    let (org_id, epoch, key) = org::keys(tx)?;
    let me_id = identity::load(tx)?;
    let number = number_meta(tx, BATCH_NUMBER)? + 1;
    let changes = changelog::range(tx, me, from_c, Some(upto_c))?;
    let entries = own_audit(tx, me, (from_a, upto_a))?;
    let mut header = Header {
        format: bundle::FORMAT,
        org: org_id,
        device: me.to_string(),
        device_code: device_code.to_string(),
        sign_key: me_id.sign_key(),
        kx_key: me_id.kx_key(),
        epoch,
        batch: number,
        created_at: now_utc(),
        changes: Default::default(),
        audit: Default::default(),
        has_changes: vector(tx, Log::Changes)?,
        has_audit: vector(tx, Log::Audit)?,
        audit_head: String::new(),
        epochs: vec![],
    };
    header.audit_head = exchange::own_head(tx, me, &header.has_audit)?;
    if upto_c > from_c {
        header.changes.insert(me.to_string(), (from_c + 1, upto_c));
    }
    if upto_a > from_a {
        header.audit.insert(me.to_string(), (from_a + 1, upto_a));
    }
    let body = Body { changes, audit: entries, devices: devices(tx)?, members: users::members_to_send(tx)? };
    let bytes = bundle::seal(&header, &body, &key, &me_id)?;
    tx.prepare_cached(
        "INSERT INTO hub_outbox (number, bytes, header, sha256, device, own_from, own_to)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![number, bytes, to_text(&header)?, sha256_hex(&bytes), me, from_c + 1, upto_c])?;
    database::set_meta(tx, BATCH_NUMBER, &number.to_string())?;
    database::set_meta(tx, BATCHED_CHANGES, &upto_c.to_string())?;
    database::set_meta(tx, BATCHED_AUDIT, &upto_a.to_string())?;
    Ok(true)
}

/// This laptop's audit entries numbered above `from`, up to `upto`.
fn own_audit(conn: &Connection, me: &str, (from, upto): (i64, i64)) -> Result<Vec<audit::Entry>, SyncError> {
    let mut st = conn.prepare(&format!(
        "SELECT {} FROM audit WHERE device_id = ?1 AND device_seq > ?2 AND device_seq <= ?3 ORDER BY device_seq",
        audit::ENTRY_COLUMNS
    ))?;
    let rows =
        st.query_map(params![crate::database::stored_id(me), from, upto], audit::entry)?.collect::<Result<Vec<_>, _>>();
    Ok(rows.map_err(database::read_error("audit"))?)
}

/// The oldest batch the hub has not acknowledged.
pub(crate) fn next_unacknowledged(conn: &Connection) -> Result<Option<(i64, Vec<u8>)>, SyncError> {
    Ok(conn
        .prepare_cached("SELECT number, bytes FROM hub_outbox ORDER BY number LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// Was batch `number` sealed again after its first sealing? Then a hub holding
/// other bytes under its number holds that first sealing (the only other one
/// this laptop ever made), sent before the laptop heard that it arrived.
pub(crate) fn was_resealed(conn: &Connection, number: i64) -> Result<bool, SyncError> {
    Ok(conn
        .prepare_cached("SELECT first_sha256 IS NOT NULL FROM hub_outbox WHERE number = ?1")?
        .query_row([number], |r| r.get(0))
        .optional()?
        .unwrap_or(false))
}

/// Seal again, from the change log as it is now, every waiting batch that a
/// blanked value emptied (the `hub_outbox_blanked` trigger): the same header,
/// number, ranges and key epoch, without what was replaced, removed or purged.
pub(crate) fn reseal_emptied(tx: &Transaction, me: &str) -> Result<(), SyncError> {
    let emptied: Vec<(i64, String)> = {
        let mut st = tx.prepare_cached(
            "SELECT number, header FROM hub_outbox WHERE length(bytes) = 0 AND header IS NOT NULL ORDER BY number",
        )?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<Vec<_>, _>>()?;
        rows
    };
    if emptied.is_empty() {
        return Ok(());
    }
    let me_id = identity::load(tx)?;
    for (number, header) in emptied {
        let header: Header =
            serde_json::from_str(&header).map_err(|_| DatabaseError::Damaged { table: "hub_outbox" })?;
        let key = org::key_of(tx, header.epoch)?.ok_or(SyncError::Damaged)?;
        let range = |r: Option<&(i64, i64)>| r.map_or((0, 0), |(first, last)| (first - 1, *last));
        let changes = {
            let (from, upto) = range(header.changes.get(me));
            changelog::range(tx, me, from, Some(upto))?
        };
        let audit = own_audit(tx, me, range(header.audit.get(me)))?;
        let body = Body { changes, audit, devices: devices(tx)?, members: users::members_to_send(tx)? };
        let bytes = bundle::seal(&header, &body, &key, &me_id)?;
        tx.prepare_cached("UPDATE hub_outbox SET bytes = ?2, sha256 = ?3 WHERE number = ?1")?.execute(params![
            number,
            bytes,
            sha256_hex(&bytes)
        ])?;
    }
    Ok(())
}

fn to_text(header: &Header) -> Result<String, SyncError> {
    serde_json::to_string(header).map_err(|_| SyncError::Damaged)
}

/// The hub has this batch. Once it has every change this laptop made (`me`),
/// the cases stop saying they wait to be shared, as after a bundle: the
/// organisation's other laptops can get them now.
pub(crate) fn acknowledged(conn: &Connection, me: &str, number: i64) -> Result<(), SyncError> {
    let tx = crate::database::write_tx(conn)?;
    tx.prepare_cached("DELETE FROM hub_outbox WHERE number = ?1")?.execute([number])?;
    // Cheap on purpose (this runs once per batch pushed): the outbox empty, and
    // nothing made since the last batch was sealed.
    let outbox: i64 = tx.prepare_cached("SELECT count(*) FROM hub_outbox")?.query_row([], |r| r.get(0))?;
    let own = Log::Changes.held(&tx, me)?;
    if outbox == 0 && own <= number_meta(&tx, BATCHED_CHANGES)? {
        super::exchange::mark_exported(&tx, own)?;
    }
    tx.commit()?;
    Ok(())
}

/// The hub took the enrolment token.
pub(crate) fn enrolled(conn: &Connection) -> Result<(), SyncError> {
    conn.prepare_cached("DELETE FROM meta WHERE key = ?1")?.execute([ENROL_TOKEN])?;
    Ok(())
}

/// Merge one pulled batch in the caller's transaction, after checking it is what
/// the hub listed: that device's next batch, carrying only its own changes and
/// audit entries (a batch on the hub is never forwarded: each is signed by the
/// device that made every change in it).
pub(crate) fn apply(
    tx: &Transaction,
    me: &str,
    listed: &Listed,
    bytes: &[u8],
    progress: &mut dyn FnMut(usize, usize),
) -> Result<ImportSummary, SyncError> {
    let (header, _) = bundle::read_signed(bytes)?;
    let mut held = pulled(tx)?;
    let expected = held.get(&listed.device).copied().unwrap_or(0) + 1;
    let own_only = header.changes.keys().chain(header.audit.keys()).all(|d| *d == header.device);
    if header.device != listed.device || header.batch != listed.number || listed.number != expected || !own_only {
        return Err(SyncError::Damaged);
    }
    let (summary, _) = exchange::merge(tx, me, bytes, progress)?;
    held.insert(listed.device.clone(), listed.number);
    let text = serde_json::to_string(&held).map_err(|_| DatabaseError::Damaged { table: "meta" })?;
    database::set_meta(tx, PULLED, &text)?;
    Ok(summary)
}

/// What to ask the hub for: the batches merged, and this laptop's own as held.
/// Hex SHA-256 of a batch: how the hub names what it holds.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

pub(crate) fn since(conn: &Connection, me: &str) -> Result<Vector, SyncError> {
    let mut v = pulled(conn)?;
    v.insert(me.to_string(), number_meta(conn, BATCH_NUMBER)?);
    Ok(v)
}
