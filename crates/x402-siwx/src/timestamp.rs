//! RFC 3339 date-times as the SIWx message and JavaScript's `Date` read and write them.
//!
//! Hand-written rather than with the `time` crate: the message accepts exactly what the SDK's
//! parser accepts (lower-case `t`/`z`, any number of fraction digits, a leap second `:60` at any
//! minute), values are read as JavaScript's `Date` reads them (fraction truncated to the
//! millisecond), and [`format`] gives `Date.prototype.toISOString` over its whole range,
//! expanded years (`+010000-…`) included.

/// Milliseconds per day.
const DAY_MS: i64 = 86_400_000;

/// The largest time value of a JavaScript `Date`, in milliseconds either side of 1970.
const JS_MAX_MS: i64 = 8_640_000_000_000_000;

/// A date-time the grammar accepts.
pub(crate) struct DateTime {
    /// Unix milliseconds (the fraction truncated, the offset applied).
    pub unix_ms: i64,
    /// The seconds were `60`: valid RFC 3339, but JavaScript's `Date` refuses it.
    pub leap_second: bool,
}

fn is_leap_year(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap_year(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `days` after 1970-01-01 (inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // Both in range by construction: 1..=31 and 1..=12.
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Decimal digits as a number (at most four here).
fn number(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0, |v, &b| v * 10 + u32::from(b - b'0')))
}

/// Reads `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` (RFC 3339 `date-time`; `T` and `Z` in either
/// case), with the checks the SDK's parser adds: month 01-12, a day that exists in that month,
/// hours 00-23, minutes 00-59, seconds 00-60.
pub(crate) fn parse(s: &str) -> Option<DateTime> {
    let b = s.as_bytes();
    let field = |from: usize, to: usize| b.get(from..to).and_then(number);
    let (year, month, day) = (field(0, 4)?, field(5, 7)?, field(8, 10)?);
    let (hour, minute, second) = (field(11, 13)?, field(14, 16)?, field(17, 19)?);
    let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if separators.iter().any(|&(i, c)| b.get(i) != Some(&c))
        || !matches!(b.get(10), Some(b'T' | b't'))
    {
        return None;
    }
    let year = i64::from(year);
    if !(1..=12).contains(&month)
        || !(1..=days_in_month(year, month)).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = b.get(19..)?;
    let mut millis = 0;
    if let [b'.', tail @ ..] = rest {
        let digits = tail.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        // JavaScript keeps the first three digits (".5" is 500 ms) and drops the others.
        millis = tail[..digits]
            .iter()
            .chain(b"000")
            .take(3)
            .fold(0, |v, &d| v * 10 + i64::from(d - b'0'));
        rest = &tail[digits..];
    }
    let offset_minutes = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (number(&[*h1, *h2])?, number(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            let minutes = i64::from(h * 60 + m);
            if *sign == b'-' { -minutes } else { minutes }
        }
        _ => return None,
    };
    let seconds = i64::from(hour * 3600 + minute * 60 + second) - offset_minutes * 60;
    let unix_ms = days_from_civil(year, month, day) * DAY_MS + seconds * 1000 + millis;
    Some(DateTime {
        unix_ms,
        leap_second: second == 60,
    })
}

/// `new Date(unix_ms).toISOString()`: `YYYY-MM-DDTHH:MM:SS.sssZ`, years outside 0000-9999 as
/// `+YYYYYY` / `-YYYYYY`. Beyond a JavaScript `Date`'s range (±8.64e15 ms), where
/// `toISOString` throws, the value is clamped to it.
pub(crate) fn format(unix_ms: i64) -> String {
    let ms = unix_ms.clamp(-JS_MAX_MS, JS_MAX_MS);
    let (days, in_day) = (ms.div_euclid(DAY_MS), ms.rem_euclid(DAY_MS));
    let (y, m, d) = civil_from_days(days);
    let (secs, millis) = (in_day / 1000, in_day % 1000);
    let (hh, mm, ss) = (secs / 3600, secs / 60 % 60, secs % 60);
    let year = if (0..=9999).contains(&y) {
        format!("{y:04}")
    } else if y < 0 {
        format!("-{:06}", -y)
    } else {
        format!("+{y:06}")
    };
    format!("{year}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{millis:03}Z")
}
