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
//! 4. **Calls** (`calls`): a local agent-to-agent call over invoking the callee directly,
//!    in-process through the HTTP front, unpaid (the overhead at p50 and p99) and paid
//!    (`verify-only` payments: the 402, the spend, the signature, the paid retry). See
//!    `calls.rs`.
//! 5. **TLS** (`tls`): HTTPS against plain HTTP on the same server, keep-alive and a new
//!    connection per request. See `tls.rs`.
//! 6. **Fronts** (`fronts`): a handler agent as an MCP tool and as an A2A agent against its
//!    native invocation: latency and throughput. See `fronts.rs`.
//! 7. **Backends** (`backends`) and **Catalogue** (`catalogue`): a handler agent on SQLite
//!    and on PostgreSQL, and a catalogue of `BENCH_CATALOGUE` (100 000) agents on each. See
//!    `backends.rs`.
//!
//! 8. **State** (`state`) and **JavaScript** (`js`): see `state.rs` and `javascript.rs`.
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
//! - `BENCH_ONLY`: a comma-separated subset of
//!   `throughput,handler,restart,calls,tls,fronts,backends,catalogue,state,js`;
//! - `BENCH_KV` (2000): `wasi:keyvalue` calls timed inside the guest (`state`);
//! - `HTTP_BENCH_SKIP_SINGLE`: no one-connection runs; `HTTP_BENCH_HOLD_SECONDS`: keep both
//!   servers up this long after the runs (`HTTP_BENCH_ROUNDS=0` for none), printing their URLs
//!   and pids, for profiling them under a load of your own.
//!
//! Needs `scripts/build-programs.sh` (for `target/wasm/`).

mod backends;
mod calls;
#[path = "../common/mod.rs"]
mod common;
mod fronts;
mod handler;
mod javascript;
mod restart;
mod state;
mod storage;
mod throughput;
mod tls;
mod wrk;

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The handler agent's event.
const EVENT_TEXT: &str = "The quick brown fox jumps over the lazy dog. Is it quick? It is!";

/// How long any one HTTP request of this benchmark may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Writes the benchmark configuration for `data_dir`: loopback, any port, policy and Python
/// off (start-up must not compile CPython), everything else at its defaults.
fn write_config(data_dir: &Path) -> PathBuf {
    common::process::write_config(
        data_dir,
        "\n[policy]\nenabled = false\n\n[python]\nenabled = false\n",
    )
}

fn main() {
    common::run_sections(
        "BENCH_ONLY",
        &[
            ("throughput", throughput::run),
            ("handler", handler::run),
            ("restart", restart::run),
            ("calls", calls::run),
            ("tls", tls::run),
            ("fronts", fronts::run),
            ("backends", backends::run_backends),
            ("catalogue", backends::run_catalogue),
            ("state", state::run),
            ("js", javascript::run),
        ],
    );
}
