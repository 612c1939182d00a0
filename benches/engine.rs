//! Engine and pipeline benchmarks (`cargo bench -p hypervisor --bench engine`).
//!
//! Prints percentiles rather than means, because the targets are percentiles:
//! - server-side execute of a cached `hello` (decrypt, run in a fresh instance, seal): p50;
//! - a fresh store + instantiate + run of `hello` alone, with the pooling allocator and
//!   without it (the per-execution instantiation cost);
//! - first compile of a ~1 MB component (`grep`, regex inside), cold engine, no caches;
//! - loading that component from the sealed disk cache instead.
//!
//! Needs the guests: `scripts/build-wasm.sh`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hypervisor::config::Config;
use hypervisor::engine::{CommandInput, Engine, RunLimits};
use hypervisor::server::Host;
use hypervisor_client::{ExecuteInput, Session};
use hypervisor_protocol::wire::CreateKeypairRequest;
use hypervisor_protocol::{ClientSecret, sha256};

fn wasm(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/wasm")
        .join(format!("{name}.wasm"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e} (run scripts/build-wasm.sh)", p.display()))
}

struct Stats(Vec<Duration>);

impl Stats {
    fn pct(&self, p: f64) -> Duration {
        let mut v = self.0.clone();
        v.sort();
        v[((v.len() - 1) as f64 * p).round() as usize]
    }
    fn report(&self, name: &str) {
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        println!(
            "{name:<58} n={:<5} p50={:>9.1} µs  p90={:>9.1} µs  p99={:>9.1} µs  min={:>9.1} µs",
            self.0.len(),
            us(self.pct(0.5)),
            us(self.pct(0.9)),
            us(self.pct(0.99)),
            us(self.pct(0.0)),
        );
    }
}

fn config(dir: &std::path::Path, pooling: bool, disk: bool) -> Config {
    let mut c = Config {
        data_dir: dir.to_owned(),
        ..Config::default()
    };
    c.engine.pooling_allocator = pooling;
    c.engine.disk_cache = disk;
    c
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let hello = wasm("hello");
    let grep = Arc::new(wasm("grep"));
    let iterations: usize = std::env::var("BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    println!(
        "hello component: {} bytes; grep component: {} bytes",
        hello.len(),
        grep.len()
    );

    // Server-side execute of a cached hello, through the whole pipeline.
    let tmp = tempfile::tempdir().unwrap();
    let host = Host::build(config(tmp.path(), true, true)).unwrap();
    let pipeline = host.pipeline().clone();
    let secret = ClientSecret::generate().unwrap();
    let resp = pipeline
        .create_session(&CreateKeypairRequest {
            pubkey: secret.public_key().to_hex(),
        })
        .unwrap();
    let session = Session::from_response(&secret, &resp).unwrap();
    let (req, _) = session
        .encrypt_execution(&ExecuteInput::new(&hello).args(["bench"]))
        .unwrap();
    let mut samples = Vec::with_capacity(iterations);
    rt.block_on(async {
        for _ in 0..50 {
            pipeline.execute_wasm(req.clone()).await.unwrap();
        }
        for _ in 0..iterations {
            let r = req.clone();
            let t = Instant::now();
            pipeline.execute_wasm(r).await.unwrap();
            samples.push(t.elapsed());
        }
    });
    Stats(samples).report("execute cached hello (pipeline: decrypt+run+seal)");

    // Instantiation + run alone, pooling vs on-demand allocation.
    for pooling in [true, false] {
        let tmp = tempfile::tempdir().unwrap();
        let c = config(tmp.path(), pooling, false);
        let engine =
            Engine::new(&c, None, Arc::new(hypervisor::attestation::NoAttestation)).unwrap();
        let prepared = rt
            .block_on(engine.prepare_command(sha256(&hello), Arc::new(hello.clone())))
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
        let mut samples = Vec::with_capacity(iterations);
        rt.block_on(async {
            for _ in 0..50 {
                engine.run_command(&prepared, input.clone()).await.unwrap();
            }
            for _ in 0..iterations {
                let t = Instant::now();
                engine.run_command(&prepared, input.clone()).await.unwrap();
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
    let mut load = Vec::new();
    for _ in 0..5 {
        let tmp = tempfile::tempdir().unwrap();
        let c = config(tmp.path(), true, false);
        let engine =
            Engine::new(&c, None, Arc::new(hypervisor::attestation::NoAttestation)).unwrap();
        let t = Instant::now();
        rt.block_on(engine.prepare_command(hash, grep.clone()))
            .unwrap();
        compile.push(t.elapsed());
    }
    Stats(compile).report("first compile of grep (~1 MB), cold engine");

    // The same component from the sealed disk cache (a restarted host).
    let tmp = tempfile::tempdir().unwrap();
    {
        let host = Host::build(config(tmp.path(), true, true)).unwrap();
        rt.block_on(host.pipeline().engine().prepare_command(hash, grep.clone()))
            .unwrap();
    }
    for _ in 0..5 {
        let host = Host::build(config(tmp.path(), true, true)).unwrap();
        let t = Instant::now();
        rt.block_on(host.pipeline().engine().prepare_command(hash, grep.clone()))
            .unwrap();
        load.push(t.elapsed());
        assert_eq!(host.pipeline().engine().cache_stats().compiles, 0);
    }
    Stats(load).report("load grep from the sealed disk cache (restart)");
}
