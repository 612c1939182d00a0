//! HTTP agents against `wasmtime serve`, a handler agent's time per invocation, and a restart
//! with many deployed agents: `cargo bench -p hypervisor --bench http_agents` (or
//! `benches/http-agents.sh`, which builds everything this needs first).
//!
//! 1. **Throughput** (`throughput`): the real release binary (`hypervisor serve`, policy and
//!    Python off) serves `http-hello.wasm` as the HTTP agent `hello` at `/agents/hello/`;
//!    `wasmtime serve -S cli -O pooling-allocator` (wasmtime-cli 48.0.8) serves the same file
//!    at `/`. Both make a fresh instance per request (`wasmtime serve`'s default for a WASIp2
//!    component, `--max-instance-reuse-count 1`, is passed explicitly). Both must answer 200
//!    with the same body first. Then `wrk` (keep-alive) drives them with the same parameters,
//!    interleaved (ours, theirs, ours, theirs, ...) after a warm-up of each, and each server's
//!    CPU time over each run is read from `/proc/<pid>/stat` (CPU µs per request). Then the
//!    same at one connection (latency without queueing).
//! 2. **Handler** (`handler`): a deployed `text-stats` handler agent, per invocation,
//!    (a) in-process through `Pipeline::invoke_agent` (registry lookup, fresh instance, log,
//!    durable record: what the server does per invocation, without HTTP), and (b) over
//!    loopback HTTP against the release binary with the client library (`Client::invoke`),
//!    one request at a time.
//! 3. **Restart** (`restart`): the release binary on a fresh data directory; `BENCH_AGENTS`
//!    (100) agents deployed, alternately `text-stats` handler agents and `http-hello` HTTP
//!    agents, each a distinct component (a custom section naming it is appended, so there are
//!    100 different code hashes, 100 compilations and 100 sealed cache entries); each invoked
//!    once; SIGTERM; then `BENCH_RESTARTS` (3) times: start on the same data directory and time,
//!    from spawning the process, the listening line, the first successful invocation of a
//!    random agent, and the moment every agent (in random order, one at a time) has answered.
//!
//! Environment:
//! - `HYPERVISOR_BIN`: the server binary (default: the release `hypervisor` cargo builds for
//!   this benchmark), e.g. a candidate build to compare;
//! - `WASMTIME` (default `target/wasmtime-cli/bin/wasmtime`; without it the comparison is
//!   skipped), `WRK` (default `wrk`), `HTTP_BENCH_COMPONENT` (default
//!   `target/wasm/http-hello.wasm`);
//! - `HTTP_BENCH_THREADS` (2), `HTTP_BENCH_CONNECTIONS` (32), `HTTP_BENCH_SECONDS` (10),
//!   `HTTP_BENCH_ROUNDS` (3), `HTTP_BENCH_WARMUP_SECONDS` (3);
//! - `BENCH_ITERATIONS` (2000): handler samples; `BENCH_AGENTS` (100), `BENCH_RESTARTS` (3);
//! - `BENCH_ONLY`: a comma-separated subset of `throughput,handler,restart`;
//! - `HTTP_BENCH_SKIP_SINGLE`: no one-connection runs; `HTTP_BENCH_HOLD_SECONDS`: keep both
//!   servers up this long after the runs (`HTTP_BENCH_ROUNDS=0` for none), printing their URLs
//!   and pids, for profiling them under a load of your own.
//!
//! Needs `scripts/build-wasm.sh` (for `target/wasm/`).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use base64::Engine as _;
use common::process::{Server, cpu_time_of, hypervisor_bin, start_hypervisor, wait_for_line};
use common::{report, target};
use hypervisor::config::Config;
use hypervisor::pipeline::agents::invoke::Invoked;
use hypervisor::server::Host;
use hypervisor_client::Client;
use hypervisor_client::agents::{Deployment, owner_signature};
use hypervisor_protocol::agents::{DeployRequest, InvokeRequest, OwnerAction};
use hypervisor_protocol::{ClientSecret, sha256};

/// The handler agent's event.
const EVENT_TEXT: &str = "The quick brown fox jumps over the lazy dog. Is it quick? It is!";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn wanted(section: &str) -> bool {
    std::env::var("BENCH_ONLY").map_or(true, |only| only.split(',').any(|s| s.trim() == section))
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

/// `component` with a custom section named `hypervisor-bench` carrying `tag` appended: the same
/// code, a different hash.
fn distinct_component(component: &[u8], tag: &str) -> Vec<u8> {
    fn leb(mut v: usize, out: &mut Vec<u8>) {
        loop {
            let byte = u8::try_from(v & 0x7f).unwrap_or(0);
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let name = b"hypervisor-bench";
    let mut payload = Vec::new();
    leb(name.len(), &mut payload);
    payload.extend_from_slice(name);
    payload.extend_from_slice(tag.as_bytes());
    let mut out = component.to_vec();
    out.push(0); // custom section
    leb(payload.len(), &mut out);
    out.extend_from_slice(&payload);
    out
}

// ---------------------------------------------------------------------------------------------
// Server processes.

/// Writes the benchmark configuration for `data_dir`: loopback, any port, policy and Python
/// off (start-up must not compile CPython), everything else at its defaults.
fn write_config(data_dir: &Path) -> PathBuf {
    let path = data_dir.with_extension("toml");
    std::fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n\n[policy]\nenabled = false\n\n\
             [python]\nenabled = false\n",
            data_dir.display().to_string()
        ),
    )
    .unwrap();
    path
}

/// Starts `wasmtime serve -S cli -O pooling-allocator` on a free loopback port.
fn start_wasmtime(wasmtime: &Path, component: &Path, log: &Path) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let t = Instant::now();
    let mut child = Command::new(wasmtime)
        .args(["serve", "-S", "cli", "-O", "pooling-allocator"])
        .args(["--max-instance-reuse-count", "1"])
        .arg("--addr")
        .arg(format!("127.0.0.1:{port}"))
        .arg(component)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(log).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", wasmtime.display()));
    let addr = wait_for_line(
        child.stderr.take().unwrap(),
        "Serving HTTP on http://",
        "wasmtime serve",
    );
    Server {
        child,
        base: format!("http://{addr}"),
        ready_after: t.elapsed(),
    }
}

fn http_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// `GET url`: status and body.
fn get(agent: &ureq::Agent, url: &str) -> Result<(u16, String), String> {
    let mut resp = agent.get(url).call().map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    Ok((status, body))
}

fn deploy(client: &Client, owner: &ClientSecret, name: &str, component: &[u8]) {
    client
        .deploy_agent(
            owner,
            &Deployment {
                name,
                description: "benchmark agent",
                component,
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("deploying {name}: {e}"));
}

// ---------------------------------------------------------------------------------------------
// wrk.

/// One wrk run.
#[derive(Debug, Clone, Copy)]
struct Run {
    rps: f64,
    p50: Duration,
    p99: Duration,
    requests: u64,
    errors: u64,
    /// Server CPU time per request.
    cpu_per_request: Duration,
}

fn parse_duration(s: &str) -> Duration {
    let (num, unit) = s
        .find(|c: char| c.is_ascii_alphabetic())
        .map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let v: f64 = num.parse().unwrap_or(f64::NAN);
    Duration::from_secs_f64(match unit {
        "us" => v / 1e6,
        "ms" => v / 1e3,
        "m" => v * 60.0,
        _ => v,
    })
}

fn wrk(wrk: &str, url: &str, threads: u32, connections: u32, seconds: u32, server: &Server) -> Run {
    let cpu = server.cpu_time();
    let out = Command::new(wrk)
        .arg(format!("-t{threads}"))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{seconds}s"))
        .arg("--latency")
        .arg(url)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {wrk}: {e} (install it: apt-get install wrk)"));
    let cpu = server.cpu_time() - cpu;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "wrk failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut run = Run {
        rps: 0.0,
        p50: Duration::ZERO,
        p99: Duration::ZERO,
        requests: 0,
        errors: 0,
        cpu_per_request: Duration::ZERO,
    };
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", v, ..] => run.rps = v.parse().unwrap_or(0.0),
            ["50%", v, ..] => run.p50 = parse_duration(v),
            ["99%", v, ..] => run.p99 = parse_duration(v),
            [n, "requests", "in", ..] => run.requests = n.parse().unwrap_or(0),
            ["Non-2xx", "or", "3xx", "responses:", n, ..] => run.errors += n.parse().unwrap_or(0),
            ["Socket", "errors:", rest @ ..] => {
                run.errors += rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    assert!(run.requests > 0, "wrk output not understood:\n{text}");
    run.cpu_per_request = cpu / u32::try_from(run.requests).unwrap_or(u32::MAX);
    run
}

fn median<T: Copy + PartialOrd>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

struct Side {
    name: &'static str,
    url: String,
    runs: Vec<Run>,
}

fn print_runs(title: &str, sides: &[Side]) {
    println!("\n{title}");
    println!(
        "{:<34} {:>11} {:>11} {:>11} {:>12} {:>8}  runs (req/s)",
        "server", "req/s (med)", "p50 ms", "p99 ms", "CPU µs/req", "errors"
    );
    for s in sides {
        let runs: Vec<String> = s.runs.iter().map(|r| format!("{:.0}", r.rps)).collect();
        println!(
            "{:<34} {:>11.0} {:>11.3} {:>11.3} {:>12.1} {:>8}  {}",
            s.name,
            median(s.runs.iter().map(|r| r.rps).collect()),
            ms(median(s.runs.iter().map(|r| r.p50).collect())),
            ms(median(s.runs.iter().map(|r| r.p99).collect())),
            us(median(s.runs.iter().map(|r| r.cpu_per_request).collect())),
            s.runs.iter().map(|r| r.errors).sum::<u64>(),
            runs.join(" "),
        );
    }
    if let [ours, theirs] = sides {
        let o = median(ours.runs.iter().map(|r| r.rps).collect());
        let t = median(theirs.runs.iter().map(|r| r.rps).collect());
        let oc = median(ours.runs.iter().map(|r| r.cpu_per_request).collect());
        let tc = median(theirs.runs.iter().map(|r| r.cpu_per_request).collect());
        let per_round: Vec<String> = ours
            .runs
            .iter()
            .zip(&theirs.runs)
            .map(|(a, b)| format!("{:.2}", a.rps / b.rps))
            .collect();
        println!(
            "ratio hypervisor / wasmtime serve: req/s {:.2}x (per round: {}); CPU per request {:.2}x",
            o / t,
            per_round.join(" "),
            us(oc) / us(tc),
        );
    }
}

fn throughput() {
    let component = std::env::var_os("HTTP_BENCH_COMPONENT")
        .map_or_else(|| target().join("wasm/http-hello.wasm"), PathBuf::from);
    let bytes = std::fs::read(&component)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/build-wasm.sh)", component.display()));
    let wasmtime = std::env::var_os("WASMTIME")
        .map_or_else(|| target().join("wasmtime-cli/bin/wasmtime"), PathBuf::from);
    let wrk_bin = std::env::var("WRK").unwrap_or_else(|_| "wrk".into());
    let threads: u32 = env_or("HTTP_BENCH_THREADS", 2);
    let connections: u32 = env_or("HTTP_BENCH_CONNECTIONS", 32);
    let seconds: u32 = env_or("HTTP_BENCH_SECONDS", 10);
    let rounds: usize = env_or("HTTP_BENCH_ROUNDS", 3);
    let warmup: u32 = env_or("HTTP_BENCH_WARMUP_SECONDS", 3);

    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let ours = start_hypervisor(&write_config(&data));
    let client = Client::new(&ours.base);
    let owner = ClientSecret::generate().unwrap();
    deploy(&client, &owner, "hello", &bytes);
    let theirs = if wasmtime.is_file() {
        let version = Command::new(&wasmtime).arg("--version").output().unwrap();
        println!("{}", String::from_utf8_lossy(&version.stdout).trim());
        Some(start_wasmtime(
            &wasmtime,
            &component,
            &tmp.path().join("wasmtime.log"),
        ))
    } else {
        println!(
            "{} is missing: no comparison (benches/http-agents.sh builds it)",
            wasmtime.display()
        );
        None
    };
    println!(
        "component {} ({} bytes, sha256 {})",
        component.display(),
        bytes.len(),
        hex::encode(sha256(&bytes))
    );
    println!(
        "hypervisor {} (pid {}), ready {:.0} ms after spawn",
        hypervisor_bin(),
        ours.pid(),
        ms(ours.ready_after)
    );
    if let Some(t) = &theirs {
        println!(
            "wasmtime serve (pid {}), ready {:.0} ms after spawn",
            t.pid(),
            ms(t.ready_after)
        );
    }

    let mut servers = vec![(
        "hypervisor /agents/hello/",
        format!("{}/agents/hello/", ours.base),
        &ours,
    )];
    if let Some(t) = &theirs {
        servers.push((
            "wasmtime serve -S cli -O pooling",
            format!("{}/", t.base),
            t,
        ));
    }
    // Both must answer the same thing.
    let agent = http_agent();
    let answers: Vec<(u16, String)> = servers
        .iter()
        .map(|(_, url, _)| get(&agent, url).unwrap())
        .collect();
    for ((name, url, _), (status, body)) in servers.iter().zip(&answers) {
        println!("{name:<34} GET {url} -> {status} {body:?}");
        assert_eq!(*status, 200, "{name} did not answer 200");
    }
    assert!(
        answers.iter().all(|a| a.1 == answers[0].1),
        "the servers answered different bodies"
    );

    for (c, t, secs, title) in (rounds > 0)
        .then_some([
            (connections, threads, seconds, "throughput"),
            (1, 1, seconds / 2, "one connection"),
        ])
        .into_iter()
        .flatten()
    {
        if c == 1 && std::env::var("HTTP_BENCH_SKIP_SINGLE").is_ok() {
            continue;
        }
        for (_, url, server) in &servers {
            wrk(&wrk_bin, url, t, c, warmup, server);
        }
        let mut sides: Vec<Side> = servers
            .iter()
            .map(|(name, url, _)| Side {
                name,
                url: url.clone(),
                runs: Vec::new(),
            })
            .collect();
        for _ in 0..rounds {
            for (side, (_, _, server)) in sides.iter_mut().zip(&servers) {
                let run = wrk(&wrk_bin, &side.url, t, c, secs.max(1), server);
                side.runs.push(run);
            }
        }
        print_runs(
            &format!(
                "{title}: wrk -t{t} -c{c} -d{}s --latency (keep-alive), {rounds} rounds interleaved, medians",
                secs.max(1)
            ),
            &sides,
        );
    }
    // For profiling: both servers stay up, with the agent deployed, for this long.
    let hold: u64 = env_or("HTTP_BENCH_HOLD_SECONDS", 0);
    if hold > 0 {
        for (name, url, server) in &servers {
            println!("holding {name}: {url} (pid {})", server.pid());
        }
        std::thread::sleep(Duration::from_secs(hold));
    }
    drop(theirs);
    ours.stop();
}

// ---------------------------------------------------------------------------------------------
// Handler agent.

fn handler() {
    let iterations = common::iterations(2000);
    let component = std::fs::read(target().join("wasm/text-stats.wasm"))
        .expect("target/wasm/text-stats.wasm (run scripts/build-wasm.sh)");
    let event = serde_json::json!({ "text": EVENT_TEXT });
    println!();

    // (a) In-process, through the pipeline.
    let rt = common::runtime();
    let tmp = tempfile::tempdir().unwrap();
    let mut c = Config {
        data_dir: tmp.path().to_owned(),
        ..Config::default()
    };
    c.policy.enabled = false;
    c.python.enabled = false;
    let host = rt.block_on(Host::build(c)).unwrap();
    let pipeline = host.pipeline().clone();
    let owner = ClientSecret::generate().unwrap();
    let (signature, signed_at) = owner_signature(
        &owner,
        OwnerAction::Deploy,
        "stats",
        &hex::encode(sha256(&component)),
    )
    .unwrap();
    rt.block_on(pipeline.deploy_agent(DeployRequest {
        name: "stats".into(),
        description: "benchmark agent".into(),
        tags: Vec::new(),
        public_key: owner.public_key().to_hex(),
        component: Some(base64::engine::general_purpose::STANDARD.encode(&component)),
        encrypted_component: None,
        session_id: None,
        public: None,
        limits: None,
        price: None,
        ttl_seconds: None,
        signature: Some(signature),
        signed_at: Some(signed_at),
    }))
    .unwrap();
    let req = InvokeRequest {
        event: Some(event.clone()),
        ..InvokeRequest::default()
    };
    let (samples, engine) = rt.block_on(async {
        let mut samples = Vec::with_capacity(iterations);
        let mut engine = Vec::with_capacity(iterations);
        for i in 0..iterations + 100 {
            let r = req.clone();
            let t = Instant::now();
            let out = pipeline.invoke_agent("stats", r, None).await.unwrap();
            let elapsed = t.elapsed();
            let Invoked::Clear { response: resp, .. } = out else {
                panic!("not a clear answer")
            };
            assert!(resp.ok, "{resp:?}");
            if i >= 100 {
                samples.push(elapsed);
                engine.push(Duration::from_micros(resp.duration_us));
            }
        }
        (samples, engine)
    });
    let p50 = report("handler invoke, in-process Pipeline::invoke_agent", samples);
    report(
        "  of which instantiate + run (engine's duration_us)",
        engine,
    );
    storage_costs(&rt, tmp.path(), "stats", iterations);
    drop(host);
    drop(rt);

    // (b) Over loopback HTTP against the release binary, one request at a time.
    let data = tmp.path().join("http-data");
    let server = start_hypervisor(&write_config(&data));
    let client = Client::new(&server.base);
    deploy(&client, &owner, "stats", &component);
    let mut samples = Vec::with_capacity(iterations);
    for i in 0..iterations + 100 {
        let t = Instant::now();
        let resp = client.invoke("stats", event.clone()).unwrap();
        let elapsed = t.elapsed();
        assert!(resp.ok);
        if i >= 100 {
            samples.push(elapsed);
        }
    }
    let http_p50 = report(
        "handler invoke, loopback HTTP (client library, release)",
        samples,
    );
    server.stop();
    println!(
        "handler p50: {:.0} µs in-process (target ≤ 1000 µs), {:.0} µs over loopback HTTP",
        us(p50),
        us(http_p50)
    );
}

/// What the per-invocation writes cost, on the data directory of the in-process host (same
/// SQLite file and settings, own connections): the execution record (group-commit writer,
/// `synchronous = NORMAL`), one at a time and 32 at once, and the agent-log append that a
/// clear invocation writing to stderr does (`synchronous = FULL`, on the shared connection).
fn storage_costs(rt: &tokio::runtime::Runtime, data_dir: &Path, agent: &str, iterations: usize) {
    use hypervisor::storage::agents::LogEntry;
    use hypervisor::storage::db::Database;
    use hypervisor::storage::records::{ExecutionRecord, Records};
    use std::sync::Arc;

    let db = Arc::new(Database::open(data_dir).unwrap());
    let records = Arc::new(Records::open(db, data_dir).unwrap());
    let record = |agent: &str, i: usize| ExecutionRecord {
        id: uuid::Uuid::now_v7().to_string(),
        route: format!("/agents/{agent}/"),
        agent: Some(agent.to_string()),
        agent_version: Some(1),
        code_hash: "ab".repeat(32),
        caller_hash: String::new(),
        started_ms: 1_700_000_000_000 + i as u64,
        duration_us: 80,
        status: "exited".into(),
        exit_code: Some(0),
        commitment: None,
        payment: None,
    };
    let samples = rt.block_on(async {
        let mut out = Vec::with_capacity(iterations);
        for i in 0..iterations {
            let r = record(agent, i);
            let t = Instant::now();
            records.insert(r).await.unwrap();
            out.push(t.elapsed());
        }
        out
    });
    report("  execution record insert, one at a time", samples);
    let total = iterations * 10;
    let (cpu, t) = (cpu_time_of("self"), Instant::now());
    rt.block_on(async {
        let tasks: Vec<_> = (0..32)
            .map(|k| {
                let records = records.clone();
                let agent = agent.to_string();
                tokio::spawn(async move {
                    for i in (k..total).step_by(32) {
                        records.insert(record(&agent, i)).await.unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    let (cpu, wall) = (cpu_time_of("self") - cpu, t.elapsed());
    println!(
        "{:<58} {:.0} records/s, {:.1} µs CPU per record (whole process)",
        "  execution record insert, 32 at once",
        total as f64 / wall.as_secs_f64(),
        us(cpu) / total as f64
    );
    // Deferred writes, as HTTP agents and invocation logs make them: a record and a log
    // entry per request, committed in batches by the writer.
    let sealed = vec![0u8; 64];
    let (cpu, t) = (cpu_time_of("self"), Instant::now());
    for i in 0..total {
        records.insert_later(record(agent, i));
        records.append_log_later(
            agent,
            LogEntry {
                execution_id: format!("bench-{i}"),
                at_ms: 1_700_000_000_000,
                sealed: sealed.clone(),
            },
        );
    }
    rt.block_on(records.flush()).unwrap();
    let (cpu, wall) = (cpu_time_of("self") - cpu, t.elapsed());
    println!(
        "{:<58} {:.0} pairs/s, {:.1} µs CPU per pair (whole process)",
        "  deferred record + log entry (HTTP agents, logs)",
        total as f64 / wall.as_secs_f64(),
        us(cpu) / total as f64
    );
}

// ---------------------------------------------------------------------------------------------
// Restart with many agents.

#[derive(Clone)]
struct AgentUnderTest {
    name: String,
    http: bool,
}

fn invoke_once(client: &Client, agent: &ureq::Agent, a: &AgentUnderTest) -> Result<(), String> {
    if a.http {
        let (status, body) = get(agent, &format!("{}/agents/{}/", client.base_url(), a.name))?;
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

fn restart() {
    let count: usize = env_or("BENCH_AGENTS", 100);
    let restarts: usize = env_or("BENCH_RESTARTS", 3);
    let handler = std::fs::read(target().join("wasm/text-stats.wasm"))
        .expect("target/wasm/text-stats.wasm (run scripts/build-wasm.sh)");
    let http = std::fs::read(target().join("wasm/http-hello.wasm"))
        .expect("target/wasm/http-hello.wasm (run scripts/build-wasm.sh)");
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
        deploy(&client, &owner, &a.name, &distinct_component(base, &a.name));
    }
    let deployed = t.elapsed();
    let ua = http_agent();
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

fn main() {
    if wanted("throughput") {
        throughput();
    }
    if wanted("handler") {
        handler();
    }
    if wanted("restart") {
        restart();
    }
}
