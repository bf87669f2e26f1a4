//! This laptop's identity in the organisation: an Ed25519 pair that signs every
//! batch it writes (and, later, every request to the hub), and an X25519 pair that
//! new organisation key epochs are sealed to. Both are made when the store is set
//! up or joins (or at the first unlock of a store from before them). The secret
//! halves live in the encrypted store, beside the organisation key; the public
//! halves are pinned in `sync_devices`, where other devices' keys are pinned too.

use super::SyncError;
use crate::database::{self, DatabaseError};
use ed25519_dalek::{Signer, SigningKey};
use rusqlite::{params, Connection, OptionalExtension};
use x25519_dalek::StaticSecret;
use zeroize::Zeroizing;

const SIGN_SECRET: &str = "device_sign_secret";
const KX_SECRET: &str = "device_kx_secret";
pub const SIGNATURE_LEN: usize = 64;

/// This laptop's two key pairs. (Clone: a laptop that joins with a hub
/// invitation enrols with them before its store exists, then keeps them in it.)
#[derive(Clone)]
pub struct Identity {
    signing: SigningKey,
    kx: StaticSecret,
}

impl Identity {
    /// A new pair of key pairs (kept only by [`ensure`], or by a test).
    pub fn generate() -> Identity {
        Identity {
            signing: SigningKey::generate(&mut rand::rngs::OsRng),
            kx: StaticSecret::random_from_rng(rand::rngs::OsRng),
        }
    }

    /// Hex of the Ed25519 public key: how a batch names its signer.
    pub fn sign_key(&self) -> String {
        hex::encode(self.signing.verifying_key().to_bytes())
    }

    /// Hex of the X25519 public key.
    pub fn kx_key(&self) -> String {
        hex::encode(x25519_dalek::PublicKey::from(&self.kx).to_bytes())
    }

    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.signing.sign(message).to_bytes()
    }

    /// The X25519 secret shared with `their` public key; None for a key that
    /// would make it predictable (a low-order point).
    pub(crate) fn agree(&self, their: &[u8; 32]) -> Option<Zeroizing<[u8; 32]>> {
        let shared = self.kx.diffie_hellman(&x25519_dalek::PublicKey::from(*their));
        shared.was_contributory().then(|| Zeroizing::new(shared.to_bytes()))
    }
}

/// A laptop about to join: its device id and key pairs, made before its store so
/// that it can enrol with the hub first (and be refused there before anything is
/// written, if its device code is taken).
pub struct Newcomer {
    pub device_id: String,
    pub identity: Identity,
}

impl Newcomer {
    pub fn generate() -> Newcomer {
        Newcomer { device_id: database::new_id(), identity: Identity::generate() }
    }
}

/// Keep these key pairs as this laptop's (a newcomer's, in its new store).
pub(crate) fn keep(conn: &Connection, id: &Identity) -> Result<(), SyncError> {
    database::set_meta(conn, SIGN_SECRET, &Zeroizing::new(hex::encode(id.signing.to_bytes())))?;
    database::set_meta(conn, KX_SECRET, &Zeroizing::new(hex::encode(id.kx.to_bytes())))?;
    Ok(())
}

fn secret(conn: &Connection, key: &str) -> Result<Option<Zeroizing<[u8; 32]>>, SyncError> {
    let Some(hexed) = database::meta(conn, key)?.map(Zeroizing::new) else { return Ok(None) };
    let bytes = Zeroizing::new(hex::decode(hexed.as_str()).map_err(|_| DatabaseError::Damaged { table: "meta" })?);
    let mut out = Zeroizing::new([0u8; 32]);
    if bytes.len() != 32 {
        return Err(DatabaseError::Damaged { table: "meta" }.into());
    }
    out.copy_from_slice(&bytes);
    Ok(Some(out))
}

/// Make this laptop's key pairs if it has none, and pin its own public keys.
pub(crate) fn ensure(conn: &Connection) -> Result<(), SyncError> {
    if secret(conn, SIGN_SECRET)?.is_none() || secret(conn, KX_SECRET)?.is_none() {
        keep(conn, &Identity::generate())?;
    }
    let me = load(conn)?;
    let device = database::required_meta(conn, "device_id")?;
    conn.prepare_cached("UPDATE sync_devices SET sign_key = ?2, kx_key = ?3 WHERE device_id = ?1")?
        .execute(params![device, me.sign_key(), me.kx_key()])?;
    Ok(())
}

/// This laptop's identity (after [`ensure`]).
pub(crate) fn load(conn: &Connection) -> Result<Identity, SyncError> {
    let missing = || SyncError::Database(DatabaseError::Damaged { table: "meta" });
    let sign = secret(conn, SIGN_SECRET)?.ok_or_else(missing)?;
    let kx = secret(conn, KX_SECRET)?.ok_or_else(missing)?;
    Ok(Identity { signing: SigningKey::from_bytes(&sign), kx: StaticSecret::from(*kx) })
}

pub use crate::database::keys::{verify, verifying_key};

/// What this laptop knows of a device: its pinned signing key and revocation.
pub(crate) struct Known {
    pub sign_key: Option<String>,
    pub revoked: bool,
    /// For a revoked device, the last of its hub batches still taken.
    pub revoked_after: Option<i64>,
}

pub(crate) fn known(conn: &Connection, device: &str) -> Result<Option<Known>, SyncError> {
    Ok(conn
        .prepare_cached("SELECT sign_key, revoked_at, revoked_after FROM sync_devices WHERE device_id = ?1")?
        .query_row([device], |r| {
            Ok(Known {
                sign_key: r.get(0)?,
                revoked: r.get::<_, Option<String>>(1)?.is_some(),
                revoked_after: r.get(2)?,
            })
        })
        .optional()?)
}

/// Pin a device's public keys (the first time they are seen; never replaced).
pub(crate) fn pin(conn: &Connection, device: &str, code: &str, sign_key: &str, kx_key: &str) -> Result<(), SyncError> {
    conn.prepare_cached(
        "INSERT INTO sync_devices (device_id, device_code, sign_key, kx_key) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (device_id) DO UPDATE SET sign_key = coalesce(sign_key, excluded.sign_key),
                                               kx_key = coalesce(kx_key, excluded.kx_key)",
    )?
    .execute(params![device, code, sign_key, kx_key])?;
    Ok(())
}
