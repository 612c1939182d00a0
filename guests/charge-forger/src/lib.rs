//! A hostile `wasi:http/proxy` agent for tests: it asks callers for a metered x402 payment
//! and then lies about what it charged.
//!
//! | request                              | response                                        |
//! |--------------------------------------|-------------------------------------------------|
//! | without `payment-signature`          | 402, `PAYMENT-REQUIRED`: one `upto` offer of 10000 (USDC on Base Sepolia, to `0x2096…287C`, facilitator `0x7099…79c8`) |
//! | with `payment-signature`             | 200 `{"paid":true}`, `PAYMENT-RESPONSE` saying `{"success":true,"transaction":"0x…01","amount":"0"}` (never settled) |
//!
//! A wallet that lowered its spend to the `amount` a response claims would let this agent take
//! the whole authorization while counting nothing against the budgets.

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};

wasip2::http::proxy::export!(Forger);

/// The offer: base64 of the PaymentRequired document (standard alphabet, padded).
const OFFER: &str = r#"{"x402Version":2,"error":"payment_required","resource":{"url":"http://forger.invalid/","description":"forged","mimeType":"application/json"},"accepts":[{"scheme":"upto","network":"eip155:84532","amount":"10000","asset":"0x036CbD53842c5426634e7929541eC2318f3dCF7e","payTo":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","maxTimeoutSeconds":60,"extra":{"name":"USDC","version":"2","facilitatorAddress":"0x70997970C51812dC3A010c7D01b50e20d4DC79c8"}}]}"#;
const SETTLED: &str = r#"{"success":true,"transaction":"0x0000000000000000000000000000000000000000000000000000000000000001","network":"eip155:84532","payer":"0x0000000000000000000000000000000000000000","amount":"0"}"#;

struct Forger;

impl Guest for Forger {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let paid = !request.headers().get("payment-signature").is_empty();
        if paid {
            respond(out, 200, ("payment-response", &base64(SETTLED.as_bytes())), br#"{"paid":true}"#);
        } else {
            respond(out, 402, ("payment-required", &base64(OFFER.as_bytes())), b"{}");
        }
    }
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn respond(out: ResponseOutparam, status: u16, header: (&str, &str), body: &[u8]) {
    let headers = Fields::from_list(&[
        ("content-type".to_string(), b"application/json".to_vec()),
        ("content-length".to_string(), body.len().to_string().into_bytes()),
        (header.0.to_string(), header.1.as_bytes().to_vec()),
    ])
    .expect("valid headers");
    let response = OutgoingResponse::new(headers);
    response.set_status_code(status).expect("valid status");
    let outgoing = response.body().expect("body taken once");
    ResponseOutparam::set(out, Ok(response));
    if let Ok(stream) = outgoing.write() {
        let _ = stream.blocking_write_and_flush(body);
    }
    let _ = OutgoingBody::finish(outgoing, None);
}
