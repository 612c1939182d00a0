//! x402 sign-in-with-x headers (`SIGN-IN-WITH-X`) as the host reads them (`crates/x402-siwx`):
//! `decode_header` (base64 → JSON → payload), then on what decodes `message` (the EIP-4361
//! text, every field against the grammar), `verify` (EIP-191 recovery) and the times a server
//! reads (`parse_time`, `format_time`). Every header is accepted or refused with a code, never a
//! panic; a decoded payload re-encodes to a header that reads back the same.
//!
//! The bytes are tried twice: as the header value, and as the header's JSON (base64-encoded
//! here), so that mutations of a JSON seed reach the message grammar rather than break base64.
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;

fn check(header: &str) {
    let payload = match x402_siwx::decode_header(header) {
        Ok(payload) => payload,
        Err(refusal) => {
            assert!(refusal.code().starts_with("invalid_siwx_"));
            return;
        }
    };
    let again = x402_siwx::decode_header(&x402_siwx::encode_header(&payload));
    assert_eq!(again.as_ref(), Ok(&payload), "a decoded header re-encodes");
    let text = x402_siwx::message(&payload);
    match x402_siwx::verify(&payload) {
        Ok(address) => {
            assert!(text.is_ok(), "a verified sign-in has a message");
            let address = address.to_checksum(None);
            assert!(payload.address.eq_ignore_ascii_case(&address));
        }
        Err(refusal) => assert!(refusal.code().starts_with("invalid_siwx_")),
    }
    let times = [
        Some(&payload.issued_at),
        payload.expiration_time.as_ref(),
        payload.not_before.as_ref(),
    ];
    for time in times.into_iter().flatten() {
        if let Ok(ms) = x402_siwx::parse_time(time) {
            let written = x402_siwx::format_time(ms);
            assert_eq!(x402_siwx::parse_time(&written), Ok(ms), "{written}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // The host passes the header only when it is ASCII; take any UTF-8 here, a superset.
    if let Ok(header) = std::str::from_utf8(data) {
        check(header);
    }
    if data.len() <= x402_siwx::MAX_HEADER_BYTES / 4 * 3 {
        check(&base64::engine::general_purpose::STANDARD.encode(data));
    }
});
