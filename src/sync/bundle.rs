//! The bundle file: what one laptop hands another on a USB stick (see
//! `docs/sync-bundle.md` for the format).
//!
//! ```text
//! "AMPARO-SYNC\n"          12 bytes, the magic
//! header length            4 bytes, little-endian u32
//! header                   JSON, in the clear (format, organisation, source, ranges)
//! nonce                    24 bytes
//! body                     XChaCha20-Poly1305 under the organisation key; the magic,
//!                          length and header are its associated data
//! signature                64 bytes, Ed25519 by the writing device over all of the above
//! ```
//!
//! The header is readable without the key, so a bundle of another organisation or a
//! newer format is refused with a message that says so; it is authenticated with the
//! body, so changing one byte of either makes the whole bundle refused. The
//! signature sits outside the seal, so the hub checks it without the key, and a
//! laptop checks it before it opens anything. Decoding never panics and applies
//! nothing: it only returns a checked bundle or an error.

use super::identity::{self, Identity, SIGNATURE_LEN};
use super::SyncError;
use crate::changelog::Change;
use crate::repositories::audit::Entry;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const MAGIC: &[u8; 12] = b"AMPARO-SYNC\n";
/// The format this build writes, and the newest it reads.
/// 2: changes may be of directory entries too (a laptop that reads only 1 is told
/// to update rather than that the bundle is damaged).
/// 3: signed by the writing device, with its public keys and the key epoch in the
/// header; the oldest this build reads, since an unsigned bundle could come from
/// anyone who ever held the organisation key.
/// 4: changes may be of restricted cases' keys (`case_key`), and a restricted
/// case's personal values sealed (docs/restricted.md).
/// 5: the body is compressed (zstd) before it is sealed.
pub const FORMAT: u32 = 5;
/// The first format whose body is compressed.
const COMPRESSED: u32 = 5;
/// A compressed body opens to `BODY_FREE` whatever its size, beyond that to at
/// most `EXPANSION_MAX` times its size, and never past `BODY_MAX`: more is built
/// to exhaust memory, not a bundle (the JSON of changes compresses some 10 to 20
/// times; a value typed as one long run of one letter, far more).
const BODY_FREE: usize = 64 << 20;
const EXPANSION_MAX: usize = 1000;
const BODY_MAX: usize = 1 << 30;
/// zstd's default: a tenth of a second for a bundle of 10,000 cases.
const LEVEL: i32 = 3;
/// The oldest format this build reads.
pub const OLDEST_FORMAT: u32 = 3;
/// A header is a few hundred bytes per device; anything near this is not a bundle.
const HEADER_MAX: usize = 1 << 20;
const NONCE_LEN: usize = 24;

/// Per device: the sequence numbers held (1..=n with none missing).
pub type Vector = BTreeMap<String, i64>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub format: u32,
    pub org: String,
    /// The laptop that wrote the bundle.
    pub device: String,
    pub device_code: String,
    /// The writer's Ed25519 public key (hex): the signature at the end is by it.
    pub sign_key: String,
    /// The writer's X25519 public key (hex): what new key epochs are sealed to.
    pub kx_key: String,
    /// Which organisation key sealed the body (0: the one the organisation began with).
    pub epoch: u32,
    /// The writer's batch number on the hub (1, 2, 3…); 0 in a bundle for a folder.
    #[serde(default)]
    pub batch: i64,
    pub created_at: String,
    /// Per device, the first and last sequence number of the changes inside.
    pub changes: BTreeMap<String, (i64, i64)>,
    /// The same for audit entries.
    pub audit: BTreeMap<String, (i64, i64)>,
    /// What the writer holds: so the reader knows what to send back next time.
    pub has_changes: Vector,
    pub has_audit: Vector,
    /// The hash of the writer's own newest entry (number `has_audit[device]`),
    /// signed with the bundle: a laptop holding another copy of that entry finds
    /// out if the writer's log was rewritten. Empty from an older Amparo.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub audit_head: String,
    /// Key epoch records (hex, `super::epoch`), in a bundle for a folder: they are
    /// signed and hold no key in the clear, and the reader may need one to open
    /// the body. Empty in a hub batch (the hub serves them itself).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub epochs: Vec<String>,
}

/// What a bundle carries, once opened.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Body {
    pub changes: Vec<Change>,
    pub audit: Vec<Entry>,
    /// Device id -> device code, for every device the writer knows.
    pub devices: BTreeMap<String, String>,
    /// The organisation's users the writer knows, by their signed grants.
    pub members: Vec<crate::repositories::users::Member>,
}

/// The body as written: changes grouped by the write they came from (one device,
/// clock time, case and author), so that what they share is written once.
#[derive(Serialize, Deserialize)]
struct Wire {
    changes: Vec<Batch>,
    audit: Vec<Entry>,
    devices: BTreeMap<String, String>,
    /// Absent from an older Amparo's bundle.
    #[serde(default)]
    members: Vec<crate::repositories::users::Member>,
}

#[derive(Serialize, Deserialize)]
struct Batch {
    d: String,
    h: i64,
    e: String,
    i: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    u: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    n: Option<String>,
    c: Vec<Item>,
}

#[derive(Serialize, Deserialize)]
struct Item {
    s: i64,
    f: String,
    /// Absent: blanked. `null`: the field was cleared (a different thing).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    v: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    p: Vec<(String, i64)>,
}

/// A value that is there, even when it is `null` (serde would read `null` as None).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}

impl From<&Body> for Wire {
    fn from(b: &Body) -> Wire {
        let mut changes: Vec<Batch> = Vec::new();
        for c in &b.changes {
            let item = Item { s: c.seq, f: c.field.clone(), v: c.value.clone(), p: c.parents.clone() };
            match changes.last_mut() {
                Some(last)
                    if last.d == c.device
                        && last.h == c.hlc
                        && last.e == c.entity
                        && last.i == c.id
                        && last.u == c.user
                        && last.n == c.user_name =>
                {
                    last.c.push(item)
                }
                _ => changes.push(Batch {
                    d: c.device.clone(),
                    h: c.hlc,
                    e: c.entity.clone(),
                    i: c.id.clone(),
                    u: c.user.clone(),
                    n: c.user_name.clone(),
                    c: vec![item],
                }),
            }
        }
        Wire { changes, audit: b.audit.clone(), devices: b.devices.clone(), members: b.members.clone() }
    }
}

impl From<Wire> for Body {
    fn from(w: Wire) -> Body {
        let mut changes = Vec::new();
        for b in w.changes {
            for it in b.c {
                changes.push(Change {
                    device: b.d.clone(),
                    seq: it.s,
                    hlc: b.h,
                    entity: b.e.clone(),
                    id: b.i.clone(),
                    field: it.f,
                    value: it.v,
                    parents: it.p,
                    user: b.u.clone(),
                    user_name: b.n.clone(),
                });
            }
        }
        Body { changes, audit: w.audit, devices: w.devices, members: w.members }
    }
}

fn aad(header: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(MAGIC.len() + 4 + header.len());
    a.extend_from_slice(MAGIC);
    a.extend_from_slice(&(header.len() as u32).to_le_bytes());
    a.extend_from_slice(header);
    a
}

/// Seal a bundle under the organisation key and sign it as this device. The
/// header's `sign_key` must be the identity's.
pub fn seal(header: &Header, body: &Body, key: &[u8; 32], me: &Identity) -> Result<Vec<u8>, SyncError> {
    if header.sign_key != me.sign_key() {
        return Err(SyncError::Damaged);
    }
    let json = zeroize::Zeroizing::new(serde_json::to_vec(&Wire::from(body)).map_err(|_| SyncError::Damaged)?);
    let plain = match header.format >= COMPRESSED {
        true => zeroize::Zeroizing::new(zstd::bulk::compress(&json, LEVEL).map_err(|_| SyncError::Damaged)?),
        false => json,
    };
    seal_plain(header, &plain, key, me)
}

/// Seal a body already in its written form.
fn seal_plain(header: &Header, plain: &[u8], key: &[u8; 32], me: &Identity) -> Result<Vec<u8>, SyncError> {
    let h = serde_json::to_vec(header).map_err(|_| SyncError::Damaged)?;
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let head = aad(&h);
    let sealed = XChaCha20Poly1305::new(Key::from_slice(key))
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad: &head })
        .map_err(|_| SyncError::Damaged)?;
    let mut out = head;
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    let signature = me.sign(&out);
    out.extend_from_slice(&signature);
    Ok(out)
}

/// Read the header and check the signature (no organisation key needed: the hub
/// does this too). Returns the header and where it ends.
pub fn read_signed(bytes: &[u8]) -> Result<(Header, usize), SyncError> {
    let (header, end) = read_header(bytes)?;
    if bytes.len() < end + NONCE_LEN + SIGNATURE_LEN {
        return Err(SyncError::Damaged);
    }
    let (signed, signature) = bytes.split_at(bytes.len() - SIGNATURE_LEN);
    // Cut short, altered or forged: the same refusal, as nothing tells them apart.
    if !identity::verify(&header.sign_key, signed, signature) {
        return Err(SyncError::Damaged);
    }
    Ok((header, end))
}

/// Read the header only, unverified: for the checks that come first.
fn read_header(bytes: &[u8]) -> Result<(Header, usize), SyncError> {
    if bytes.len() < MAGIC.len() + 4 || &bytes[..MAGIC.len()] != MAGIC {
        return Err(SyncError::NotABundle);
    }
    let mut len = [0u8; 4];
    len.copy_from_slice(&bytes[MAGIC.len()..MAGIC.len() + 4]);
    let len = u32::from_le_bytes(len) as usize;
    let start = MAGIC.len() + 4;
    if len > HEADER_MAX || bytes.len() < start + len {
        return Err(SyncError::Damaged);
    }
    let raw: serde_json::Value = serde_json::from_slice(&bytes[start..start + len]).map_err(|_| SyncError::Damaged)?;
    // The version first: a newer format may have other fields.
    let format = raw.get("format").and_then(serde_json::Value::as_u64).ok_or(SyncError::Damaged)?;
    if format > u64::from(FORMAT) {
        return Err(SyncError::NewerFormat { found: format, supported: FORMAT });
    }
    if format < u64::from(OLDEST_FORMAT) {
        let device_code = raw.get("device_code").and_then(serde_json::Value::as_str).unwrap_or("?").to_string();
        return Err(SyncError::Unsigned { device_code });
    }
    let header: Header = serde_json::from_value(raw).map_err(|_| SyncError::Damaged)?;
    Ok((header, start + len))
}

/// Open a bundle: the signature, every check, then the body. Nothing is applied
/// here; whether the signer is who it says is the caller's to check.
pub fn open(bytes: &[u8], org: &str, key: &[u8; 32]) -> Result<(Header, Body), SyncError> {
    let (header, end) = read_signed(bytes)?;
    if header.org != org {
        return Err(SyncError::ForeignOrg);
    }
    let nonce = &bytes[end..end + NONCE_LEN];
    let sealed = &bytes[end + NONCE_LEN..bytes.len() - SIGNATURE_LEN];
    let plain = zeroize::Zeroizing::new(
        XChaCha20Poly1305::new(Key::from_slice(key))
            .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad: &bytes[..end] })
            .map_err(|_| SyncError::Damaged)?,
    );
    let json = match header.format >= COMPRESSED {
        true => decompress(&plain)?,
        false => plain,
    };
    let wire: Wire = serde_json::from_slice(&json).map_err(|_| SyncError::Damaged)?;
    let body = Body::from(wire);
    check(&header, &body)?;
    Ok((header, body))
}

/// A compressed body, opened within bounds: one that would grow past them is
/// refused before it does.
fn decompress(body: &[u8]) -> Result<zeroize::Zeroizing<Vec<u8>>, SyncError> {
    use std::io::Read;
    let limit = body.len().saturating_mul(EXPANSION_MAX).clamp(BODY_FREE, BODY_MAX);
    let decoder = zstd::stream::read::Decoder::new(body).map_err(|_| SyncError::Damaged)?;
    let mut out = zeroize::Zeroizing::new(Vec::new());
    decoder.take(limit as u64 + 1).read_to_end(&mut out).map_err(|_| SyncError::Damaged)?;
    if out.len() > limit {
        return Err(SyncError::Damaged);
    }
    Ok(out)
}

/// The body must be what the header says: every change and entry inside its
/// device's range, and each one well formed.
fn check(header: &Header, body: &Body) -> Result<(), SyncError> {
    let within = |ranges: &BTreeMap<String, (i64, i64)>, d: &str, s: i64| {
        ranges.get(d).is_some_and(|(a, b)| (*a..=*b).contains(&s) && *a >= 1)
    };
    for c in &body.changes {
        let ok = within(&header.changes, &c.device, c.seq)
            && crate::changelog::ENTITIES.contains(&c.entity.as_str())
            && uuid::Uuid::parse_str(&c.id).is_ok()
            && !c.field.is_empty()
            && c.field.len() <= 200
            && c.hlc >= 0;
        if !ok {
            return Err(SyncError::Damaged);
        }
    }
    for e in &body.audit {
        if !within(&header.audit, &e.device_id, e.device_seq) {
            return Err(SyncError::Damaged);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::changelog::Change;
    use serde_json::json;

    fn sample() -> (Vec<u8>, [u8; 32], Identity) {
        let key = [7u8; 32];
        let me = Identity::generate();
        let change = |seq: i64, field: &str, value: serde_json::Value| Change {
            device: "d1".into(),
            seq,
            hlc: 1 << 20,
            entity: "case".into(),
            id: "01a22879-e2d6-7323-8ef1-a20097a17765".into(),
            field: field.into(),
            value: Some(value),
            parents: vec![],
            user: None,
            user_name: None,
        };
        let body = Body {
            changes: vec![change(1, "status", json!("Active")), change(2, "people.x.alias", json!("Rosa"))],
            audit: vec![],
            devices: [("d1".to_string(), "TX3".to_string())].into(),
            members: vec![],
        };
        let header = Header {
            format: FORMAT,
            org: "org".into(),
            device: "d1".into(),
            device_code: "TX3".into(),
            sign_key: me.sign_key(),
            kx_key: me.kx_key(),
            epoch: 0,
            batch: 0,
            created_at: "2026-11-29T00:00:00.000Z".into(),
            changes: [("d1".to_string(), (1, 2))].into(),
            audit: BTreeMap::new(),
            has_changes: [("d1".to_string(), 2)].into(),
            has_audit: BTreeMap::new(),
            audit_head: String::new(),
            epochs: vec![],
        };
        (seal(&header, &body, &key, &me).unwrap(), key, me)
    }

    /// The regular-test half of the fuzzing: every truncation and every single bit
    /// flip of a bundle is a clean error, never a panic and never a bundle.
    #[test]
    fn every_truncation_and_bit_flip_is_refused_cleanly() {
        let (good, key, me) = sample();
        assert!(open(&good, "org", &key).is_ok());
        for len in 0..good.len() {
            assert!(open(&good[..len], "org", &key).is_err(), "truncated to {len}");
        }
        for bit in 0..good.len() * 8 {
            let mut b = good.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(open(&b, "org", &key).is_err(), "bit {bit} flipped");
        }
        // A body that decrypts but lies about its ranges is refused too.
        let (mut header, _) = read_signed(&good).unwrap();
        header.changes.insert("d1".into(), (1, 1));
        let (_, body) = open(&good, "org", &key).unwrap();
        let lying = seal(&header, &body, &key, &me).unwrap();
        assert!(matches!(open(&lying, "org", &key), Err(SyncError::Damaged)));
        // Sealed under the right key but signed by another device than the header
        // names: the signature does not verify, before the seal is opened.
        let other = Identity::generate();
        let mut forged = good[..good.len() - SIGNATURE_LEN].to_vec();
        let sig = other.sign(&forged);
        forged.extend_from_slice(&sig);
        assert!(matches!(open(&forged, "org", &key), Err(SyncError::Damaged)));
        // A header naming another key than the one signing is not written at all.
        header.sign_key = other.sign_key();
        assert!(seal(&header, &body, &key, &me).is_err());
        assert!(matches!(open(&good, "other", &key), Err(SyncError::ForeignOrg)));
        assert!(matches!(open(&good, "org", &[8u8; 32]), Err(SyncError::Damaged)));
    }

    #[test]
    fn a_body_is_compressed_and_an_older_uncompressed_one_still_opens() {
        let (good, key, me) = sample();
        let (header, body) = open(&good, "org", &key).unwrap();
        assert_eq!(header.format, 5);
        // Many changes that repeat what JSON repeats: the bundle is far smaller
        // than the JSON it holds.
        let mut big = body.clone();
        big.changes = (1..=2000)
            .map(|seq| Change {
                seq,
                field: format!("people.01a22879-e2d6-7323-8ef1-a2009{seq:07}.alias"),
                ..body.changes[0].clone()
            })
            .collect();
        let mut h = header.clone();
        h.changes.insert("d1".into(), (1, 2000));
        let sealed = seal(&h, &big, &key, &me).unwrap();
        let json = serde_json::to_vec(&Wire::from(&big)).unwrap();
        assert!(sealed.len() * 5 < json.len(), "{} bytes sealed for {} of JSON", sealed.len(), json.len());
        assert_eq!(open(&sealed, "org", &key).unwrap().1, big);
        // A format 4 bundle, as an older Amparo writes it, opens the same.
        let old = Header { format: 4, ..h.clone() };
        let sealed4 = seal(&old, &big, &key, &me).unwrap();
        assert!(sealed4.len() > json.len());
        assert_eq!(open(&sealed4, "org", &key).unwrap().1, big);
    }

    #[test]
    fn a_body_that_would_open_to_far_more_than_it_is_refused() {
        let (good, key, me) = sample();
        let (header, _) = open(&good, "org", &key).unwrap();
        // 128 MiB of one byte: a few kilobytes compressed, signed and sealed right.
        let bomb = zstd::bulk::compress(&vec![b' '; 128 << 20], 1).unwrap();
        assert!(bomb.len() * EXPANSION_MAX < 128 << 20 && BODY_FREE < 128 << 20);
        let sealed = seal_plain(&header, &bomb, &key, &me).unwrap();
        assert!(matches!(open(&sealed, "org", &key), Err(SyncError::Damaged)));
        // Within bounds, bytes that are not zstd are damage too.
        let sealed = seal_plain(&header, b"{\"changes\": []}", &key, &me).unwrap();
        assert!(matches!(open(&sealed, "org", &key), Err(SyncError::Damaged)));
    }
}
