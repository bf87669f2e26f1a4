//! Key epochs: how a revoked laptop is shut out of everything written after it.
//!
//! When an administrator revokes a laptop, her laptop makes a new organisation key
//! and a *record* of it: that key and the older ones sealed to each remaining
//! device's X25519 key (an
//! ephemeral X25519 key, SHA-256 of the shared secret and both public keys, then
//! XChaCha20-Poly1305), the list of revoked devices with the last of their batches
//! still taken, a proof that its maker held the previous epoch's key, and the
//! maker's Ed25519 signature over all of it. The record holds no key in the clear,
//! so it travels through the hub and in the clear header of bundles. From then on
//! every laptop seals what it writes under the newest key it holds; older batches
//! stay readable with the older keys, which every current laptop keeps.
//!
//! ```text
//! record JSON (Record)  ‖  64-byte Ed25519 signature by the maker over the JSON
//! ```

use super::identity::{self, Identity, SIGNATURE_LEN};
use super::{org, SyncError};
use crate::database::{self, now_utc, DatabaseError};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand::RngCore;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use zeroize::Zeroizing;

pub const FORMAT: &str = "amparo.epoch/1";
/// A record is a few hundred bytes per device; anything near this is not one.
pub const MAX_RECORD: usize = 1 << 20;
/// More devices than any organisation has: a bound on the work a record costs.
const MAX_DEVICES: usize = 4096;
const NONCE_LEN: usize = 24;

/// One key epoch, as signed by the laptop that made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub format: String,
    pub org: String,
    /// 1, 2, 3…: epoch 0 is the key the organisation began with.
    pub number: u32,
    /// The device that made it, its code and public keys.
    pub maker: String,
    pub maker_code: String,
    pub sign_key: String,
    pub kx_key: String,
    pub created_at: String,
    /// Every device revoked so far (not only by this record).
    pub revoked: BTreeMap<String, Revoked>,
    /// Hex X25519 public key the seals are made with.
    pub ephemeral: String,
    /// Device id → hex of nonce ‖ the new key sealed to that device.
    pub seals: BTreeMap<String, String>,
    /// Hex of nonce ‖ tag: an empty message sealed under the previous epoch's key,
    /// with the record (this field empty) as associated data. Only a laptop of the
    /// organisation can make it.
    pub proof: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoked {
    pub code: String,
    /// The last of its batches the hub held when it was revoked: those are still
    /// taken, nothing after them.
    pub last_batch: i64,
}

fn hex32(s: &str) -> Option<[u8; 32]> {
    hex::decode(s).ok()?.try_into().ok()
}

fn seal_key(shared: &[u8; 32], org: &str, number: u32, device: &str, ephemeral: &[u8; 32], their: &[u8; 32]) -> Key {
    let mut h = Sha256::new();
    h.update(FORMAT.as_bytes());
    h.update([0]);
    h.update(org.as_bytes());
    h.update([0]);
    h.update(number.to_le_bytes());
    h.update(device.as_bytes());
    h.update([0]);
    h.update(ephemeral);
    h.update(their);
    h.update(shared);
    Key::clone_from_slice(&h.finalize())
}

fn seal_aad(org: &str, number: u32, device: &str) -> String {
    format!("{FORMAT}:{org}:{number}:{device}")
}

/// What the proof is made over: the record with its proof empty.
fn proof_aad(r: &Record) -> Result<[u8; 32], SyncError> {
    let blank = Record { proof: String::new(), ..r.clone() };
    let bytes = serde_json::to_vec(&blank).map_err(|_| SyncError::Damaged)?;
    Ok(Sha256::digest(bytes).into())
}

fn random_nonce() -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut n);
    n
}

/// Read a record and check its signature and bounds. Nothing is trusted yet: who
/// made it is the caller's to check (with [`apply`]).
pub fn read(bytes: &[u8]) -> Result<Record, SyncError> {
    if bytes.len() > MAX_RECORD || bytes.len() <= SIGNATURE_LEN {
        return Err(SyncError::Damaged);
    }
    let (json, signature) = bytes.split_at(bytes.len() - SIGNATURE_LEN);
    let r: Record = serde_json::from_slice(json).map_err(|_| SyncError::Damaged)?;
    let ok = r.format == FORMAT
        && r.number >= 1
        && r.seals.len() <= MAX_DEVICES
        && r.revoked.len() <= MAX_DEVICES
        && identity::verify(&r.sign_key, json, signature);
    if !ok {
        return Err(SyncError::Damaged);
    }
    Ok(r)
}

/// Every record this laptop holds, oldest first: what a bundle carries.
pub(crate) fn records(conn: &Connection) -> Result<Vec<Vec<u8>>, SyncError> {
    let mut st = conn.prepare("SELECT record FROM org_epochs WHERE record IS NOT NULL ORDER BY number")?;
    let rows = st.query_map([], |r| r.get(0))?.collect::<Result<Vec<Vec<u8>>, _>>()?;
    Ok(rows)
}

/// The newest epoch this laptop knows of, whether or not it holds its key.
pub(crate) fn latest(conn: &Connection) -> Result<u32, SyncError> {
    Ok(conn.prepare_cached("SELECT coalesce(max(number), 0) FROM org_epochs")?.query_row([], |r| r.get(0))?)
}

/// The newest record this laptop holds (0: none): what it asks the hub for above.
pub(crate) fn latest_record(conn: &Connection) -> Result<u32, SyncError> {
    Ok(conn
        .prepare_cached("SELECT coalesce(max(number), 0) FROM org_epochs WHERE record IS NOT NULL")?
        .query_row([], |r| r.get(0))?)
}

fn held_record(conn: &Connection, number: u32) -> Result<Option<Vec<u8>>, SyncError> {
    let r: Option<Option<Vec<u8>>> = conn
        .prepare_cached("SELECT record FROM org_epochs WHERE number = ?1")?
        .query_row([number], |r| r.get(0))
        .optional()?;
    Ok(r.flatten())
}

/// Take in a record: check it continues what this laptop holds, that its maker
/// held the previous key and is a device of the organisation not revoked, mark the
/// devices it revokes, and keep the new key if it was sealed to this laptop.
/// Returns false for a record already held.
pub(crate) fn apply(conn: &Connection, bytes: &[u8]) -> Result<bool, SyncError> {
    let r = read(bytes)?;
    let (org_id, _, _) = org::keys(conn)?;
    if r.org != org_id {
        return Err(SyncError::ForeignOrg);
    }
    let maker_code = r.maker_code.clone();
    match held_record(conn, r.number)? {
        Some(held) if held == bytes => return Ok(false),
        // Two different records of one epoch: one of them is not the
        // administrator's.
        Some(_) => return Err(SyncError::EpochForged { device_code: maker_code }),
        None => {}
    }
    // The maker is trusted as a bundle's writer is: never once revoked, by the
    // key pinned for it, or else pinned now because the proof shows it held the
    // organisation's previous key. A laptop that enrolled after that key was made
    // has only the pinned key to go by (its inviter's, at least).
    let pinned = match identity::known(conn, &r.maker)? {
        Some(k) if k.revoked => return Err(SyncError::Revoked { device_code: maker_code }),
        Some(identity::Known { sign_key: Some(pinned), .. }) if pinned != r.sign_key => {
            return Err(SyncError::WrongSigner { device_code: maker_code })
        }
        Some(identity::Known { sign_key: Some(_), .. }) => true,
        _ => false,
    };
    match org::key_of(conn, r.number - 1)? {
        Some(previous) => check_proof(&r, &previous)?,
        None if pinned => {}
        None => return Err(SyncError::EpochKey { device_code: maker_code }),
    }
    identity::pin(conn, &r.maker, &r.maker_code, &r.sign_key, &r.kx_key)?;
    for (device, gone) in &r.revoked {
        conn.prepare_cached(
            "INSERT INTO sync_devices (device_id, device_code, revoked_at, revoked_after) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (device_id) DO UPDATE SET revoked_at = coalesce(revoked_at, excluded.revoked_at),
                 revoked_after = coalesce(revoked_after, excluded.revoked_after)",
        )?
        .execute(params![device, gone.code, r.created_at, gone.last_batch])?;
    }
    let me = database::required_meta(conn, "device_id")?;
    let keys = match r.seals.get(&me) {
        Some(sealed) => open_seal(conn, &r, &me, sealed)?,
        None => Vec::new(),
    };
    for (epoch, key) in keys.iter().filter(|(n, _)| *n != r.number) {
        org::put_key(conn, *epoch, Some(key), None)?;
    }
    let new = keys.iter().find(|(n, _)| *n == r.number).map(|(_, k)| &**k);
    org::put_key(conn, r.number, new, Some(bytes))?;
    Ok(true)
}

/// Every key a seal carries: the new epoch's and each older one the maker held
/// (so a laptop that enrolled late reads what was written before), as
/// `epoch (u32, little-endian) ‖ key (32 bytes)` one after another.
const ENTRY_LEN: usize = 36;

/// The record's proof opens under the previous epoch's key.
fn check_proof(r: &Record, previous: &[u8; 32]) -> Result<(), SyncError> {
    let forged = || SyncError::EpochForged { device_code: r.maker_code.clone() };
    let proof = hex::decode(&r.proof).map_err(|_| forged())?;
    if proof.len() < NONCE_LEN {
        return Err(forged());
    }
    let (nonce, tag) = proof.split_at(NONCE_LEN);
    let aad = proof_aad(r)?;
    XChaCha20Poly1305::new(Key::from_slice(previous))
        .decrypt(XNonce::from_slice(nonce), Payload { msg: tag, aad: &aad })
        .map_err(|_| forged())?;
    Ok(())
}

type Keys = Vec<(u32, Zeroizing<[u8; 32]>)>;

fn open_seal(conn: &Connection, r: &Record, me: &str, sealed: &str) -> Result<Keys, SyncError> {
    let forged = || SyncError::EpochForged { device_code: r.maker_code.clone() };
    let identity = identity::load(conn)?;
    let ephemeral = hex32(&r.ephemeral).ok_or_else(forged)?;
    let mine = hex32(&identity.kx_key()).ok_or(SyncError::Database(DatabaseError::Damaged { table: "meta" }))?;
    let shared = identity.agree(&ephemeral).ok_or_else(forged)?;
    let bytes = hex::decode(sealed).map_err(|_| forged())?;
    if bytes.len() < NONCE_LEN {
        return Err(forged());
    }
    let (nonce, ct) = bytes.split_at(NONCE_LEN);
    let aad = seal_aad(&r.org, r.number, me);
    let plain = Zeroizing::new(
        XChaCha20Poly1305::new(&seal_key(&shared, &r.org, r.number, me, &ephemeral, &mine))
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: aad.as_bytes() })
            .map_err(|_| forged())?,
    );
    if plain.is_empty() || plain.len() % ENTRY_LEN != 0 {
        return Err(forged());
    }
    let mut keys = Keys::new();
    for entry in plain.chunks_exact(ENTRY_LEN) {
        let mut n = [0u8; 4];
        n.copy_from_slice(&entry[..4]);
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&entry[4..]);
        keys.push((u32::from_le_bytes(n), key));
    }
    if keys.iter().all(|(n, _)| *n != r.number) || keys.iter().any(|(n, _)| *n > r.number) {
        return Err(forged());
    }
    Ok(keys)
}

/// The devices a new epoch is sealed to: every one this laptop knows the keys of
/// and that is not revoked, itself included.
fn recipients(conn: &Connection, revoked: &BTreeMap<String, Revoked>) -> Result<BTreeMap<String, String>, SyncError> {
    let mut st = conn.prepare(
        "SELECT device_id, kx_key FROM sync_devices WHERE kx_key IS NOT NULL AND revoked_at IS NULL ORDER BY device_id",
    )?;
    let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let all = rows.collect::<Result<BTreeMap<_, _>, _>>()?;
    Ok(all.into_iter().filter(|(d, _)| !revoked.contains_key(d)).collect())
}

/// The revocations the newest record this laptop holds lists.
fn revoked_so_far(conn: &Connection) -> Result<BTreeMap<String, Revoked>, SyncError> {
    let newest: Option<Vec<u8>> = conn
        .prepare_cached("SELECT record FROM org_epochs WHERE record IS NOT NULL ORDER BY number DESC LIMIT 1")?
        .query_row([], |r| r.get(0))
        .optional()?;
    match newest {
        Some(bytes) => Ok(read(&bytes)?.revoked),
        None => Ok(BTreeMap::new()),
    }
}

/// Does the newest epoch leave out a device this laptop knows and that is not
/// revoked (it enrolled after the epoch was made)? Then a new one is due, or that
/// laptop could not read what is written from now on.
pub(crate) fn leaves_out_someone(conn: &Connection) -> Result<bool, SyncError> {
    let number = latest(conn)?;
    if number == 0 {
        return Ok(false);
    }
    // Only a laptop holding the newest key can hand it on.
    let Some(bytes) = held_record(conn, number)?.filter(|_| org::key_of(conn, number).is_ok_and(|k| k.is_some()))
    else {
        return Ok(false);
    };
    let r = read(&bytes)?;
    Ok(recipients(conn, &r.revoked)?.keys().any(|d| !r.seals.contains_key(d)))
}

/// Make the next epoch (not kept yet: the caller keeps it with [`apply`] once the
/// hub took it), revoking `revoke` too if given. `me` is this laptop's device id
/// and code.
pub(crate) fn make(conn: &Connection, me: (&str, &str), revoke: Option<(&str, Revoked)>) -> Result<Vec<u8>, SyncError> {
    let (org_id, _, _) = org::keys(conn)?;
    let number = latest(conn)?.checked_add(1).ok_or(SyncError::Damaged)?;
    let previous = org::key_of(conn, number - 1)?.ok_or(SyncError::EpochKey { device_code: me.1.to_string() })?;
    let identity = identity::load(conn)?;
    let mut revoked = revoked_so_far(conn)?;
    if let Some((device, gone)) = revoke {
        revoked.insert(device.to_string(), gone);
    }
    let key = crate::database::keys::new_data_key();
    let mut plain = Zeroizing::new(Vec::new());
    for (n, hexed) in org::all_keys(conn)? {
        let old =
            Zeroizing::new(hex::decode(hexed.as_str()).map_err(|_| DatabaseError::Damaged { table: "org_epochs" })?);
        if old.len() != 32 {
            return Err(DatabaseError::Damaged { table: "org_epochs" }.into());
        }
        plain.extend_from_slice(&n.to_le_bytes());
        plain.extend_from_slice(&old);
    }
    plain.extend_from_slice(&number.to_le_bytes());
    plain.extend_from_slice(key.as_ref());
    let ephemeral = x25519_dalek::StaticSecret::random_from_rng(rand::rngs::OsRng);
    let ephemeral_pub = x25519_dalek::PublicKey::from(&ephemeral).to_bytes();
    let mut seals = BTreeMap::new();
    for (device, kx) in recipients(conn, &revoked)? {
        // A device whose key is not a usable X25519 key gets no seal; it could not
        // have made that key itself.
        let Some(their) = hex32(&kx) else { continue };
        let shared = ephemeral.diffie_hellman(&x25519_dalek::PublicKey::from(their));
        if !shared.was_contributory() {
            continue;
        }
        let nonce = random_nonce();
        let aad = seal_aad(&org_id, number, &device);
        let sealed =
            XChaCha20Poly1305::new(&seal_key(shared.as_bytes(), &org_id, number, &device, &ephemeral_pub, &their))
                .encrypt(XNonce::from_slice(&nonce), Payload { msg: &plain, aad: aad.as_bytes() })
                .map_err(|_| SyncError::Damaged)?;
        seals.insert(device, hex::encode([nonce.as_slice(), &sealed].concat()));
    }
    let mut record = Record {
        format: FORMAT.into(),
        org: org_id,
        number,
        maker: me.0.to_string(),
        maker_code: me.1.to_string(),
        sign_key: identity.sign_key(),
        kx_key: identity.kx_key(),
        created_at: now_utc(),
        revoked,
        ephemeral: hex::encode(ephemeral_pub),
        seals,
        proof: String::new(),
    };
    let nonce = random_nonce();
    let tag = XChaCha20Poly1305::new(Key::from_slice(previous.as_ref()))
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: &[], aad: &proof_aad(&record)? })
        .map_err(|_| SyncError::Damaged)?;
    record.proof = hex::encode([nonce.as_slice(), &tag].concat());
    signed(&record, &identity)
}

fn signed(record: &Record, by: &Identity) -> Result<Vec<u8>, SyncError> {
    let mut bytes = serde_json::to_vec(record).map_err(|_| SyncError::Damaged)?;
    let signature = by.sign(&bytes);
    bytes.extend_from_slice(&signature);
    Ok(bytes)
}
