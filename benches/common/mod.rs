//! Helpers shared by the benchmarks: runtime, sample counts, paths and environment options.
//! Submodules: the built components ([`wasm`]), an in-process host ([`in_process`]), a server
//! process ([`process`]), HTTP to it ([`http`]), and percentiles and units ([`stats`]).
// Each benchmark uses a subset of these.
#![allow(dead_code)]

pub mod http;
pub mod in_process;
pub mod process;
pub mod stats;
pub mod wasm;

use std::path::PathBuf;

/// The server's allocator (`host/src/main.rs`), so that the in-process benchmarks measure the
/// host as it runs rather than with the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

/// The multi-threaded runtime every benchmark drives the host with.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Samples per measurement: `BENCH_ITERATIONS`, else `default`.
pub fn iterations(default: usize) -> usize {
    env_or("BENCH_ITERATIONS", default)
}

/// The environment variable `name` parsed, else `default` (unset or not understood).
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Whether the part `name` is to run: `var` unset, or `name` in its comma-separated list.
pub fn wanted(var: &str, name: &str) -> bool {
    std::env::var(var).map_or(true, |v| v.split(',').any(|s| s.trim() == name))
}

/// Runs, in order, each of the named `sections` that `var` wants (see [`wanted`]).
pub fn run_sections(var: &str, sections: &[(&str, fn())]) {
    for (name, run) in sections {
        if wanted(var, name) {
            run();
        }
    }
}
