//! x402 on the paid routes: 402 challenges in both protocol versions, locally signed EIP-3009
//! payments accepted, every altered term refused with its reason, replays refused (also after a
//! restart), the payment in the policy's view and in receipts.

use hypervisor_client::x402::{Offer, PaymentLimit, Wallet};
use hypervisor_client::{ClientError, ExecuteInput, Session};
use serde_json::{Value, json};

use crate::harness::{TestServer, session, wasm, wasm_path};

const PAY_TO: &str = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";
pub(crate) const ROUTE: &str = "/x402_execute/test/wasm";

pub(crate) fn payments_table(extra: &str) -> String {
    format!(
        "[payments]\nenabled = true\ncomponent = {:?}\n{extra}\n[payments.price]\npay_to = {PAY_TO:?}\n",
        wasm_path("payments").display().to_string()
    )
}

/// The client's spending limit in these tests: the configured price (10000), nothing more.
pub(crate) fn limit() -> PaymentLimit {
    PaymentLimit::new(10_000)
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub(crate) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The encrypted request for `hello` and the 402 it gets without payment.
pub(crate) fn challenge(server: &TestServer, s: &Session) -> (Value, Vec<(String, String)>, Value) {
    let program = wasm("hello");
    let (req, _) = s.encrypt_execution(&ExecuteInput::new(&program)).unwrap();
    let body = serde_json::to_value(req).unwrap();
    let (status, headers, json) = server.client().post_json_with(ROUTE, &body, &[]).unwrap();
    assert_eq!(status, 402, "{json}");
    (body, headers, json)
}

/// Sends `body` with a payment header; returns status, headers and JSON.
pub(crate) fn send(
    server: &TestServer,
    body: &Value,
    name: &str,
    value: String,
) -> (u16, Vec<(String, String)>, Value) {
    server
        .client()
        .post_json_with(ROUTE, body, &[(name, value)])
        .unwrap()
}

/// The encrypted `hello` request and a fresh wallet's v2 payment for it.
fn paid_hello(server: &TestServer, s: &Session) -> (Value, &'static str, String) {
    let (body, headers, json) = challenge(server, s);
    let wallet = Wallet::random().unwrap();
    let offer = Offer::from_402(header(&headers, "payment-required"), &json).unwrap();
    let (name, value) = wallet.pay(&offer, &limit(), now()).unwrap();
    (body, name, value)
}

pub(crate) fn b64_json(v: &str) -> Value {
    use base64::Engine as _;
    serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(v).unwrap()).unwrap()
}

pub(crate) fn b64(v: &Value) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(v.to_string())
}

#[test]
fn a_paid_route_challenges_in_both_versions_then_accepts_a_signed_payment_once() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // One public URL across the restart: a v2 payment names the resource it pays for.
    let table = payments_table("public_url = \"https://paid.example\"");
    let server = TestServer::start_in(&data, &table);
    let (_c, _k, s) = session(&server);
    let (body, headers, json) = challenge(&server, &s);

    // v1 body and v2 header, both offering exactly the configured price.
    assert_eq!(json["x402Version"], 1);
    assert_eq!(json["code"], "payment_required");
    let v1 = &json["accepts"][0];
    assert_eq!(
        (
            v1["scheme"].as_str(),
            v1["network"].as_str(),
            v1["maxAmountRequired"].as_str()
        ),
        (Some("exact"), Some("base-sepolia"), Some("10000"))
    );
    assert!(v1["resource"].as_str().unwrap().ends_with(ROUTE));
    let v2 = b64_json(header(&headers, "payment-required").expect("PAYMENT-REQUIRED"));
    assert_eq!(v2["x402Version"], 2);
    assert_eq!(v2["accepts"][0]["network"], "eip155:84532");
    assert_eq!(v2["accepts"][0]["amount"], "10000");
    assert_eq!(v2["accepts"][0]["payTo"], PAY_TO);

    // Pay (v2) and run.
    let wallet = Wallet::random().unwrap();
    let offer = Offer::from_402(header(&headers, "payment-required"), &json).unwrap();
    let (name, value) = wallet.pay(&offer, &limit(), now()).unwrap();
    assert_eq!(name, "PAYMENT-SIGNATURE");
    let (status, headers, out) = send(&server, &body, name, value.clone());
    assert_eq!(status, 200, "{out}");
    let settlement = b64_json(header(&headers, "payment-response").expect("PAYMENT-RESPONSE"));
    assert_eq!(settlement["success"], true);
    assert_eq!(settlement["payer"], wallet.address().to_checksum(None));
    assert_eq!(settlement["network"], "eip155:84532");

    // The same payment again: a replay.
    let (status, _, out) = send(&server, &body, name, value.clone());
    assert_eq!(status, 402, "{out}");
    assert_eq!(out["error"], "invalid_exact_evm_nonce_already_used");
    assert_eq!(out["code"], out["error"], "the code names the refusal");

    // ...also after a restart (with a new session: a payment is not bound to a request).
    server.stop();
    let restarted = TestServer::start_in(&data, &table);
    let (_c, _k, s) = session(&restarted);
    let (body, _, json) = challenge(&restarted, &s);
    let (status, _, out) = send(&restarted, &body, name, value);
    assert_eq!(status, 402, "{out}");
    assert_eq!(out["error"], "invalid_exact_evm_nonce_already_used");

    // v1 works too (a client that reads only the body).
    let offer = Offer::from_402(None, &json).unwrap();
    let (name, value) = wallet.pay(&offer, &limit(), now()).unwrap();
    assert_eq!(name, "X-PAYMENT");
    let (status, headers, out) = send(&restarted, &body, name, value);
    assert_eq!(status, 200, "{out}");
    let settlement = b64_json(header(&headers, "x-payment-response").expect("X-PAYMENT-RESPONSE"));
    assert_eq!(settlement["network"], "base-sepolia");
}

/// The payment reserved before the run (`payments.reserve_before_run`), its `settled` mark
/// after the answer.
#[test]
fn a_small_verify_only_payment_is_recorded_settled_after_its_answer() {
    use crate::harness::metric;
    use crate::settlement::wait_until;
    const SETTLED: &str = "hypervisor_payments_total{outcome=\"settled\"}";
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let table = payments_table(
        "public_url = \"https://paid.example\"\nsettle_after_response_up_to = \"10000\"\n\
         reserve_before_run = true",
    );
    let server = TestServer::start_in(&data, &table);
    let (_c, _k, s) = session(&server);
    let (body, headers, json) = challenge(&server, &s);
    let wallet = Wallet::random().unwrap();
    let offer = Offer::from_402(header(&headers, "payment-required"), &json).unwrap();

    // v2 at the threshold: the same answer as ever, the `settled` mark written after it (and
    // counted once written).
    let (name, value) = wallet.pay(&offer, &limit(), now()).unwrap();
    let (status, headers, out) = send(&server, &body, name, value.clone());
    assert_eq!(status, 200, "{out}");
    let settlement = b64_json(header(&headers, "payment-response").expect("PAYMENT-RESPONSE"));
    assert_eq!(settlement["success"], true, "{settlement}");
    assert_eq!(settlement["transaction"], "", "{settlement}");
    assert_eq!(settlement["payer"], wallet.address().to_checksum(None));
    wait_until("the settled mark written", || {
        metric(&server, SETTLED) == 1.0
    });
    // The reservation refuses a replay at once.
    let (status, _, out) = send(&server, &body, name, value.clone());
    assert_eq!(status, 402, "{out}");
    assert_eq!(out["error"], "invalid_exact_evm_nonce_already_used");

    // v1 is recorded before its answer: counted by the time the answer arrives.
    let v1 = Offer::from_402(None, &json).unwrap();
    let (v1_name, v1_value) = wallet.pay(&v1, &limit(), now()).unwrap();
    let (status, _, out) = send(&server, &body, v1_name, v1_value);
    assert_eq!(status, 200, "{out}");
    assert_eq!(metric(&server, SETTLED), 2.0);

    // Killed and restarted: the mark written after the answer is in the ledger, so the
    // payment is not released as unfinished, and the same header is still a replay.
    server.stop();
    let restarted = TestServer::start_in(&data, &table);
    let (_c, _k, s) = session(&restarted);
    let (body, _, _) = challenge(&restarted, &s);
    let (status, _, out) = send(&restarted, &body, name, value);
    assert_eq!(status, 402, "{out}");
    assert_eq!(out["error"], "invalid_exact_evm_nonce_already_used");
    assert!(
        !restarted.log().contains("left by a stopped run"),
        "nothing was left unfinished: {}",
        restarted.log()
    );
}

#[test]
fn a_paid_request_that_gives_no_result_leaves_its_payment_unspent() {
    let server = TestServer::start_with(&payments_table(""));
    let (_c, _k, s) = session(&server);
    let (body, name, value) = paid_hello(&server, &s);

    // Paid, recorded, then the program turns out not to be a component: no result, no charge.
    let (bad, _) = s
        .encrypt_execution(&ExecuteInput::new(b"not a component"))
        .unwrap();
    let bad = serde_json::to_value(bad).unwrap();
    let (status, headers_bad, out) = send(&server, &bad, name, value.clone());
    assert_eq!(status, 422, "{out}");
    assert!(
        header(&headers_bad, "payment-response").is_none(),
        "nothing settled"
    );

    // The same authorization pays for the next request, once.
    let (status, headers, out) = send(&server, &body, name, value.clone());
    assert_eq!(status, 200, "{out}");
    assert!(header(&headers, "payment-response").is_some());
    let (status, _, out) = send(&server, &body, name, value);
    assert_eq!(status, 402, "{out}");
    assert_eq!(out["error"], "invalid_exact_evm_nonce_already_used");
}

#[test]
fn a_paid_request_abandoned_mid_run_gives_its_payment_back() {
    use std::io::Write;
    let server = TestServer::start_with(&payments_table(""));
    let (_c, _k, s) = session(&server);
    let (body, name, value) = paid_hello(&server, &s);

    // A paid run that would spin for 20 s, its client gone after one second: the payment was
    // verified and reserved, the run is dropped with the connection, and nothing was delivered.
    let limits = hypervisor_protocol::wire::Limits {
        time_ms: Some(20_000),
        ..Default::default()
    };
    let (spin, _) = s
        .encrypt_execution(&ExecuteInput::new(&wasm("endless-loop")).limits(limits))
        .unwrap();
    let spin = serde_json::to_vec(&spin).unwrap();
    let addr = server.url.trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    write!(
        conn,
        "POST {ROUTE} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         {name}: {value}\r\ncontent-length: {}\r\n\r\n",
        spin.len()
    )
    .unwrap();
    conn.write_all(&spin).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while crate::harness::metric(&server, "hypervisor_live_instances") < 1.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the paid run never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    drop(conn);

    // The reservation is released when the abandoned request is dropped: the same
    // authorization pays for the next request (long before the 20 s run would have ended),
    // once.
    let (status, out) = loop {
        let (status, _, out) = send(&server, &body, name, value.clone());
        if status == 200 || std::time::Instant::now() > deadline {
            break (status, out);
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(status, 200, "the abandoned run kept its payment: {out}");
    let (status, _, out) = send(&server, &body, name, value);
    assert_eq!(status, 402, "{out}");
    assert_eq!(out["error"], "invalid_exact_evm_nonce_already_used");
}

#[test]
fn every_altered_term_is_refused_with_its_reason() {
    let server = TestServer::start_with(&payments_table(""));
    let (_c, _k, s) = session(&server);
    let (body, headers, json) = challenge(&server, &s);
    let wallet = Wallet::random().unwrap();
    let v1 = Offer::from_402(None, &json).unwrap();
    let v2 = Offer::from_402(header(&headers, "payment-required"), &json).unwrap();

    let refused = |offer: &Offer, at: u64| {
        let (name, value) = wallet.pay(offer, &limit(), at).unwrap();
        let (status, _, out) = send(&server, &body, name, value);
        assert_eq!(status, 402, "{out}");
        out["error"].as_str().unwrap().to_string()
    };
    let altered = |offer: &Offer, key: &str, value: Value| {
        let mut o = offer.clone();
        o.requirements[key] = value;
        o
    };
    assert_eq!(
        refused(&altered(&v1, "maxAmountRequired", json!("9999")), now()),
        "invalid_exact_evm_payload_authorization_value"
    );
    assert_eq!(
        refused(
            &altered(&v1, "payTo", json!(wallet.address().to_checksum(None))),
            now()
        ),
        "invalid_exact_evm_payload_recipient_mismatch"
    );
    assert_eq!(
        refused(&altered(&v1, "network", json!("base")), now()),
        "invalid_network"
    );
    assert_eq!(
        refused(
            &altered(
                &v1,
                "asset",
                json!("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913")
            ),
            now()
        ),
        "invalid_exact_evm_payload_signature"
    );
    // Signed long ago: expired.
    assert_eq!(
        refused(&v1, now() - 3600),
        "invalid_exact_evm_payload_authorization_valid_before"
    );
    // v2: `accepted` must be what was offered.
    assert_eq!(
        refused(&altered(&v2, "amount", json!("1")), now()),
        "invalid_payment_requirements"
    );

    // A flipped signature byte.
    let (name, value) = wallet.pay(&v2, &limit(), now()).unwrap();
    let mut doc = b64_json(&value);
    let sig = doc["payload"]["signature"].as_str().unwrap().to_string();
    let flipped = format!(
        "{}{}{}",
        &sig[..20],
        if &sig[20..21] == "0" { "1" } else { "0" },
        &sig[21..]
    );
    doc["payload"]["signature"] = json!(flipped);
    let (status, _, out) = send(&server, &body, name, b64(&doc));
    assert_eq!(
        (status, out["error"].as_str()),
        (402, Some("invalid_exact_evm_payload_signature"))
    );
    // Not base64 at all.
    let (status, _, out) = send(&server, &body, "X-PAYMENT", "%%%".into());
    assert_eq!(
        (status, out["error"].as_str()),
        (402, Some("invalid_payload"))
    );

    // A v2 payment names the resource it was issued for: spent on another route at the same
    // price it is refused, and one naming no resource is too.
    let (name, value) = wallet.pay(&v2, &limit(), now()).unwrap();
    let (status, _, out) = server
        .client()
        .post_json_with(
            "/x402_execute/verifiable/wasm",
            &body,
            &[(name, value.clone())],
        )
        .unwrap();
    assert_eq!(status, 402, "{out}");
    assert_eq!(out["error"], "invalid_payment_requirements", "{out}");
    assert!(
        out["message"].as_str().unwrap_or_default().contains(ROUTE)
            || out.to_string().contains(ROUTE),
        "{out}"
    );
    let mut anonymous = b64_json(&value);
    anonymous.as_object_mut().unwrap().remove("resource");
    let (status, _, out) = send(&server, &body, name, b64(&anonymous));
    assert_eq!(
        (status, out["error"].as_str()),
        (402, Some("invalid_payload"))
    );

    // None of these ran anything or recorded a payment: the honest payment still works, on
    // the route it was issued for.
    let (status, _, out) = send(&server, &body, name, value);
    assert_eq!(status, 200, "{out}");
}

#[test]
fn the_policy_sees_the_payment_and_the_client_pays_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules.toml");
    std::fs::write(
        &rules,
        "[routes.\"/x402_policy/unsafe/python\"]\nrequire_payment = true\nmin_amount = \"20000\"\n",
    )
    .unwrap();
    let server = TestServer::start_with(&format!(
        "{}{}",
        payments_table(""),
        crate::harness::policy_table(
            "policy-python",
            &format!("rules = {:?}", rules.display().to_string())
        ),
    ));
    let wallet = Wallet::random().unwrap();
    let (client, _k, s) = session(&server);
    // Paid Python, but below the policy's minimum: refused by the policy, not charged.
    let err = client
        .execute_paid(
            &s,
            &ExecuteInput::new(b"print('paid')"),
            true,
            &wallet,
            &limit(),
        )
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Server { status: 403, code, message } if code == "policy_denied" && message.contains("min_amount")),
        "{err}"
    );
    // A paid wasm execution works end to end through the client.
    let run = client
        .execute_paid(
            &s,
            &ExecuteInput::new(&wasm("hello")).args(["paid"]),
            false,
            &wallet,
            &limit(),
        )
        .unwrap();
    assert_eq!(run.stdout().unwrap(), b"Hello paid\n");
    assert_eq!(run.settlement.unwrap()["success"], true);
}

#[test]
fn paid_routes_are_unavailable_without_payments() {
    let server = TestServer::start();
    let (client, _k, s) = session(&server);
    let program = wasm("hello");
    let (req, _) = s.encrypt_execution(&ExecuteInput::new(&program)).unwrap();
    let (status, body) = client.post_json(ROUTE, &req).unwrap();
    assert_eq!(
        (status, crate::harness::code(&body)),
        (503, "payments_unavailable"),
        "{body}"
    );
}

#[cfg(feature = "simulated-attestation")]
#[test]
fn the_verifiable_paid_route_signs_the_payment_into_its_receipt() {
    let server = TestServer::start_with(&format!(
        "{}[attestation]\nprovider = \"simulated\"\n",
        payments_table("")
    ));
    let client = server.client();
    let key = hypervisor_protocol::ClientSecret::generate().unwrap();
    let policy = hypervisor_client::verify::Policy {
        allow_simulated: true,
        reference_values: vec![crate::harness::simulated_reference()],
        ..Default::default()
    };
    let s = client.create_verifiable_session(&key, &policy).unwrap();
    let wallet = Wallet::random().unwrap();
    let run = client
        .execute_paid(
            &s,
            &ExecuteInput::new(&wasm("hello")),
            false,
            &wallet,
            &limit(),
        )
        .unwrap();
    let receipt = run.receipt.unwrap();
    assert_eq!(receipt.route, "/x402_execute/verifiable/wasm");
    let payment = receipt.payment.unwrap();
    assert!(
        payment.starts_with(&format!(
            "x402 eip155:84532 10000 payer={} key=eip3009:84532:",
            wallet.address().to_checksum(None)
        )),
        "{payment}"
    );
}

/// A well-known development key (the first account of Foundry's default mnemonic): test only.
const NPM_PAYER_KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

#[test]
fn the_official_x402_client_from_npm_pays() {
    let server = TestServer::start_with(&payments_table(""));
    let (_client, _k, s) = session(&server);
    // The official client takes v2 whenever PAYMENT-REQUIRED is present (always, here); the v1
    // body is exercised by this crate's own client above.
    let result = official_client_pays(&server, &s, "npm", &[]);
    assert_eq!(result["settlement"]["payer"], result["payer"], "{result}");
}

/// Has the official x402 client (npm `@x402/fetch`, `tests/interop/x402-official/pay.mjs`)
/// pay for running `hello ARG` on `server`'s paid route in session `s` (`env`: extra
/// variables for node); checks that it paid and settled and that the result it fetched is
/// ours, encrypted for `s`. Returns its JSON report.
pub(crate) fn official_client_pays(
    server: &TestServer,
    s: &Session,
    arg: &str,
    env: &[(&str, &std::path::Path)],
) -> Value {
    let interop =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/interop/x402-official");
    assert!(
        interop.join("node_modules/@x402/fetch").is_dir(),
        "run `npm ci` in {} (scripts/test.sh does)",
        interop.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let (req, digests) = s
        .encrypt_execution(&ExecuteInput::new(&wasm("hello")).args([arg]))
        .unwrap();
    let body = tmp.path().join("body.json");
    std::fs::write(&body, serde_json::to_vec(&req).unwrap()).unwrap();
    let out = std::process::Command::new("node")
        .arg(interop.join("pay.mjs"))
        .arg(format!("{}{ROUTE}", server.url))
        .arg(&body)
        .arg(NPM_PAYER_KEY)
        .envs(env.iter().copied())
        .output()
        .expect("node");
    assert!(
        out.status.success(),
        "node failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["status"], 200, "{result}");
    assert_eq!(result["settlement"]["success"], true, "{result}");
    // The result the npm client fetched is ours, encrypted for our session.
    let run = s
        .check_response(200, result["body"].clone(), &digests)
        .unwrap();
    assert_eq!(run.stdout().unwrap(), format!("Hello {arg}\n").as_bytes());
    result
}

#[test]
fn the_payments_component_is_swappable_for_a_voucher_scheme() {
    let table = format!(
        "[payments]\nenabled = true\ncomponent = {:?}\n[payments.price]\npay_to = {PAY_TO:?}\n",
        wasm_path("payments-voucher").display().to_string()
    );
    let server = TestServer::start_with(&table);
    let (_c, _k, s) = session(&server);
    let (body, headers, _) = challenge(&server, &s);
    let offered = b64_json(header(&headers, "payment-required").unwrap());
    assert_eq!(offered["accepts"][0]["scheme"], "voucher");

    let voucher = |code: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("voucher:{code}"))
    };
    let (status, headers, out) = send(&server, &body, "PAYMENT-SIGNATURE", voucher("VALID-1"));
    assert_eq!(status, 200, "{out}");
    assert_eq!(
        b64_json(header(&headers, "payment-response").unwrap())["payer"],
        "voucher-holder"
    );
    let (status, _, out) = send(&server, &body, "PAYMENT-SIGNATURE", voucher("VALID-1"));
    assert_eq!(
        (status, out["error"].as_str()),
        (402, Some("invalid_exact_evm_nonce_already_used"))
    );
    let (status, _, out) = send(&server, &body, "PAYMENT-SIGNATURE", voucher("FORGED"));
    assert_eq!(
        (status, out["error"].as_str()),
        (402, Some("invalid_voucher"))
    );
}

#[test]
fn a_bad_price_stops_the_start_up() {
    let log = TestServer::start_expecting_failure(&format!(
        "[payments]\nenabled = true\ncomponent = {:?}\n[payments.price]\npay_to = {PAY_TO:?}\nasset = \"0x12\"\n",
        wasm_path("payments").display().to_string()
    ));
    assert!(log.contains("price.asset"), "{log}");
    let log = TestServer::start_expecting_failure(&format!(
        "[payments]\nenabled = true\ncomponent = {:?}\n[payments.price]\npay_to = {PAY_TO:?}\n[payments.amounts]\n\"/x402_execute/test/wasm\" = \"1.5\"\n",
        wasm_path("payments").display().to_string()
    ));
    assert!(log.contains("/x402_execute/test/wasm"), "{log}");
    let log = TestServer::start_expecting_failure("[payments]\nenabled = true\n");
    assert!(log.contains("pay_to"), "{log}");
}
