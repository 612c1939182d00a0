//! Replicas sharing PostgreSQL (docs/DEPLOY.md): a real PostgreSQL server started by the test
//! (the installed binaries, a temporary directory, the `postgres` user, a private loopback
//! port) and several real host processes on it, on SIMULATED attestation (clearly labelled:
//! `cluster.allow_simulated`). Skipped, saying so, only where no server binaries exist.

use std::time::{Duration, Instant};

use hypervisor::storage::postgres::scratch::ScratchPostgres;
use hypervisor_client::agents::Deployment;
use hypervisor_client::x402::{Offer, PaymentLimit, Wallet};
use hypervisor_client::{ExecuteInput, RenewingSession};
use hypervisor_protocol::ClientSecret;
use serde_json::{Value, json};

use crate::harness::{TestServer, code, wasm, wasm_path};
use crate::payments::{header, now};

/// The PostgreSQL server of one test and its database, or `None` (printed) without binaries.
pub fn postgres(name: &str) -> Option<(ScratchPostgres, String)> {
    match ScratchPostgres::start() {
        Ok(server) => {
            server.create_database(name).expect("create the database");
            let url = server.url(name);
            Some((server, url))
        }
        Err(why) => {
            eprintln!("SKIPPED: the cluster tests need PostgreSQL server binaries: {why}");
            None
        }
    }
}

/// The configuration of replica `name` on `database`: simulated attestation (labelled),
/// payments in verify-only mode with one public URL for every replica (as behind a load
/// balancer), a fast heartbeat so that a dead replica is noticed within seconds, and `extra`.
fn replica_config(database: &str, name: &str, extra: &str) -> String {
    format!(
        "[attestation]\nprovider = \"simulated\"\n{extra_attestation}\
         [storage]\ndatabase = {database:?}\nconnect_timeout_ms = 1000\n\
         [cluster]\nreplica_id = {name:?}\nallow_simulated = true\nheartbeat_ms = 200\n\
         dead_after_ms = 1500\njoin_timeout_seconds = 20\n\
         [payments]\nenabled = true\ncomponent = {component:?}\npublic_url = \"http://cluster.test\"\n\
         [payments.price]\npay_to = \"0x209693Bc6afc0C5328bA36FaF03C514EF312287C\"\n",
        extra_attestation = extra,
        component = wasm_path("payments").display().to_string(),
    )
}

pub fn replica(database: &str, name: &str) -> TestServer {
    TestServer::start_with(&replica_config(database, name, ""))
}

/// `POST path` with `body` and extra headers: status, headers, JSON body.
fn post(
    server: &TestServer,
    path: &str,
    body: &Value,
    headers: &[(&str, String)],
) -> (u16, Vec<(String, String)>, Value) {
    server
        .client()
        .post_json_with(path, body, headers)
        .expect("a response")
}

/// `SELECT` through psql: the first column of the first row.
pub fn sql(pg: &ScratchPostgres, db: &str, query: &str) -> String {
    pg.psql(db, query).expect("psql").trim().to_string()
}

/// Deploys `component` as `name` through `server` (priced when `price` is given); returns the
/// owner's key.
pub fn deploy(
    server: &TestServer,
    name: &str,
    component: &str,
    price: Option<&str>,
) -> ClientSecret {
    let owner = ClientSecret::generate().expect("a key");
    server
        .client()
        .deploy_agent(
            &owner,
            &Deployment {
                name,
                description: "a cluster test agent",
                component: &wasm(component),
                price: price.map(str::to_string),
                ..Deployment::default()
            },
        )
        .expect("deploy");
    owner
}

/// A fresh wallet's payment for the challenge `server` answers for `path`.
fn payment(server: &TestServer, path: &str, body: &Value) -> (&'static str, String) {
    let (status, headers, challenge) = post(server, path, body, &[]);
    assert_eq!(status, 402, "{challenge}");
    let offer = Offer::from_402(header(&headers, "payment-required"), &challenge).unwrap();
    Wallet::random()
        .unwrap()
        .pay(&offer, &PaymentLimit::new(10_000), now())
        .unwrap()
}

#[test]
fn replicas_share_agents_renew_sessions_and_name_themselves() {
    let Some((_pg, db)) = postgres("share") else {
        return;
    };
    let r1 = replica(&db, "r1");
    let r2 = replica(&db, "r2");
    let r3 = replica(&db, "r3");
    assert!(
        r1.log().contains("created the cluster key record"),
        "{}",
        r1.log()
    );
    for r in [&r2, &r3] {
        assert!(r.log().contains("received the cluster key"), "{}", r.log());
    }
    assert!(r1.wait_for_log("granted the cluster key", Duration::from_secs(5)));

    // Deployed through r1, invoked on r2 and r3: its code comes out of the database, sealed
    // with the cluster key they received.
    let owner = deploy(&r1, "stats", "text-stats", None);
    let event = json!({"event": {"text": "a b c"}});
    for (r, name) in [(&r2, "r2"), (&r3, "r3")] {
        let (status, headers, body) = post(r, "/agents/stats/invoke", &event, &[]);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["result"]["words"], 3, "{body}");
        assert_eq!(header(&headers, "x-hypervisor-replica"), Some(name));
    }
    let hits = r3.client().search("cluster test", None).expect("search");
    assert_eq!(hits["results"][0]["name"], "stats", "{hits}");

    // A session lives on its replica: r2 names r1 for a session r1 made.
    let secret = ClientSecret::generate().unwrap();
    let on_r1 = r1.client().create_session(&secret).unwrap();
    let hello = wasm("hello");
    let input = ExecuteInput::new(&hello);
    let (status, body, _) = r2
        .client()
        .execute_raw("/test/execute/wasm", &on_r1, &input)
        .unwrap();
    assert_eq!(
        (status, code(&body)),
        (421, "session_on_other_replica"),
        "{body}"
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("replica r1"), "{body}");
    // The Rust client opens a session where it landed and sends again, transparently.
    let renewing: RenewingSession = r1.client().open_renewing(secret, None).unwrap();
    let r2_client = r2.client();
    let run = r2_client
        .with_session(&renewing, |s| r2_client.execute(s, &input))
        .expect("renewed on r2");
    assert_eq!(run.result.exit_code, Some(0));
    assert_ne!(renewing.current().id, on_r1.id);

    // Receipts name the replica that ran the program, and verify.
    let policy = hypervisor_client::verify::Policy {
        allow_simulated: true,
        accept_any_measurement: true,
        ..Default::default()
    };
    let c3 = r3.client();
    let session = c3
        .create_verifiable_session(&ClientSecret::generate().unwrap(), &policy)
        .unwrap();
    let run = c3.execute_verifiable(&session, &input).expect("verified");
    assert_eq!(run.receipt.as_ref().expect("a receipt").replica, "r3");

    // A change on one replica reaches the others' caches: deleted through r3, the agent that
    // r1 has just run (and cached) is gone on r1 at once.
    let (status, _, _) = post(&r1, "/agents/stats/invoke", &event, &[]);
    assert_eq!(status, 200);
    r3.client().delete_agent(&owner, "stats").expect("delete");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, _, body) = post(&r1, "/agents/stats/invoke", &event, &[]);
        if status == 404 {
            assert_eq!(code(&body), "agent_not_found");
            break;
        }
        assert!(Instant::now() < deadline, "r1 still runs the deleted agent");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_same_payment_sent_to_three_replicas_at_once_runs_and_settles_once() {
    let Some((pg, db)) = postgres("spend") else {
        return;
    };
    let replicas = [replica(&db, "r1"), replica(&db, "r2"), replica(&db, "r3")];
    deploy(&replicas[0], "paid", "text-stats", Some("7000"));
    let event = json!({"event": {"text": "one two"}});
    for round in 0..3 {
        let pay = payment(&replicas[round], "/agents/paid/invoke", &event);
        let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
            let handles: Vec<_> = replicas
                .iter()
                .map(|r| {
                    let (pay, event) = (pay.clone(), event.clone());
                    scope.spawn(move || {
                        let (status, _, body) =
                            post(r, "/agents/paid/invoke", &event, &[(pay.0, pay.1.clone())]);
                        (status, body)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let ran: Vec<_> = answers.iter().filter(|(s, _)| *s == 200).collect();
        assert_eq!(ran.len(), 1, "exactly one replica runs it: {answers:?}");
        for (status, body) in answers.iter().filter(|(s, _)| *s != 200) {
            assert_eq!(*status, 402, "{body}");
            assert_eq!(
                body["error"], "invalid_exact_evm_nonce_already_used",
                "{body}"
            );
        }
    }
    // Three payments, each recorded once and settled once.
    assert_eq!(sql(&pg, "spend", "SELECT count(*) FROM payments"), "3");
    assert_eq!(
        sql(
            &pg,
            "spend",
            "SELECT count(*) FROM payments WHERE state = 'settled'"
        ),
        "3"
    );
    assert_eq!(
        sql(
            &pg,
            "spend",
            "SELECT count(*) FROM executions WHERE payment IS NOT NULL"
        ),
        "3"
    );
}

#[test]
fn a_replica_killed_mid_payment_charges_nothing_twice_and_loses_no_record() {
    let Some((pg, db)) = postgres("crash") else {
        return;
    };
    let r1 = replica(&db, "r1");
    let r2 = replica(&db, "r2");
    deploy(&r1, "slow", "sleep", Some("5000"));
    let body = json!({"args": ["4000"]});
    // Four paid runs of four seconds each on r1; r1 dies in the middle of them.
    let payments: Vec<(&str, String)> = (0..4)
        .map(|_| payment(&r1, "/agents/slow/invoke", &body))
        .collect();
    let url = r1.url.clone();
    let clients: Vec<_> = payments
        .iter()
        .cloned()
        .map(|pay| {
            let (url, body) = (url.clone(), body.clone());
            std::thread::spawn(move || {
                hypervisor_client::Client::new(&url)
                    .post_json_with("/agents/slow/invoke", &body, &[(pay.0, pay.1)])
                    .map(|(status, _, _)| status)
            })
        })
        .collect();
    let reserved = |pg: &ScratchPostgres| {
        sql(
            pg,
            "crash",
            "SELECT count(*) FROM payments WHERE state = 'reserved'",
        )
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while reserved(&pg) != "4" {
        assert!(Instant::now() < deadline, "the runs never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    r1.stop(); // SIGKILL
    for c in clients {
        assert!(
            c.join().unwrap().is_err(),
            "no answer comes from a killed replica"
        );
    }
    // r2 sees r1's heartbeat stop and takes its payments over: their work gave no result, so
    // they are released, not charged.
    let deadline = Instant::now() + Duration::from_secs(20);
    while sql(&pg, "crash", "SELECT count(*) FROM payments") != "0" {
        assert!(
            Instant::now() < deadline,
            "the dead replica's reservations stay: {}",
            sql(
                &pg,
                "crash",
                "SELECT string_agg(state || ' ' || owner, ', ') FROM payments"
            )
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(r2.wait_for_log(
        "released a payment reservation left by a stopped run",
        Duration::from_secs(1)
    ));
    // Released, a payment may be presented again, once: it runs on r2 and is settled there,
    // with its record.
    let short = json!({"args": ["10"]});
    let again = [(payments[0].0, payments[0].1.clone())];
    let (status, _, answer) = post(&r2, "/agents/slow/invoke", &short, &again);
    assert_eq!(status, 200, "{answer}");
    let (status, _, answer) = post(&r2, "/agents/slow/invoke", &short, &again);
    assert_eq!(status, 402, "{answer}");
    assert_eq!(
        sql(&pg, "crash", "SELECT string_agg(state, ',') FROM payments"),
        "settled"
    );
    assert_eq!(
        sql(
            &pg,
            "crash",
            "SELECT count(*) FROM executions WHERE payment IS NOT NULL"
        ),
        "1"
    );
}

#[test]
fn a_replica_with_another_measurement_gets_no_key_and_says_why() {
    let Some((_pg, db)) = postgres("outsider") else {
        return;
    };
    let r1 = replica(&db, "r1");
    let other = "ab".repeat(32);
    let log = TestServer::start_expecting_failure(&replica_config(
        &db,
        "outsider",
        &format!("simulated_host_measurement = {other:?}\n"),
    ));
    assert!(
        log.contains("the cluster refused this replica's join request")
            && log.contains("host_measurement (claimed by the host) differs")
            && log.contains(&other),
        "{log}"
    );
    assert!(!log.contains("received the cluster key"), "{log}");
    assert!(r1.wait_for_log("refused the cluster key", Duration::from_secs(5)));
}

/// A simulated platform whose MRTD is `mrtd` (hex), in `[attestation]` terms.
fn platform(mrtd: &str) -> String {
    format!("[attestation.simulated_platform]\nmrtd = {mrtd:?}\n")
}

/// `[[cluster.allowed_reference_values]]` for the host under test on a simulated platform
/// whose MRTD is `mrtd`.
fn allowed(mrtd: &str) -> String {
    let mut set = crate::harness::simulated_reference();
    set.name = format!("simulated, MRTD {}", &mrtd[..8]);
    set.tdx.as_mut().unwrap().mrtd = mrtd.to_string();
    let table = toml::to_string(&set).unwrap();
    // Re-root the set's tables under the array entry.
    let table = table
        .replace("[tdx]", "[cluster.allowed_reference_values.tdx]")
        .replace("[tdx.app]", "[cluster.allowed_reference_values.tdx.app]");
    format!("[[cluster.allowed_reference_values]]\n{table}")
}

#[test]
fn a_replica_claiming_the_same_binary_on_another_platform_gets_no_key_and_the_register_is_named() {
    let Some((_pg, db)) = postgres("forged") else {
        return;
    };
    let r1 = replica(&db, "r1");
    // The same host binary (the same claimed host_measurement, the same launcher event), on a
    // machine with other firmware: what a forged replica in an attacker's TEE looks like.
    let forged = "ab".repeat(48);
    let log =
        TestServer::start_expecting_failure(&replica_config(&db, "forged", &platform(&forged)));
    assert!(
        log.contains("the cluster refused this replica's join request")
            && log.contains("MRTD differs")
            && log.contains(&forged),
        "{log}"
    );
    assert!(!log.contains("received the cluster key"), "{log}");
    assert!(r1.wait_for_log("MRTD differs", Duration::from_secs(5)));
}

#[test]
fn a_replica_on_a_platform_the_cluster_allows_joins() {
    let Some((_pg, db)) = postgres("allowed") else {
        return;
    };
    let default_mrtd = crate::harness::simulated_register("MRTD");
    let next = "cd".repeat(48);
    // Both sides list both platforms (a rolling move to new firmware): each checks the other.
    let both = format!("{}{}", allowed(&default_mrtd), allowed(&next));
    let r1 = TestServer::start_with(&format!("{}{both}", replica_config(&db, "r1", "")));
    let r2 = TestServer::start_with(&format!(
        "{}{both}",
        replica_config(&db, "r2", &platform(&next))
    ));
    assert!(r2.wait_for_log("received the cluster key", Duration::from_secs(20)));
    assert!(r1.wait_for_log("granted the cluster key", Duration::from_secs(5)));
}

#[test]
fn postgres_restarted_under_load_means_503s_while_down_none_after_and_no_lost_rows() {
    let Some((pg, db)) = postgres("restart") else {
        return;
    };
    let r1 = replica(&db, "r1");
    deploy(&r1, "stats", "text-stats", None);
    let event = json!({"event": {"text": "load"}});
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Four clients invoke without pause; each answer is kept with the time it came.
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (url, event, stop) = (r1.url.clone(), event.clone(), stop.clone());
            std::thread::spawn(move || {
                let client = hypervisor_client::Client::new(&url);
                let mut answers = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let (status, _, body) = client
                        .post_json_with("/agents/stats/invoke", &event, &[])
                        .expect("an answer, never a hang");
                    answers.push((Instant::now(), status, body));
                }
                answers
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(800));
    let down = Instant::now();
    pg.stop().expect("stop PostgreSQL");
    std::thread::sleep(Duration::from_millis(1500));
    pg.start_server().expect("start PostgreSQL again");
    let up = Instant::now();
    std::thread::sleep(Duration::from_millis(3000));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let answers: Vec<_> = load.into_iter().flat_map(|h| h.join().unwrap()).collect();
    let mut succeeded = Vec::new();
    let mut refused_while_down = 0;
    for (at, status, body) in &answers {
        match status {
            200 => succeeded.push(body["execution_id"].as_str().unwrap().to_string()),
            503 => {
                assert_eq!(code(body), "storage_unavailable", "{body}");
                assert!(*at > down, "a 503 before PostgreSQL stopped: {body}");
                assert!(
                    *at < up + Duration::from_secs(2),
                    "still refused 2 s after PostgreSQL came back: {body}"
                );
                refused_while_down += 1;
            }
            _ => panic!("neither a run nor storage_unavailable: {status} {body}"),
        }
    }
    assert!(
        refused_while_down > 0,
        "no request noticed PostgreSQL was down"
    );
    let after = answers
        .iter()
        .filter(|(at, s, _)| *at > up + Duration::from_secs(2) && *s == 200)
        .count();
    assert!(after > 0, "no run after PostgreSQL came back");
    // Every run that was answered has its record.
    let recorded: usize = sql(&pg, "restart", "SELECT count(*) FROM executions")
        .parse()
        .unwrap();
    assert_eq!(recorded, succeeded.len(), "records lost or made up");
}
