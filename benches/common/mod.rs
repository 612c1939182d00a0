//! Helpers shared by the benchmarks: runtime, sample counts, paths and percentile reports.
// Each benchmark uses a subset of these.
#![allow(dead_code)]

pub mod process;

use std::path::PathBuf;
use std::time::Duration;

/// The workspace's `target/` directory (built components are in `target/wasm/`).
pub fn target() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target")
}

/// Unix seconds now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Prints p50/p90/p99 of `samples` on one line; returns the p50.
pub fn report(name: &str, mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let at = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{name:<58} n={:<5} p50={:>9.1} µs  p90={:>9.1} µs  p99={:>9.1} µs",
        samples.len(),
        us(at(0.5)),
        us(at(0.9)),
        us(at(0.99)),
    );
    at(0.5)
}

/// The multi-threaded runtime every benchmark drives the host with.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Samples per measurement: `BENCH_ITERATIONS`, else `default`.
pub fn iterations(default: usize) -> usize {
    std::env::var("BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
