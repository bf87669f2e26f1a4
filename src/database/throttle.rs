//! Repeated wrong passphrases slow down.
//!
//! A failed unlock cannot be written into the encrypted store (there is no key), so
//! failures are counted in `unlock.json` beside it: a count, when the next attempt is
//! allowed, and when each failure happened. No names, no passphrases, nothing about
//! cases. The next successful unlock moves the failures into the audit trail and
//! resets the count.
//!
//! The delay is a speed bump for someone at the keyboard; what protects a stolen
//! laptop is Argon2id's cost per guess, which deleting this file does not lower.

use super::DatabaseError;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const THROTTLE_FILE: &str = "unlock.json";
/// Failures before any waiting: a typo or two costs nothing.
pub const FREE_ATTEMPTS: u32 = 2;
/// The longest wait between attempts.
pub const MAX_DELAY_SECS: i64 = 300;
/// Failure times kept for the audit trail (the count goes on beyond it).
const KEEP_TIMES: usize = 100;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Failures {
    pub count: u32,
    #[serde(default)]
    pub retry_after: Option<DateTime<Utc>>,
    #[serde(default)]
    pub at: Vec<String>,
}

/// How long to wait after `failures` wrong passphrases in a row: nothing for the
/// first two, then 2 s, 4 s, 8 s … up to five minutes.
pub fn delay_after(failures: u32) -> Duration {
    if failures <= FREE_ATTEMPTS {
        return Duration::zero();
    }
    let exp = (failures - FREE_ATTEMPTS).min(20);
    Duration::seconds((1i64 << exp).min(MAX_DELAY_SECS))
}

pub fn load(dir: &Path) -> Failures {
    std::fs::read(dir.join(THROTTLE_FILE)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

fn save(dir: &Path, f: &Failures) -> Result<(), DatabaseError> {
    super::files::write_json(&dir.join(THROTTLE_FILE), f)
}

/// Refuse an attempt made before the wait is over.
pub fn check(dir: &Path) -> Result<(), DatabaseError> {
    let f = load(dir);
    if let Some(until) = f.retry_after {
        let left = until - Utc::now();
        if left > Duration::zero() {
            // Round up: "wait 0 seconds" would be a lie.
            let secs = (left.num_milliseconds() + 999) / 1000;
            return Err(DatabaseError::Throttled { seconds: secs.max(1) as u64 });
        }
    }
    Ok(())
}

/// Count a wrong passphrase (or recovery key) and set the wait before the next one;
/// returns that wait in whole seconds (0: none).
pub fn record_failure(dir: &Path) -> Result<u64, DatabaseError> {
    let mut f = load(dir);
    let now = Utc::now();
    f.count = f.count.saturating_add(1);
    let delay = delay_after(f.count);
    f.retry_after = (delay > Duration::zero()).then(|| now + delay);
    f.at.push(now.to_rfc3339_opts(SecondsFormat::Millis, true));
    if f.at.len() > KEEP_TIMES {
        let excess = f.at.len() - KEEP_TIMES;
        f.at.drain(..excess);
    }
    save(dir, &f)?;
    Ok(delay.num_seconds().max(0) as u64)
}

/// The error for a wrong passphrase, saying how long to wait when there is a wait.
pub fn wrong_passphrase(dir: &Path) -> DatabaseError {
    match record_failure(dir) {
        Ok(0) => DatabaseError::WrongPassphrase,
        Ok(seconds) => DatabaseError::WrongPassphraseWait { seconds },
        Err(e) => e,
    }
}

/// After a successful unlock (and its audit entries): a clean slate.
pub fn reset(dir: &Path) -> Result<(), DatabaseError> {
    if dir.join(THROTTLE_FILE).exists() {
        save(dir, &Failures::default())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_grows_with_each_failure_up_to_a_cap() {
        let delays: Vec<i64> = (0..=15).map(|n| delay_after(n).num_seconds()).collect();
        assert_eq!(&delays[..8], &[0, 0, 0, 2, 4, 8, 16, 32]);
        assert!(delays.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(delay_after(15).num_seconds(), MAX_DELAY_SECS);
        assert_eq!(delay_after(u32::MAX).num_seconds(), MAX_DELAY_SECS);
    }
}
