//! The rules of the EIP-4361 ABNF for the fields of a message, as the x402 SDK applies them:
//! `@signinwithethereum/siwe` 4.2.1 re-parses every message it builds with its parser
//! (`@signinwithethereum/siwe-parser`, an APG grammar: RFC 3986 for the domain, the URI and the
//! resources, RFC 3339 for the times) and throws on any violation.
//!
//! Each function checks one field on its own. Together they decide whether the whole message
//! parses, because no field accepted here can contain a line feed or otherwise reach into the
//! next line.

/// `unreserved` of RFC 3986: ALPHA / DIGIT / "-" / "." / "_" / "~".
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// `sub-delims` of RFC 3986.
fn sub_delim(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

/// `pchar`, without `pct-encoded` (which [`Scan::eat_char`] handles).
fn pchar(b: u8) -> bool {
    unreserved(b) || sub_delim(b) || matches!(b, b':' | b'@')
}

/// `userinfo` characters, without `pct-encoded`.
fn userinfo_char(b: u8) -> bool {
    unreserved(b) || sub_delim(b) || b == b':'
}

/// `reg-name` characters, without `pct-encoded`.
fn reg_name_char(b: u8) -> bool {
    unreserved(b) || sub_delim(b)
}

/// `query` and `fragment` characters, without `pct-encoded`.
fn query_char(b: u8) -> bool {
    pchar(b) || matches!(b, b'/' | b'?')
}

/// A cursor over a field's bytes.
struct Scan<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    fn new(s: &'a str) -> Self {
        Self {
            s: s.as_bytes(),
            i: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn rest(&self) -> &'a [u8] {
        self.s.get(self.i..).unwrap_or_default()
    }

    fn done(&self) -> bool {
        self.i >= self.s.len()
    }

    /// Consumes `b` if it comes next.
    fn eat(&mut self, b: u8) -> bool {
        let next = self.peek() == Some(b);
        if next {
            self.i += 1;
        }
        next
    }

    /// Consumes one byte for which `ok` holds, or a `pct-encoded` triplet ("%" HEXDIG HEXDIG).
    fn eat_char(&mut self, ok: fn(u8) -> bool) -> bool {
        match self.rest() {
            [b'%', h, l, ..] if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                self.i += 3;
                true
            }
            [b, ..] if *b != b'%' && ok(*b) => {
                self.i += 1;
                true
            }
            _ => false,
        }
    }

    /// Consumes as many characters as [`eat_char`](Self::eat_char) takes.
    fn eat_chars(&mut self, ok: fn(u8) -> bool) {
        while self.eat_char(ok) {}
    }

    /// Consumes the longest run of bytes for which `ok` holds (no `pct-encoded`); returns it.
    fn eat_run(&mut self, ok: fn(u8) -> bool) -> &'a [u8] {
        let start = self.i;
        while self.peek().is_some_and(ok) {
            self.i += 1;
        }
        self.s.get(start..self.i).unwrap_or_default()
    }
}

/// `authority` (`[ userinfo "@" ] host [ ":" port ]`) from the cursor on, as the parser reads it:
/// it always takes the longest prefix it can, and says `false` only where the SDK throws or
/// where no continuation can be valid (an unclosed or malformed IP literal). `check_port`: the
/// message's `URI` (not the domain, not a resource) has its port read as a number, and the
/// parser throws when that number is infinite in JavaScript.
fn authority(scan: &mut Scan<'_>, check_port: bool) -> bool {
    let start = scan.i;
    scan.eat_chars(userinfo_char);
    if !scan.eat(b'@') {
        scan.i = start;
    }
    if scan.eat(b'[') {
        let rest = scan.rest();
        let Some(end) = rest.iter().position(|&b| b == b']') else {
            return false;
        };
        let inner = rest.get(..end).unwrap_or_default();
        if !(ipv6(inner) || ipv_future(inner)) {
            return false;
        }
        scan.i += end + 1;
    } else {
        // `IPv4address` is tried first, but anything it matches `reg-name` matches too.
        scan.eat_chars(reg_name_char);
    }
    if scan.eat(b':') {
        let digits = scan.eat_run(|b| b.is_ascii_digit());
        if check_port && !finite_in_javascript(digits) {
            return false;
        }
    }
    true
}

/// Whether JavaScript's `parseInt` reads these decimal digits as a finite number (both round
/// correctly to the nearest double). No digits: an empty port, which is not read.
fn finite_in_javascript(digits: &[u8]) -> bool {
    digits.is_empty()
        || std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse::<f64>().ok())
            .is_some_and(f64::is_finite)
}

/// `h16`: one to four hex digits.
fn h16(g: &[u8]) -> bool {
    (1..=4).contains(&g.len()) && g.iter().all(u8::is_ascii_hexdigit)
}

/// `IPv4address` as the SDK's parser takes it: four decimal octets of one to three digits each,
/// leading zeros allowed, each at most 255.
fn ipv4(s: &[u8]) -> bool {
    let mut octets = 0;
    for octet in s.split(|&b| b == b'.') {
        octets += 1;
        if !(1..=3).contains(&octet.len()) || !octet.iter().all(u8::is_ascii_digit) {
            return false;
        }
        let value = octet
            .iter()
            .fold(0u32, |v, &b| v * 10 + u32::from(b - b'0'));
        if value > 255 {
            return false;
        }
    }
    octets == 4
}

/// The 16-bit pieces of one side of an IPv6 address (`a:b:c`, the last piece possibly an
/// IPv4 address counting as two); `None` when malformed. An empty side has none.
fn ipv6_pieces(side: &[u8], ipv4_last: bool) -> Option<usize> {
    if side.is_empty() {
        return Some(0);
    }
    let groups: Vec<&[u8]> = side.split(|&b| b == b':').collect();
    let last = groups.len() - 1;
    let mut pieces = 0;
    for (k, g) in groups.into_iter().enumerate() {
        if ipv4_last && k == last && g.contains(&b'.') {
            if !ipv4(g) {
                return None;
            }
            pieces += 2;
        } else if h16(g) {
            pieces += 1;
        } else {
            return None;
        }
    }
    Some(pieces)
}

/// `IPv6address` of RFC 3986: eight pieces, or at most seven around one `::`.
fn ipv6(s: &[u8]) -> bool {
    match s.windows(2).position(|w| w == b"::") {
        Some(at) => {
            let (left, right) = (&s[..at], &s[at + 2..]);
            match (ipv6_pieces(left, false), ipv6_pieces(right, true)) {
                (Some(l), Some(r)) => l + r <= 7,
                _ => false,
            }
        }
        None => ipv6_pieces(s, true) == Some(8),
    }
}

/// `IPvFuture`: "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" ).
fn ipv_future(s: &[u8]) -> bool {
    let [b'v' | b'V', rest @ ..] = s else {
        return false;
    };
    let Some(dot) = rest.iter().position(|&b| b == b'.') else {
        return false;
    };
    let (version, tail) = (&rest[..dot], &rest[dot + 1..]);
    !version.is_empty()
        && version.iter().all(u8::is_ascii_hexdigit)
        && !tail.is_empty()
        && tail.iter().all(|&b| userinfo_char(b))
}

/// The message's domain: a whole, non-empty `authority` (`[userinfo "@"] host [":" port]`).
///
/// Stricter than the SDK in one way: its grammar also takes a scheme before the domain
/// (`https://example.com wants you to sign in…`), which no x402 client sends.
pub(crate) fn domain(s: &str) -> bool {
    let mut scan = Scan::new(s);
    !s.is_empty() && authority(&mut scan, false) && scan.done()
}

/// An absolute `URI` of RFC 3986: `scheme ":" hier-part [ "?" query ] [ "#" fragment ]`.
/// `check_port` for the message's `URI` line (see [`authority`]).
pub(crate) fn uri(s: &str, check_port: bool) -> bool {
    let mut scan = Scan::new(s);
    if !scan.peek().is_some_and(|b| b.is_ascii_alphabetic()) {
        return false;
    }
    scan.eat_run(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !scan.eat(b':') {
        return false;
    }
    if scan.rest().starts_with(b"//") {
        scan.i += 2;
        if !authority(&mut scan, check_port) {
            return false;
        }
        // path-abempty
        while scan.eat(b'/') {
            scan.eat_chars(pchar);
        }
    } else {
        // path-absolute / path-rootless / path-empty
        while scan.eat(b'/') || scan.eat_char(pchar) {}
    }
    if scan.eat(b'?') {
        scan.eat_chars(query_char);
    }
    if scan.eat(b'#') {
        scan.eat_chars(query_char);
    }
    scan.done()
}

/// A statement's characters: printable ASCII except `"`, `%`, `<`, `>`, `\`, `^`, `` ` ``,
/// `{`, `|` and `}` (no control characters, no line feed, nothing beyond ASCII).
pub(crate) fn statement(s: &str) -> bool {
    s.bytes().all(|b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b' ' | b'!' | b'#' | b'$' | b'&'
                    ..=b';' | b'=' | b'?' | b'@' | b'[' | b']' | b'_' | b'~'
            )
    })
}

/// `nonce`: at least eight ASCII letters or digits.
pub(crate) fn nonce(s: &str) -> bool {
    s.len() >= 8 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `request-id`: `*pchar` (may be empty).
pub(crate) fn request_id(s: &str) -> bool {
    let mut scan = Scan::new(s);
    scan.eat_chars(pchar);
    scan.done()
}
