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
//! 3. **Mixed** (`mixed`): every route of 1. at once on one server with the defaults,
//!    `LOAD_MIX_THREADS` (2) client threads each, for `LOAD_SECONDS`; the server's memory
//!    idle before, under load (target ≤ 400 MiB) and `LOAD_MIX_AFTER` (20) s after.
//! 4. **Seed** (`seed`): the first execution of a 1 MB program (`grep.wasm`, 1.05 MB, made
//!    unique so nothing is cached): compile + run, against the seed target of 30 s.
//! 5. **Soak** (`soak`): the mix of 3. with `LOAD_SOAK_THREADS` (1) thread per route for
//!    `LOAD_SOAK_SECONDS` (600), at most 10,000 sessions: the server's peak memory per minute
//!    and its growth from the second minute to the last (target: none).
//!
//! Reference, not measured here: a sandboxed container service takes 100–200 ms per execution
//! (cold container per request); compare with the execute route's p50.
//!
//! Environment: `HYPERVISOR_BIN`, `LOAD_SECONDS`, `LOAD_CONNECTIONS`, `LOAD_CONCURRENT` (1000),
//! `LOAD_SLEEP_MS`, `LOAD_MIX_THREADS`, `LOAD_MIX_AFTER`, `LOAD_SOAK_THREADS`,
//! `LOAD_SOAK_SECONDS`, `LOAD_ONLY` (comma-separated subset of
//! `routes,mixed,concurrent,seed,soak`; all but `soak` by default),
//! `LOAD_ROUTES` (comma-separated subset of the route names printed).

#[path = "../common/mod.rs"]
mod common;
mod concurrent;
mod drive;
mod mixed;
mod requests;
mod routes;
mod seed;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{target, wasm};

/// The configuration: loopback, any port, the plug-ins from `target/wasm`, a plug-in cache
/// kept between runs (CPython compiles once), plus `extra` TOML.
fn write_config(data_dir: &Path, extra: &str) -> PathBuf {
    let cache = target().join("bench-data/load-plugin-cache");
    std::fs::create_dir_all(&cache).unwrap();
    let w = |n: &str| wasm::path(n).display().to_string();
    common::process::write_config(
        data_dir,
        &format!(
            "plugin_cache_dir = {cache:?}\n\
             [policy]\ncomponent = {policy:?}\n[python]\ncomponent = {python:?}\n\
             [payments]\nenabled = true\ncomponent = {payments:?}\n[payments.price]\n\
             pay_to = \"0x209693Bc6afc0C5328bA36FaF03C514EF312287C\"\n\
             [attestation]\nprovider = \"simulated\"\n{extra}",
            cache = cache.display().to_string(),
            policy = w("policy-python"),
            python = w("policy-python"),
            payments = w("payments"),
        ),
    )
}

/// The HTTP client of every request this benchmark makes (an execution may queue for long).
fn agent() -> ureq::Agent {
    common::http::agent(Duration::from_secs(120))
}

fn main() {
    common::run_sections(
        "LOAD_ONLY",
        &[
            ("routes", routes::run),
            ("concurrent", concurrent::run),
            ("mixed", mixed::mixed),
            ("seed", seed::run),
            ("soak", mixed::soak),
        ],
    );
}
