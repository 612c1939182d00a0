//! The routes section: each main route driven at saturation, one after the other, with the
//! server's resident memory watched throughout.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::process::{Server, sample_rss, start_hypervisor};
use crate::common::stats::{mib, ms, percentile};
use crate::common::{env_or, wanted};
use crate::requests::{Request, Route, routes};
use crate::{agent, write_config};

/// The routes section (see the benchmark's header).
pub fn run() {
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
        if !wanted("LOAD_ROUTES", route.path()) {
            continue;
        }
        if route.name.contains("create_keypair") {
            // Thousands of sessions a second: with the default lifetime (an hour) the table
            // (100 000) fills within a minute and then evicts its least recently used sessions
            // for every new one. This run uses its own server with 30 s sessions, the setting
            // for such churn, so the figures show creation, not eviction.
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

/// Drives `route` on `server` from `connections` keep-alive client threads for `seconds`, and
/// prints one line: requests, errors, req/s, p50/p99, and the server's resident memory.
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
        ms(percentile(&all, 0.5)),
        ms(percentile(&all, 0.99)),
        mib(early),
        mib(peak),
        mib(end),
        if flat { "flat" } else { "GREW" },
    );
    if let Some(e) = first_error.lock().unwrap().take() {
        println!("    first error: {e}");
    }
}
