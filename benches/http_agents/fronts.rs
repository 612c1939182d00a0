//! The fronts section (`fronts`): the same handler agent (`text-stats`) invoked natively
//! (`POST /agents/stats/invoke`), as an MCP tool (`POST /mcp`, `tools/call`, in the
//! `initialize`-based shape and in the stateless 2026-07-28 shape with its headers and
//! `_meta`) and as an A2A agent (`POST /agents/stats/a2a`, a blocking `SendMessage` in 1.0 and
//! `message/send` in 0.3: a durable task stored once with its outcome, the run, the task's answer), against
//! the release binary over loopback.
//!
//! 1. Latency: one request at a time on one keep-alive connection, the five interleaved
//!    request by request. What a front adds is the difference of the medians (target:
//!    ≤ 100 µs at p50).
//! 2. Throughput: for each front in turn, `FRONT_CLIENTS` (8) client threads, each on its own
//!    keep-alive connection, sending for `FRONT_SECONDS` (5) s: requests per second, and the
//!    server's CPU time (user + system, all threads) per request, which moves far less from
//!    run to run than the rate does on a 2-core machine shared with the clients.
//!
//! With `BASELINE_BIN` (an older `hypervisor`), both binaries serve, each on its own data
//! directory, and the throughput runs alternate between them, front by front, for
//! `FRONT_ROUNDS` (3) rounds; the best round of each is reported, with the ratio to that
//! binary's own native route, and the mean over the rounds of the CPU time per request. The latency part measures the candidate only.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hypervisor_client::Client;
use hypervisor_protocol::ClientSecret;
use serde_json::json;

use crate::common::http::{agent, deploy, post_json};
use crate::common::process::{Server, hypervisor_bin, start_hypervisor_bin};
use crate::common::stats::{report, us};
use crate::common::{self, wasm};
use crate::{EVENT_TEXT, HTTP_TIMEOUT, write_config};

/// One request shape: a name, the URL, the body, extra headers.
type Case = (&'static str, String, String, Vec<(&'static str, String)>);

/// Sends `case` once and checks the answer is the handler's result.
fn send(http: &ureq::Agent, (_, url, body, headers): &Case) -> Duration {
    let t = Instant::now();
    let mut resp = post_json(http, url, headers)
        .send(body.as_bytes())
        .expect("request");
    let text = resp.body_mut().read_to_string().expect("body");
    let elapsed = t.elapsed();
    assert_eq!(resp.status(), 200, "{text}");
    assert!(text.contains("\"words\""), "{text}");
    elapsed
}

/// Starts `bin` on a data directory in `tmp` named `name`, with the `stats` agent deployed.
/// Every A2A request of the benchmark stores an anonymous task: the quota of anonymous tasks
/// per agent (10,000 by default) is raised so that it does not end the runs.
fn serve(bin: &str, tmp: &std::path::Path, name: &str) -> Server {
    let config = write_config(&tmp.join(name));
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[a2a]\nmax_anonymous_tasks_per_agent = 1000000000\n");
    std::fs::write(&config, text).unwrap();
    let server = start_hypervisor_bin(bin, &config);
    deploy(
        &Client::new(&server.base),
        &ClientSecret::generate().unwrap(),
        "stats",
        &wasm::read("text-stats"),
    );
    server
}

/// The five request shapes against `server`.
fn cases(server: &Server) -> Vec<Case> {
    let arguments = json!({ "text": EVENT_TEXT });
    let mcp_url = format!("{}/mcp", server.base);
    let a2a_url = format!("{}/agents/stats/a2a", server.base);
    vec![
        (
            "handler invoke, native POST /agents/stats/invoke",
            format!("{}/agents/stats/invoke", server.base),
            json!({ "event": arguments }).to_string(),
            Vec::new(),
        ),
        (
            "handler as MCP tool, tools/call (2025-11-25)",
            mcp_url.clone(),
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                   "params": {"name": "stats", "arguments": arguments}})
            .to_string(),
            vec![("mcp-protocol-version", "2025-11-25".to_owned())],
        ),
        (
            "handler as MCP tool, tools/call (2026-07-28)",
            mcp_url,
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                   "params": {"name": "stats", "arguments": arguments, "_meta": {
                       "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                       "io.modelcontextprotocol/clientCapabilities": {}}}})
            .to_string(),
            vec![
                ("mcp-protocol-version", "2026-07-28".to_owned()),
                ("mcp-method", "tools/call".to_owned()),
                ("mcp-name", "stats".to_owned()),
            ],
        ),
        (
            "handler as A2A agent, SendMessage (1.0)",
            a2a_url.clone(),
            json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": {
                "messageId": "m", "role": "ROLE_USER", "parts": [{"data": arguments}]}}})
            .to_string(),
            vec![("a2a-version", "1.0".to_owned())],
        ),
        (
            "handler as A2A agent, message/send (0.3)",
            a2a_url,
            json!({"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": {
                "kind": "message", "messageId": "m", "role": "user",
                "parts": [{"kind": "data", "data": arguments}]}}})
            .to_string(),
            Vec::new(),
        ),
    ]
}

/// Requests per second of `case` with `clients` keep-alive clients for `seconds`, and the
/// server's CPU time per request (µs).
fn throughput(case: &Case, server: &Server, clients: u64, seconds: u64) -> (f64, f64) {
    let cpu = server.cpu_time();
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (stop, done, case) = (stop.clone(), done.clone(), case.clone());
            std::thread::spawn(move || {
                let http = agent(HTTP_TIMEOUT);
                while !stop.load(Ordering::Relaxed) {
                    send(&http, &case);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("client thread");
    }
    let cpu = server.cpu_time().saturating_sub(cpu);
    let done = done.load(Ordering::Relaxed) as f64;
    (
        done / started.elapsed().as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / done.max(1.0),
    )
}

/// The fronts section (see the module's doc).
pub fn run() {
    let iterations = common::iterations(2000);
    let tmp = tempfile::tempdir().unwrap();
    let server = serve(&hypervisor_bin(), tmp.path(), "data");
    let cases = cases(&server);
    let baseline = std::env::var("BASELINE_BIN").ok().map(|bin| {
        let server = serve(&bin, tmp.path(), "baseline");
        let cases = self::cases(&server);
        (bin, server, cases)
    });

    let http = agent(HTTP_TIMEOUT);
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
    for i in 0..iterations + 100 {
        for (case, out) in cases.iter().zip(samples.iter_mut()) {
            let elapsed = send(&http, case);
            if i >= 100 {
                out.push(elapsed);
            }
        }
    }
    println!();
    let p50: Vec<Duration> = cases
        .iter()
        .zip(samples)
        .map(|(case, s)| report(case.0, s))
        .collect();
    for (case, p) in cases.iter().zip(&p50).skip(1) {
        println!(
            "{:<58} p50 over native: +{:.1} µs (target ≤ 100 µs)",
            case.0,
            us(*p) - us(p50[0])
        );
    }

    let clients = common::env_or("FRONT_CLIENTS", 8u64);
    let seconds = common::env_or("FRONT_SECONDS", 5u64);
    let Some((baseline_bin, baseline_server, baseline_cases)) = baseline else {
        println!("\nthroughput, {clients} keep-alive clients, {seconds} s each:");
        let mut native_rps = 0.0;
        for (i, case) in cases.iter().enumerate() {
            let (rps, cpu) = throughput(case, &server, clients, seconds);
            if i == 0 {
                native_rps = rps;
            }
            println!(
                "{:<58} {:>8.0} req/s ({:.2}× native), server CPU {cpu:.0} µs/request",
                case.0,
                rps,
                rps / native_rps
            );
        }
        server.stop();
        return;
    };
    let rounds = common::env_or("FRONT_ROUNDS", 3u64);
    println!(
        "\nthroughput, {clients} keep-alive clients, {seconds} s each, best of {rounds} rounds, \
         baseline {baseline_bin} and this build alternating:"
    );
    // best[binary][case], and the summed CPU time per request.
    let mut best = [vec![0.0f64; cases.len()], vec![0.0f64; cases.len()]];
    let mut cpu = [vec![0.0f64; cases.len()], vec![0.0f64; cases.len()]];
    for _ in 0..rounds {
        for (i, (ours, theirs)) in cases.iter().zip(&baseline_cases).enumerate() {
            let before = throughput(theirs, &baseline_server, clients, seconds);
            let after = throughput(ours, &server, clients, seconds);
            best[0][i] = best[0][i].max(before.0);
            best[1][i] = best[1][i].max(after.0);
            cpu[0][i] += before.1;
            cpu[1][i] += after.1;
        }
    }
    println!("{:<58} {:>36} {:>36}", "", "baseline", "this build");
    let rounds = rounds.max(1) as f64;
    for (i, case) in cases.iter().enumerate() {
        println!(
            "{:<58} {:>8.0} req/s ({:.2}×) {:>5.0} µs CPU {:>8.0} req/s ({:.2}×) {:>5.0} µs CPU",
            case.0,
            best[0][i],
            best[0][i] / best[0][0],
            cpu[0][i] / rounds,
            best[1][i],
            best[1][i] / best[1][0],
            cpu[1][i] / rounds,
        );
    }
    baseline_server.stop();
    server.stop();
}
