//! Envelope encryption of the store.
//!
//! The database is encrypted by SQLCipher with a random 256-bit *data key* that is
//! never written anywhere in the clear. What is on disk, in `keys.json` beside the
//! database, is that data key *wrapped* (sealed with XChaCha20-Poly1305) under a key
//! derived from a user's passphrase with Argon2id. Unlocking derives the wrapping key
//! and opens the seal; a wrong passphrase fails the seal's authentication, so we know
//! it is wrong without touching the database.
//!
//! Why the indirection: a passphrase change, a second user or a recovery key (later
//! work) wraps the same data key once more, and re-encrypts nothing. The file holds
//! no names, only ids, cost parameters, salts and sealed keys.

use super::DatabaseError;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::path::Path;
use zeroize::Zeroizing;

pub const KEY_FILE_FORMAT: &str = "amparo.keys/1";
const WRAP_AAD_PREFIX: &str = "amparo.keywrap/1:";

/// The SQLCipher data key.
pub type DataKey = Zeroizing<[u8; 32]>;

/// Argon2id cost. Stored per wrapped key, so the cost can be raised later without
/// breaking existing stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
}

impl KdfParams {
    /// Interactive unlock on a modest laptop: 64 MiB, 3 passes (OWASP's Argon2id
    /// guidance is at least 19 MiB / 2 passes; we go above it for a stolen laptop).
    pub const INTERACTIVE: KdfParams = KdfParams { m_kib: 64 * 1024, t: 3, p: 1 };
    /// For tests only: as cheap as Argon2 allows.
    pub const INSECURE_FOR_TESTS: KdfParams = KdfParams { m_kib: 8, t: 1, p: 1 };
    /// The most a sealed key read from a file may ask for: 1 GiB, 16 passes, 4
    /// lanes (well above what we write, far below what would stop a laptop). A key
    /// file or an invitation asking for more is refused, not obeyed: its cost is
    /// someone else's choice, and at the maximum Argon2 aborts or runs for hours.
    pub const MOST: KdfParams = KdfParams { m_kib: 1 << 20, t: 16, p: 4 };

    /// Within [`KdfParams::MOST`] (and what Argon2 itself accepts).
    pub fn is_bounded(&self) -> bool {
        let most = KdfParams::MOST;
        (8..=most.m_kib).contains(&self.m_kib)
            && (1..=most.t).contains(&self.t)
            && (1..=most.p).contains(&self.p)
            && self.m_kib >= 8 * self.p
    }

    /// The cost a new store seals its keys with: [`KdfParams::INTERACTIVE`].
    ///
    /// A build made for the test suite (the feature `insecure-test-kdf`, which only
    /// the CLI's dev-dependency turns on, so no `cargo build` or release has it)
    /// takes [`KdfParams::INSECURE_FOR_TESTS`] when `AMPARO_INSECURE_TEST_KDF=1`:
    /// the CLI tests launch the binary about a hundred times, and each launch
    /// would otherwise spend its time in Argon2 rather than in what it tests.
    pub fn for_new_store() -> KdfParams {
        #[cfg(feature = "insecure-test-kdf")]
        if std::env::var_os("AMPARO_INSECURE_TEST_KDF").is_some_and(|v| v == "1") {
            return KdfParams::INSECURE_FOR_TESTS;
        }
        KdfParams::INTERACTIVE
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        Self::INTERACTIVE
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WrappedKey {
    pub user_id: String,
    pub kdf: String,
    pub params: KdfParams,
    pub salt: String,
    pub nonce: String,
    pub sealed: String,
    /// SHA-256 of the fields above: a seal changed on disk is "damaged", not a
    /// wrong passphrase. (None in key files from before it.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
}

impl WrappedKey {
    fn checksum(&self) -> String {
        use sha2::{Digest, Sha256};
        let p = &self.params;
        let text = format!(
            "amparo.seal/1\n{}\n{}\n{} {} {}\n{}\n{}\n{}",
            self.user_id, self.kdf, p.m_kib, p.t, p.p, self.salt, self.nonce, self.sealed
        );
        hex::encode(Sha256::digest(text.as_bytes()))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyFile {
    pub format: String,
    pub store_id: String,
    /// One sealed data key per user.
    pub keys: Vec<WrappedKey>,
    /// The data key sealed under the recovery key (shown once, at setup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<WrappedKey>,
}

/// The `user_id` the recovery key's seal is bound to.
pub const RECOVERY_ID: &str = "recovery";
/// Crockford's base32: no I, L, O or U, so nothing reads as something else.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// 8 groups of 5 characters: 200 random bits.
const RECOVERY_GROUPS: usize = 8;
const RECOVERY_GROUP_LEN: usize = 5;

/// A new recovery key, like `7KQ2M-…` (8 groups of 5), to be written down or printed.
pub fn new_recovery_key() -> Zeroizing<String> {
    random_code(RECOVERY_GROUPS)
}

/// A random code of `groups` groups of 5 Crockford base32 characters (25 bits each).
pub fn random_code(groups: usize) -> Zeroizing<String> {
    let mut bytes = Zeroizing::new(vec![0u8; (groups * RECOVERY_GROUP_LEN * 5).div_ceil(8)]);
    rand::rngs::OsRng.fill_bytes(bytes.as_mut());
    let mut out = Zeroizing::new(String::with_capacity(groups * (RECOVERY_GROUP_LEN + 1)));
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut n = 0;
    for b in bytes.iter() {
        acc = (acc << 8) | u32::from(*b);
        bits += 8;
        while bits >= 5 && n < groups * RECOVERY_GROUP_LEN {
            bits -= 5;
            if n > 0 && n % RECOVERY_GROUP_LEN == 0 {
                out.push('-');
            }
            out.push(char::from(CROCKFORD[((acc >> bits) & 31) as usize]));
            n += 1;
        }
    }
    out
}

/// A recovery key as typed (any case, with or without dashes or spaces, O for 0, I
/// or L for 1) in its canonical form; `None` if it cannot be one.
pub fn normalize_recovery_key(typed: &str) -> Option<Zeroizing<String>> {
    normalize_code(typed, RECOVERY_GROUPS)
}

/// A code of `groups` groups as typed, in its one printed form (see
/// [`normalize_recovery_key`]).
pub fn normalize_code(typed: &str, groups: usize) -> Option<Zeroizing<String>> {
    let mut chars = Zeroizing::new(String::new());
    for c in typed.chars().filter(|c| !c.is_whitespace() && *c != '-') {
        let c = match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        };
        if !c.is_ascii() || !CROCKFORD.contains(&(c as u8)) {
            return None;
        }
        chars.push(c);
    }
    if chars.len() != groups * RECOVERY_GROUP_LEN {
        return None;
    }
    let mut out = Zeroizing::new(String::with_capacity(48));
    for (i, c) in chars.chars().enumerate() {
        if i > 0 && i % RECOVERY_GROUP_LEN == 0 {
            out.push('-');
        }
        out.push(c);
    }
    Some(out)
}

fn derive_kek(passphrase: &str, salt: &[u8], params: KdfParams) -> Result<Zeroizing<[u8; 32]>, DatabaseError> {
    let p = argon2::Params::new(params.m_kib, params.t, params.p, Some(32))
        .map_err(|_| DatabaseError::KeyFile("argon2 parameters".into()))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p);
    let mut out = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase.as_bytes(), salt, out.as_mut())
        .map_err(|_| DatabaseError::KeyFile("argon2".into()))?;
    Ok(out)
}

pub fn new_data_key() -> DataKey {
    let mut k = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(k.as_mut());
    k
}

/// Seal `key` for `user_id` under `passphrase`.
pub fn wrap(key: &DataKey, user_id: &str, passphrase: &str, params: KdfParams) -> Result<WrappedKey, DatabaseError> {
    wrap_with(key, &[], user_id, passphrase, params)
}

/// The most a seal holds beside the data key (a user's [`UserSecrets`], or the
/// recovery seal's authority): anything longer is damaged.
const EXTRA_MAX: usize = 128;

/// Seal `key`, and `extra` after it, for `user_id` under `passphrase`: one Argon2
/// run at unlock opens both.
pub fn wrap_with(
    key: &DataKey,
    extra: &[u8],
    user_id: &str,
    passphrase: &str,
    params: KdfParams,
) -> Result<WrappedKey, DatabaseError> {
    if extra.len() > EXTRA_MAX {
        return Err(DatabaseError::KeyFile("seal".into()));
    }
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let kek = derive_kek(passphrase, &salt, params)?;
    let aad = format!("{WRAP_AAD_PREFIX}{user_id}");
    let mut plain = Zeroizing::new(Vec::with_capacity(32 + extra.len()));
    plain.extend_from_slice(key.as_ref());
    plain.extend_from_slice(extra);
    let sealed = XChaCha20Poly1305::new(Key::from_slice(kek.as_ref()))
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: &plain, aad: aad.as_bytes() })
        .map_err(|_| DatabaseError::KeyFile("seal".into()))?;
    let mut w = WrappedKey {
        user_id: user_id.to_string(),
        kdf: "argon2id".into(),
        params,
        salt: hex::encode(salt),
        nonce: hex::encode(nonce),
        sealed: hex::encode(sealed),
        check: None,
    };
    w.check = Some(w.checksum());
    Ok(w)
}

/// Open a sealed key. A wrong passphrase is `WrongPassphrase`; anything malformed is
/// a damaged key file.
pub fn unwrap(w: &WrappedKey, passphrase: &str) -> Result<DataKey, DatabaseError> {
    unwrap_with(w, passphrase).map(|(key, _)| key)
}

/// Open a sealed key and what was sealed after it (empty in seals from before
/// user key pairs).
pub fn unwrap_with(w: &WrappedKey, passphrase: &str) -> Result<(DataKey, Zeroizing<Vec<u8>>), DatabaseError> {
    let bad = |what: &str| DatabaseError::KeyFile(what.to_string());
    if w.kdf != "argon2id" {
        return Err(bad("kdf"));
    }
    if !w.params.is_bounded() {
        return Err(bad("argon2 cost out of bounds"));
    }
    if w.check.as_ref().is_some_and(|c| *c != w.checksum()) {
        return Err(bad("damaged seal"));
    }
    let salt = hex::decode(&w.salt).map_err(|_| bad("salt"))?;
    if !(8..=64).contains(&salt.len()) {
        return Err(bad("salt"));
    }
    let nonce = hex::decode(&w.nonce).map_err(|_| bad("nonce"))?;
    let sealed = hex::decode(&w.sealed).map_err(|_| bad("sealed key"))?;
    if nonce.len() != 24 || sealed.len() > 32 + EXTRA_MAX + 16 {
        return Err(bad("sealed key"));
    }
    let kek = derive_kek(passphrase, &salt, w.params)?;
    let aad = format!("{WRAP_AAD_PREFIX}{}", w.user_id);
    let plain = Zeroizing::new(
        XChaCha20Poly1305::new(Key::from_slice(kek.as_ref()))
            .decrypt(XNonce::from_slice(&nonce), Payload { msg: &sealed, aad: aad.as_bytes() })
            .map_err(|_| DatabaseError::WrongPassphrase)?,
    );
    if plain.len() < 32 {
        return Err(bad("key length"));
    }
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&plain[..32]);
    Ok((key, Zeroizing::new(plain[32..].to_vec())))
}

/// A user's own secrets, sealed with the data key under her passphrase (so that
/// nobody who holds only the data key has them): her Ed25519 signing key, her
/// X25519 key that keys are sealed to, and the public key of the authority that
/// signs role grants, as it was when she was sealed (all zero if unknown then).
pub struct UserSecrets {
    sign: ed25519_dalek::SigningKey,
    kx: x25519_dalek::StaticSecret,
    authority: [u8; 32],
}

impl UserSecrets {
    const LEN: usize = 96;

    pub fn generate(authority: Option<[u8; 32]>) -> UserSecrets {
        UserSecrets {
            sign: ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng),
            kx: x25519_dalek::StaticSecret::random_from_rng(rand::rngs::OsRng),
            authority: authority.unwrap_or_default(),
        }
    }

    /// Read what [`UserSecrets::to_bytes`] wrote; `None` for a seal from before
    /// user key pairs (nothing after the data key).
    pub fn from_bytes(extra: &[u8]) -> Result<Option<UserSecrets>, DatabaseError> {
        if extra.is_empty() {
            return Ok(None);
        }
        if extra.len() != Self::LEN {
            return Err(DatabaseError::KeyFile("user keys".into()));
        }
        let part = |i: usize| {
            let mut b = Zeroizing::new([0u8; 32]);
            b.copy_from_slice(&extra[i * 32..(i + 1) * 32]);
            b
        };
        let mut authority = [0u8; 32];
        authority.copy_from_slice(&extra[64..]);
        Ok(Some(UserSecrets {
            sign: ed25519_dalek::SigningKey::from_bytes(&part(0)),
            kx: x25519_dalek::StaticSecret::from(*part(1)),
            authority,
        }))
    }

    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(Self::LEN));
        out.extend_from_slice(self.sign.as_bytes());
        out.extend_from_slice(self.kx.as_bytes());
        out.extend_from_slice(&self.authority);
        out
    }

    /// Hex of the Ed25519 public key.
    pub fn sign_key(&self) -> String {
        hex::encode(self.sign.verifying_key().to_bytes())
    }

    /// Hex of the X25519 public key.
    pub fn kx_key(&self) -> String {
        hex::encode(x25519_dalek::PublicKey::from(&self.kx).to_bytes())
    }

    pub fn kx(&self) -> &x25519_dalek::StaticSecret {
        &self.kx
    }

    /// The authority this user was sealed with, if it was known then.
    pub fn authority(&self) -> Option<[u8; 32]> {
        (self.authority != [0u8; 32]).then_some(self.authority)
    }

    pub fn set_authority(&mut self, authority: [u8; 32]) {
        self.authority = authority;
    }
}

/// Parse a hex Ed25519 public key; None if it is not one.
pub fn verifying_key(hexed: &str) -> Option<ed25519_dalek::VerifyingKey> {
    let bytes: [u8; 32] = hex::decode(hexed).ok()?.try_into().ok()?;
    ed25519_dalek::VerifyingKey::from_bytes(&bytes).ok()
}

/// Does `signature` sign `message` with the hex public key `signer`? Strict
/// verification: no malleable or small-order keys.
pub fn verify(signer: &str, message: &[u8], signature: &[u8]) -> bool {
    let (Some(key), Ok(sig)) = (verifying_key(signer), <[u8; 64]>::try_from(signature)) else {
        return false;
    };
    key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&sig)).is_ok()
}

/// Seal `plain` to the holder of the X25519 key `their` (hex), bound to
/// `context`: an ephemeral key agreement, SHA-256 over everything it involves,
/// XChaCha20-Poly1305. Hex of ephemeral public ‖ nonce ‖ ciphertext. `None` if
/// `their` is not a usable X25519 key.
pub fn seal_to(their: &str, context: &str, plain: &[u8]) -> Option<String> {
    let their: [u8; 32] = hex::decode(their).ok()?.try_into().ok()?;
    let ephemeral = x25519_dalek::StaticSecret::random_from_rng(rand::rngs::OsRng);
    let ephemeral_pub = x25519_dalek::PublicKey::from(&ephemeral).to_bytes();
    let shared = ephemeral.diffie_hellman(&x25519_dalek::PublicKey::from(their));
    if !shared.was_contributory() {
        return None;
    }
    let key = sealed_box_key(shared.as_bytes(), context, &ephemeral_pub, &their);
    let mut nonce = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let sealed = XChaCha20Poly1305::new(&key)
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad: context.as_bytes() })
        .ok()?;
    Some(hex::encode([ephemeral_pub.as_slice(), &nonce, &sealed].concat()))
}

/// Open what [`seal_to`] sealed to `mine` under `context`; `None` if it was not
/// sealed to this key, or changed.
pub fn open_sealed(mine: &x25519_dalek::StaticSecret, context: &str, sealed: &str) -> Option<Zeroizing<Vec<u8>>> {
    let bytes = hex::decode(sealed).ok()?;
    if bytes.len() < 32 + 24 + 16 {
        return None;
    }
    let (ephemeral, rest) = bytes.split_at(32);
    let (nonce, ct) = rest.split_at(24);
    let ephemeral: [u8; 32] = ephemeral.try_into().ok()?;
    let shared = mine.diffie_hellman(&x25519_dalek::PublicKey::from(ephemeral));
    if !shared.was_contributory() {
        return None;
    }
    let my_pub = x25519_dalek::PublicKey::from(mine).to_bytes();
    let key = sealed_box_key(shared.as_bytes(), context, &ephemeral, &my_pub);
    XChaCha20Poly1305::new(&key)
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: context.as_bytes() })
        .ok()
        .map(Zeroizing::new)
}

fn sealed_box_key(shared: &[u8; 32], context: &str, ephemeral: &[u8; 32], their: &[u8; 32]) -> Key {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"amparo.sealed-box/1\0");
    h.update(context.as_bytes());
    h.update([0]);
    h.update(ephemeral);
    h.update(their);
    h.update(shared);
    Key::clone_from_slice(&h.finalize())
}

/// The second copy of the key file, beside it: a key file deleted or damaged by
/// mistake is restored from it (the seals in it open nothing without a
/// passphrase or the recovery key, like the key file itself).
pub fn copy_path(path: &Path) -> std::path::PathBuf {
    path.with_file_name(KEY_COPY_FILE)
}

pub const KEY_COPY_FILE: &str = "keys.copy.json";

impl KeyFile {
    /// The copy beside the key file, read on its own (when a seal in the key
    /// file itself is damaged).
    pub fn read_copy(path: &Path) -> Result<KeyFile, DatabaseError> {
        KeyFile::read_one(&copy_path(path))
    }

    fn read_one(path: &Path) -> Result<KeyFile, DatabaseError> {
        let bytes = std::fs::read(path)?;
        let kf: KeyFile = serde_json::from_slice(&bytes).map_err(|_| DatabaseError::KeyFile("json".into()))?;
        if kf.format != KEY_FILE_FORMAT {
            return Err(DatabaseError::KeyFile(format!("format {}", kf.format)));
        }
        Ok(kf)
    }

    /// The key file, or its copy if the file is gone or damaged (and then the
    /// file is written again from the copy).
    pub fn read(path: &Path) -> Result<KeyFile, DatabaseError> {
        match KeyFile::read_one(path) {
            Ok(kf) => Ok(kf),
            Err(first) => match KeyFile::read_one(&copy_path(path)) {
                Ok(kf) => {
                    // Best effort: the keys are read either way.
                    let json = serde_json::to_vec_pretty(&kf).map_err(|_| DatabaseError::KeyFile("json".into()))?;
                    let _ = super::files::write_atomic(path, &json);
                    Ok(kf)
                }
                Err(_) => Err(first),
            },
        }
    }

    /// Replace the key file and its copy, each atomically: a crash leaves the old
    /// file or the new one, never half of either, and at least one of them whole.
    pub fn write(&self, path: &Path) -> Result<(), DatabaseError> {
        let json = serde_json::to_vec_pretty(self).map_err(|_| DatabaseError::KeyFile("json".into()))?;
        super::files::write_atomic(&copy_path(path), &json)?;
        super::files::write_atomic(path, &json)?;
        Ok(())
    }
}

/// The key of one restricted case (docs/restricted.md). Its personal values are
/// sealed under it with a synthetic nonce, so one value in one field of one case
/// always seals to the same bytes: the merge still tells an edit from a no-op.
pub struct RestrictedKey(Zeroizing<[u8; 32]>, String);

impl RestrictedKey {
    pub fn generate() -> RestrictedKey {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(key.as_mut());
        RestrictedKey::named(key)
    }

    /// From the 32 bytes [`RestrictedKey::bytes`] gave; `None` if not 32.
    pub fn from_bytes(bytes: &[u8]) -> Option<RestrictedKey> {
        Some(RestrictedKey::named(Zeroizing::new(bytes.try_into().ok()?)))
    }

    /// Its id, worked out once: every value opened looks its key up by it.
    fn named(key: Zeroizing<[u8; 32]>) -> RestrictedKey {
        use sha2::Digest;
        let digest = sha2::Sha256::new().chain_update(b"amparo.restricted.id/1").chain_update(key.as_ref()).finalize();
        RestrictedKey(key, hex::encode(&digest[..8]))
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Names the key (16 hex digits) without giving it away.
    pub fn id(&self) -> &str {
        &self.1
    }

    fn mac(key: &[u8], parts: &[&[u8]]) -> Option<Zeroizing<[u8; 32]>> {
        use hmac::Mac;
        let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(key).ok()?;
        for p in parts {
            mac.update(p);
        }
        Some(Zeroizing::new(mac.finalize().into_bytes().into()))
    }

    fn cipher(&self) -> Option<XChaCha20Poly1305> {
        let key = Self::mac(self.0.as_ref(), &[b"amparo.restricted.cipher/1"])?;
        Some(XChaCha20Poly1305::new(Key::from_slice(key.as_ref())))
    }

    /// Nonce ‖ XChaCha20-Poly1305(`plain`), bound to `context`. (`None` never
    /// happens for values of the sizes Amparo bounds.)
    pub fn seal(&self, context: &str, plain: &[u8]) -> Option<Vec<u8>> {
        let nonce_key = Self::mac(self.0.as_ref(), &[b"amparo.restricted.nonce/1"])?;
        let synthetic = Self::mac(nonce_key.as_ref(), &[context.as_bytes(), &[0], plain])?;
        let sealed = self
            .cipher()?
            .encrypt(XNonce::from_slice(&synthetic[..24]), Payload { msg: plain, aad: context.as_bytes() })
            .ok()?;
        Some([&synthetic[..24], sealed.as_slice()].concat())
    }

    /// What [`RestrictedKey::seal`] sealed under this key and `context`; `None`
    /// for another key, another context, or bytes changed.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if sealed.len() < 24 + 16 {
            return None;
        }
        let (nonce, ct) = sealed.split_at(24);
        let plain = self.cipher()?.decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: context.as_bytes() });
        plain.ok().map(Zeroizing::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_then_unwrap_gives_the_same_key() {
        let key = new_data_key();
        let w = wrap(&key, "u1", "correct horse battery", KdfParams::INSECURE_FOR_TESTS).unwrap();
        assert_eq!(*unwrap(&w, "correct horse battery").unwrap(), *key);
    }

    #[test]
    fn wrong_passphrase_or_other_user_fails_authentication() {
        let key = new_data_key();
        let w = wrap(&key, "u1", "correct horse battery", KdfParams::INSECURE_FOR_TESTS).unwrap();
        assert!(matches!(unwrap(&w, "correct horse batterY"), Err(DatabaseError::WrongPassphrase)));
        let mut moved = w.clone();
        moved.user_id = "u2".into();
        // Moved as is, the seal no longer matches its checksum: damaged.
        assert!(matches!(unwrap(&moved, "correct horse battery"), Err(DatabaseError::KeyFile(_))));
        // With the checksum made again, the seal is still bound to its user.
        moved.check = Some(moved.checksum());
        assert!(matches!(unwrap(&moved, "correct horse battery"), Err(DatabaseError::WrongPassphrase)));
    }

    /// A key file (or an invitation) asking for an Argon2 cost beyond the bounds
    /// is refused at once, as damaged: at the maximum memory Argon2 aborts the
    /// process, and 100,000 passes run for hours.
    #[test]
    fn a_sealed_key_asking_for_an_unbounded_cost_is_refused_at_once() {
        let key = new_data_key();
        let w = wrap(&key, "u1", "correct horse battery", KdfParams::INSECURE_FOR_TESTS).unwrap();
        for params in [
            KdfParams { m_kib: u32::MAX, t: 1, p: 1 },
            KdfParams { m_kib: 8, t: 100_000, p: 1 },
            KdfParams { m_kib: 8, t: 1, p: 0 },
            KdfParams { m_kib: 8, t: 0, p: 1 },
        ] {
            let started = std::time::Instant::now();
            let e = unwrap(&WrappedKey { params, ..w.clone() }, "correct horse battery").unwrap_err();
            assert!(matches!(e, DatabaseError::KeyFile(_)), "{params:?}: {e:?}");
            assert!(started.elapsed() < std::time::Duration::from_secs(1), "{params:?} was not refused at once");
        }
        let short_salt = WrappedKey { salt: "00".into(), ..w.clone() };
        assert!(matches!(unwrap(&short_salt, "correct horse battery"), Err(DatabaseError::KeyFile(_))));
        assert!(KdfParams::INTERACTIVE.is_bounded() && KdfParams::INSECURE_FOR_TESTS.is_bounded());
    }

    #[test]
    fn recovery_keys_are_random_grouped_and_forgiving_to_type() {
        let k = new_recovery_key();
        assert_eq!(k.len(), 47);
        assert_eq!(k.split('-').count(), 8);
        assert!(k.split('-').all(|g| g.len() == 5));
        assert_ne!(*k, *new_recovery_key());
        assert_eq!(normalize_recovery_key(&k).map(|s| s.to_string()), Some(k.to_string()));
        let typed = k.replace('-', " ").to_lowercase().replace('0', "o").replace('1', "l");
        assert_eq!(normalize_recovery_key(&typed).map(|s| s.to_string()), Some(k.to_string()));
        assert!(normalize_recovery_key(&k[..46]).is_none());
        assert!(normalize_recovery_key(&k.replacen(|c: char| c.is_ascii_alphanumeric(), "U", 1)).is_none());
    }

    #[test]
    fn a_seal_carries_a_users_secrets_beside_the_data_key() {
        let key = new_data_key();
        let me = UserSecrets::generate(Some([7u8; 32]));
        let w = wrap_with(&key, &me.to_bytes(), "u1", "correct horse battery", KdfParams::INSECURE_FOR_TESTS).unwrap();
        let (k, extra) = unwrap_with(&w, "correct horse battery").unwrap();
        assert_eq!(*k, *key);
        let back = UserSecrets::from_bytes(&extra).unwrap().unwrap();
        assert_eq!((back.sign_key(), back.kx_key(), back.authority()), (me.sign_key(), me.kx_key(), Some([7u8; 32])));
        // A seal from before holds the data key alone.
        let old = wrap(&key, "u1", "correct horse battery", KdfParams::INSECURE_FOR_TESTS).unwrap();
        let (_, extra) = unwrap_with(&old, "correct horse battery").unwrap();
        assert!(UserSecrets::from_bytes(&extra).unwrap().is_none());
        assert!(UserSecrets::from_bytes(&[1u8; 40]).is_err(), "a short secret is damaged");
    }

    #[test]
    fn what_is_sealed_to_a_key_opens_only_with_it_and_its_context() {
        let rosa = UserSecrets::generate(None);
        let luis = UserSecrets::generate(None);
        let sealed = seal_to(&rosa.kx_key(), "case:c1", b"the case key").unwrap();
        assert_eq!(open_sealed(rosa.kx(), "case:c1", &sealed).unwrap().as_slice(), b"the case key");
        assert!(open_sealed(luis.kx(), "case:c1", &sealed).is_none(), "another user's key");
        assert!(open_sealed(rosa.kx(), "case:c2", &sealed).is_none(), "moved to another case");
        let mut flipped = hex::decode(&sealed).unwrap();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(open_sealed(rosa.kx(), "case:c1", &hex::encode(flipped)).is_none());
        assert!(seal_to(&"00".repeat(32), "case:c1", b"x").is_none(), "a low-order key gets no seal");
    }

    #[test]
    fn the_key_file_never_holds_the_data_key() {
        let key = new_data_key();
        let w = wrap(&key, "u1", "correct horse battery", KdfParams::INSECURE_FOR_TESTS).unwrap();
        let json = serde_json::to_string(&w).unwrap();
        assert!(!json.contains(&hex::encode(key.as_ref())));
    }
}
