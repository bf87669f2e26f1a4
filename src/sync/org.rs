//! The organisation: its id and its sync key, and invitations to join it.
//!
//! The first laptop of an organisation makes a random 256-bit sync key; bundles are
//! sealed under it, so laptops of another organisation can never read them. The key
//! lives in the encrypted store (`meta`), never in a file of its own. A new laptop
//! gets it from an *invitation*: a small file with the key sealed (Argon2id and
//! XChaCha20-Poly1305, as the store's own keys) under a one-time passphrase that the
//! administrator reads out or writes down, and that never travels with the file.

use super::SyncError;
use crate::database::keys::{self, KdfParams, WrappedKey};
use crate::database::{self, new_id, DatabaseError};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub const INVITE_FORMAT: &str = "amparo.invite/1";
/// 4 groups of 5: 100 random bits, behind Argon2id.
pub const INVITE_GROUPS: usize = 4;
const ORG_ID: &str = "org_id";
const ORG_KEY: &str = "org_key";

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
}

/// An opened invitation.
pub struct Opened {
    pub org_id: String,
    pub about: About,
    pub key: keys::DataKey,
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

fn open_about(hexed: &str, key: &[u8; 32], org_id: &str) -> Option<About> {
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
    if database::meta(conn, ORG_KEY)?.is_none() {
        let key = keys::new_data_key();
        database::set_meta(conn, ORG_ID, &new_id())?;
        database::set_meta(conn, ORG_KEY, &hex::encode(key.as_ref()))?;
    }
    conn.execute(
        "INSERT INTO sync_devices (device_id, device_code)
         SELECT d.value, c.value FROM meta d, meta c WHERE d.key = 'device_id' AND c.key = 'device_code'
         ON CONFLICT DO NOTHING",
        [],
    )?;
    Ok(())
}

/// The organisation's id and sync key.
pub(crate) fn keys(conn: &Connection) -> Result<(String, Zeroizing<[u8; 32]>), SyncError> {
    let damaged = DatabaseError::Damaged { table: "meta" };
    let id = database::required_meta(conn, ORG_ID)?;
    let hexkey = Zeroizing::new(database::required_meta(conn, ORG_KEY)?);
    let bytes = Zeroizing::new(hex::decode(hexkey.as_str()).map_err(|_| DatabaseError::Damaged { table: "meta" })?);
    let mut key = Zeroizing::new([0u8; 32]);
    if bytes.len() != 32 {
        return Err(damaged.into());
    }
    key.copy_from_slice(&bytes);
    Ok((id, key))
}

/// Replace the organisation of a store just set up (joining with an invitation).
pub(crate) fn adopt(conn: &Connection, org_id: &str, key: &[u8; 32], org_name: &str) -> Result<(), SyncError> {
    for (k, v) in [(ORG_ID, org_id.to_string()), (ORG_KEY, hex::encode(key)), ("org", org_name.to_string())] {
        database::set_meta(conn, k, &v)?;
    }
    Ok(())
}

/// Make an invitation and its one-time passphrase.
pub(crate) fn invite(
    conn: &Connection,
    org_name: &str,
    hub: Option<super::hub::HubInvite>,
    kdf: KdfParams,
) -> Result<(Invitation, Zeroizing<String>), SyncError> {
    let (org_id, key) = keys(conn)?;
    let passphrase = keys::random_code(INVITE_GROUPS);
    let mut st = conn.prepare("SELECT device_code FROM sync_devices ORDER BY device_code")?;
    let device_codes = st.query_map([], |r| r.get(0))?.collect::<Result<Vec<String>, _>>()?;
    let about = seal_about(&About { org: org_name.into(), device_codes, hub }, &key, &org_id)?;
    let sealed = keys::wrap(&key, &seal_id(&org_id), &passphrase, kdf)?;
    Ok((Invitation { format: INVITE_FORMAT.into(), org_id, key: sealed, about }, passphrase))
}

/// Read an invitation and open it with its passphrase.
pub fn open_invitation(bytes: &[u8], passphrase: &str) -> Result<Opened, SyncError> {
    let inv: Invitation = serde_json::from_slice(bytes).map_err(|_| SyncError::NotAnInvitation)?;
    if inv.format != INVITE_FORMAT || inv.key.user_id != seal_id(&inv.org_id) {
        return Err(SyncError::NotAnInvitation);
    }
    let typed = keys::normalize_code(passphrase, INVITE_GROUPS).ok_or(SyncError::WrongInvitePassphrase)?;
    let key = match keys::unwrap(&inv.key, &typed) {
        Ok(k) => k,
        Err(DatabaseError::WrongPassphrase) => return Err(SyncError::WrongInvitePassphrase),
        Err(_) => return Err(SyncError::NotAnInvitation),
    };
    let about = open_about(&inv.about, &key, &inv.org_id).ok_or(SyncError::NotAnInvitation)?;
    Ok(Opened { org_id: inv.org_id, about, key })
}
