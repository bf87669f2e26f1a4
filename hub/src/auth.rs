//! How a request to the hub is signed: written once here, for the server that
//! checks it and the laptop client that makes it.
//!
//! The device signs the method, the path with its query, the SHA-256 of the body,
//! a timestamp and a random nonce. The hub accepts a timestamp within five
//! minutes of its own clock and remembers nonces for ten, so a request seen on the
//! wire cannot be sent again, and one changed in any part fails its signature.

/// Header naming the device that signed (its id).
pub const DEVICE: &str = "x-amparo-device";
/// Unix milliseconds when the request was made.
pub const TIME: &str = "x-amparo-time";
/// 16 random bytes, hex.
pub const NONCE: &str = "x-amparo-nonce";
/// Ed25519 signature of [`message`], hex.
pub const SIGNATURE: &str = "x-amparo-signature";

/// How far a request's clock may be from the hub's.
pub const MAX_SKEW_MS: i64 = 5 * 60 * 1000;
/// How long a nonce is remembered: longer than the window either side of now.
pub const NONCE_MEMORY_MS: i64 = 2 * MAX_SKEW_MS;

/// The bytes a request's signature covers.
pub fn message(method: &str, path_and_query: &str, body: &[u8], time_ms: i64, nonce: &str) -> Vec<u8> {
    format!(
        "AMPARO-HUB-1\n{}\n{}\n{}\n{}\n{}",
        method.to_ascii_uppercase(),
        path_and_query,
        crate::store::sha256_hex(body),
        time_ms,
        nonce
    )
    .into_bytes()
}

/// Unix milliseconds now, as requests are stamped and checked.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The certificate fingerprint as printed and pinned: hex SHA-256 of its DER bytes,
/// in pairs, so that a person comparing it by eye can keep their place.
pub fn fingerprint(der: &[u8]) -> String {
    normalise_fingerprint(&crate::store::sha256_hex(der))
}

/// A fingerprint as typed: case, spaces and colons do not matter.
pub fn normalise_fingerprint(typed: &str) -> String {
    let plain: String = typed.chars().filter(char::is_ascii_hexdigit).collect::<String>().to_ascii_uppercase();
    plain.as_bytes().chunks(2).map(|p| String::from_utf8_lossy(p).into_owned()).collect::<Vec<_>>().join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_is_the_same_however_it_is_typed() {
        let f = fingerprint(b"certificate");
        assert_eq!(f.len(), 32 * 3 - 1);
        assert_eq!(normalise_fingerprint(&f.to_lowercase().replace(':', " ")), f);
        assert_ne!(normalise_fingerprint(&f[3..]), f);
    }

    #[test]
    fn every_part_of_a_request_is_signed() {
        let base = message("put", "/v1/batches/d/1", b"body", 5, "n");
        for other in [
            message("get", "/v1/batches/d/1", b"body", 5, "n"),
            message("put", "/v1/batches/d/2", b"body", 5, "n"),
            message("put", "/v1/batches/d/1", b"bodY", 5, "n"),
            message("put", "/v1/batches/d/1", b"body", 6, "n"),
            message("put", "/v1/batches/d/1", b"body", 5, "m"),
        ] {
            assert_ne!(base, other);
        }
    }
}
