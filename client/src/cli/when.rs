//! Times as people read them: Unix milliseconds from the host, printed as RFC 3339 in UTC.

/// `ms` (Unix milliseconds) as `2026-11-26T02:10:39.123Z`; the raw number if it is out of
/// range.
pub fn rfc3339(ms: u64) -> String {
    let formatted = i128::from(ms)
        .checked_mul(1_000_000)
        .and_then(|ns| time::OffsetDateTime::from_unix_timestamp_nanos(ns).ok())
        .and_then(|t| {
            let format = time::format_description::well_known::Rfc3339;
            t.replace_nanosecond(t.millisecond() as u32 * 1_000_000)
                .ok()?
                .format(&format)
                .ok()
        });
    formatted.unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn milliseconds_read_as_utc_dates() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            super::rfc3339(1_795_000_000_123),
            "2026-11-18T11:06:40.123Z"
        );
        assert_eq!(super::rfc3339(u64::MAX), u64::MAX.to_string());
    }
}
