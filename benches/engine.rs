//! Engine and pipeline benchmarks:
//! `cargo bench -p hypervisor --features simulated-attestation --bench engine`.
//!
//! Prints percentiles rather than means, because the targets are percentiles:
//! - server-side execute of a cached `hello` (decrypt, run in a fresh instance, seal): p50;
//! - the same on the verifiable route (plus a signed, recorded receipt), and the throughput
//!   ratio verifiable / plain with concurrent callers;
//! - a fresh store + instantiate + run of `hello` alone, with the pooling allocator and
//!   without it (the per-execution instantiation cost);
//! - first compile of a ~1 MB component (`grep`, regex inside), cold engine, no caches;
//! - loading that component from the sealed disk cache instead.
//!
//! Needs the guests: `scripts/build-programs.sh`. `BENCH_ITERATIONS` sets the sample count.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::stats::{percentile, us};
use common::{in_process, wasm};
use hypervisor::attestation::{Attestor, NoAttestation};
use hypervisor::config::{Config, ProviderChoice};
use hypervisor::crypto::plaintext::Plaintext;
use hypervisor::engine::{Capabilities, CommandInput, Engine, Role, RunLimits};
use hypervisor::pipeline::{Pipeline, RouteKind};
use hypervisor::server::Host;
use hypervisor_client::{ExecuteInput, Session};
use hypervisor_protocol::wire::{CreateKeypairRequest, CreateKeypairResponse, ExecuteRequest};
use hypervisor_protocol::{ClientSecret, sha256};

struct Stats(Vec<Duration>);

impl Stats {
    fn pct(&self, p: f64) -> Duration {
        let mut v = self.0.clone();
        v.sort();
        percentile(&v, p)
    }

    fn report(&self, name: &str) {
        println!(
            "{name:<62} n={:<5} p50={:>9.1} µs  p90={:>9.1} µs  p99={:>9.1} µs  min={:>9.1} µs",
            self.0.len(),
            us(self.pct(0.5)),
            us(self.pct(0.9)),
            us(self.pct(0.99)),
            us(self.pct(0.0)),
        );
    }
}

fn config(dir: &std::path::Path, pooling: bool, disk: bool) -> Config {
    // The engine alone: the policy and Python runtime are measured by benches/policy.rs.
    let mut c = in_process::config(dir);
    c.engine.pooling_allocator = pooling;
    c.engine.disk_cache = disk;
    c.attestation.provider = ProviderChoice::Simulated;
    c
}

fn no_attestation() -> Arc<Attestor> {
    Arc::new(Attestor::new(Arc::new(NoAttestation), [0; 32]))
}

/// Sequential latency of one route.
async fn latency(pipeline: &Pipeline, req: &ExecuteRequest, route: RouteKind, n: usize) -> Stats {
    for _ in 0..50 {
        pipeline
            .execute_wasm(req.clone(), None, route, None)
            .await
            .unwrap();
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let r = req.clone();
        let t = Instant::now();
        pipeline.execute_wasm(r, None, route, None).await.unwrap();
        samples.push(t.elapsed());
    }
    Stats(samples)
}

/// Requests per second with `callers` concurrent callers for `duration`.
async fn throughput(
    pipeline: Arc<Pipeline>,
    req: ExecuteRequest,
    route: RouteKind,
    callers: usize,
    duration: Duration,
) -> f64 {
    let start = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let p = pipeline.clone();
            let r = req.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                while start.elapsed() < duration {
                    p.execute_wasm(r.clone(), None, route, None).await.unwrap();
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
}

fn main() {
    let rt = common::runtime();
    let _guard = rt.enter();
    let hello = wasm::read("hello");
    let grep = Arc::new(Plaintext::new(wasm::read("grep")));
    let iterations = common::iterations(2000);
    println!(
        "hello component: {} bytes; grep component: {} bytes",
        hello.len(),
        grep.len()
    );

    // Server-side execute of a cached hello, through the whole pipeline, plain and verifiable.
    let tmp = tempfile::tempdir().unwrap();
    let host = rt
        .block_on(Host::build(config(tmp.path(), true, true)))
        .unwrap();
    let pipeline = host.pipeline().clone();
    let secret = ClientSecret::generate().unwrap();
    let pubkey = CreateKeypairRequest {
        pubkey: secret.public_key().to_hex(),
    };
    let plain_session = in_process::session(&pipeline, &secret);
    let v = pipeline.create_verifiable_session(&pubkey).unwrap();
    let resp = CreateKeypairResponse {
        session_pubkey: v.session_pubkey,
        session_id: v.session_id,
        expires_in_seconds: v.expires_in_seconds,
    };
    let verifiable_session = Session::from_response(&secret, &resp).unwrap();
    let input = ExecuteInput::new(&hello).args(["bench"]);
    let (req, _) = plain_session.encrypt_execution(&input).unwrap();
    let (vreq, _) = verifiable_session.encrypt_execution(&input).unwrap();
    // The same host with every program hashed (no digest memo), rounds interleaved.
    let tmp_unmemo = tempfile::tempdir().unwrap();
    let mut unmemo = config(tmp_unmemo.path(), true, true);
    unmemo.engine.program_digest_memo_bytes = 0;
    let unmemo = rt.block_on(Host::build(unmemo)).unwrap();
    let unmemo_session = in_process::session(unmemo.pipeline(), &secret);
    let (unmemo_req, _) = unmemo_session.encrypt_execution(&input).unwrap();
    rt.block_on(async {
        let (mut with, mut without) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            with.extend(latency(&pipeline, &req, RouteKind::TEST, iterations / 3).await.0);
            without.extend(
                latency(unmemo.pipeline(), &unmemo_req, RouteKind::TEST, iterations / 3)
                    .await
                    .0,
            );
        }
        Stats(with).report("execute cached hello (pipeline: decrypt+run+seal)");
        Stats(without).report("the same, hashing the program every time (no digest memo)");
        latency(&pipeline, &vreq, RouteKind::VERIFIABLE, iterations)
            .await
            .report("verifiable execute cached hello (+ signed, recorded receipt)");
        // Interleaved rounds, so drift in machine speed hits both routes alike.
        let window = Duration::from_secs(3);
        let mut ratios = Vec::new();
        for round in 1..=5 {
            let plain = throughput(pipeline.clone(), req.clone(), RouteKind::TEST, 8, window).await;
            let verifiable =
                throughput(pipeline.clone(), vreq.clone(), RouteKind::VERIFIABLE, 8, window).await;
            ratios.push(verifiable / plain);
            println!(
                "throughput round {round}, 8 concurrent callers, 3 s each      plain={plain:>7.0} req/s  verifiable={verifiable:>7.0} req/s  ratio={:.2}",
                verifiable / plain
            );
        }
        ratios.sort_by(f64::total_cmp);
        println!("{:<62} median ratio verifiable/plain = {:.2}", "throughput", ratios[ratios.len() / 2]);
    });

    // Instantiation + run alone, pooling vs on-demand allocation.
    for pooling in [true, false] {
        let tmp = tempfile::tempdir().unwrap();
        let c = config(tmp.path(), pooling, false);
        let engine = Engine::new(&c, None, None, no_attestation()).unwrap();
        let prepared = rt
            .block_on(
                engine.prepare_command(sha256(&hello), Arc::new(Plaintext::new(hello.clone()))),
            )
            .unwrap();
        let limits = RunLimits {
            time: Duration::from_secs(10),
            memory_bytes: 128 << 20,
            fuel: None,
        };
        let input = CommandInput {
            args: vec!["main.wasm".into()],
            stdin: Default::default(),
            limits,
        };
        let caps = Capabilities::of(Role::ClientProgram);
        let mut samples = Vec::with_capacity(iterations);
        rt.block_on(async {
            for _ in 0..50 {
                engine
                    .run_command(&caps, &prepared, input.clone())
                    .await
                    .unwrap();
            }
            for _ in 0..iterations {
                let t = Instant::now();
                engine
                    .run_command(&caps, &prepared, input.clone())
                    .await
                    .unwrap();
                samples.push(t.elapsed());
            }
        });
        let name = if pooling {
            "fresh instance + run hello (pooling, CoW)"
        } else {
            "fresh instance + run hello (on-demand allocator)"
        };
        Stats(samples).report(name);
    }

    // First compile of a ~1 MB component: a cold engine each time, no caches.
    let hash = sha256(&grep);
    let mut compile = Vec::new();
    for _ in 0..5 {
        let tmp = tempfile::tempdir().unwrap();
        let c = config(tmp.path(), true, false);
        let engine = Engine::new(&c, None, None, no_attestation()).unwrap();
        let t = Instant::now();
        rt.block_on(engine.prepare_command(hash, grep.clone()))
            .unwrap();
        compile.push(t.elapsed());
    }
    Stats(compile).report("first compile of grep (~1 MB), cold engine");

    // The same component from the sealed disk cache (a restarted host).
    let tmp = tempfile::tempdir().unwrap();
    {
        let host = rt
            .block_on(Host::build(config(tmp.path(), true, true)))
            .unwrap();
        rt.block_on(host.pipeline().engine().prepare_command(hash, grep.clone()))
            .unwrap();
    }
    let mut load = Vec::new();
    for _ in 0..5 {
        let host = rt
            .block_on(Host::build(config(tmp.path(), true, true)))
            .unwrap();
        let t = Instant::now();
        rt.block_on(host.pipeline().engine().prepare_command(hash, grep.clone()))
            .unwrap();
        load.push(t.elapsed());
        assert_eq!(host.pipeline().engine().cache_stats().compiles, 0);
    }
    Stats(load).report("load grep from the sealed disk cache (restart)");
}
