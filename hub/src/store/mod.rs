//! What the hub keeps, behind one trait with two backends: SQLite in the data
//! folder (the default, one file to back up) and PostgreSQL for organisations that
//! outgrow one box. Both pass the same test suite (`tests/storage.rs`).
//!
//! Nothing here can open a batch: the hub stores sealed bytes, their SHA-256, who
//! signed them and which numbers they carry, the devices' public keys, invitation
//! tokens (as hashes), key epochs sealed to devices, and request nonces.
//!
//! The trait is blocking: the server calls it from `spawn_blocking`, and every
//! method is one transaction, so an answer is given only once it is committed.

mod postgres;
mod sqlite;

pub use self::postgres::PostgresStore;
pub use self::sqlite::SqliteStore;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Per device id: the highest batch number held, with none missing.
pub type Vector = BTreeMap<String, i64>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the setup code is not valid (it works once)")]
    SetupCode,
    #[error("the enrolment token is not known")]
    TokenUnknown,
    #[error("the enrolment token has expired")]
    TokenExpired,
    #[error("the enrolment token was already used")]
    TokenUsed,
    #[error("device code {code} is already in use in this organisation")]
    DeviceCodeTaken { code: String },
    #[error("this device is already enrolled")]
    DeviceTaken,
    #[error("batch {number} of this device was already stored with other bytes")]
    BatchConflict { number: i64 },
    #[error("batch {number} comes before batch {expected}, which is the next one the hub expects")]
    OutOfOrder { number: i64, expected: i64 },
    #[error("the hub's database failed: {0}")]
    Backend(String),
    #[error("the hub's database holds a damaged row in {table}")]
    Damaged { table: &'static str },
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}

impl From<::postgres::Error> for StoreError {
    fn from(e: ::postgres::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}

/// A laptop, as the hub knows it: its public keys, never a name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub id: String,
    pub org: String,
    pub code: String,
    /// Ed25519 public key, hex: checks the device's requests and batches.
    pub sign_key: String,
    /// X25519 public key, hex: what new key epochs are sealed to.
    pub kx_key: String,
    /// May invite and revoke (the organisation's first device, and those it says).
    pub admin: bool,
    /// Unix seconds.
    pub enrolled_at: i64,
    pub last_seen: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// A batch, as the hub indexes it. Its bytes are kept apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchInfo {
    pub device: String,
    /// The device's batch number, 1, 2, 3…: the hub holds them with none missing.
    pub number: i64,
    /// Which organisation key sealed it.
    pub epoch: i64,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    pub len: i64,
}

/// What a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    Stored,
    /// The same bytes were already held: a retried push is harmless.
    AlreadyHeld,
}

/// What `amparo-hub status` prints: counts, no names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub orgs: i64,
    pub devices: i64,
    pub revoked_devices: i64,
    pub batches: i64,
    pub bytes: i64,
}

pub trait HubStore: Send + Sync {
    /// A value of the hub's own (its setup code's hash, its schema version).
    fn meta(&self, key: &str) -> Result<Option<String>, StoreError>;
    fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError>;

    /// Register an organisation and its first (administrator) device, spending the
    /// setup code whose hash is `setup_hash`; it works once.
    fn register_org(&self, setup_hash: &str, org: &str, first: &Device) -> Result<(), StoreError>;

    /// Remember an enrolment token (by its hash) that works once until `expires_at`.
    fn add_invitation(&self, org: &str, token_hash: &str, created_by: &str, expires_at: i64) -> Result<(), StoreError>;

    /// Enrol a device with a token: the token is spent and the device added, or
    /// neither. `device.org` is taken from the token.
    fn enrol(&self, token_hash: &str, device: &Device, now: i64) -> Result<Device, StoreError>;

    fn device(&self, id: &str) -> Result<Option<Device>, StoreError>;
    fn devices(&self, org: &str) -> Result<Vec<Device>, StoreError>;
    /// Refuse the device from now on. False if it is not one of `org`'s.
    fn revoke(&self, org: &str, id: &str, now: i64) -> Result<bool, StoreError>;
    fn seen(&self, id: &str, now: i64) -> Result<(), StoreError>;

    /// Store a batch: number 1 or the one after the device's last, or the same
    /// bytes as a batch already held. Returns once the batch is committed.
    fn put_batch(&self, org: &str, info: &BatchInfo, bytes: &[u8], now: i64) -> Result<Put, StoreError>;
    /// Per device of `org`, the last batch number held.
    fn vector(&self, org: &str) -> Result<Vector, StoreError>;
    /// Up to `limit` batches of `org` above `since`, in order per device.
    fn batches_since(&self, org: &str, since: &Vector, limit: usize) -> Result<Vec<BatchInfo>, StoreError>;
    fn batch(&self, org: &str, device: &str, number: i64) -> Result<Option<Vec<u8>>, StoreError>;

    /// Store key epoch `number` (sealed to the devices); numbers follow each other.
    fn put_epoch(&self, org: &str, number: i64, bytes: &[u8], now: i64) -> Result<Put, StoreError>;
    fn epochs(&self, org: &str) -> Result<Vec<(i64, Vec<u8>)>, StoreError>;

    /// Remember a request nonce. False if the device used it already since
    /// `forget_before` (older nonces are forgotten: the timestamp check refuses
    /// their requests anyway).
    fn use_nonce(&self, device: &str, nonce: &str, now: i64, forget_before: i64) -> Result<bool, StoreError>;

    fn stats(&self) -> Result<Stats, StoreError>;
}

/// Hex SHA-256: how tokens, setup codes and batches are named (the core's, so
/// that laptop and hub name a batch alike).
pub use amparo::sync::hub::sha256_hex;

/// The schema, written for both backends: the few differences are filled in.
fn schema(blob: &str, serial: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS orgs (id TEXT PRIMARY KEY, created_at BIGINT NOT NULL);
         CREATE TABLE IF NOT EXISTS devices (
             id TEXT PRIMARY KEY,
             org TEXT NOT NULL REFERENCES orgs (id),
             code TEXT NOT NULL,
             sign_key TEXT NOT NULL,
             kx_key TEXT NOT NULL,
             admin BOOLEAN NOT NULL,
             enrolled_at BIGINT NOT NULL,
             last_seen BIGINT,
             revoked_at BIGINT,
             UNIQUE (org, code));
         CREATE TABLE IF NOT EXISTS invitations (
             token_hash TEXT PRIMARY KEY,
             org TEXT NOT NULL REFERENCES orgs (id),
             created_by TEXT NOT NULL,
             expires_at BIGINT NOT NULL,
             used_by TEXT,
             used_at BIGINT);
         CREATE TABLE IF NOT EXISTS batches (
             serial {serial},
             org TEXT NOT NULL REFERENCES orgs (id),
             device TEXT NOT NULL REFERENCES devices (id),
             number BIGINT NOT NULL,
             epoch BIGINT NOT NULL,
             sha256 TEXT NOT NULL,
             len BIGINT NOT NULL,
             bytes {blob} NOT NULL,
             received_at BIGINT NOT NULL,
             UNIQUE (device, number));
         CREATE TABLE IF NOT EXISTS epochs (
             org TEXT NOT NULL REFERENCES orgs (id),
             number BIGINT NOT NULL,
             bytes {blob} NOT NULL,
             created_at BIGINT NOT NULL,
             PRIMARY KEY (org, number));
         CREATE TABLE IF NOT EXISTS nonces (
             device TEXT NOT NULL,
             nonce TEXT NOT NULL,
             at BIGINT NOT NULL,
             PRIMARY KEY (device, nonce));
         CREATE INDEX IF NOT EXISTS nonces_at ON nonces (at);"
    )
}

/// What a push of batch `number` means, given the device's last batch and, when
/// the number is held, the hash held for it.
fn judge_put(info: &BatchInfo, last: i64, held: Option<&str>) -> Result<Option<Put>, StoreError> {
    match held {
        Some(h) if h == info.sha256 => Ok(Some(Put::AlreadyHeld)),
        Some(_) => Err(StoreError::BatchConflict { number: info.number }),
        None if info.number == last + 1 => Ok(None),
        None => Err(StoreError::OutOfOrder { number: info.number, expected: last + 1 }),
    }
}

/// The same for a key epoch.
fn judge_epoch(number: i64, last: i64, held: Option<&[u8]>, bytes: &[u8]) -> Result<Option<Put>, StoreError> {
    match held {
        Some(h) if h == bytes => Ok(Some(Put::AlreadyHeld)),
        Some(_) => Err(StoreError::BatchConflict { number }),
        None if number == last + 1 => Ok(None),
        None => Err(StoreError::OutOfOrder { number, expected: last + 1 }),
    }
}
