//! Load: every main route at saturation, 1000 concurrent executions, a 1 MB program's first
//! run: `cargo bench -p hypervisor --features simulated-attestation --bench load` (or
//! `benches/load.sh`, which builds what this needs and keeps the output).
//!
//! 1. **Routes** (`routes`): the release binary with its defaults (Python policy on, Python
//!    route on, payments in verify-only mode, simulated attestation so the verifiable route
//!    runs), then, one route after the other, `LOAD_CONNECTIONS` (16) client threads with
//!    keep-alive send requests as fast as the server answers for `LOAD_SECONDS` (60). Each
//!    request is a real one: encrypted programs and scripts (encrypted once per thread and sent
//!    again: requests carry no replay state), a freshly signed x402 payment per paid request,
//!    a new client key per `create_keypair`. Reported per route: requests, errors (anything but
//!    the expected status, transport errors included), req/s, p50/p99 as the client saw them,
//!    and the server's resident memory sampled every second: after the first 10 % of the run,
//!    at its peak, and at the end (flat = the end is within 10 % or 16 MiB of the early value).
//! 2. **Concurrent** (`concurrent`): a server with `engine.max_concurrent_executions = 1000`;
//!    1000 client threads, each with its own session, released together, each executing the
//!    `sleep` guest (holds its instance `LOAD_SLEEP_MS`, 2000 ms): how many succeed, the peak
//!    of live instances (`/metrics`), the server's peak resident memory, the wall time.
//! 3. **Seed** (`seed`): the first execution of a 1 MB program (`grep.wasm`, 1.05 MB, made
//!    unique so nothing is cached): compile + run, against the seed target of 30 s.
//!
//! Reference, not measured here: a sandboxed container service takes 100–200 ms per execution
//! (cold container per request); compare with the execute route's p50.
//!
//! Environment: `HYPERVISOR_BIN`, `LOAD_SECONDS`, `LOAD_CONNECTIONS`, `LOAD_CONCURRENT` (1000),
//! `LOAD_SLEEP_MS`, `LOAD_ONLY` (comma-separated subset of `routes,concurrent,seed`),
//! `LOAD_ROUTES` (comma-separated subset of the route names printed).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

mod common;

use common::process::{Server, rss_of, start_hypervisor};
use common::{target, unix_now};
use hypervisor_client::agents::Deployment;
use hypervisor_client::verify::Policy;
use hypervisor_client::x402::{Offer, Wallet};
use hypervisor_client::{Client, ExecuteInput};
use hypervisor_protocol::ClientSecret;
use hypervisor_protocol::wire::Limits;
use serde_json::{Value, json};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn wanted(var: &str, name: &str) -> bool {
    std::env::var(var).map_or(true, |v| v.split(',').any(|s| s.trim() == name))
}

fn wasm(name: &str) -> Vec<u8> {
    let path = target().join("wasm").join(format!("{name}.wasm"));
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/build-wasm.sh first)", path.display()))
}

/// A component with a custom section appended, so its hash (and cache entry) is new.
fn unique(component: &[u8], tag: &str) -> Vec<u8> {
    let name = b"load-bench";
    let payload = tag.as_bytes();
    let size = 1 + name.len() + payload.len();
    let mut out = component.to_vec();
    out.push(0);
    let mut v = size;
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(payload);
    out
}

/// The configuration: loopback, any port, the plug-ins from `target/wasm`, a plug-in cache
/// kept between runs (CPython compiles once), plus `extra` TOML.
fn write_config(data_dir: &Path, extra: &str) -> PathBuf {
    let cache = target().join("bench-data/load-plugin-cache");
    std::fs::create_dir_all(&cache).unwrap();
    let path = data_dir.with_extension("toml");
    let w = |n: &str| target().join("wasm").join(n).display().to_string();
    std::fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = {data:?}\nplugin_cache_dir = {cache:?}\n\
             [policy]\ncomponent = {policy:?}\n[python]\ncomponent = {python:?}\n\
             [payments]\nenabled = true\ncomponent = {payments:?}\n[payments.price]\n\
             pay_to = \"0x209693Bc6afc0C5328bA36FaF03C514EF312287C\"\n\
             [attestation]\nprovider = \"simulated\"\n{extra}",
            data = data_dir.display().to_string(),
            cache = cache.display().to_string(),
            policy = w("policy-python.wasm"),
            python = w("policy-python.wasm"),
            payments = w("payments.wasm"),
        ),
    )
    .unwrap();
    path
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// One request a client thread repeats.
type Request = Box<dyn FnMut(&ureq::Agent) -> Result<u16, String> + Send>;

fn post(
    agent: &ureq::Agent,
    url: &str,
    body: &[u8],
    headers: &[(&str, String)],
) -> Result<u16, String> {
    let mut req = agent.post(url).header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, v.as_str());
    }
    let mut resp = req.send(body).map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    resp.body_mut().read_to_vec().map_err(|e| e.to_string())?;
    Ok(status)
}

fn get(agent: &ureq::Agent, url: &str) -> Result<u16, String> {
    let mut resp = agent.get(url).call().map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    resp.body_mut().read_to_vec().map_err(|e| e.to_string())?;
    Ok(status)
}

/// A route under load: its name, the status it must answer, and a maker of per-thread
/// requests.
struct Route {
    name: &'static str,
    expect: u16,
    make: Box<dyn Fn(&str) -> Request>,
}

fn routes(base: &str) -> Vec<Route> {
    let client = Client::new(base);
    let owner = ClientSecret::generate().unwrap();
    for (name, guest) in [("stats", "text-stats"), ("hello", "http-hello")] {
        let component = wasm(guest);
        client
            .deploy_agent(
                &owner,
                &Deployment {
                    name,
                    description: "load benchmark agent",
                    component: &component,
                    ..Deployment::default()
                },
            )
            .unwrap_or_else(|e| panic!("deploy {name}: {e}"));
    }
    let hello = Arc::new(wasm("hello"));
    let encrypted = {
        let hello = hello.clone();
        move |base: &str, verifiable: bool| -> Vec<u8> {
            let client = Client::new(base);
            let key = ClientSecret::generate().unwrap();
            let session = if verifiable {
                let policy = Policy {
                    allow_simulated: true,
                    ..Policy::default()
                };
                client.create_verifiable_session(&key, &policy).unwrap()
            } else {
                client.create_session(&key).unwrap()
            };
            let (req, _) = session
                .encrypt_execution(&ExecuteInput::new(&hello).args(["load"]))
                .unwrap();
            serde_json::to_vec(&req).unwrap()
        }
    };
    let e1 = encrypted.clone();
    let e2 = encrypted.clone();
    let e3 = encrypted;
    vec![
        Route {
            name: "GET /ping",
            expect: 200,
            make: Box::new(|base| {
                let url = format!("{base}/ping");
                Box::new(move |a| get(a, &url))
            }),
        },
        Route {
            name: "POST /encrypt/create_keypair",
            expect: 200,
            make: Box::new(|base| {
                let url = format!("{base}/encrypt/create_keypair");
                Box::new(move |a| {
                    let key = ClientSecret::generate().map_err(|e| e.to_string())?;
                    let body = json!({ "pubkey": key.public_key().to_hex() }).to_string();
                    post(a, &url, body.as_bytes(), &[])
                })
            }),
        },
        Route {
            name: "POST /test/execute/wasm (hello)",
            expect: 200,
            make: Box::new(move |base| {
                let url = format!("{base}/test/execute/wasm");
                let body = e1(base, false);
                Box::new(move |a| post(a, &url, &body, &[]))
            }),
        },
        Route {
            name: "POST /verifiable/execute/wasm (hello, signed receipt)",
            expect: 200,
            make: Box::new(move |base| {
                let url = format!("{base}/verifiable/execute/wasm");
                let body = e2(base, true);
                Box::new(move |a| post(a, &url, &body, &[]))
            }),
        },
        Route {
            name: "POST /x402_execute/test/wasm (hello, new payment each)",
            expect: 200,
            make: Box::new(move |base| {
                let url = format!("{base}/x402_execute/test/wasm");
                let body = e3(base, false);
                let wallet = Wallet::random().unwrap();
                let mut resp = agent()
                    .post(&url)
                    .header("content-type", "application/json")
                    .send(&body[..])
                    .unwrap();
                let challenge = resp
                    .headers()
                    .get("payment-required")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let json: Value =
                    serde_json::from_slice(&resp.body_mut().read_to_vec().unwrap()).unwrap();
                let offer = Offer::from_402(challenge.as_deref(), &json).unwrap();
                Box::new(move |a| {
                    let (name, value) =
                        wallet.pay(&offer, unix_now()).map_err(|e| e.to_string())?;
                    post(a, &url, &body, &[(name, value)])
                })
            }),
        },
        Route {
            name: "POST /test/policy/unsafe/python (print)",
            expect: 200,
            make: Box::new(|base| {
                let url = format!("{base}/test/policy/unsafe/python");
                let client = Client::new(base);
                let key = ClientSecret::generate().unwrap();
                let session = client.create_session(&key).unwrap();
                let (req, _) = session
                    .encrypt_python(&ExecuteInput::new(b"print('hello from python')"))
                    .unwrap();
                let body = serde_json::to_vec(&req).unwrap();
                Box::new(move |a| post(a, &url, &body, &[]))
            }),
        },
        Route {
            name: "POST /agents/stats/invoke (handler)",
            expect: 200,
            make: Box::new(|base| {
                let url = format!("{base}/agents/stats/invoke");
                let body = json!({"event": {"text": "The quick brown fox. It jumps!"}})
                    .to_string()
                    .into_bytes();
                Box::new(move |a| post(a, &url, &body, &[]))
            }),
        },
        Route {
            name: "GET /agents/hello/ (wasi:http agent)",
            expect: 200,
            make: Box::new(|base| {
                let url = format!("{base}/agents/hello/");
                Box::new(move |a| get(a, &url))
            }),
        },
        Route {
            name: "POST /search",
            expect: 200,
            make: Box::new(|base| {
                let url = format!("{base}/search");
                let body = json!({"query": "load benchmark"}).to_string().into_bytes();
                Box::new(move |a| post(a, &url, &body, &[]))
            }),
        },
    ]
}

/// Samples the resident memory of `pid` every `every` until `stop`.
fn sample_rss(
    pid: u32,
    every: Duration,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<u64>> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            out.push(rss_of(pid));
            std::thread::sleep(every);
        }
        out
    })
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn saturate(server: &Server, route: &Route, connections: usize, seconds: u64) {
    let requests: Vec<Request> = (0..connections)
        .map(|_| (route.make)(&server.base))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(Mutex::new(None::<String>));
    let rss = sample_rss(server.pid(), Duration::from_secs(1), stop.clone());
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let threads: Vec<_> = requests
        .into_iter()
        .map(|mut request| {
            let (errors, first_error, expect) = (errors.clone(), first_error.clone(), route.expect);
            std::thread::spawn(move || {
                let agent = agent();
                let mut latencies = Vec::new();
                while Instant::now() < until {
                    let t = Instant::now();
                    match request(&agent) {
                        Ok(status) if status == expect => latencies.push(t.elapsed()),
                        other => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            first_error
                                .lock()
                                .unwrap()
                                .get_or_insert_with(|| format!("{other:?}"));
                        }
                    }
                }
                latencies
            })
        })
        .collect();
    let mut all: Vec<Duration> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let wall = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let rss = rss.join().unwrap();
    all.sort();
    let early = rss.get(rss.len() / 10).copied().unwrap_or(0);
    let end = rss.last().copied().unwrap_or(0);
    let peak = rss.iter().copied().max().unwrap_or(0);
    let flat = end <= early + (early / 10).max(16 << 20);
    let errors = errors.load(Ordering::Relaxed);
    println!(
        "{:<56} {:>8} {:>6} {:>8.0} {:>8.2} {:>8.2}   {:>6.0} {:>6.0} {:>6.0}  {}",
        route.name,
        all.len(),
        errors,
        all.len() as f64 / wall.as_secs_f64(),
        percentile(&all, 0.5).as_secs_f64() * 1e3,
        percentile(&all, 0.99).as_secs_f64() * 1e3,
        mib(early),
        mib(peak),
        mib(end),
        if flat { "flat" } else { "GREW" },
    );
    if let Some(e) = first_error.lock().unwrap().take() {
        println!("    first error: {e}");
    }
}

fn routes_section() {
    let seconds = env_or("LOAD_SECONDS", 60u64);
    let connections = env_or("LOAD_CONNECTIONS", 16usize);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = start_hypervisor(&write_config(&data, ""));
    println!(
        "routes: {connections} client threads (keep-alive) per route, {seconds} s each; server ready {} ms after spawn",
        server.ready_after.as_millis()
    );
    println!(
        "{:<56} {:>8} {:>6} {:>8} {:>8} {:>8}   {:>6} {:>6} {:>6}  memory",
        "route", "ok", "errors", "req/s", "p50 ms", "p99 ms", "RSS10%", "peak", "end"
    );
    for route in routes(&server.base) {
        if !wanted(
            "LOAD_ROUTES",
            route.name.split_whitespace().nth(1).unwrap_or(""),
        ) {
            continue;
        }
        if route.name.contains("create_keypair") {
            // Thousands of sessions a second: with the default lifetime (an hour) the table
            // (100 000) fills within a minute and further ones get 503 `sessions_full`. This run
            // uses its own server with 30 s sessions, the setting for such churn.
            let tmp = tempfile::tempdir().unwrap();
            let churn = start_hypervisor(&write_config(
                &tmp.path().join("data"),
                "[sessions]\nttl_seconds = 30\n",
            ));
            saturate(&churn, &route, connections, seconds);
        } else {
            saturate(&server, &route, connections, seconds);
        }
    }
}

/// The value of `series` in the server's `/metrics`.
fn metric(base: &str, series: &str) -> f64 {
    let mut resp = agent().get(format!("{base}/metrics")).call().unwrap();
    let text = resp.body_mut().read_to_string().unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

fn concurrent_section() {
    let n = env_or("LOAD_CONCURRENT", 1000usize);
    let sleep_ms = env_or("LOAD_SLEEP_MS", 2000u64);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = start_hypervisor(&write_config(
        &data,
        &format!("[engine]\nmax_concurrent_executions = {n}\n"),
    ));
    let program = Arc::new(wasm("sleep"));
    // Sessions and encrypted requests first, so the n requests leave together.
    let bodies: Vec<Vec<u8>> = (0..n)
        .map(|_| {
            let session = Client::new(&server.base)
                .create_session(&ClientSecret::generate().unwrap())
                .unwrap();
            let arg = sleep_ms.to_string();
            let (req, _) = session
                .encrypt_execution(&ExecuteInput::new(&program).args([arg.as_str()]).limits(
                    Limits {
                        time_ms: Some(sleep_ms + 20_000),
                        ..Limits::default()
                    },
                ))
                .unwrap();
            serde_json::to_vec(&req).unwrap()
        })
        .collect();
    let rss_before = rss_of(server.pid());
    let stop = Arc::new(AtomicBool::new(false));
    let rss = sample_rss(server.pid(), Duration::from_millis(100), stop.clone());
    let peak_live = Arc::new(AtomicU64::new(0));
    let watcher = {
        let (stop, peak_live, base) = (stop.clone(), peak_live.clone(), server.base.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let live = metric(&base, "hypervisor_live_instances") as u64;
                peak_live.fetch_max(live, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let barrier = Arc::new(Barrier::new(n));
    let url = format!("{}/test/execute/wasm", server.base);
    let started = Instant::now();
    let threads: Vec<_> = bodies
        .into_iter()
        .map(|body| {
            let (barrier, url) = (barrier.clone(), url.clone());
            std::thread::Builder::new()
                .stack_size(256 << 10)
                .spawn(move || {
                    let agent = agent();
                    barrier.wait();
                    let mut resp = agent
                        .post(&url)
                        .header("content-type", "application/json")
                        .send(&body[..])
                        .map_err(|e| e.to_string())?;
                    let status = resp.status().as_u16();
                    let text = resp
                        .body_mut()
                        .read_to_string()
                        .map_err(|e| e.to_string())?;
                    if status == 200 {
                        Ok(status)
                    } else {
                        Err(format!(
                            "{status}: {}",
                            text.chars().take(300).collect::<String>()
                        ))
                    }
                })
                .unwrap()
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let wall = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let rss = rss.join().unwrap();
    watcher.join().unwrap();
    let ok = results.iter().filter(|r| matches!(r, Ok(200))).count();
    let peak = rss.iter().copied().max().unwrap_or(0);
    println!(
        "\nconcurrent: {n} executions of `sleep {sleep_ms}` released together (engine.max_concurrent_executions = {n})"
    );
    println!(
        "  succeeded {ok}/{n}; peak live instances {}; wall {:.2} s; server RSS before {:.0} MiB, peak {:.0} MiB (target < 1024 MiB)",
        peak_live.load(Ordering::Relaxed),
        wall.as_secs_f64(),
        mib(rss_before),
        mib(peak),
    );
    if let Some(e) = results.iter().find(|r| !matches!(r, Ok(200))) {
        println!("  first failure: {e:?}");
        let log = std::fs::read_to_string(data.with_extension("log")).unwrap_or_default();
        for line in log
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .take(5)
        {
            println!("  server: {line}");
        }
    }
}

fn seed_section() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = start_hypervisor(&write_config(&data, ""));
    let client = Client::new(&server.base);
    let session = client
        .create_session(&ClientSecret::generate().unwrap())
        .unwrap();
    let program = unique(&wasm("grep"), &unix_now().to_string());
    let t = Instant::now();
    let run = client
        .execute(
            &session,
            &ExecuteInput::new(&program)
                .args(["needle"])
                .stdin(b"hay\nneedle\n"),
        )
        .unwrap();
    let first = t.elapsed();
    let t = Instant::now();
    client
        .execute(
            &session,
            &ExecuteInput::new(&program)
                .args(["needle"])
                .stdin(b"hay\nneedle\n"),
        )
        .unwrap();
    let second = t.elapsed();
    println!(
        "\nseed: a {:.2} MB program (grep), first execution (compile + run) {:.0} ms (target < 30 s), then {:.1} ms cached; exit {:?}",
        program.len() as f64 / 1e6,
        first.as_secs_f64() * 1e3,
        second.as_secs_f64() * 1e3,
        run.result.exit_code,
    );
    println!(
        "reference: a sandboxed container service, 100–200 ms per execution (cold container); compare with the execute route's p50 above"
    );
}

fn main() {
    if wanted("LOAD_ONLY", "routes") {
        routes_section();
    }
    if wanted("LOAD_ONLY", "concurrent") {
        concurrent_section();
    }
    if wanted("LOAD_ONLY", "seed") {
        seed_section();
    }
}
