//! dstack runtime event digests (RTMR3), versions 1 and 2.

use sha2::{Digest as _, Sha384};

use crate::{Digest48, RUNTIME_EVENT_TYPE};

/// The bytes a v1 runtime digest hashes: `le32(0x08000001) || ":" || name || ":" || payload`.
pub fn runtime_preimage_v1(name: &str, payload: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(4 + 1 + name.len() + 1 + payload.len());
    buf.extend_from_slice(&RUNTIME_EVENT_TYPE.to_le_bytes());
    buf.push(b':');
    buf.extend_from_slice(name.as_bytes());
    buf.push(b':');
    buf.extend_from_slice(payload);
    buf
}

/// The v1 runtime event digest (every dstack release through v0.5.11):
/// `SHA384(le32(0x08000001) || ":" || name || ":" || payload)`.
pub fn runtime_digest_v1(name: &str, payload: &[u8]) -> Digest48 {
    let mut h = Sha384::new();
    h.update(RUNTIME_EVENT_TYPE.to_le_bytes());
    h.update(b":");
    h.update(name.as_bytes());
    h.update(b":");
    h.update(payload);
    h.finalize().into()
}

/// The bytes a v2 runtime digest hashes: the RFC 8785 (JCS) canonical JSON
/// `{"name":<name>,"payload":"<lowercase hex>","type":134217729}` (keys in sorted order, no
/// whitespace, the name escaped as JCS requires).
pub fn runtime_preimage_v2(name: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = String::with_capacity(name.len() + 2 * payload.len() + 48);
    out.push_str("{\"name\":");
    push_jcs_string(&mut out, name);
    out.push_str(",\"payload\":\"");
    out.push_str(&hex::encode(payload));
    out.push_str("\",\"type\":");
    out.push_str(&RUNTIME_EVENT_TYPE.to_string());
    out.push('}');
    out.into_bytes()
}

/// The v2 runtime event digest (dstack HEAD, opt-in with `event_log_version: 2`):
/// SHA-384 of [`runtime_preimage_v2`].
pub fn runtime_digest_v2(name: &str, payload: &[u8]) -> Digest48 {
    Sha384::digest(runtime_preimage_v2(name, payload)).into()
}

/// Appends `s` as a JSON string literal in the RFC 8785 form (ECMAScript `JSON.stringify`):
/// `"` and `\` escaped, `\b \f \n \r \t` short forms, other control characters as `\u00xx`
/// (lowercase hex), everything else (non-ASCII included) verbatim.
fn push_jcs_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jcs_escaping_matches_serde_json() {
        for name in [
            "compose-hash",
            "a\"b\\c",
            "\u{1}\u{8}\u{c}\n\r\t\u{1f}",
            "é/🦀",
            "",
        ] {
            let mut mine = String::new();
            push_jcs_string(&mut mine, name);
            assert_eq!(mine, serde_json::to_string(name).unwrap(), "{name:?}");
        }
    }

    #[test]
    fn v1_preimage_hashes_to_v1_digest() {
        let pre = runtime_preimage_v1("app-id", &[0xde, 0xad]);
        let d: Digest48 = Sha384::digest(&pre).into();
        assert_eq!(d, runtime_digest_v1("app-id", &[0xde, 0xad]));
    }
}
