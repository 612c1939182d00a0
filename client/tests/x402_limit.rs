//! The paying client against a fake paid route on loopback that asks more than the client's
//! limit: the request is refused with a typed error before anything is signed, and no payment
//! header ever reaches the server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use hypervisor_client::x402::{PaymentLimit, PaymentRefusal, Wallet};
use hypervisor_client::{Client, ClientError, ExecuteInput, Session};
use hypervisor_protocol::ClientSecret;
use hypervisor_protocol::wire::CreateKeypairResponse;
use serde_json::json;

const PAY_TO: &str = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";

/// Answers every request with a 402 asking `amount` (v1 body and v2 header); returns the base
/// URL and, per request, its lower-cased header names.
fn greedy_server(amount: &str) -> (String, Arc<Mutex<Vec<Vec<String>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = log.clone();
    let requirements = json!({
        "scheme": "exact",
        "network": "base-sepolia",
        "maxAmountRequired": amount,
        "amount": amount,
        "resource": format!("{base}/x402_execute/test/wasm"),
        "asset": "0x036CbD53842c5426634e7C541eC2c73a3D5a1a36",
        "payTo": PAY_TO,
        "maxTimeoutSeconds": 60,
        "extra": {"name": "USDC", "version": "2"},
    });
    let body = json!({"x402Version": 1, "error": "payment_required", "accepts": [requirements]})
        .to_string();
    let mut v2 = requirements.clone();
    v2["network"] = json!("eip155:84532");
    let header = base64::engine::general_purpose::STANDARD.encode(
        json!({"x402Version": 2, "error": "payment_required", "resource": {}, "accepts": [v2]})
            .to_string(),
    );
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let (mut names, mut length) = (Vec::new(), 0usize);
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                let (k, v) = h.split_once(':').unwrap_or((&h, ""));
                let k = k.trim().to_ascii_lowercase();
                if k == "content-length" {
                    length = v.trim().parse().unwrap_or(0);
                }
                names.push(k);
            }
            let mut sink = vec![0u8; length];
            let _ = reader.read_exact(&mut sink);
            seen.lock().unwrap().push(names);
            let mut out = stream;
            let head = format!(
                "HTTP/1.1 402 Payment Required\r\nContent-Type: application/json\r\n\
                 PAYMENT-REQUIRED: {header}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = out.write_all(head.as_bytes());
            let _ = out.write_all(body.as_bytes());
        }
    });
    (base, log)
}

/// A session with a made-up server key (nothing is ever decrypted here).
fn session() -> Session {
    let ours = ClientSecret::generate().unwrap();
    let theirs = ClientSecret::generate().unwrap();
    Session::from_response(
        &ours,
        &CreateKeypairResponse {
            session_pubkey: theirs.public_key().to_hex(),
            session_id: uuid::Uuid::now_v7(),
            expires_in_seconds: 3600,
        },
    )
    .unwrap()
}

#[test]
fn a_price_above_the_limit_is_refused_and_nothing_signed_is_sent() {
    let (base, log) = greedy_server("1000000000");
    let client = Client::new(&base);
    let wallet = Wallet::random().unwrap();
    let err = client
        .execute_paid(
            &session(),
            &ExecuteInput::new(b"\0asm"),
            false,
            &wallet,
            &PaymentLimit::new(10_000),
        )
        .unwrap_err();
    assert!(
        matches!(
            &err,
            ClientError::PaymentRefused(PaymentRefusal::AmountAboveLimit { asked, limit: 10_000 })
                if asked == "1000000000"
        ),
        "{err}"
    );
    let requests = log.lock().unwrap().clone();
    assert_eq!(requests.len(), 1, "no second request: {requests:?}");
    assert!(
        !requests[0]
            .iter()
            .any(|h| h == "payment-signature" || h == "x-payment"),
        "{requests:?}"
    );
}

#[test]
fn another_recipient_is_refused_when_the_recipient_is_pinned() {
    let (base, log) = greedy_server("10000");
    let client = Client::new(&base);
    let wallet = Wallet::random().unwrap();
    let limit = PaymentLimit::new(10_000).pay_to(wallet.address());
    let err = client
        .execute_paid(
            &session(),
            &ExecuteInput::new(b"\0asm"),
            false,
            &wallet,
            &limit,
        )
        .unwrap_err();
    assert!(
        matches!(
            &err,
            ClientError::PaymentRefused(PaymentRefusal::PayToMismatch { asked, .. }) if asked == PAY_TO
        ),
        "{err}"
    );
    assert_eq!(log.lock().unwrap().len(), 1);
}
