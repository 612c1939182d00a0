//! Agents keep state and secrets (docs/PROTOCOL.md §23): `wasi:keyvalue` buckets private to
//! each agent, sealed, within quotas, surviving restarts and shared by replicas on PostgreSQL;
//! `wasi:config` values set by the owner sealed and signed, rotated without redeploying, and
//! never in the clear in the host's logs or database files. The agents are real components:
//! `kv-counter` (stock wit-bindgen on the published `wasi:keyvalue@0.2.0-draft` WIT, no project
//! code, as wasmCloud's examples are written) and `state-agent` (`@0.2.0-draft2` as Spin's
//! components import it, and `wasi:config/store`).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use hypervisor_client::agents::Deployment;
use hypervisor_client::state::change_of;
use hypervisor_client::{Client, Session};
use hypervisor_protocol::ClientSecret;
use hypervisor_protocol::agents::InvokeResponse;
use hypervisor_protocol::grants::Grants;
use hypervisor_protocol::state::value_hash;
use serde_json::{Value, json};

use crate::harness::{TestServer, code, session, wasm};

/// Deploys `component` as `name` (public, clear) with `grants`; returns the owner.
pub fn deploy_as(
    client: &Client,
    owner: &ClientSecret,
    name: &str,
    component: &str,
    grants: Option<Grants>,
) {
    client
        .deploy_agent(
            owner,
            &Deployment {
                name,
                description: "an agent with state",
                component: &wasm(component),
                grants,
                ..Deployment::default()
            },
        )
        .unwrap_or_else(|e| panic!("deploy {name}: {e}"));
}

/// Runs the CLI agent `name` with `args`; its stdout, trimmed.
fn cli(client: &Client, name: &str, args: &[&str]) -> InvokeResponse {
    client.invoke_cli(name, args, None).expect("invoke")
}

fn out(r: &InvokeResponse) -> String {
    r.stdout.clone().unwrap_or_default().trim().to_string()
}

/// Invokes the handler agent `name` with `event`: its result (or the error, as `{"error":..}`).
fn handle(client: &Client, name: &str, event: Value) -> Value {
    let r = client.invoke(name, event).expect("invoke");
    match (r.result_json(), &r.error) {
        (Some(v), _) => v,
        (None, Some(e)) => json!({"error": {"code": e.code, "message": e.message}}),
        (None, None) => json!({"status": r.status, "stderr": r.stderr}),
    }
}

/// `n` invocations of `incr KEY` with `in_flight` at once, sent to `clients` in turn: the
/// values they printed.
fn count_concurrently(clients: &[&Client], name: &str, n: u32, in_flight: usize) -> Vec<u64> {
    let next = Arc::new(AtomicU32::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    std::thread::scope(|s| {
        for t in 0..in_flight {
            let (next, seen) = (next.clone(), seen.clone());
            let client = clients[t % clients.len()];
            s.spawn(move || {
                while next.fetch_add(1, Ordering::SeqCst) < n {
                    let r = cli(client, name, &["default", "incr", "hits"]);
                    assert!(r.ok, "{r:?}");
                    seen.lock()
                        .unwrap()
                        .push(out(&r).parse::<u64>().expect("a number"));
                }
            });
        }
    });
    Arc::try_unwrap(seen).unwrap().into_inner().unwrap()
}

fn assert_exactly_one_to(mut values: Vec<u64>, n: u64) {
    values.sort_unstable();
    assert_eq!(
        values,
        (1..=n).collect::<Vec<_>>(),
        "each increment seen once"
    );
}

#[test]
fn a_counter_agent_counts_exactly_under_concurrency_and_survives_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = TestServer::start_in(&data, "");
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    deploy_as(&client, &owner, "counter", "kv-counter", None);

    // 200 invocations, 16 in flight: every increment is atomic, none lost, none doubled.
    assert_exactly_one_to(count_concurrently(&[&client], "counter", 200, 16), 200);
    assert_eq!(
        out(&cli(&client, "counter", &["default", "incr", "hits", "0"])),
        "200"
    );

    // Compare-and-swap (draft2, Spin's version) under concurrency, on the same buckets.
    deploy_as(&client, &owner, "casser", "state-agent", None);
    let values = Arc::new(Mutex::new(Vec::new()));
    std::thread::scope(|s| {
        for _ in 0..8 {
            let (client, values) = (&client, values.clone());
            s.spawn(move || {
                for _ in 0..5 {
                    let r = handle(client, "casser", json!({"op": "cas_incr", "key": "n"}));
                    values
                        .lock()
                        .unwrap()
                        .push(r["value"].as_u64().expect("a value"));
                }
            });
        }
    });
    assert_exactly_one_to(Arc::try_unwrap(values).unwrap().into_inner().unwrap(), 40);

    // Kept across a restart, with the same at-rest key.
    server.stop();
    let server = TestServer::start_in(&data, "");
    let client = server.client();
    assert_eq!(
        out(&cli(&client, "counter", &["default", "incr", "hits"])),
        "201"
    );
    let r = handle(&client, "casser", json!({"op": "get", "key": "n"}));
    assert_eq!(r["value"], "40", "{r}");
}

#[test]
fn buckets_are_private_to_each_agent_and_quotas_answer_clearly() {
    let server = TestServer::start_with("[state]\nmax_keys = 5\nmax_value_bytes = 64\n");
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    deploy_as(&client, &owner, "alpha", "kv-counter", None);
    deploy_as(&client, &owner, "beta", "kv-counter", None);

    assert_eq!(
        out(&cli(&client, "alpha", &["cart", "set", "item", "book"])),
        "ok"
    );
    assert_eq!(
        out(&cli(&client, "alpha", &["cart", "get", "item"])),
        "book"
    );
    // The same bucket name opened by another agent is another store.
    assert_eq!(
        out(&cli(&client, "beta", &["cart", "get", "item"])),
        "(none)"
    );
    assert_eq!(out(&cli(&client, "beta", &["cart", "keys"])), "");
    assert_eq!(out(&cli(&client, "alpha", &["cart", "keys"])), "item");
    // And in another bucket of the same agent, the key is not set either.
    assert_eq!(
        out(&cli(&client, "alpha", &["other", "get", "item"])),
        "(none)"
    );

    // A value over state.max_value_bytes: a clear error to the guest.
    let big = "x".repeat(65);
    let r = cli(&client, "beta", &["cart", "set", "big", &big]);
    assert!(!r.ok);
    assert!(r.stderr.contains("state.max_value_bytes"), "{r:?}");

    // Past state.max_keys (alpha holds 1, beta 0): the guest gets `state_quota_exceeded`, and
    // so does the invocation's caller, beside the guest's own result.
    let r = cli(&client, "alpha", &["cart", "fill", "10", "4"]);
    assert!(!r.ok, "{r:?}");
    assert_eq!(out(&r), "4", "four more keys fit: {r:?}");
    assert!(r.stderr.contains("state_quota_exceeded"), "{r:?}");
    assert!(r.stderr.contains("state.max_keys"), "{r:?}");
    let refusal = r.state_error.expect("the invocation names the refusal");
    assert_eq!(refusal.code, "state_quota_exceeded");
    assert!(refusal.message.contains("5"), "{refusal:?}");
    // Replacing and removing keys stays possible at the limit; beta's quota is its own.
    assert_eq!(
        out(&cli(&client, "alpha", &["cart", "set", "fill-0", "y"])),
        "ok"
    );
    assert_eq!(
        out(&cli(&client, "alpha", &["cart", "delete", "fill-1"])),
        "ok"
    );
    assert_eq!(
        out(&cli(&client, "alpha", &["cart", "set", "new", "z"])),
        "ok"
    );
    let r = cli(&client, "beta", &["cart", "fill", "5", "4"]);
    assert!(r.ok && r.state_error.is_none(), "{r:?}");
}

/// A loopback HTTP server answering every request `status` with `headers`, keeping every
/// request's head.
pub struct Stub {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Stub {
    /// A stub answering `status` with `headers`.
    pub fn start(status: u16, headers: &[(&str, &str)]) -> Self {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let kept = seen.clone();
        let extra: String = headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}\r\n"))
            .collect();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                kept.lock().unwrap().push(head);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\n{extra}content-length: 2\r\nconnection: close\r\n\r\nok"
                );
            }
        });
        Self { url, seen }
    }

    /// The heads of the requests received.
    pub fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// Every file under `dir` (recursively) containing `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_containing(&path, needle));
        } else if let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|w| w == needle)
        {
            found.push(path.display().to_string());
        }
    }
    found
}

fn set_config(
    client: &Client,
    owner: &ClientSecret,
    s: &Session,
    name: &str,
    pairs: &[&str],
) -> Value {
    let pairs: Vec<String> = pairs.iter().map(|p| p.to_string()).collect();
    let info = client
        .set_agent_config(owner, s, name, &change_of(&pairs, &[]).unwrap())
        .expect("set config");
    serde_json::to_value(info).unwrap()
}

#[test]
fn secrets_are_read_rotated_and_never_in_the_clear_in_logs_or_database_files() {
    let server = TestServer::start_logging(
        "debug,hyper=info,h2=info,cranelift=info,wasmtime=info",
        "[egress]\nallow_loopback_http = true\n",
    );
    let (client, owner, s) = session(&server);
    let stub = Stub::start(200, &[]);
    let grants = Grants {
        origins: vec![stub.url.clone()],
        ..Grants::default()
    };
    deploy_as(&client, &owner, "keeper", "state-agent", Some(grants));
    let first = format!(
        "sk-first-{}",
        hex::encode(hypervisor_protocol::sha256(stub.url.as_bytes()))
    );
    let second = format!("sk-second-{}", &first[9..]);

    let info = set_config(
        &client,
        &owner,
        &s,
        "keeper",
        &[&format!("API_KEY={first}"), "REGION=eu"],
    );
    assert_eq!(info["entries"][0]["name"], "API_KEY", "{info}");
    assert_eq!(info["entries"][0]["version"], 1);
    assert_eq!(
        info["entries"][0]["sha256"],
        value_hash("keeper", "API_KEY", &first)
    );
    assert!(!info.to_string().contains(&first), "never returned: {info}");

    // The agent reads it (rc.1 `get`; Spin's draft `get-all` for the names).
    let r = handle(
        &client,
        "keeper",
        json!({"op": "config", "name": "API_KEY"}),
    );
    assert_eq!(r["value"], first.as_str(), "{r}");
    let r = handle(&client, "keeper", json!({"op": "config_names"}));
    assert_eq!(r["names"], json!(["API_KEY", "REGION"]), "{r}");
    let r = handle(
        &client,
        "keeper",
        json!({"op": "config", "name": "MISSING"}),
    );
    assert_eq!(r["value"], Value::Null, "{r}");
    // It uses it: a granted origin gets it; an ungranted one is refused with it in hand; a
    // run traps holding it.
    let r = handle(
        &client,
        "keeper",
        json!({"op": "send_secret", "name": "API_KEY", "url": stub.url}),
    );
    assert_eq!(r["status"], 200, "{r}");
    assert!(
        stub.requests()
            .iter()
            .any(|h| h.contains(&format!("Bearer {first}"))),
        "{:?}",
        stub.requests()
    );
    let r = handle(
        &client,
        "keeper",
        json!({"op": "send_secret", "name": "API_KEY", "url": "http://127.0.0.1:9/x"}),
    );
    assert_eq!(r["error"]["code"], "request_failed", "{r}");
    let trapped = client
        .invoke("keeper", json!({"op": "trap_secret", "name": "API_KEY"}))
        .unwrap();
    assert_eq!(
        trapped.status,
        hypervisor_protocol::wire::ExitStatus::Trapped,
        "{trapped:?}"
    );

    // Rotated without redeploying: the next invocation reads the new value.
    let info = set_config(
        &client,
        &owner,
        &s,
        "keeper",
        &[&format!("API_KEY={second}")],
    );
    assert_eq!(info["entries"][0]["version"], 2, "{info}");
    let r = handle(
        &client,
        "keeper",
        json!({"op": "config", "name": "API_KEY"}),
    );
    assert_eq!(r["value"], second.as_str(), "{r}");
    // The owner reads names, versions and hashes; nobody else.
    let read = client.agent_config(&owner, "keeper").unwrap();
    assert_eq!(read.entries.len(), 2);
    let stranger = ClientSecret::generate().unwrap();
    let refused = client.agent_config(&stranger, "keeper").unwrap_err();
    assert!(refused.to_string().contains("not_owner"), "{refused}");
    // A change signed for another agent's detail does not apply (sealed bytes and signature
    // bound together): a stranger's session cannot set it either.
    let stranger_session = client.create_session(&stranger).unwrap();
    let err = client
        .set_agent_config(
            &stranger,
            &stranger_session,
            "keeper",
            &change_of(&["API_KEY=x".into()], &[]).unwrap(),
        )
        .unwrap_err();
    assert!(err.to_string().contains("not_owner"), "{err}");

    // Records written after the answers are committed within moments; then nothing on disk
    // (database, write-ahead log, caches, receipts, spool) nor in the log holds either value.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let log = server.log();
    assert!(
        log.contains("agent configuration changed"),
        "debug log captured"
    );
    // The search sees what is there in the clear (the agent's name is).
    assert!(!files_containing(&server.data_dir, b"keeper").is_empty());
    for secret in [&first, &second] {
        assert!(
            !log.contains(secret.as_str()),
            "the server log holds a secret"
        );
        let found = files_containing(&server.data_dir, secret.as_bytes());
        assert!(found.is_empty(), "in the clear in {found:?}");
    }
}

#[test]
fn the_owner_exports_and_wipes_state_and_deleting_the_agent_wipes_it() {
    let server = TestServer::start();
    let (client, owner, s) = session(&server);
    deploy_as(&client, &owner, "shop", "state-agent", None);
    for (b, k, v) in [
        ("cart", "a", "1"),
        ("cart", "b", "2"),
        ("orders", "o-1", "paid"),
    ] {
        let r = handle(
            &client,
            "shop",
            json!({"op": "set", "b": b, "key": k, "value": v}),
        );
        assert_eq!(r["ok"], true, "{r}");
    }
    let r = handle(&client, "shop", json!({"op": "list", "b": "cart"}));
    assert_eq!(r["keys"].as_array().unwrap().len(), 2, "{r}");
    let r = handle(
        &client,
        "shop",
        json!({"op": "get_many", "b": "cart", "keys": ["a", "zz"]}),
    );
    assert_eq!(r["values"], json!({"a": "1", "zz": null}), "{r}");
    set_config(&client, &owner, &s, "shop", &["TOKEN=t-123"]);

    // Export: sealed to the owner's session, opened by the client.
    let exported = client
        .export_agent_state(&owner, &s, "shop")
        .expect("export");
    assert_eq!(exported.agent, "shop");
    let cart = &exported.buckets["cart"];
    assert_eq!(
        cart.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        BTreeSet::from(["a", "b"])
    );
    assert_eq!(cart["a"], "MQ==", "base64 of 1");
    assert_eq!(exported.buckets["orders"]["o-1"], "cGFpZA==");
    // Not by anyone else.
    let stranger = ClientSecret::generate().unwrap();
    let (_, _, other_session) = session(&server);
    assert!(
        client
            .export_agent_state(&stranger, &other_session, "shop")
            .is_err()
    );
    assert!(client.wipe_agent_state(&stranger, "shop").is_err());

    // Wipe: every key goes; the agent starts again from nothing.
    let wiped = client.wipe_agent_state(&owner, "shop").expect("wipe");
    assert_eq!(wiped.keys_removed, 3);
    let r = handle(
        &client,
        "shop",
        json!({"op": "get", "b": "cart", "key": "a"}),
    );
    assert_eq!(r["value"], Value::Null, "{r}");
    assert!(
        client
            .export_agent_state(&owner, &s, "shop")
            .unwrap()
            .buckets
            .is_empty()
    );

    // Deleting the agent wipes its state and configuration: deployed again under the same
    // name by the same owner, it finds neither.
    handle(
        &client,
        "shop",
        json!({"op": "set", "key": "left", "value": "behind"}),
    );
    client.delete_agent(&owner, "shop").expect("delete");
    deploy_as(&client, &owner, "shop", "state-agent", None);
    let r = handle(&client, "shop", json!({"op": "get", "key": "left"}));
    assert_eq!(r["value"], Value::Null, "{r}");
    let r = handle(&client, "shop", json!({"op": "config", "name": "TOKEN"}));
    assert_eq!(r["value"], Value::Null, "{r}");
    assert!(
        client
            .agent_config(&owner, "shop")
            .unwrap()
            .entries
            .is_empty()
    );
}

/// A Python agent keeps state and reads its configuration through the `agent_state` helper
/// (guests/python-state), on the same interfaces.
#[test]
fn a_python_agent_keeps_state_and_reads_secrets_through_its_helper() {
    let server = TestServer::start();
    let (client, owner, s) = session(&server);
    deploy_as(&client, &owner, "guestbook", "python-state", None);
    let r = handle(&client, "guestbook", json!({"op": "visit", "who": "ada"}));
    assert_eq!(r, json!({"visits": 1, "visitors": ["ada"]}));
    let r = handle(&client, "guestbook", json!({"op": "visit", "who": "bob"}));
    assert_eq!(r, json!({"visits": 2, "visitors": ["ada", "bob"]}));
    let r = handle(&client, "guestbook", json!({"op": "keys"}));
    assert_eq!(r["keys"], json!(["visitors", "visits"]), "{r}");
    set_config(
        &client,
        &owner,
        &s,
        "guestbook",
        &["GREETING=hello", "API_KEY=py-secret"],
    );
    let r = handle(
        &client,
        "guestbook",
        json!({"op": "config", "name": "API_KEY"}),
    );
    assert_eq!(
        r,
        json!({"value": "py-secret", "names": ["API_KEY", "GREETING"]})
    );
    // What the Python agent wrote is the same state the owner exports.
    let exported = client.export_agent_state(&owner, &s, "guestbook").unwrap();
    assert_eq!(
        exported.buckets["default"]["visitors"],
        "WyJhZGEiLCAiYm9iIl0="
    );
}

/// Bad owner requests on these routes answer the usual error codes.
#[test]
fn bad_state_requests_get_clear_errors() {
    let server = TestServer::start();
    let (client, owner, _s) = session(&server);
    deploy_as(&client, &owner, "plain", "state-agent", None);
    let (status, body) = client
        .post_json("/agents/plain/state/export", &json!({"public_key": "zz"}))
        .unwrap();
    assert_eq!(status, 400, "{body}");
    let (status, body) = client
        .post_json("/agents/nobody/state/export", &json!({}))
        .unwrap();
    assert_eq!((status, code(&body)), (404, "agent_not_found"), "{body}");
    let (status, _, body) = client
        .put_json_with(
            "/agents/plain/config",
            &json!({"public_key": owner.public_key().to_hex(),
            "encrypted_config": "00", "signature": "00", "signed_at": 0, "sequence": 1}),
            &[],
        )
        .unwrap();
    assert!(matches!(status, 400 | 403), "{status} {body}");
    assert!(!code(&body).is_empty(), "{body}");
    // A client program (not an agent) has no buckets: `open` answers access-denied.
    let r = crate::harness::run(&server, "kv-counter", &["b", "get", "k"]);
    assert_eq!(r.result.exit_code, Some(1));
    let stderr = String::from_utf8_lossy(&r.stderr().unwrap()).into_owned();
    assert!(stderr.contains("AccessDenied"), "{stderr}");
}

/// Polls `read` until it returns `want` (at most 5 s): another replica's change reaches this
/// one's caches by notification.
#[cfg(feature = "simulated-attestation")]
fn eventually(want: &Value, mut read: impl FnMut() -> Value) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let got = read();
        if &got == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still {got}, not {want}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[cfg(feature = "simulated-attestation")]
#[test]
fn on_postgres_replicas_share_state_atomically_and_see_each_others_changes() {
    use crate::cluster::{postgres, replica};
    let Some((pg, db)) = postgres("state") else {
        return;
    };
    let r1 = replica(&db, "r1");
    let r2 = replica(&db, "r2");
    let (c1, owner, s1) = session(&r1);
    let c2 = r2.client();
    deploy_as(&c1, &owner, "counter", "kv-counter", None);
    deploy_as(&c1, &owner, "keeper", "state-agent", None);

    // Atomic across replicas: 200 increments, 16 in flight, half on each replica.
    assert_exactly_one_to(count_concurrently(&[&c1, &c2], "counter", 200, 16), 200);
    let values = Arc::new(Mutex::new(Vec::new()));
    std::thread::scope(|s| {
        for t in 0..8 {
            let (client, values) = (if t % 2 == 0 { &c1 } else { &c2 }, values.clone());
            s.spawn(move || {
                for _ in 0..5 {
                    let r = handle(client, "keeper", json!({"op": "cas_incr", "key": "n"}));
                    values
                        .lock()
                        .unwrap()
                        .push(r["value"].as_u64().expect("a value"));
                }
            });
        }
    });
    assert_exactly_one_to(Arc::try_unwrap(values).unwrap().into_inner().unwrap(), 40);

    // r1 reads (and caches) a value; r2 changes it; r1 sees the change.
    let get = |c: &Client| handle(c, "keeper", json!({"op": "get", "key": "k"}))["value"].clone();
    handle(
        &c1,
        "keeper",
        json!({"op": "set", "key": "k", "value": "v1"}),
    );
    assert_eq!(get(&c1), "v1");
    assert_eq!(get(&c1), "v1");
    handle(
        &c2,
        "keeper",
        json!({"op": "set", "key": "k", "value": "v2"}),
    );
    assert_eq!(get(&c2), "v2", "read your writes");
    eventually(&json!("v2"), || get(&c1));

    // Configuration set through r1 is read on r2; rotated through r2, r1 reads the new one.
    let secret = format!(
        "pg-secret-{}",
        hex::encode(hypervisor_protocol::sha256(db.as_bytes()))
    );
    set_config(
        &c1,
        &owner,
        &s1,
        "keeper",
        &[&format!("API_KEY={secret}-1")],
    );
    let config = |c: &Client| {
        handle(c, "keeper", json!({"op": "config", "name": "API_KEY"}))["value"].clone()
    };
    assert_eq!(config(&c1), json!(format!("{secret}-1")));
    eventually(&json!(format!("{secret}-1")), || config(&c2));
    let s2 = c2.create_session(&owner).unwrap();
    set_config(
        &c2,
        &owner,
        &s2,
        "keeper",
        &[&format!("API_KEY={secret}-2")],
    );
    eventually(&json!(format!("{secret}-2")), || config(&c1));

    // Wiped through r2: r1 no longer reads what it cached.
    assert_eq!(
        c2.wipe_agent_state(&owner, "keeper").unwrap().keys_removed,
        2
    );
    eventually(&Value::Null, || get(&c1));

    // Nothing of the secret in the clear in PostgreSQL's files, nor in either log.
    let found = files_containing(pg.dir(), secret.as_bytes());
    assert!(found.is_empty(), "in the clear in {found:?}");
    assert!(
        !files_containing(pg.dir(), b"keeper").is_empty(),
        "the search is not vacuous"
    );
    for r in [&r1, &r2] {
        assert!(!r.log().contains(&secret));
    }
}

/// A batch read is bounded: at most 1,000 keys, and 16 MiB of values in all (before, an agent
/// asking for one 1-MiB value 100,000 times made the host copy 100 GiB before its memory
/// limit saw any of it). Past either bound the guest gets the store's error; within, its
/// answer.
#[test]
fn batch_reads_are_bounded_in_keys_and_bytes() {
    let server = TestServer::start();
    let (client, owner, _s) = session(&server);
    deploy_as(&client, &owner, "batcher", "state-agent", None);
    let big = "x".repeat(1_000_000);
    let r = handle(
        &client,
        "batcher",
        json!({"op": "set", "key": "big", "value": big}),
    );
    assert_eq!(r["ok"], true, "{r}");
    let r = handle(
        &client,
        "batcher",
        json!({"op": "get_many", "keys": ["big", "none"]}),
    );
    assert_eq!(r["values"]["big"].as_str().map(str::len), Some(1_000_000));
    let too_many: Vec<String> = (0..1001).map(|i| format!("k{i}")).collect();
    let r = handle(
        &client,
        "batcher",
        json!({"op": "get_many", "keys": too_many}),
    );
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("at most 1000 keys"),
        "{r}"
    );
    let r = handle(
        &client,
        "batcher",
        json!({"op": "get_many", "keys": vec!["big"; 17]}),
    );
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("16777216 bytes"),
        "{r}"
    );
}
