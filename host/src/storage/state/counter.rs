//! Counters in a key's value (`increment`): this host's form, 8 bytes little-endian, and the
//! decimal text that wasmtime's `wasi:keyvalue` keeps (`"41"`), so that state written under
//! either convention counts on. A value keeps the form it has; a new counter is binary.

/// How a counter is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Form {
    /// 8 bytes, little-endian (`u64`, or two's-complement `s64`).
    Binary,
    /// ASCII decimal, `-` first when negative.
    Decimal,
}

/// The counter `bytes` hold, and its form; `None` for a value that is neither. Text of digits
/// is read as decimal even when it is 8 bytes long (`"12345678"`): read as binary it would be
/// above 4·10^18, no counter anyone keeps.
pub(super) fn read(bytes: &[u8], signed: bool) -> Option<(i128, Form)> {
    let digits = bytes.strip_prefix(b"-").filter(|_| signed).unwrap_or(bytes);
    if !digits.is_empty() && digits.len() <= 20 && digits.iter().all(u8::is_ascii_digit) {
        let value: i128 = std::str::from_utf8(bytes).ok()?.parse().ok()?;
        let fits = if signed {
            i64::try_from(value).is_ok()
        } else {
            u64::try_from(value).is_ok()
        };
        return fits.then_some((value, Form::Decimal));
    }
    let raw: [u8; 8] = bytes.try_into().ok()?;
    let value = if signed {
        i128::from(i64::from_le_bytes(raw))
    } else {
        i128::from(u64::from_le_bytes(raw))
    };
    Some((value, Form::Binary))
}

/// `value` written in `form`; `None` when it does not fit the counter's type.
pub(super) fn write(value: i128, signed: bool, form: Form) -> Option<Vec<u8>> {
    let fits = if signed {
        i64::try_from(value).is_ok()
    } else {
        u64::try_from(value).is_ok()
    };
    if !fits {
        return None;
    }
    Some(match form {
        Form::Decimal => value.to_string().into_bytes(),
        // Both casts are exact: `value` fits the type (checked above).
        Form::Binary if signed => (value as i64).to_le_bytes().to_vec(),
        Form::Binary => (value as u64).to_le_bytes().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::{Form, read, write};

    #[test]
    fn binary_and_decimal_counters_are_read_and_keep_their_form() {
        assert_eq!(read(&41u64.to_le_bytes(), false), Some((41, Form::Binary)));
        assert_eq!(read(&(-3i64).to_le_bytes(), true), Some((-3, Form::Binary)));
        assert_eq!(read(b"41", false), Some((41, Form::Decimal)));
        assert_eq!(read(b"-3", true), Some((-3, Form::Decimal)));
        assert_eq!(read(b"12345678", false), Some((12_345_678, Form::Decimal)));
        assert_eq!(
            read(b"18446744073709551615", false),
            Some((u64::MAX.into(), Form::Decimal))
        );
        assert_eq!(write(42, false, Form::Decimal).unwrap(), b"42");
        assert_eq!(write(-2, true, Form::Decimal).unwrap(), b"-2");
        assert_eq!(write(42, false, Form::Binary).unwrap(), 42u64.to_le_bytes());
        assert_eq!(
            write(-2, true, Form::Binary).unwrap(),
            (-2i64).to_le_bytes()
        );
    }

    #[test]
    fn other_values_and_overflows_are_not_counters() {
        for bytes in [
            &b""[..],
            b"4 1",
            b"+41",
            b"0x10",
            b"abc",
            b"-3",
            b"\x01\x02",
        ] {
            assert_eq!(read(bytes, false), None, "{bytes:?}");
        }
        assert_eq!(read(b"18446744073709551616", false), None);
        assert_eq!(read(b"9223372036854775808", true), None);
        assert_eq!(read(b"--3", true), None);
        assert_eq!(write(-1, false, Form::Binary), None);
        assert_eq!(write(i128::from(u64::MAX) + 1, false, Form::Decimal), None);
        assert_eq!(write(i128::from(i64::MAX) + 1, true, Form::Binary), None);
    }
}
