//! Policy and Python benchmarks: `cargo bench -p hypervisor --bench policy`.
//!
//! - one decision of the default Python policy (example rules): asked in a warm instance, and
//!   reused (the policy marks its decisions reusable for identical metadata); and of a minimal
//!   Rust policy (the host's own share of a decision); and the Python decision timed alone
//!   between two executions of the pipeline (no policy in force), i.e. with the caches as a
//!   request leaves them (a decision in a tight loop finds the interpreter's working set hot);
//! - the whole execute pipeline for a cached `hello` on one host, in interleaved rounds with
//!   each of those policies in force and with none, so a policy's cost per request is the
//!   difference;
//! - a client Python script through the whole pipeline, fresh CPython instance included;
//! - 8 concurrent callers of the Python route, scripts per second.
//!
//! `BENCH_POLICY_ALSO=a,b` adds other builds of a Python policy (`target/wasm/a.wasm`, ...) to
//! the same run: each is asked directly, between two executions and in the pipeline's
//! interleaved rounds beside the default one, so two builds are compared on the same machine in
//! the same minutes.
//!
//! Needs `scripts/build-programs.sh`. The first run compiles the componentized CPython (tens of
//! seconds) into `target/bench-data/plugins`; later runs load it from there.
//! `BENCH_ITERATIONS` sets the sample count.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::in_process::session;
use common::stats::report;
use common::{target, wasm};
use hypervisor::config::{Config, PolicyConfig};
use hypervisor::pipeline::{Pipeline, RouteKind};
use hypervisor::plugins::policy::{Limits, Policy, ProgramKind, RequestInfo};
use hypervisor::server::Host;
use hypervisor_client::ExecuteInput;
use hypervisor_protocol::ClientSecret;
use hypervisor_protocol::wire::{ExecuteRequest, PythonRequest};

fn config(data: &Path, policy: bool) -> Config {
    let mut c = Config {
        data_dir: data.to_owned(),
        ..Config::default()
    };
    let python = wasm::path("policy-python");
    c.policy.enabled = policy;
    c.policy.component = python.clone();
    c.policy.rules = Some(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../components/policy-python/rules.example.toml"),
    );
    c.python.component = python;
    c
}

async fn execute_samples(pipeline: &Pipeline, req: &ExecuteRequest, n: usize) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let r = req.clone();
        let t = Instant::now();
        pipeline
            .execute_wasm(r, None, RouteKind::TEST, None)
            .await
            .unwrap();
        out.push(t.elapsed());
    }
    out
}

async fn python_samples(pipeline: &Pipeline, req: &PythonRequest, n: usize) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let r = req.clone();
        let t = Instant::now();
        pipeline
            .execute_python(r, None, RouteKind::PYTHON, None)
            .await
            .unwrap();
        out.push(t.elapsed());
    }
    out
}

fn main() {
    let rt = common::runtime();
    let _guard = rt.enter();
    let iterations = common::iterations(2000);

    // Persistent data directories: the sealed plug-in cache survives between runs.
    let data = target().join("bench-data");
    let t = Instant::now();
    let with = rt
        .block_on(Host::build(config(&data.join("with-policy"), true)))
        .unwrap();
    println!(
        "host with policy + python runtime built in {:.0} ms (plug-ins from the sealed cache after the first run)",
        t.elapsed().as_secs_f64() * 1e3
    );
    let with = with.pipeline().clone();
    let secret = ClientSecret::generate().unwrap();

    // 1. One decision, direct.
    let policy = with.policy().get().expect("policy configured");
    let info = RequestInfo {
        route: "/test/execute/wasm".into(),
        verifiable: false,
        kind: ProgramKind::WasmComponent,
        program_hash: "ab".repeat(32),
        program_size: 85_000,
        agent: None,
        caller_key: secret.public_key().to_hex(),
        argument_count: 1,
        input_size: 5,
        limits: Limits {
            time_ms: Some(10_000),
            memory_bytes: Some(128 << 20),
            fuel: None,
        },
        payment: None,
        now_unix_ms: 1_790_000_000_000,
    };
    let engine = with.engine_arc().clone();
    let load = |component: &str, rules: Option<PathBuf>, reuse_entries: usize| {
        Arc::new(
            rt.block_on(Policy::load(
                engine.clone(),
                &PolicyConfig {
                    component: wasm::path(component),
                    rules,
                    reuse_entries,
                    ..PolicyConfig::default()
                },
            ))
            .unwrap(),
        )
    };
    let example_rules = config(&data, true).policy.rules;
    // The Python policy asked on every request (no reuse), and the Rust policy likewise: the
    // latter is the host's own share of a decision.
    let python_asked = load("policy-python", example_rules.clone(), 0);
    let rust = load("policy-rust", None, 0);
    let also: Vec<(String, Arc<Policy>)> = std::env::var("BENCH_POLICY_ALSO")
        .unwrap_or_default()
        .split(',')
        .filter(|name| !name.is_empty())
        .map(|name| (name.to_string(), load(name, example_rules.clone(), 0)))
        .collect();
    let time = |p: Arc<Policy>| {
        let info = &info;
        rt.block_on(async move {
            for _ in 0..200 {
                p.evaluate(info).await.unwrap();
            }
            let mut out = Vec::with_capacity(iterations);
            for _ in 0..iterations {
                let t = Instant::now();
                p.evaluate(info).await.unwrap();
                out.push(t.elapsed());
            }
            out
        })
    };
    report(
        "policy decision, Python, asked (warm instance)",
        time(python_asked.clone()),
    );
    report(
        "policy decision, Python, reused (verdict reuse-ms)",
        time(policy.clone()),
    );
    report(
        "policy decision, Rust, asked (host's share)",
        time(rust.clone()),
    );
    for (name, p) in &also {
        report(&format!("policy decision, {name}, asked"), time(p.clone()));
    }

    // 1b. One decision between two executions: the caches as the rest of a request leaves them.
    let hello = wasm::read("hello");
    let input = ExecuteInput::new(&hello).args(["bench"]);
    let (req, _) = session(&with, &secret).encrypt_execution(&input).unwrap();
    with.policy().replace(None);
    let between = |p: &Arc<Policy>| {
        rt.block_on(async {
            let mut out = Vec::with_capacity(iterations);
            for _ in 0..iterations {
                execute_samples(&with, &req, 1).await;
                let t = Instant::now();
                p.evaluate(&info).await.unwrap();
                out.push(t.elapsed());
            }
            out
        })
    };
    report(
        "policy decision, Python, asked between two executions",
        between(&python_asked),
    );
    for (name, p) in &also {
        report(
            &format!("policy decision, {name}, between two executions"),
            between(p),
        );
    }
    with.policy().replace(Some(policy.clone()));

    // 2. The pipeline on one host and session, rounds interleaved with the Python policy, no
    //    policy, and the Rust policy in force (swapped in the policy slot between rounds).
    let slots: Vec<Option<Arc<Policy>>> = [
        Some(policy.clone()),
        Some(python_asked.clone()),
        None,
        Some(rust.clone()),
    ]
    .into_iter()
    .chain(also.iter().map(|(_, p)| Some(p.clone())))
    .collect();
    let mut samples = vec![Vec::new(); slots.len()];
    rt.block_on(async {
        for p in &slots {
            with.policy().replace(p.clone());
            execute_samples(&with, &req, 100).await;
        }
        for _ in 0..10 {
            for (i, p) in slots.iter().enumerate() {
                with.policy().replace(p.clone());
                samples[i].extend(execute_samples(&with, &req, iterations / 10).await);
            }
        }
    });
    with.policy().replace(Some(policy.clone()));
    let also_samples = samples.split_off(4);
    let [reused, asked, none, rust_asked] = <[Vec<Duration>; 4]>::try_from(samples).unwrap();
    let p_reused = report("execute cached hello, Python policy (reused)", reused);
    let p_asked = report("execute cached hello, Python policy (asked)", asked);
    let p_none = report("execute cached hello, no policy", none);
    let p_rust = report("execute cached hello, Rust policy (asked)", rust_asked);
    let delta = |p: Duration| (p.as_secs_f64() - p_none.as_secs_f64()) * 1e6;
    println!(
        "{:<58} Δp50 = {:.1} µs Python reused, {:.1} µs Python asked, {:.1} µs Rust asked",
        "policy cost per request (pipeline)",
        delta(p_reused),
        delta(p_asked),
        delta(p_rust)
    );
    for ((name, _), samples) in also.iter().zip(also_samples) {
        let p = report(&format!("execute cached hello, {name} (asked)"), samples);
        println!(
            "{:<58} Δp50 = {:.1} µs",
            format!("policy cost per request (pipeline), {name}"),
            delta(p)
        );
    }

    // 3. A client script, fresh CPython instance included.
    let s = session(&with, &secret);
    let script = b"print('Hello from Python')";
    let (hello_py, _) = s.encrypt_python(&ExecuteInput::new(script)).unwrap();
    let json_script = b"import json\ndef main(args):\n    doc = json.loads(args[0])\n    return {'sum': sum(doc['values']), 'n': len(doc['values'])}\n";
    let doc = format!("{{\"values\": {:?}}}", (0..100).collect::<Vec<_>>());
    let (json_py, _) = s
        .encrypt_python(&ExecuteInput::new(json_script).args([doc]))
        .unwrap();
    let n = (iterations / 4).max(50);
    let (hello_samples, json_samples) = rt.block_on(async {
        python_samples(&with, &hello_py, 20).await;
        (
            python_samples(&with, &hello_py, n).await,
            python_samples(&with, &json_py, n).await,
        )
    });
    report(
        "python script hello (pipeline, fresh instance)",
        hello_samples,
    );
    report(
        "python script json main(args) (pipeline, fresh instance)",
        json_samples,
    );

    // 4. Throughput of the Python route with 8 concurrent callers.
    let window = Duration::from_secs(5);
    let rate = rt.block_on(async {
        let start = Instant::now();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let p: Arc<Pipeline> = with.clone();
                let r = hello_py.clone();
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while start.elapsed() < window {
                        p.execute_python(r.clone(), None, RouteKind::PYTHON, None)
                            .await
                            .unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        total as f64 / start.elapsed().as_secs_f64()
    });
    println!(
        "{:<58} {rate:>7.0} scripts/s",
        "python route, 8 concurrent callers, 5 s"
    );
}
