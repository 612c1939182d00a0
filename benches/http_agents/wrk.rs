//! One `wrk` run against a server: requests per second, latency percentiles, errors, and the
//! server's CPU time per request over the run.

use std::process::Command;
use std::time::Duration;

use crate::common::process::Server;

/// One wrk run.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    pub rps: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub requests: u64,
    pub errors: u64,
    /// Server CPU time per request.
    pub cpu_per_request: Duration,
}

/// The wrk settings of a section, from the environment: `WRK` (default `wrk`),
/// `HTTP_BENCH_THREADS` (2), `HTTP_BENCH_CONNECTIONS` (32), `HTTP_BENCH_SECONDS` (10),
/// `HTTP_BENCH_ROUNDS` (3), `HTTP_BENCH_WARMUP_SECONDS` (3).
pub struct Settings {
    pub wrk: String,
    pub threads: u32,
    pub connections: u32,
    pub seconds: u32,
    pub rounds: usize,
    pub warmup: u32,
}

impl Settings {
    pub fn from_env() -> Self {
        use crate::common::env_or;
        Self {
            wrk: std::env::var("WRK").unwrap_or_else(|_| "wrk".into()),
            threads: env_or("HTTP_BENCH_THREADS", 2),
            connections: env_or("HTTP_BENCH_CONNECTIONS", 32),
            seconds: env_or("HTTP_BENCH_SECONDS", 10),
            rounds: env_or("HTTP_BENCH_ROUNDS", 3),
            warmup: env_or("HTTP_BENCH_WARMUP_SECONDS", 3),
        }
    }
}

/// A wrk duration (`812.00us`, `1.20ms`, `2.01s`, `1.00m`).
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

/// Runs the `wrk` binary with `--latency` on `url` with `threads` and `connections` for
/// `seconds`, and reads `server`'s CPU time before and after.
pub fn wrk(
    wrk: &str,
    url: &str,
    threads: u32,
    connections: u32,
    seconds: u32,
    server: &Server,
) -> Run {
    wrk_with(wrk, url, threads, connections, seconds, server, &[])
}

/// [`wrk`] with extra request headers (`Name: value`), e.g. `Connection: close` for a new
/// connection per request.
pub fn wrk_with(
    wrk: &str,
    url: &str,
    threads: u32,
    connections: u32,
    seconds: u32,
    server: &Server,
    headers: &[&str],
) -> Run {
    let cpu = server.cpu_time();
    let out = Command::new(wrk)
        .args(headers.iter().flat_map(|h| ["-H", h]))
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
