//! What travels between a laptop and the hub, written once for both sides.

use crate::store::{BatchInfo, Vector};
use serde::{Deserialize, Serialize};

/// A device's public half, as it introduces itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewDevice {
    pub id: String,
    pub code: String,
    pub sign_key: String,
    pub kx_key: String,
}

/// `POST /v1/orgs`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Register {
    pub setup_code: String,
    pub org: String,
    pub device: NewDevice,
}

/// `POST /v1/invitations`: only the token's hash reaches the hub.
#[derive(Debug, Serialize, Deserialize)]
pub struct Invite {
    pub token_hash: String,
    pub lifetime_s: i64,
}

/// `POST /v1/devices`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Enrol {
    pub token: String,
    pub device: NewDevice,
}

/// One batch a laptop lacks, as a listing gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listed {
    pub device: String,
    pub number: i64,
    pub epoch: i64,
    pub sha256: String,
    pub len: i64,
}

impl From<BatchInfo> for Listed {
    fn from(b: BatchInfo) -> Listed {
        Listed { device: b.device, number: b.number, epoch: b.epoch, sha256: b.sha256, len: b.len }
    }
}

/// One key epoch record, as `GET /v1/epochs` gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Epoch {
    pub number: i64,
    /// Hex of the record's bytes.
    pub record: String,
}

/// One batch asked for in a fetch of several (`POST /v1/batches/fetch`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wanted {
    pub device: String,
    pub number: i64,
}

/// The answer to a revocation: the last of the device's batches the hub holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedAnswer {
    pub last_batch: i64,
}

/// Why the hub refused: a code the laptop turns into a message in its user's
/// language (the hub never explains in words, and never names anyone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    Unsigned,
    BadSignature,
    Clock,
    Replayed,
    UnknownDevice,
    Revoked,
    NotAdmin,
    NotYours,
    BadBatch,
    NoSuchBatch,
    Malformed,
    SetupCode,
    TokenUnknown,
    TokenExpired,
    TokenUsed,
    DeviceCodeTaken,
    DeviceTaken,
    BatchConflict,
    OutOfOrder,
    Unavailable,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Refused {
    pub refused: Refusal,
}

/// A vector as a query parameter: `device:n,device:n`. Device ids are
/// alphanumeric with dashes, so neither separator can occur in them.
pub fn format_vector(v: &Vector) -> String {
    v.iter().map(|(d, n)| format!("{d}:{n}")).collect::<Vec<_>>().join(",")
}

/// The same, read back; None when it is not one (or absurdly long).
pub fn parse_vector(s: &str) -> Option<Vector> {
    let mut v = Vector::new();
    if s.is_empty() {
        return Some(v);
    }
    for part in s.split(',') {
        let (d, n) = part.split_once(':')?;
        let n: i64 = n.parse().ok()?;
        if d.is_empty() || n < 0 || v.insert(d.to_string(), n).is_some() || v.len() > 10_000 {
            return None;
        }
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vector_survives_the_query_string_and_nonsense_does_not_parse() {
        let v: Vector = [("a-1".to_string(), 3), ("b".to_string(), 0)].into();
        assert_eq!(parse_vector(&format_vector(&v)), Some(v));
        assert_eq!(parse_vector(""), Some(Vector::new()));
        for bad in ["a", "a:", "a:-1", ":3", "a:1,a:2", "a:x"] {
            assert_eq!(parse_vector(bad), None, "{bad}");
        }
    }
}
