//! JSON bodies for the errors hyper answers by itself.
//!
//! A request head that does not parse never reaches the router: hyper answers it on its own,
//! with an empty body, and closes the connection (`400` for a malformed head, `414` for a
//! request target too long, `431` for a head larger than `http.max_head_bytes`, `505` for an
//! HTTP version it does not speak). Every other error of the host is a JSON body
//! `{"error": {"code", "message"}}`; so that clients can handle these alike, the connection's
//! writer recognises hyper's canned answer as it is written and writes the same status with a
//! JSON body instead ([`replacement`]).
//!
//! The canned answer is recognised exactly: an HTTP/1.1 status line with one of those
//! statuses, `content-length: 0` and no `x-request-id` header (which every response of the
//! router carries), the whole head in one write. Nothing else is ever changed.

use hypervisor_protocol::ErrorCode;

/// The JSON answer to write instead of `written`, if `written` is hyper's canned answer to a
/// head it could not parse (see the module documentation).
pub(super) fn replacement(written: &[u8], max_head_bytes: usize) -> Option<Vec<u8>> {
    if written.len() > 512 || !written.ends_with(b"\r\n\r\n") {
        return None;
    }
    let head = std::str::from_utf8(written).ok()?;
    let status_line = head.strip_prefix("HTTP/1.1 ")?;
    let status: u16 = status_line.get(..3)?.parse().ok()?;
    let lower = head.to_ascii_lowercase();
    if !lower.contains("\r\ncontent-length: 0\r\n") || lower.contains("\r\nx-request-id:") {
        return None;
    }
    let (code, message) = match status {
        400 => (
            ErrorCode::MalformedRequest,
            "the request head is not valid HTTP/1.1".to_string(),
        ),
        414 => (
            ErrorCode::UriTooLong,
            "the request target is longer than this host accepts".to_string(),
        ),
        431 => (
            ErrorCode::HeadersTooLarge,
            format!("the request head is larger than {max_head_bytes} bytes (http.max_head_bytes)"),
        ),
        505 => (
            ErrorCode::HttpVersionNotSupported,
            "this host speaks HTTP/1.0, HTTP/1.1 and HTTP/2".to_string(),
        ),
        _ => return None,
    };
    let reason = status_line.lines().next().unwrap_or_default();
    let body =
        serde_json::json!({"error": {"code": code.as_str(), "message": message}}).to_string();
    Some(
        format!(
            "HTTP/1.1 {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::replacement;

    #[test]
    fn hypers_canned_answers_get_json_bodies_and_nothing_else_is_touched() {
        let canned = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\n\
                       content-length: 0\r\ndate: Mon, 23 Nov 2026 16:04:48 GMT\r\n\r\n";
        let out = String::from_utf8(replacement(canned, 65_536).unwrap()).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"]["code"], "headers_too_large");
        assert!(json["error"]["message"].as_str().unwrap().contains("65536"));
        for status in [
            "400 Bad Request",
            "414 URI Too Long",
            "505 HTTP Version Not Supported",
        ] {
            let canned =
                format!("HTTP/1.1 {status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
            assert!(replacement(canned.as_bytes(), 65_536).is_some(), "{status}");
        }
        // The router's own answers (an x-request-id, or a body) and other statuses stay.
        for kept in [
            "HTTP/1.1 400 Bad Request\r\nx-request-id: 1\r\ncontent-length: 0\r\n\r\n",
            "HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n",
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
        ] {
            assert_eq!(replacement(kept.as_bytes(), 65_536), None, "{kept}");
        }
    }
}
