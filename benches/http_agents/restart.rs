//! The restart section: many distinct agents deployed and invoked, the server stopped, then
//! restarted on the same data directory and timed until every agent answers again.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use hypervisor_client::Client;
use hypervisor_protocol::ClientSecret;

use crate::common::http::{self, deploy, get_text};
use crate::common::process::start_hypervisor;
use crate::common::stats::{median, ms};
use crate::common::{env_or, wasm};
use crate::{EVENT_TEXT, HTTP_TIMEOUT, write_config};

/// The restart section (see the benchmark's header).
pub fn run() {
    let count: usize = env_or("BENCH_AGENTS", 100);
    let restarts: usize = env_or("BENCH_RESTARTS", 3);
    let handler = wasm::read("text-stats");
    let http = wasm::read("http-hello");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let config = write_config(&data);
    let agents: Vec<AgentUnderTest> = (0..count)
        .map(|i| AgentUnderTest {
            name: format!("agent-{i:03}"),
            http: i % 2 == 1,
        })
        .collect();

    println!();
    let server = start_hypervisor(&config);
    let client = Client::new(&server.base);
    let owner = ClientSecret::generate().unwrap();
    let t = Instant::now();
    for a in &agents {
        let base = if a.http { &http } else { &handler };
        let component = wasm::with_custom_section(base, "hypervisor-bench", &a.name);
        deploy(&client, &owner, &a.name, &component);
    }
    let deployed = t.elapsed();
    let ua = http::agent(HTTP_TIMEOUT);
    for a in &agents {
        invoke_once(&client, &ua, a).unwrap();
    }
    let stopped = server.stop();
    println!(
        "restart: {count} agents deployed ({} handler text-stats, {} HTTP http-hello, distinct \
         hashes) in {:.1} s ({:.0} ms each, compiling included); graceful stop {:.0} ms",
        agents.iter().filter(|a| !a.http).count(),
        agents.iter().filter(|a| a.http).count(),
        deployed.as_secs_f64(),
        ms(deployed) / count as f64,
        ms(stopped)
    );
    println!(
        "{:<10} {:>14} {:>22} {:>22}",
        "restart", "listening ms", "first invocation ms", "all answered ms"
    );
    let mut seed = random_u64();
    let (mut firsts, mut alls) = (Vec::new(), Vec::new());
    for round in 1..=restarts {
        let mut order = agents.clone();
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        shuffle(&mut order, seed | 1);
        let t = Instant::now();
        let server = start_hypervisor(&config);
        let listening = t.elapsed();
        let client = Client::new(&server.base);
        let first = &order[0];
        loop {
            match invoke_once(&client, &ua, first) {
                Ok(()) => break,
                Err(_) if t.elapsed() < Duration::from_secs(60) => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => panic!("{} never answered: {e}", first.name),
            }
        }
        let first_at = t.elapsed();
        for a in &order[1..] {
            invoke_once(&client, &ua, a).unwrap_or_else(|e| panic!("{}: {e}", a.name));
        }
        let all_at = t.elapsed();
        println!(
            "{:<10} {:>14.0} {:>22} {:>22.0}",
            format!("#{round}"),
            ms(listening),
            format!(
                "{:.0} ({}{})",
                ms(first_at),
                first.name,
                if first.http { ", http" } else { ", handler" }
            ),
            ms(all_at)
        );
        firsts.push(first_at);
        alls.push(all_at);
        server.stop();
    }
    println!(
        "restart with {count} agents: first invocation {:.0} ms, all {count} answered {:.0} ms \
         (medians of {restarts}; target ≤ 2000 ms)",
        ms(median(firsts)),
        ms(median(alls))
    );
}

/// One of the deployed agents.
#[derive(Clone)]
struct AgentUnderTest {
    name: String,
    http: bool,
}

/// Invokes `a` once (a GET for an HTTP agent, an event for a handler): `Ok` if it answered well.
fn invoke_once(client: &Client, agent: &ureq::Agent, a: &AgentUnderTest) -> Result<(), String> {
    if a.http {
        let (status, body) = get_text(agent, &format!("{}/agents/{}/", client.base_url(), a.name))?;
        if status == 200 && body.starts_with("Hello") {
            Ok(())
        } else {
            Err(format!("{status} {body}"))
        }
    } else {
        let resp = client
            .invoke(&a.name, serde_json::json!({ "text": EVENT_TEXT }))
            .map_err(|e| e.to_string())?;
        if resp.ok {
            Ok(())
        } else {
            Err(format!("{resp:?}"))
        }
    }
}

/// A random `u64` from std's per-process hasher keys (no extra dependency).
fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(u64::from(std::process::id()));
    h.finish()
}

/// Fisher-Yates with an xorshift generator.
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let j = usize::try_from(seed % (i as u64 + 1)).unwrap_or(0);
        items.swap(i, j);
    }
}
