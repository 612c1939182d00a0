//! The host's one wall clock: Unix time in seconds, milliseconds and microseconds (0 if the system clock
//! is set before the epoch). Receipts, records, payment windows, owner-signature windows and
//! the policy all read time here, so there is one definition of "now" to reason about (and to
//! replace, should a monotonic or attested time source be wanted).

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch.
pub fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Milliseconds since the Unix epoch.
pub fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Microseconds since the Unix epoch.
pub fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_milliseconds_agree() {
        let s = unix_seconds();
        let ms = unix_millis();
        assert!(s > 1_700_000_000, "the clock reads a plausible time");
        assert!(ms / 1000 >= s && ms / 1000 <= s + 1);
    }
}
