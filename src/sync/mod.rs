//! Sync between the laptops of one organisation, with no network: each laptop
//! writes the changes the others may not have into an encrypted *bundle* file, and
//! reads theirs. The same batches can later travel through a hub.
//!
//! - [`log`]: the change log written with every save, and the merge rules;
//! - [`flat`]: a case as the fields that change and merge;
//! - [`hlc`]: the hybrid logical clock that orders changes;
//! - [`bundle`]: the file format (`docs/sync-bundle.md`);
//! - [`org`]: the organisation's sync key, and invitations to join it;
//! - [`identity`]: this laptop's signing and key-agreement keys, and the others';
//! - [`epoch`]: new organisation keys after a revocation, sealed to each device;
//! - [`folder`]: the USB stick or shared folder bundles travel through.
//!
//! Importing is safe in any order and any number of times: a change is identified
//! by its device and sequence number, so one already held is skipped, and the
//! merged case is a function of the set of changes held, not of their order.

pub mod bundle;
pub mod epoch;
pub(crate) mod exchange;
pub mod folder;
pub mod hub;
pub mod identity;
pub mod org;

use crate::changelog::{self, Change};
use crate::database::{self, now_utc, DatabaseError};
use crate::i18n::Localized;
use crate::repositories::audit;
use bundle::Vector;
use rusqlite::{params, Connection};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, thiserror::Error)]
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
    /// A clock this far ahead would win every merge and could overflow ours.
    #[error("the bundle from {device_code} was written with a clock more than a day ahead of this laptop's")]
    ClockAhead { device_code: String },
    /// Format 1 and 2 bundles carry no signature: anyone who ever held the
    /// organisation key could have written them.
    #[error("the bundle from {device_code} is not signed: it was written by an older Amparo; update that laptop and write a new bundle there")]
    Unsigned { device_code: String },
    #[error("the bundle that says it is from {device_code} is signed with another key than that laptop's: it is forged; do not use it, and tell an administrator")]
    WrongSigner { device_code: String },
    #[error("the bundle is from {device_code}, a laptop that was revoked: nothing in it is taken")]
    Revoked { device_code: String },
    #[error("the activity log from {device_code} does not continue that laptop's log: it was altered; nothing in the bundle is taken, tell an administrator")]
    AuditChain { device_code: String },
    /// Its entry `number` differs from the copy this laptop received earlier.
    #[error("the activity log of {device_code} was rewritten after this laptop received it (entry {number} differs): nothing in the bundle is taken; tell an administrator")]
    AuditRewritten { device_code: String, device_id: String, number: i64, seen_hash: String },
    #[error("the hub at {url} does not answer; work goes on here and is sent when it answers again")]
    HubUnreachable { url: String },
    #[error("the hub at {url} shows another certificate than the one this laptop trusts: it may be an impostor; nothing was sent. Ask an administrator to check the hub")]
    HubCertificate { url: String },
    #[error("the hub's address {url} does not start with https://: nothing is sent to it")]
    HubAddress { url: String },
    #[error("the hub refused this laptop: it was revoked. Ask an administrator")]
    HubRevoked,
    #[error("the hub refused the request ({reason}); ask an administrator")]
    HubRefused { reason: String },
    #[error("the hub did not accept the setup code: it works once; the hub prints a new one at its next start, or with amparo-hub setup-code")]
    HubSetupCode,
    #[error("the enrolment token was refused: it is unknown, already used or expired; ask an administrator for a new invitation")]
    HubToken,
    #[error("device code {code} is already in use on the hub, so this laptop was not enrolled; ask an administrator")]
    HubDeviceCode { code: String },
    #[error("this laptop is not connected to a hub yet")]
    NoHub,
    #[error("what {device_code} sent is sealed under an organisation key this laptop was not given; ask an administrator to sync their laptop, then sync again")]
    EpochKey { device_code: String },
    #[error(
        "the key change said to be from {device_code} is not genuine: nothing of it was taken; tell an administrator"
    )]
    EpochForged { device_code: String },
    /// No form could have written this value (too large, or the wrong kind): damage
    /// or an attack, so nothing of the batch is taken.
    #[error("what {device_code} sent for the field {field} is larger than any form allows or of the wrong kind: nothing of it was taken; tell an administrator")]
    OutOfBounds { device_code: String, field: String },
    #[error(transparent)]
    Database(#[from] DatabaseError),
}

impl From<rusqlite::Error> for SyncError {
    fn from(e: rusqlite::Error) -> Self {
        SyncError::Database(DatabaseError::Sql(e))
    }
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
            SyncError::ClockAhead { .. } => "error.sync.clock_ahead",
            SyncError::Unsigned { .. } => "error.sync.unsigned",
            SyncError::WrongSigner { .. } => "error.sync.wrong_signer",
            SyncError::Revoked { .. } => "error.sync.revoked",
            SyncError::AuditChain { .. } => "error.sync.audit_chain",
            SyncError::AuditRewritten { .. } => "error.sync.audit_rewritten",
            SyncError::HubUnreachable { .. } => "error.sync.hub_unreachable",
            SyncError::HubCertificate { .. } => "error.sync.hub_certificate",
            SyncError::HubAddress { .. } => "error.sync.hub_address",
            SyncError::HubRevoked => "error.sync.hub_revoked",
            SyncError::HubRefused { .. } => "error.sync.hub_refused",
            SyncError::HubSetupCode => "error.sync.hub_setup_code",
            SyncError::HubToken => "error.sync.hub_token",
            SyncError::HubDeviceCode { .. } => "error.sync.hub_device_code",
            SyncError::NoHub => "error.sync.no_hub",
            SyncError::EpochKey { .. } => "error.sync.epoch_key",
            SyncError::EpochForged { .. } => "error.sync.epoch_forged",
            SyncError::OutOfBounds { .. } => "error.sync.out_of_bounds",
            SyncError::Database(e) => e.i18n_key(),
        }
    }
    fn args(&self) -> Vec<(&'static str, String)> {
        match self {
            SyncError::NewerFormat { found, supported } => {
                vec![("found", found.to_string()), ("supported", supported.to_string())]
            }
            SyncError::DeviceCodeClash { number } => vec![("number", number.clone())],
            SyncError::ClockAhead { device_code }
            | SyncError::Unsigned { device_code }
            | SyncError::WrongSigner { device_code }
            | SyncError::Revoked { device_code }
            | SyncError::AuditChain { device_code }
            | SyncError::EpochKey { device_code }
            | SyncError::EpochForged { device_code } => vec![("device", device_code.clone())],
            SyncError::HubUnreachable { url } | SyncError::HubCertificate { url } | SyncError::HubAddress { url } => {
                vec![("url", url.clone())]
            }
            SyncError::AuditRewritten { device_code, number, .. } => {
                vec![("device", device_code.clone()), ("number", number.to_string())]
            }
            SyncError::HubRefused { reason } => vec![("reason", reason.clone())],
            SyncError::HubDeviceCode { code } => vec![("code", code.clone())],
            SyncError::OutOfBounds { device_code, field } => {
                vec![("device", device_code.clone()), ("field", field.clone())]
            }
            SyncError::Database(e) => e.args(),
            _ => vec![],
        }
    }
}

pub(crate) const EXPORTED_KEY: &str = "sync_exported_seq";
pub(crate) const BACKFILLED_KEY: &str = "sync_log_since";

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
    /// Users of the organisation's other laptops added, changed or removed.
    pub members: usize,
}

impl ImportSummary {
    /// Add up what several imports did (the device is the last one's).
    pub fn add(&mut self, other: &ImportSummary) {
        self.device_code.clone_from(&other.device_code);
        self.changes += other.changes;
        self.new_cases += other.new_cases;
        self.updated_cases += other.updated_cases;
        self.removed_cases += other.removed_cases;
        self.conflicts += other.conflicts;
        self.directory_entries += other.directory_entries;
    }
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
    /// This laptop's form does not accept the value (a code it does not know, a
    /// text too long): shown for review, it cannot be kept as it is.
    pub held: bool,
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
pub(crate) fn ensure_ready(conn: &mut Connection) -> Result<(), SyncError> {
    let tx = crate::database::write_tx(conn)?;
    org::ensure(&tx)?;
    identity::ensure(&tx)?;
    if database::meta(&tx, BACKFILLED_KEY)?.is_none() {
        crate::repositories::cases::backfill(&tx)?;
        database::set_meta(&tx, BACKFILLED_KEY, &now_utc())?;
    }
    tx.commit()?;
    Ok(())
}

/// The two logs a bundle carries, each numbered from 1 per device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Log {
    Changes,
    Audit,
}

impl Log {
    /// Every device this laptop holds rows of.
    fn devices(self, conn: &Connection) -> Result<Vec<String>, SyncError> {
        Ok(match self {
            Log::Changes => changelog::devices(conn)?,
            Log::Audit => audit::devices(conn)?,
        })
    }

    /// The longest run 1..=n of a device's rows held here.
    pub(crate) fn held(self, conn: &Connection, device: &str) -> Result<i64, SyncError> {
        Ok(match self {
            Log::Changes => changelog::held(conn, device)?,
            Log::Audit => audit::held(conn, device)?,
        })
    }
}

pub(crate) fn vector(conn: &Connection, log: Log) -> Result<Vector, SyncError> {
    let mut out = Vector::new();
    for d in log.devices(conn)? {
        let n = log.held(conn, &d)?;
        if n > 0 {
            out.insert(d, n);
        }
    }
    Ok(out)
}

/// Per device, the highest number every laptop this one has heard from holds:
/// what a bundle can leave out. Nothing, if it has heard from none.
pub(crate) fn floors(conn: &Connection, own: &str, column: &str) -> Result<Option<Vector>, SyncError> {
    let mut st = conn.prepare(&format!("SELECT {column} FROM sync_peers WHERE device_id != ?1"))?;
    let mut peers: Vec<Vector> = Vec::new();
    for text in st.query_map([own], |r| r.get::<_, String>(0))? {
        let vector = serde_json::from_str(&text?).map_err(|_| DatabaseError::Damaged { table: "sync_peers" })?;
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

pub(crate) type Ranges = BTreeMap<String, (i64, i64)>;

/// Every change above each device's floor, of every device this laptop holds
/// changes of, with the range of numbers per device.
pub(crate) fn changes_above(conn: &Connection, floors: Option<&Vector>) -> Result<(Vec<Change>, Ranges), SyncError> {
    let (mut out, mut ranges) = (Vec::new(), Ranges::new());
    for d in Log::Changes.devices(conn)? {
        let from = floors.and_then(|f| f.get(&d)).copied().unwrap_or(0);
        let rows = changelog::range(conn, &d, from, None)?;
        if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
            ranges.insert(d, (first.seq, last.seq));
        }
        out.extend(rows);
    }
    Ok((out, ranges))
}

/// Every audit entry above each device's floor, as [`changes_above`].
pub(crate) fn audit_above(
    conn: &Connection,
    floors: Option<&Vector>,
) -> Result<(Vec<audit::Entry>, Ranges), SyncError> {
    let mut st = conn.prepare(&format!(
        "SELECT {} FROM audit WHERE device_id = ?1 AND device_seq > ?2 ORDER BY device_seq",
        audit::ENTRY_COLUMNS
    ))?;
    let (mut out, mut ranges) = (Vec::new(), Ranges::new());
    for d in Log::Audit.devices(conn)? {
        let from = floors.and_then(|f| f.get(&d)).copied().unwrap_or(0);
        let rows = st
            .query_map(params![crate::database::stored_id(&d), from], audit::entry)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(database::read_error("audit"))?;
        if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
            ranges.insert(d, (first.device_seq, last.device_seq));
        }
        out.extend(rows);
    }
    Ok((out, ranges))
}

pub(crate) fn devices(conn: &Connection) -> Result<BTreeMap<String, String>, SyncError> {
    let mut st = conn.prepare("SELECT device_id, device_code FROM sync_devices")?;
    let d = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<BTreeMap<_, _>, _>>()?;
    Ok(d)
}

#[cfg(test)]
mod tests;
