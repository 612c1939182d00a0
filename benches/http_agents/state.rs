//! Agents' state and secrets (`state`), the release binary over loopback, SQLite and
//! PostgreSQL side by side (a throwaway PostgreSQL from the installed binaries, `fsync = off`
//! as in the tests: the host's cost, not the disk's).
//!
//! 1. **Key-value from inside a guest**: `guests/state-agent`'s `bench` op times `BENCH_KV`
//!    (2000) `wasi:keyvalue` calls one by one with the guest's monotonic clock: `get` of one
//!    hot key (the read cache; target ≤ 20 µs p50 on one host), `set` (a durable write each)
//!    and `increment` (atomic, read under the agent's lock): p50 and p99.
//! 2. **A secret's cost**: invocations of a handler that reads one `wasi:config` value against
//!    the same handler doing nothing, interleaved on one connection: p50 and p99 of each, and
//!    the difference of the p50s.

use std::time::Duration;

use hypervisor::storage::postgres::scratch::ScratchPostgres;
use hypervisor_client::Client;
use hypervisor_client::state::change_of;
use hypervisor_protocol::ClientSecret;
use serde_json::{Value, json};

use crate::HTTP_TIMEOUT;
use crate::backends::config;
use crate::common::http::{agent, deploy, post_json};
use crate::common::process::start_hypervisor;
use crate::common::stats::{percentile, report, us};
use crate::common::{self, wasm};

fn invoke(http: &ureq::Agent, url: &str, event: &Value) -> (Duration, Value) {
    let body = json!({ "event": event }).to_string();
    let t = std::time::Instant::now();
    let mut resp = post_json(http, url, &[])
        .send(body.as_bytes())
        .expect("request");
    let text = resp.body_mut().read_to_string().expect("body");
    let elapsed = t.elapsed();
    assert_eq!(resp.status(), 200, "{text}");
    let answer: Value = serde_json::from_str(&text).expect("JSON");
    (elapsed, answer["result"].clone())
}

/// The state section (see the module's doc).
pub fn run() {
    let pg = match ScratchPostgres::start() {
        Ok(pg) => Some(pg),
        Err(why) => {
            println!("state: PostgreSQL skipped ({why})");
            None
        }
    };
    let url = pg.as_ref().map(|pg| {
        pg.create_database("state").expect("createdb");
        pg.url("state")
    });
    let tmp = tempfile::tempdir().unwrap();
    let mut servers = vec![(
        "SQLite",
        start_hypervisor(&config(&tmp.path().join("sqlite"), None)),
    )];
    if let Some(url) = &url {
        servers.push((
            "PostgreSQL",
            start_hypervisor(&config(&tmp.path().join("pg"), Some(url))),
        ));
    }
    let component = wasm::read("state-agent");
    let http = agent(HTTP_TIMEOUT);
    let n = common::env_or("BENCH_KV", 2000u64);
    println!();
    for (name, server) in &servers {
        let client = Client::new(&server.base);
        let owner = ClientSecret::generate().unwrap();
        deploy(&client, &owner, "keeper", &component);
        let session = client.create_session(&owner).unwrap();
        client
            .set_agent_config(
                &owner,
                &session,
                "keeper",
                &change_of(&["API_KEY=sk-bench-0123456789".into()], &[]).unwrap(),
            )
            .expect("config");
        let url = format!("{}/agents/keeper/invoke", server.base);
        for kind in ["get", "set", "incr"] {
            // A first run warms the cache and the code; the second is measured.
            let event = json!({"op": "bench", "kind": kind, "n": n});
            invoke(&http, &url, &event);
            let (_, r) = invoke(&http, &url, &event);
            println!(
                "{:<58} p50={:>8.1} µs  p99={:>8.1} µs  ({} calls in one invocation)",
                format!("wasi:keyvalue {kind} inside a guest, {name}"),
                r["p50_ns"].as_f64().unwrap_or_default() / 1000.0,
                r["p99_ns"].as_f64().unwrap_or_default() / 1000.0,
                r["n"]
            );
        }
        let iterations = common::iterations(2000);
        let noop = json!({"op": "noop"});
        let secret = json!({"op": "config", "name": "API_KEY"});
        let (mut bare, mut reading) = (Vec::new(), Vec::new());
        for i in 0..iterations + 100 {
            let a = invoke(&http, &url, &noop).0;
            let (b, r) = invoke(&http, &url, &secret);
            assert_eq!(r["value"], "sk-bench-0123456789");
            if i >= 100 {
                bare.push(a);
                reading.push(b);
            }
        }
        bare.sort_unstable();
        reading.sort_unstable();
        let (p_bare, p_reading) = (percentile(&bare, 0.5), percentile(&reading, 0.5));
        report(&format!("handler invoke, no secret, {name}"), bare);
        report(
            &format!("handler invoke reading one secret, {name}"),
            reading,
        );
        println!(
            "{:<58} {:>+8.1} µs at p50",
            format!("reading one secret costs, {name}"),
            us(p_reading) - us(p_bare)
        );
    }
    for (_, server) in servers {
        server.stop();
    }
}
