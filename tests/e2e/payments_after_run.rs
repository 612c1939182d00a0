//! Verify-only payments on the paid code routes, recorded once after their run (PROTOCOL.md
//! §6b): held on the host while the run goes on (a replay is refused before it runs), nothing
//! in the ledger until the run gave a result, recorded `settled` before the answer; a host
//! killed mid-run leaves the payment unspent; on replicas sharing PostgreSQL, the same payment
//! sent to three at once is answered once.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use hypervisor_client::ExecuteInput;
use hypervisor_client::x402::{Offer, Wallet};
use serde_json::Value;

use crate::harness::{TestServer, metric, session, wasm};
use crate::payments::{ROUTE, challenge, header, limit, now, payments_table, send};

const SETTLED: &str = "hypervisor_payments_total{outcome=\"settled\"}";
const REPLAY: &str = "invalid_exact_evm_nonce_already_used";

/// An encrypted request (for `s`) that spins until its time limit of `ms`.
fn spin(s: &hypervisor_client::Session, ms: u64) -> Value {
    let limits = hypervisor_protocol::wire::Limits {
        time_ms: Some(ms),
        ..Default::default()
    };
    let (req, _) = s
        .encrypt_execution(&ExecuteInput::new(&wasm("endless-loop")).limits(limits))
        .unwrap();
    serde_json::to_value(req).unwrap()
}

/// Waits (30 s at most) until `server` runs a guest.
fn until_running(server: &TestServer) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(server, "hypervisor_live_instances") < 1.0 {
        assert!(Instant::now() < deadline, "the paid run never started");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_verify_only_run_holds_its_payment_and_records_it_once_after_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // One public URL across the restart: payments are bound to their resource URL. Payments
    // valid for 10 minutes: the first is presented again after a run, a kill and a restart.
    let table =
        payments_table("public_url = \"https://paid.example\"") + "max_timeout_seconds = 600\n";
    let server = TestServer::start_in(&data, &table);
    let (_c, _k, s) = session(&server);
    let (hello, headers, json) = challenge(&server, &s);
    let offer = Offer::from_402(header(&headers, "payment-required"), &json).unwrap();
    let wallet = Wallet::random().unwrap();
    let (name, value) = wallet.pay(&offer, &limit(), now()).unwrap();

    // A paid run of 8 s; while it runs, nothing is recorded, and the same payment is refused
    // at once, without running (its answer comes before the first run's).
    let long = spin(&s, 8_000);
    let (done, finished) = mpsc::channel();
    let first = {
        let (url, value) = (server.url.clone(), value.clone());
        std::thread::spawn(move || {
            let answer = hypervisor_client::Client::new(&url)
                .post_json_with(ROUTE, &long, &[(name, value)])
                .unwrap();
            done.send(()).unwrap();
            answer
        })
    };
    until_running(&server);
    assert_eq!(
        metric(&server, SETTLED),
        0.0,
        "recorded before its run ended"
    );
    let (status, _, out) = send(&server, &hello, name, value.clone());
    assert_eq!(
        (status, out["error"].as_str()),
        (402, Some(REPLAY)),
        "{out}"
    );
    // The same payment with a payment identifier (whose payments are reserved before their
    // run) is refused too, while the first run holds it.
    let mut identified = crate::payments::b64_json(&value);
    identified["extensions"]["payment-identifier"] =
        serde_json::json!({"info": {"required": false, "id": "pay_held-by-another-run"}});
    let (status, _, out) = send(&server, &hello, name, crate::payments::b64(&identified));
    assert_eq!(
        (status, out["error"].as_str()),
        (402, Some(REPLAY)),
        "{out}"
    );
    assert!(
        finished.try_recv().is_err(),
        "a replay was answered only after the first run: it ran too"
    );

    // The run stopped at its limit is a result, paid for: recorded `settled` before the
    // answer, once.
    let (status, headers, out) = first.join().unwrap();
    assert_eq!(status, 422, "{out}");
    assert_eq!(out["error"]["code"], "time_limit_exceeded", "{out}");
    let settlement = crate::payments::b64_json(
        header(&headers, "payment-response").expect("the stopped run was paid for"),
    );
    assert_eq!(settlement["success"], true, "{settlement}");
    assert_eq!(metric(&server, SETTLED), 1.0);
    let (status, _, out) = send(&server, &hello, name, value.clone());
    assert_eq!(
        (status, out["error"].as_str()),
        (402, Some(REPLAY)),
        "{out}"
    );

    // A host killed while a paid run goes on: nothing was recorded, nothing delivered, so the
    // payment pays for a run after the restart, once, and nothing is left to release.
    let (name2, value2) = wallet.pay(&offer, &limit(), now()).unwrap();
    let doomed = {
        let (url, body, value2) = (server.url.clone(), spin(&s, 20_000), value2.clone());
        std::thread::spawn(move || {
            hypervisor_client::Client::new(&url).post_json_with(ROUTE, &body, &[(name2, value2)])
        })
    };
    until_running(&server);
    server.stop(); // SIGKILL
    assert!(
        doomed.join().unwrap().is_err(),
        "no answer from a killed host"
    );
    let restarted = TestServer::start_in(&data, &table);
    let (_c, _k, s) = session(&restarted);
    let (hello, _, _) = challenge(&restarted, &s);
    let (status, headers, out) = send(&restarted, &hello, name2, value2.clone());
    assert_eq!(status, 200, "the killed run spent its payment: {out}");
    assert!(header(&headers, "payment-response").is_some());
    let (status, _, out) = send(&restarted, &hello, name2, value2);
    assert_eq!(
        (status, out["error"].as_str()),
        (402, Some(REPLAY)),
        "{out}"
    );
    // The first payment is still spent after the restart.
    let (status, _, out) = send(&restarted, &hello, name, value);
    assert_eq!(
        (status, out["error"].as_str()),
        (402, Some(REPLAY)),
        "{out}"
    );
    assert!(
        !restarted.log().contains("left by a stopped run"),
        "nothing was left unfinished: {}",
        restarted.log()
    );
}

#[test]
fn the_same_paid_execution_sent_to_three_replicas_at_once_is_answered_once() {
    use crate::cluster::{postgres, replica, sql};
    let Some((pg, db)) = postgres("after_run") else {
        return;
    };
    let replicas = [replica(&db, "r1"), replica(&db, "r2"), replica(&db, "r3")];
    // A session on each (sessions live on their replica) and one payment for all three. Each
    // run spins for 15 s, so all three are under way before any is recorded: every replica
    // runs it, and the ledger's replay key lets exactly one answer.
    let bodies: Vec<Value> = replicas
        .iter()
        .map(|r| spin(&session(r).2, 15_000))
        .collect();
    let (status, headers, json) = replicas[0]
        .client()
        .post_json_with(ROUTE, &bodies[0], &[])
        .unwrap();
    assert_eq!(status, 402, "{json}");
    let offer = Offer::from_402(header(&headers, "payment-required"), &json).unwrap();
    let (name, value) = Wallet::random()
        .unwrap()
        .pay(&offer, &limit(), now())
        .unwrap();
    let answers: Vec<(u16, bool, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = replicas
            .iter()
            .zip(&bodies)
            .map(|(r, body)| {
                let value = value.clone();
                scope.spawn(move || {
                    let (status, headers, out) = send(r, body, name, value);
                    (status, header(&headers, "payment-response").is_some(), out)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let paid: Vec<_> = answers.iter().filter(|(s, _, _)| *s == 422).collect();
    assert_eq!(paid.len(), 1, "exactly one answer: {answers:?}");
    assert!(paid[0].1, "the answer carries its settlement: {answers:?}");
    for (status, settled, out) in answers.iter().filter(|(s, _, _)| *s != 422) {
        assert_eq!(
            (*status, out["error"].as_str()),
            (402, Some(REPLAY)),
            "{out}"
        );
        assert!(!settled, "a withheld answer carries no settlement: {out}");
    }
    assert_eq!(
        sql(
            &pg,
            "after_run",
            "SELECT string_agg(state, ',') FROM payments"
        ),
        "settled"
    );
    // All three ran (so the two refusals came from the ledger, after their runs), and each
    // run that gave a result has its record, the withheld ones too.
    assert_eq!(
        sql(
            &pg,
            "after_run",
            "SELECT count(*) FROM executions WHERE payment IS NOT NULL"
        ),
        "3"
    );
}
