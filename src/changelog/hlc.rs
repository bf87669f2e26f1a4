//! Hybrid logical clock (Kulkarni, Demirbas et al., "Logical Physical Clocks", 2014).
//!
//! A timestamp is the physical time in milliseconds in the high 48 bits and a
//! counter in the low 16, so that one `i64` compares like the pair `(l, c)` of the
//! paper. It never runs backwards, it moves past every timestamp this laptop has
//! seen (so a change made after importing another laptop's change sorts after it,
//! whatever the two wall clocks say), and it stays close to physical time. A laptop
//! whose clock is days off still converges: merge only compares timestamps, and a
//! timestamp from the future simply wins until physical time catches up.

use chrono::{DateTime, SecondsFormat, Utc};

const COUNTER_BITS: u32 = 16;

#[cfg(test)]
thread_local! {
    /// Tests set a laptop's wall clock off by this many milliseconds.
    pub static SKEW_MS_FOR_TESTS: std::cell::Cell<i64> = const { std::cell::Cell::new(0) };
}

/// How far ahead of this laptop's physical time an incoming change may be: one day.
pub const MAX_AHEAD: i64 = 86_400_000 << COUNTER_BITS;

/// Physical time now, in the clock's units.
pub fn physical_now() -> i64 {
    #[cfg(test)]
    let ms = Utc::now().timestamp_millis() + SKEW_MS_FOR_TESTS.get();
    #[cfg(not(test))]
    let ms = Utc::now().timestamp_millis();
    ms.max(0) << COUNTER_BITS
}

/// The next timestamp for a local event, after `last`.
pub fn tick(last: i64, physical: i64) -> i64 {
    // (l, c) -> (max(l, pt), c + 1 or 0): in packed form this is one max.
    // Saturating: a stored clock at the largest value stops instead of panicking
    // (imports refuse such clocks; a store damaged before that check still opens).
    last.saturating_add(1).max(physical)
}

/// The next timestamp after receiving `remote`.
pub fn observe(last: i64, remote: i64, physical: i64) -> i64 {
    last.max(remote).saturating_add(1).max(physical)
}

/// The wall-clock part as an RFC 3339 time (what a person reads: "when").
pub fn to_rfc3339(hlc: i64) -> String {
    let ms = hlc >> COUNTER_BITS;
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_never_runs_backwards_and_moves_past_what_it_saw() {
        let t = 1_000 << COUNTER_BITS;
        // Same millisecond: the counter moves.
        assert_eq!(tick(t, t), t + 1);
        // Physical time ahead: follows it, counter reset.
        assert_eq!(tick(t, t + (5 << COUNTER_BITS)), t + (5 << COUNTER_BITS));
        // Physical time behind (a clock set back): stays ahead of what it had.
        assert!(tick(t, 0) > t);
        // A remote timestamp from days ahead: the next local event sorts after it.
        let far = t + ((3 * 86_400_000) << COUNTER_BITS);
        let after = observe(t, far, t);
        assert!(after > far && tick(after, t) > after);
        assert_eq!(to_rfc3339(0), "1970-01-01T00:00:00.000Z");
        // At the largest value the clock stops rather than overflowing.
        assert_eq!(tick(i64::MAX, t), i64::MAX);
        assert_eq!(observe(t, i64::MAX, t), i64::MAX);
    }
}
