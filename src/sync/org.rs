//! The organisation: its id and its sync key, and invitations to join it.
//!
//! The first laptop of an organisation makes a random 256-bit sync key; bundles are
//! sealed under it, so laptops of another organisation can never read them. When a
//! laptop is revoked, a new key *epoch* replaces it ([`super::epoch`]); every key
//! lives in the encrypted store (`org_epochs`), never in a file of its own. A new laptop
//! gets it from an *invitation*: a small file with the key sealed (Argon2id and
//! XChaCha20-Poly1305, as the store's own keys) under a one-time passphrase that the
//! administrator reads out or writes down, and that never travels with the file.

use super::SyncError;
use crate::database::keys::{self, KdfParams, WrappedKey};
use crate::database::{self, new_id, DatabaseError};
use crate::repositories::users::Authority;
use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use zeroize::Zeroizing;

pub const INVITE_FORMAT: &str = "amparo.invite/1";
/// 4 groups of 5: 100 random bits, behind Argon2id.
pub const INVITE_GROUPS: usize = 4;
const ORG_ID: &str = "org_id";

/// An invitation file. In the clear: only the format and the organisation's id.
/// The organisation's name and the device codes in use (so the new laptop picks
/// another) are sealed under the organisation key, which is itself sealed under the
/// one-time passphrase: a lost file names no shelter.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Invitation {
    pub format: String,
    pub org_id: String,
    pub key: WrappedKey,
    /// Hex of nonce ‖ XChaCha20-Poly1305(org key, [`About`] as JSON).
    pub about: String,
}

/// What an invitation says about the organisation, once opened.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct About {
    pub org: String,
    pub device_codes: Vec<String>,
    /// The hub to enrol with, and the one-time token for it (sealed: it is a key
    /// to the hub until it is used or expires).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub: Option<super::hub::HubInvite>,
    /// Every key epoch's key (hex), so the new laptop reads what was written
    /// before it joined; the newest is the one sealed under the passphrase.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub keys: BTreeMap<u32, String>,
    /// The inviting laptop's device and public keys, pinned by the new laptop: the
    /// first device it trusts without having read its batches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inviter: Option<Inviter>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Inviter {
    pub device: String,
    pub code: String,
    pub sign_key: String,
    pub kx_key: String,
}

/// An opened invitation.
pub struct Opened {
    pub org_id: String,
    pub about: About,
    pub key: keys::DataKey,
    /// The organisation's role authority: the new laptop signs its users' roles
    /// with the same key, so that a role granted on any laptop checks on every one.
    /// `None` from an older Amparo's invitation.
    pub authority: Option<Authority>,
}

fn seal_about(about: &About, key: &[u8; 32], org_id: &str) -> Result<String, SyncError> {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    use rand::RngCore;
    let plain = serde_json::to_vec(about).map_err(|_| SyncError::Database(DatabaseError::KeyFile("seal".into())))?;
    let mut nonce = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let sealed = chacha20poly1305::XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(key))
        .encrypt(chacha20poly1305::XNonce::from_slice(&nonce), Payload { msg: &plain, aad: seal_id(org_id).as_bytes() })
        .map_err(|_| SyncError::Database(DatabaseError::KeyFile("seal".into())))?;
    Ok(hex::encode([nonce.as_slice(), &sealed].concat()))
}

pub(super) fn open_about(hexed: &str, key: &[u8; 32], org_id: &str) -> Option<About> {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    let bytes = hex::decode(hexed).ok()?;
    if bytes.len() < 24 {
        return None;
    }
    let (nonce, sealed) = bytes.split_at(24);
    let plain = chacha20poly1305::XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(key))
        .decrypt(chacha20poly1305::XNonce::from_slice(nonce), Payload { msg: sealed, aad: seal_id(org_id).as_bytes() })
        .ok()?;
    serde_json::from_slice(&plain).ok()
}

fn seal_id(org_id: &str) -> String {
    format!("invite:{org_id}")
}

/// Give the store an organisation key if it has none (the first laptop, or a store
/// from before sync), and record this device among the organisation's devices.
pub(crate) fn ensure(conn: &Connection) -> Result<(), SyncError> {
    let has_key: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM org_epochs WHERE key IS NOT NULL)")?
        .query_row([], |r| r.get(0))?;
    if !has_key {
        let key = keys::new_data_key();
        database::set_meta(conn, ORG_ID, &new_id())?;
        put_key(conn, 0, Some(&key), None)?;
    }
    conn.prepare_cached(
        "INSERT INTO sync_devices (device_id, device_code)
         SELECT d.value, c.value FROM meta d, meta c WHERE d.key = 'device_id' AND c.key = 'device_code'
         ON CONFLICT DO NOTHING",
    )?
    .execute([])?;
    Ok(())
}

fn decode_key(hexed: &str) -> Result<Zeroizing<[u8; 32]>, SyncError> {
    let damaged = || SyncError::Database(DatabaseError::Damaged { table: "org_epochs" });
    let bytes = Zeroizing::new(hex::decode(hexed).map_err(|_| damaged())?);
    let mut key = Zeroizing::new([0u8; 32]);
    if bytes.len() != 32 {
        return Err(damaged());
    }
    key.copy_from_slice(&bytes);
    Ok(key)
}

/// The organisation's id, and the newest key epoch this laptop holds with its key:
/// what everything it writes is sealed under.
pub(crate) fn keys(conn: &Connection) -> Result<(String, u32, Zeroizing<[u8; 32]>), SyncError> {
    let id = database::required_meta(conn, ORG_ID)?;
    let (epoch, hexed): (u32, Zeroizing<String>) = conn
        .prepare_cached("SELECT number, key FROM org_epochs WHERE key IS NOT NULL ORDER BY number DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, Zeroizing::new(r.get(1)?))))
        .optional()?
        .ok_or(DatabaseError::Damaged { table: "org_epochs" })?;
    Ok((id, epoch, decode_key(&hexed)?))
}

/// The key of one epoch, if this laptop holds it.
pub(crate) fn key_of(conn: &Connection, epoch: u32) -> Result<Option<Zeroizing<[u8; 32]>>, SyncError> {
    let hexed: Option<Option<String>> = conn
        .prepare_cached("SELECT key FROM org_epochs WHERE number = ?1")?
        .query_row([epoch], |r| r.get(0))
        .optional()?;
    match hexed.flatten().map(Zeroizing::new) {
        Some(h) => Ok(Some(decode_key(&h)?)),
        None => Ok(None),
    }
}

/// Every epoch key this laptop holds, by number: what an invitation hands on.
pub(crate) fn all_keys(conn: &Connection) -> Result<BTreeMap<u32, Zeroizing<String>>, SyncError> {
    let mut st = conn.prepare("SELECT number, key FROM org_epochs WHERE key IS NOT NULL ORDER BY number")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, Zeroizing::new(r.get(1)?))))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Keep an epoch's key (None: the epoch was not sealed to this laptop) and its
/// record; a key already held is never replaced.
pub(crate) fn put_key(
    conn: &Connection,
    epoch: u32,
    key: Option<&[u8; 32]>,
    record: Option<&[u8]>,
) -> Result<(), SyncError> {
    let hexed = key.map(|k| Zeroizing::new(hex::encode(k)));
    conn.prepare_cached("INSERT INTO org_epochs (number, key, record) VALUES (?1, ?2, ?3)
         ON CONFLICT (number) DO UPDATE SET key = coalesce(key, excluded.key), record = coalesce(record, excluded.record)")?.execute(rusqlite::params![epoch, hexed.as_deref().map(String::as_str), record],
    )?;
    Ok(())
}

/// Replace the organisation of a store just set up (joining with an invitation):
/// its id, name and every epoch key the invitation carries.
pub(crate) fn adopt(conn: &Connection, opened: &Opened) -> Result<(), SyncError> {
    database::set_meta(conn, ORG_ID, &opened.org_id)?;
    database::set_meta(conn, "org", &opened.about.org)?;
    conn.prepare_cached("DELETE FROM org_epochs")?.execute([])?;
    if opened.about.keys.is_empty() {
        // An invitation from before key epochs: its key is the first one.
        put_key(conn, 0, Some(&opened.key), None)?;
    }
    for (epoch, hexed) in &opened.about.keys {
        put_key(conn, *epoch, Some(&*decode_key(hexed)?), None)?;
    }
    if let Some(i) = &opened.about.inviter {
        super::identity::pin(conn, &i.device, &i.code, &i.sign_key, &i.kx_key)?;
    }
    Ok(())
}

/// Make an invitation and its one-time passphrase.
pub(crate) fn invite(
    conn: &Connection,
    org_name: &str,
    hub: Option<super::hub::HubInvite>,
    authority: &Authority,
    kdf: KdfParams,
) -> Result<(Invitation, Zeroizing<String>), SyncError> {
    let (org_id, _, key) = keys(conn)?;
    let passphrase = keys::random_code(INVITE_GROUPS);
    let mut st = conn.prepare("SELECT device_code FROM sync_devices ORDER BY device_code")?;
    let device_codes = st.query_map([], |r| r.get(0))?.collect::<Result<Vec<String>, _>>()?;
    let keys = all_keys(conn)?.into_iter().map(|(n, k)| (n, k.to_string())).collect();
    let me = super::identity::load(conn)?;
    let inviter = Some(Inviter {
        device: database::required_meta(conn, "device_id")?,
        code: database::required_meta(conn, "device_code")?,
        sign_key: me.sign_key(),
        kx_key: me.kx_key(),
    });
    let about = seal_about(&About { org: org_name.into(), device_codes, hub, keys, inviter }, &key, &org_id)?;
    // The authority is sealed under the one-time passphrase beside the org key,
    // never in `about`: every laptop holds the org key, and a caseworker who found
    // an invitation file must not be able to sign herself a role with it.
    let sealed = keys::wrap_with(&key, authority.to_bytes().as_ref(), &seal_id(&org_id), &passphrase, kdf)?;
    Ok((Invitation { format: INVITE_FORMAT.into(), org_id, key: sealed, about }, passphrase))
}

/// Read an invitation and open it with its passphrase.
pub fn open_invitation(bytes: &[u8], passphrase: &str) -> Result<Opened, SyncError> {
    let inv: Invitation = serde_json::from_slice(bytes).map_err(|_| SyncError::NotAnInvitation)?;
    if inv.format != INVITE_FORMAT || inv.key.user_id != seal_id(&inv.org_id) {
        return Err(SyncError::NotAnInvitation);
    }
    let typed = keys::normalize_code(passphrase, INVITE_GROUPS).ok_or(SyncError::WrongInvitePassphrase)?;
    let (key, extra) = match keys::unwrap_with(&inv.key, &typed) {
        Ok(opened) => opened,
        Err(DatabaseError::WrongPassphrase) => return Err(SyncError::WrongInvitePassphrase),
        Err(_) => return Err(SyncError::NotAnInvitation),
    };
    let about = open_about(&inv.about, &key, &inv.org_id).ok_or(SyncError::NotAnInvitation)?;
    let authority = match extra.is_empty() {
        true => None,
        false => Some(Authority::from_bytes(&extra).ok_or(SyncError::NotAnInvitation)?),
    };
    Ok(Opened { org_id: inv.org_id, about, key, authority })
}
