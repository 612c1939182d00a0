//! Facilitator mode on a real local chain ([`crate::local_chain`]): paid executions move USDC on
//! chain exactly once, in both protocol versions and from the official npm client; the
//! facilitator's refusals reach the payer; a facilitator that cannot be asked is the host's
//! problem (503), not the payer's, and costs nothing.

use hypervisor_client::x402::{Offer, PaymentLimit, Wallet};
use hypervisor_client::{ExecuteInput, Session};
use hypervisor_protocol::wire::Limits;
use serde_json::Value;

use crate::harness::{TestServer, metric, session, wasm, wasm_path};
use crate::local_chain::{LocalChain, interop_dir};
use crate::payments::{ROUTE, b64_json, challenge, header, now, send};

const PRICE: u128 = 10_000;

/// Status, headers and JSON body of a response.
type Answer = (u16, Vec<(String, String)>, Value);

fn facilitator_server(chain: &LocalChain) -> TestServer {
    priced_server(chain, "10000")
}

fn priced_server(chain: &LocalChain, amount: &str) -> TestServer {
    server_with(chain, amount, "")
}

/// A facilitator-mode host at `amount` with more `[payments]` settings (`extra`, TOML lines).
fn server_with(chain: &LocalChain, amount: &str, extra: &str) -> TestServer {
    TestServer::start_with(&config_with(chain, amount, extra))
}

/// The configuration of [`server_with`].
fn config_with(chain: &LocalChain, amount: &str, extra: &str) -> String {
    format!(
        "[payments]\nenabled = true\ncomponent = {:?}\nmode = \"facilitator\"\nfacilitator_url = {:?}\n\
         {extra}\n[payments.price]\namount = {amount:?}\npay_to = {:?}\nasset = {:?}\n",
        wasm_path("payments").display().to_string(),
        chain.facilitator_url,
        chain.accounts.pay_to,
        chain.accounts.token,
    )
}

/// A payment from `wallet` for the challenge `server` gives session `s`, in `version` 1 or 2.
fn pay(
    server: &TestServer,
    s: &Session,
    wallet: &Wallet,
    version: u8,
) -> (Value, &'static str, String) {
    let (body, headers, json) = challenge(server, s);
    let v2_header = (version == 2)
        .then(|| header(&headers, "payment-required"))
        .flatten();
    let offer = Offer::from_402(v2_header, &json).unwrap();
    let (name, value) = wallet
        .pay(&offer, &PaymentLimit::new(PRICE), now())
        .unwrap();
    (body, name, value)
}

fn is_tx_hash(s: &str) -> bool {
    s.len() == 66 && s.starts_with("0x") && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

#[test]
fn paid_executions_move_usdc_on_chain_exactly_once() {
    let chain = LocalChain::start();
    let a = chain.accounts.clone();
    let server = facilitator_server(&chain);
    let (_c, _k, s) = session(&server);
    let wallet = Wallet::from_hex(&a.payer_key).unwrap();
    assert_eq!(
        wallet.address().to_checksum(None).to_lowercase(),
        a.payer.to_lowercase()
    );
    let (payer0, pay_to0) = (chain.balance(&a.payer), chain.balance(&a.pay_to));

    // v2: the work runs, the facilitator settles on chain, the transaction comes back.
    let (body, name, value) = pay(&server, &s, &wallet, 2);
    assert_eq!(name, "PAYMENT-SIGNATURE");
    let (status, headers, out) = send(&server, &body, name, value.clone());
    assert_eq!(
        status,
        200,
        "{out}\n{}\n{}",
        server.log(),
        chain.facilitator_log()
    );
    let settlement = b64_json(header(&headers, "payment-response").expect("PAYMENT-RESPONSE"));
    assert_eq!(settlement["success"], true, "{settlement}");
    assert_eq!(settlement["network"], "eip155:84532");
    assert!(
        is_tx_hash(settlement["transaction"].as_str().unwrap()),
        "{settlement}"
    );
    assert_eq!(chain.balance(&a.payer), payer0 - PRICE);
    assert_eq!(chain.balance(&a.pay_to), pay_to0 + PRICE);

    // The same payment again: refused by the host's ledger before anything runs; no transfer.
    let (status, _, out) = send(&server, &body, name, value);
    assert_eq!(
        (status, out["error"].as_str()),
        (402, Some("invalid_exact_evm_nonce_already_used"))
    );
    assert_eq!(chain.balance(&a.payer), payer0 - PRICE);

    // v1 (X-PAYMENT), settled the same way.
    let (body, name, value) = pay(&server, &s, &wallet, 1);
    assert_eq!(name, "X-PAYMENT");
    let (status, headers, out) = send(&server, &body, name, value);
    assert_eq!(
        status,
        200,
        "{out}\n{}\n{}",
        server.log(),
        chain.facilitator_log()
    );
    let settlement = b64_json(header(&headers, "x-payment-response").expect("X-PAYMENT-RESPONSE"));
    assert_eq!(
        (
            settlement["success"].as_bool(),
            settlement["network"].as_str()
        ),
        (Some(true), Some("base-sepolia"))
    );
    assert!(
        is_tx_hash(settlement["transaction"].as_str().unwrap()),
        "{settlement}"
    );
    assert_eq!(chain.balance(&a.pay_to), pay_to0 + 2 * PRICE);

    // The official x402 client from npm pays this server; the tokens move.
    let (req, digests) = s
        .encrypt_execution(&ExecuteInput::new(&wasm("hello")).args(["chain"]))
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("body.json");
    std::fs::write(&file, serde_json::to_vec(&req).unwrap()).unwrap();
    let out = std::process::Command::new("node")
        .arg(interop_dir().join("pay.mjs"))
        .arg(format!("{}{ROUTE}", server.url))
        .arg(&file)
        .arg(&a.payer_key)
        .arg(&a.token)
        .output()
        .expect("node");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        result["status"],
        200,
        "{result}\n{}\n{}",
        server.log(),
        chain.facilitator_log()
    );
    assert_eq!(result["settlement"]["success"], true, "{result}");
    assert!(
        is_tx_hash(result["settlement"]["transaction"].as_str().unwrap()),
        "{result}"
    );
    let run = s
        .check_response(200, result["body"].clone(), &digests)
        .unwrap();
    assert_eq!(run.stdout().unwrap(), b"Hello chain\n");
    assert_eq!(chain.balance(&a.payer), payer0 - 3 * PRICE);
    assert_eq!(chain.balance(&a.pay_to), pay_to0 + 3 * PRICE);
}

#[test]
fn the_facilitator_judges_and_an_unreachable_one_costs_the_payer_nothing() {
    let mut chain = LocalChain::start();
    let a = chain.accounts.clone();
    let server = facilitator_server(&chain);
    let (_c, _k, s) = session(&server);

    // A correctly signed payment from an account without USDC: the offline checks pass, the
    // facilitator refuses it, and its reason reaches the payer with a fresh challenge.
    let broke = Wallet::random().unwrap();
    let (body, name, value) = pay(&server, &s, &broke, 2);
    let (status, headers, out) = send(&server, &body, name, value);
    assert_eq!(status, 402, "{out}");
    let reason = out["error"].as_str().unwrap();
    assert!(
        reason.contains("insufficient") || reason.contains("balance"),
        "{out}"
    );
    assert!(header(&headers, "payment-required").is_some());

    // The facilitator is down: 503, nothing recorded, nothing run, nothing moved.
    let wallet = Wallet::from_hex(&a.payer_key).unwrap();
    let (payer0, pay_to0) = (chain.balance(&a.payer), chain.balance(&a.pay_to));
    let (body, name, value) = pay(&server, &s, &wallet, 2);
    let url = chain.facilitator_url.clone();
    chain.stop_facilitator();
    let (status, _, out) = send(&server, &body, name, value.clone());
    assert_eq!(
        (status, out["error"]["code"].as_str()),
        (503, Some("payments_unavailable")),
        "{out}"
    );
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("facilitator"),
        "{out}"
    );
    assert_eq!(chain.balance(&a.payer), payer0);

    // Back on the same URL: the client's retry with the same payment succeeds, charged once.
    chain.restart_facilitator_at(&url);
    let (status, _, out) = send(&server, &body, name, value);
    assert_eq!(
        status,
        200,
        "{out}\n{}\n{}",
        server.log(),
        chain.facilitator_log()
    );
    assert_eq!(chain.balance(&a.payer), payer0 - PRICE);
    assert_eq!(chain.balance(&a.pay_to), pay_to0 + PRICE);
}

#[test]
fn a_settlement_the_chain_refuses_withholds_the_result_and_charges_nothing() {
    // 60 USDC per request and 100 USDC in the wallet: two requests both pass verification
    // (the balance covers each), both run, and only the first settlement can succeed.
    let chain = LocalChain::start();
    let a = chain.accounts.clone();
    let server = priced_server(&chain, "60000000");
    let (_c, _k, s) = session(&server);
    let wallet = Wallet::from_hex(&a.payer_key).unwrap();
    let payer0 = chain.balance(&a.payer);
    let (_, headers, json) = challenge(&server, &s);
    let offer = Offer::from_402(header(&headers, "payment-required"), &json).unwrap();
    // A guest that runs until its 3 s limit, so both requests are verified before either settles.
    let limits = Limits {
        time_ms: Some(3000),
        ..Limits::default()
    };
    let program = wasm("endless-loop");
    let outcomes: Vec<Answer> = std::thread::scope(|scope| {
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                let (req, _) = s
                    .encrypt_execution(&ExecuteInput::new(&program).limits(limits))
                    .unwrap();
                let body = serde_json::to_value(req).unwrap();
                let (name, value) = wallet
                    .pay(&offer, &PaymentLimit::new(60_000_000), now())
                    .unwrap();
                let server = &server;
                scope.spawn(move || send(server, &body, name, value))
            })
            .collect();
        tasks.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let mut statuses: Vec<u16> = outcomes.iter().map(|o| o.0).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [402, 422], "{outcomes:?}");
    for (status, headers, out) in &outcomes {
        let settlement = b64_json(header(headers, "payment-response").expect("PAYMENT-RESPONSE"));
        if *status == 422 {
            // Stopped at its limit: the run was paid for, and the partial result is returned.
            assert_eq!(out["error"]["code"], "time_limit_exceeded", "{out}");
            assert!(out["encrypted_result"].is_string(), "{out}");
            assert_eq!(settlement["success"], true, "{settlement}");
        } else {
            assert_eq!(out["error"]["code"], "settlement_failed", "{out}");
            assert!(out.get("encrypted_result").is_none(), "withheld: {out}");
            assert_eq!(settlement["success"], false, "{settlement}");
            assert!(
                !settlement["errorReason"].as_str().unwrap_or("").is_empty(),
                "{settlement}"
            );
        }
    }
    assert_eq!(chain.balance(&a.payer), payer0 - 60_000_000);
}

/// Sends `signal` (e.g. `-STOP`, `-CONT`, `-9`) to `pid`.
pub(crate) fn signal(signal: &str, pid: u32) {
    let ok = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "kill {signal} {pid}");
}

/// Polls `what` every 50 ms until it holds (at most 60 s).
pub(crate) fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn sigterm_waits_for_a_settlement_after_the_response() {
    let chain = LocalChain::start();
    let a = chain.accounts.clone();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // A short heartbeat: a restarted host adopts what this run left unfinished within 200 ms.
    let config = config_with(
        &chain,
        "10000",
        "verify = \"local\"\nsettle_after_response_up_to = \"10000\"\n\
         [cluster]\nheartbeat_ms = 200\ndead_after_ms = 600",
    );
    let mut server = TestServer::start_in(&data, &config);
    let (_c, _k, s) = session(&server);
    let wallet = Wallet::from_hex(&a.payer_key).unwrap();
    let payer0 = chain.balance(&a.payer);
    let (body, name, value) = pay(&server, &s, &wallet, 2);

    // The facilitator paused: the answer goes out, the settlement after it hangs.
    signal("-STOP", chain.facilitator_pid());
    let (status, headers, out) = send(&server, &body, name, value.clone());
    assert_eq!(status, 200, "{out}");
    let settlement = b64_json(header(&headers, "payment-response").expect("PAYMENT-RESPONSE"));
    assert_eq!(settlement["transaction"], "", "{settlement}");

    // Asked to stop, the host closes its connections and then waits for the settlement.
    signal("-TERM", server.pid());
    assert!(
        server.wait_for_log(
            "shutdown signal received",
            std::time::Duration::from_secs(30)
        ),
        "{}",
        server.log()
    );
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert!(
        server.is_running(),
        "exited with a settlement in flight:\n{}",
        server.log()
    );
    signal("-CONT", chain.facilitator_pid());
    wait_until("the host exits", || !server.is_running());
    let log = server.log();
    let settled = log.find("payment settled").expect(&log);
    let stopped = log.rfind("stopped").expect(&log);
    assert!(settled < stopped, "{log}");
    assert_eq!(chain.balance(&a.payer), payer0 - PRICE);

    // The outcome was committed before the exit too: a restarted host on the same data finds
    // nothing left `settling` to settle again (a lost outcome would be settled again, refused
    // on chain, and logged as "left settling by a stopped run"), and the header is a replay.
    let restarted = TestServer::start_in(&data, &config);
    let (_c, _k, s) = session(&restarted);
    let (body, _, _) = challenge(&restarted, &s);
    let (status, _, out) = send(&restarted, &body, name, value);
    assert_eq!(status, 402, "{out}");
    std::thread::sleep(std::time::Duration::from_secs(1));
    let log = restarted.log();
    assert!(!log.contains("left settling by a stopped run"), "{log}");
    assert_eq!(chain.balance(&a.payer), payer0 - PRICE);
}

#[test]
fn a_kill_during_settlement_charges_at_most_once_and_the_payment_stays_spent() {
    let chain = LocalChain::start();
    let a = chain.accounts.clone();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let config = config_with(&chain, &PRICE.to_string(), "");
    let server = TestServer::start_in(&data, &config);
    let (_c, _k, s) = session(&server);
    let wallet = Wallet::from_hex(&a.payer_key).unwrap();
    let (payer0, pay_to0) = (chain.balance(&a.payer), chain.balance(&a.pay_to));

    // A paid request for a guest that runs 2 s, so there is time to act between its steps.
    let limits = Limits {
        time_ms: Some(2000),
        ..Limits::default()
    };
    let (req, _) = s
        .encrypt_execution(&ExecuteInput::new(&wasm("endless-loop")).limits(limits))
        .unwrap();
    let body = serde_json::to_value(req).unwrap();
    let (_, headers, json) = challenge(&server, &s);
    let offer = Offer::from_402(header(&headers, "payment-required"), &json).unwrap();
    let (name, value) = wallet
        .pay(&offer, &PaymentLimit::new(PRICE), now())
        .unwrap();

    std::thread::scope(|scope| {
        let request = scope.spawn(|| {
            // The server dies under it: any outcome but a success is fine here.
            server
                .client()
                .post_json_with(ROUTE, &body, &[(name, value.clone())])
                .map(|(status, _, _)| status)
        });
        // Running means verified and durably reserved. Pause the facilitator now, so the
        // settlement that follows the run hangs; then kill the host in the middle of it.
        wait_until("the paid guest runs", || {
            metric(&server, "hypervisor_live_instances") >= 1.0
        });
        signal("-STOP", chain.facilitator_pid());
        wait_until("the guest's run ends", || {
            metric(&server, "hypervisor_live_instances") == 0.0
        });
        std::thread::sleep(std::time::Duration::from_millis(300));
        signal("-9", server.pid());
        let outcome = request.join().unwrap();
        assert!(!matches!(outcome, Ok(200)), "{outcome:?}");
    });
    // The facilitator resumes and may complete the settlement it had received.
    signal("-CONT", chain.facilitator_pid());
    std::thread::sleep(std::time::Duration::from_secs(2));

    // After a restart the same payment is spent: refused, whoever refuses it (the ledger's
    // durable reservation, or the facilitator if the transfer went through).
    let restarted = TestServer::start_in(&data, &config);
    let (_c, _k, s2) = session(&restarted);
    let (body2, _, _) = challenge(&restarted, &s2);
    let (status, _, out) = send(&restarted, &body2, name, value);
    assert_eq!(status, 402, "{out}");
    // Charged at most once, and what left the payer arrived.
    let (payer1, pay_to1) = (chain.balance(&a.payer), chain.balance(&a.pay_to));
    let charged = payer0 - payer1;
    assert!(charged == 0 || charged == PRICE, "charged {charged}");
    eprintln!("killed during settlement: charged {charged}, replay refused with {out}");
    assert_eq!(pay_to1 - pay_to0, charged);
    drop(server);
}

#[test]
fn small_payments_verified_locally_settle_after_the_response() {
    // Verified by the component alone (the facilitator is asked once, at /settle), and settled
    // after the answer for v2 payments up to 10000.
    let chain = LocalChain::start();
    let a = chain.accounts.clone();
    let server = server_with(
        &chain,
        "10000",
        "verify = \"local\"\nsettle_after_response_up_to = \"10000\"",
    );
    let (_c, _k, s) = session(&server);
    let wallet = Wallet::from_hex(&a.payer_key).unwrap();
    let (payer0, pay_to0) = (chain.balance(&a.payer), chain.balance(&a.pay_to));

    // v2 at the threshold: answered at once with an empty transaction, then settled on chain.
    let (body, name, value) = pay(&server, &s, &wallet, 2);
    let (status, headers, out) = send(&server, &body, name, value.clone());
    assert_eq!(status, 200, "{out}\n{}", server.log());
    assert!(out["encrypted_result"].is_string(), "{out}");
    let settlement = b64_json(header(&headers, "payment-response").expect("PAYMENT-RESPONSE"));
    assert_eq!(settlement["success"], true, "{settlement}");
    assert_eq!(settlement["transaction"], "", "{settlement}");
    let payer = settlement["payer"].as_str().unwrap_or_default();
    assert!(payer.eq_ignore_ascii_case(&a.payer), "{settlement}");
    wait_until("the payment settled after the response", || {
        chain.balance(&a.payer) == payer0 - PRICE
    });
    assert_eq!(chain.balance(&a.pay_to), pay_to0 + PRICE);
    wait_until("the settlement recorded", || {
        metric(&server, "hypervisor_payments_total{outcome=\"settled\"}") == 1.0
    });
    // The same header again is a replay, as for a payment settled before its answer.
    let (status, _, out) = send(&server, &body, name, value);
    assert_eq!(status, 402, "{out}");
    assert_eq!(
        out["error"], "invalid_exact_evm_nonce_already_used",
        "{out}"
    );

    // v1 is settled before its answer: the header names the transaction.
    let (body, name, value) = pay(&server, &s, &wallet, 1);
    let (status, headers, out) = send(&server, &body, name, value);
    assert_eq!(status, 200, "{out}");
    let settlement = b64_json(header(&headers, "x-payment-response").expect("X-PAYMENT-RESPONSE"));
    assert!(
        is_tx_hash(settlement["transaction"].as_str().unwrap()),
        "{settlement}"
    );
    assert_eq!(chain.balance(&a.payer), payer0 - 2 * PRICE);

    // The risk taken: an account without USDC passes the local checks, gets its answer, and
    // the settlement after it fails (the run went unpaid; the ledger and metrics say so).
    let broke = Wallet::random().unwrap();
    let (body, name, value) = pay(&server, &s, &broke, 2);
    let (status, _, out) = send(&server, &body, name, value);
    assert_eq!(status, 200, "{out}");
    wait_until("the failed settlement recorded", || {
        metric(
            &server,
            "hypervisor_payments_total{outcome=\"settlement_failed\"}",
        ) == 1.0
    });
    // Never asked to verify: each signature was checked here once and at settlement.
    let log = chain.facilitator_log();
    assert!(!log.contains("/verify"), "{log}");
    assert_eq!(log.matches("/settle").count(), 3, "{log}");

    // Above the threshold a payment settles before its answer again.
    let server = server_with(
        &chain,
        "20000",
        "verify = \"local\"\nsettle_after_response_up_to = \"10000\"",
    );
    let (_c, _k, s) = session(&server);
    let (body, name, value) = {
        let (body, headers, json) = challenge(&server, &s);
        let offer = Offer::from_402(header(&headers, "payment-required"), &json).unwrap();
        let (name, value) = wallet
            .pay(&offer, &PaymentLimit::new(20_000), now())
            .unwrap();
        (body, name, value)
    };
    let (status, headers, out) = send(&server, &body, name, value);
    assert_eq!(status, 200, "{out}");
    let settlement = b64_json(header(&headers, "payment-response").expect("PAYMENT-RESPONSE"));
    assert!(
        is_tx_hash(settlement["transaction"].as_str().unwrap()),
        "{settlement}"
    );
    assert_eq!(chain.balance(&a.payer), payer0 - 2 * PRICE - 20_000);
}
