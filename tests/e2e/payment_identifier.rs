//! x402's `payment-identifier` extension (idempotent paid requests), over real HTTP with locally
//! signed payments: offered in challenges, a retry of the same payment gets the first answer
//! (also after a restart) without running or charging again, another payment under the same
//! identifier is a conflict, a request still running says so, a required identifier is
//! required, answers too large to keep are said to be gone, and kept answers are sealed on disk.
//! The official x402 SDKs' part is in sdk/typescript/test/payments.test.js.

use std::time::Duration;

use hypervisor_client::ExecuteInput;
use hypervisor_client::x402::{Offer, Wallet};
use hypervisor_protocol::ClientSecret;
use serde_json::{Value, json};

use crate::harness::{TestServer, session, wasm};
use crate::payments::{b64, b64_json, header, limit, now, payments_table};

const TEST: &str = "/x402_execute/test/wasm";
const VERIFIABLE: &str = "/x402_execute/verifiable/wasm";
const RUNS: &str = r#"hypervisor_runs_total{kind="execution",status="exited"}"#;

/// A v2 payment header for the 402 `(headers, json)`, carrying `id` (none: `None`).
fn pay(wallet: &Wallet, headers: &[(String, String)], json: &Value, id: Option<&str>) -> String {
    let offer = Offer::from_402(header(headers, "payment-required"), json).unwrap();
    let (name, value) = wallet.pay(&offer, &limit(), now()).unwrap();
    assert_eq!(name, "PAYMENT-SIGNATURE");
    let mut payload = b64_json(&value);
    if let Some(id) = id {
        payload["extensions"]["payment-identifier"] =
            json!({"info": {"required": false, "id": id}});
    }
    b64(&payload)
}

/// POSTs `body` to `path` with `PAYMENT-SIGNATURE: payment` (none: no header).
fn post(
    server: &TestServer,
    path: &str,
    body: &Value,
    payment: Option<&str>,
) -> (u16, Vec<(String, String)>, Value) {
    let headers: Vec<(&str, String)> = payment
        .map(|p| vec![("PAYMENT-SIGNATURE", p.to_string())])
        .unwrap_or_default();
    server
        .client()
        .post_json_with(path, body, &headers)
        .unwrap()
}

/// An encrypted request running `guest` with `args`.
fn request(s: &hypervisor_client::Session, guest: &str, args: &[&str]) -> Value {
    let program = wasm(guest);
    let mut input = ExecuteInput::new(&program);
    input.args = args.iter().map(|a| a.as_bytes().to_vec()).collect();
    serde_json::to_value(s.encrypt_execution(&input).unwrap().0).unwrap()
}

fn declared(headers: &[(String, String)]) -> Value {
    b64_json(header(headers, "payment-required").expect("PAYMENT-REQUIRED"))["extensions"]
        ["payment-identifier"]
        .clone()
}

#[cfg(feature = "simulated-attestation")]
#[test]
fn a_retry_of_an_identified_payment_gets_its_first_answer_and_nothing_runs_again() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let table = payments_table("public_url = \"https://paid.example\"")
        + &format!("[payments.payment_identifier]\nroutes = {{ {VERIFIABLE:?} = \"required\" }}\n")
        + "[attestation]\nprovider = \"simulated\"\n";
    let server = TestServer::start_in(&data, &table);
    let (_c, _k, s) = session(&server);
    let wallet = Wallet::random().unwrap();

    // Offered: optional here, required on the route configured so.
    let body = request(&s, "hello", &["once"]);
    let (status, headers, json) = post(&server, TEST, &body, None);
    assert_eq!(status, 402, "{json}");
    let offer = declared(&headers);
    assert_eq!(offer["info"], json!({"required": false}));
    assert_eq!(offer["schema"]["properties"]["id"]["minLength"], 16);

    // Paid once with an identifier: it runs.
    let id = "pay_7d5d747be160e280504c099d984bcfe0";
    let payment = pay(&wallet, &headers, &json, Some(id));
    let (status, first_headers, first) = post(&server, TEST, &body, Some(&payment));
    assert_eq!(status, 200, "{first}");
    let execution = header(&first_headers, "x-execution-id")
        .unwrap()
        .to_string();
    let settlement = header(&first_headers, "payment-response")
        .unwrap()
        .to_string();

    // The same payment again: the same answer, byte for byte, with its settlement and record
    // id; nothing ran (no second record).
    let runs = crate::harness::metric(&server, RUNS);
    for _ in 0..2 {
        let (status, headers, again) = post(&server, TEST, &body, Some(&payment));
        assert_eq!(status, 200, "{again}");
        assert_eq!(again, first);
        assert_eq!(header(&headers, "x-execution-id"), Some(execution.as_str()));
        assert_eq!(
            header(&headers, "payment-response"),
            Some(settlement.as_str())
        );
    }
    assert_eq!(crate::harness::metric(&server, RUNS), runs);

    // Another payment under the same identifier: a conflict, nothing runs.
    let other = pay(&wallet, &headers, &json, Some(id));
    let (status, _, out) = post(&server, TEST, &body, Some(&other));
    assert_eq!(
        (status, out["error"]["code"].as_str()),
        (409, Some("payment_identifier_conflict")),
        "{out}"
    );
    // The conflicting payment was not spent: without the identifier it pays for a run.
    let plain = pay(&wallet, &headers, &json, None);
    assert_eq!(post(&server, TEST, &body, Some(&plain)).0, 200);
    // Without identifiers a payment sent twice is a replay, as before.
    let (status, _, out) = post(&server, TEST, &body, Some(&plain));
    assert_eq!(
        (status, out["error"].as_str()),
        (402, Some("invalid_exact_evm_nonce_already_used"))
    );

    // Identifiers that are not ones.
    for bad in ["short", "pay_has/slash_0123456789"] {
        let payment = pay(&wallet, &headers, &json, Some(bad));
        let (status, _, out) = post(&server, TEST, &body, Some(&payment));
        assert_eq!(
            (status, out["error"]["code"].as_str()),
            (400, Some("invalid_payment_identifier")),
            "{bad}: {out}"
        );
    }

    // Required on the verifiable route: a payment without one is refused before it is spent,
    // and an x402 v1 payment cannot carry one.
    let policy = hypervisor_client::verify::Policy {
        allow_simulated: true,
        reference_values: vec![crate::harness::simulated_reference()],
        ..Default::default()
    };
    let vs = server
        .client()
        .create_verifiable_session(&ClientSecret::generate().unwrap(), &policy)
        .unwrap();
    let vbody = request(&vs, "hello", &["verified"]);
    let (status, vheaders, vjson) = post(&server, VERIFIABLE, &vbody, None);
    assert_eq!(status, 402);
    assert_eq!(declared(&vheaders)["info"], json!({"required": true}));
    let without = pay(&wallet, &vheaders, &vjson, None);
    let (status, _, out) = post(&server, VERIFIABLE, &vbody, Some(&without));
    assert_eq!(
        (status, out["error"]["code"].as_str()),
        (400, Some("payment_identifier_required")),
        "{out}"
    );
    let offer = Offer::from_402(None, &vjson).unwrap();
    let (name, v1) = wallet.pay(&offer, &limit(), now()).unwrap();
    assert_eq!(name, "X-PAYMENT");
    let (status, _, out) = server
        .client()
        .post_json_with(VERIFIABLE, &vbody, &[(name, v1)])
        .unwrap();
    assert_eq!(
        (status, out["error"]["code"].as_str()),
        (400, Some("payment_identifier_required")),
        "{out}"
    );
    assert!(
        out["error"]["message"].as_str().unwrap().contains("v1"),
        "{out}"
    );
    // The refused payment is still good: with an identifier it pays.
    let mut with = b64_json(&without);
    with["extensions"]["payment-identifier"] =
        json!({"info": {"required": true, "id": "verifiable-0123456789"}});
    let (status, _, vfirst) = post(&server, VERIFIABLE, &vbody, Some(&b64(&with)));
    assert_eq!(status, 200, "{vfirst}");

    // Kept across a restart, sealed on disk.
    server.stop();
    let ledger = std::fs::read(data.join("payments.sqlite")).unwrap_or_default();
    let wal = std::fs::read(data.join("payments.sqlite-wal")).unwrap_or_default();
    assert!(!ledger.is_empty());
    for bytes in [&ledger, &wal] {
        for needle in [execution.as_bytes(), settlement.as_bytes()] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "a kept answer's header in the clear"
            );
        }
    }
    let restarted = TestServer::start_in(&data, &table);
    let (status, headers, again) = post(&restarted, TEST, &body, Some(&payment));
    assert_eq!(status, 200, "{again}");
    assert_eq!(again, first);
    assert_eq!(header(&headers, "x-execution-id"), Some(execution.as_str()));
}

#[test]
fn a_retry_while_the_first_runs_is_told_to_wait_then_gets_the_answer() {
    let server = TestServer::start_with(&payments_table(""));
    let (_c, _k, s) = session(&server);
    let wallet = Wallet::random().unwrap();
    let body = request(&s, "sleep", &["1500"]);
    let (_, headers, json) = post(&server, TEST, &body, None);
    let payment = pay(&wallet, &headers, &json, Some("pay_slow-request-000001"));
    std::thread::scope(|scope| {
        let first = scope.spawn(|| post(&server, TEST, &body, Some(&payment)));
        std::thread::sleep(Duration::from_millis(500));
        let (status, headers, out) = post(&server, TEST, &body, Some(&payment));
        assert_eq!(
            (status, out["error"]["code"].as_str()),
            (409, Some("payment_identifier_in_progress")),
            "{out}"
        );
        assert_eq!(header(&headers, "retry-after"), Some("1"));
        let (status, _, first) = first.join().unwrap();
        assert_eq!(status, 200, "{first}");
        let (status, _, again) = post(&server, TEST, &body, Some(&payment));
        assert_eq!((status, &again), (200, &first));
    });
}

#[test]
fn answers_too_large_to_keep_are_delivered_and_then_gone() {
    let server = TestServer::start_with(&payments_table(
        "[payments.payment_identifier]\nmax_answer_bytes = 1024",
    ));
    let (_c, _k, s) = session(&server);
    let wallet = Wallet::random().unwrap();
    let long = "x".repeat(2000);
    let body = request(&s, "hello", &[&long]);
    let (_, headers, json) = post(&server, TEST, &body, None);
    let payment = pay(&wallet, &headers, &json, Some("pay_large-answer-0000001"));
    let (status, _, out) = post(&server, TEST, &body, Some(&payment));
    assert_eq!(status, 200, "{out}");
    let (status, _, out) = post(&server, TEST, &body, Some(&payment));
    assert_eq!(
        (status, out["error"]["code"].as_str()),
        (409, Some("payment_identifier_answer_gone")),
        "{out}"
    );
}

#[test]
fn paid_agents_take_identifiers_unless_their_route_is_off() {
    let server = TestServer::start_with(&payments_table(
        "[payments.payment_identifier]\nroutes = { \"/agents/quiet/invoke\" = \"off\" }",
    ));
    for name in ["paid", "quiet"] {
        server
            .client()
            .deploy_agent(
                &ClientSecret::generate().unwrap(),
                &hypervisor_client::agents::Deployment {
                    name,
                    description: "word counts",
                    component: &wasm("text-stats"),
                    price: Some("7000".into()),
                    ..hypervisor_client::agents::Deployment::default()
                },
            )
            .unwrap();
    }
    let wallet = Wallet::random().unwrap();
    let event = json!({"event": {"text": "One two. Three!"}});
    let (status, headers, json) = post(&server, "/agents/paid/invoke", &event, None);
    assert_eq!(status, 402, "{json}");
    assert_eq!(declared(&headers)["info"], json!({"required": false}));
    let payment = pay(&wallet, &headers, &json, Some("pay_agent-call-000000001"));
    let (status, first_headers, first) =
        post(&server, "/agents/paid/invoke", &event, Some(&payment));
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["result"]["words"], 3);
    let (status, again_headers, again) =
        post(&server, "/agents/paid/invoke", &event, Some(&payment));
    assert_eq!((status, &again), (200, &first));
    assert_eq!(
        header(&again_headers, "x-execution-id"),
        header(&first_headers, "x-execution-id")
    );

    // A run that fails is not charged (charge = "success"): its payment is released with its
    // identifier, nothing is kept, and the same payment may be presented again (it runs again).
    let bad = json!({"event": "not an object"});
    let payment = pay(&wallet, &headers, &json, Some("pay_agent-call-000000003"));
    for _ in 0..2 {
        let (status, headers, out) = post(&server, "/agents/paid/invoke", &bad, Some(&payment));
        assert_eq!(status, 200, "{out}");
        assert_eq!(out["ok"], false, "{out}");
        assert_eq!(header(&headers, "payment-response"), None);
    }
    let (status, _, out) = post(&server, "/agents/paid/invoke", &event, Some(&payment));
    assert_eq!(
        (status, out["result"]["words"].as_i64()),
        (200, Some(3)),
        "{out}"
    );

    // Off for one agent: not offered, and an identifier sent anyway changes nothing (the same
    // payment twice is a replay).
    let (_, headers, json) = post(&server, "/agents/quiet/invoke", &event, None);
    assert_eq!(declared(&headers), Value::Null);
    let payment = pay(&wallet, &headers, &json, Some("pay_agent-call-000000002"));
    assert_eq!(
        post(&server, "/agents/quiet/invoke", &event, Some(&payment)).0,
        200
    );
    let (status, _, out) = post(&server, "/agents/quiet/invoke", &event, Some(&payment));
    assert_eq!(
        (status, out["error"].as_str()),
        (402, Some("invalid_exact_evm_nonce_already_used"))
    );
}

#[test]
fn identifier_settings_are_checked_at_start() {
    for (setting, says) in [
        (
            "routes = { \"/nowhere\" = \"required\" }",
            "neither a paid code route",
        ),
        ("keep_seconds = 1", "keep_seconds"),
        ("max_answer_bytes = 10", "max_answer_bytes"),
        ("mode = \"sometimes\"", "sometimes"),
    ] {
        let log = TestServer::start_expecting_failure(&payments_table(&format!(
            "[payments.payment_identifier]\n{setting}"
        )));
        assert!(log.contains(says), "{setting}: {log}");
    }
}
