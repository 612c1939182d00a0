//! The concurrent section: many long executions released together against a server allowed
//! that many at once; how many succeed, and what the server holds meanwhile.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use hypervisor_client::{Client, ExecuteInput};
use hypervisor_protocol::ClientSecret;
use hypervisor_protocol::wire::Limits;

use crate::common::http::{get_text, post_text};
use crate::common::process::{rss_of, sample_rss, start_hypervisor};
use crate::common::stats::mib;
use crate::common::{env_or, wasm};
use crate::{agent, write_config};

/// The concurrent section (see the benchmark's header).
pub fn run() {
    let n = env_or("LOAD_CONCURRENT", 1000usize);
    let sleep_ms = env_or("LOAD_SLEEP_MS", 2000u64);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = start_hypervisor(&write_config(
        &data,
        &format!("[engine]\nmax_concurrent_executions = {n}\n"),
    ));
    // Sessions and encrypted requests first, so the n requests leave together.
    let bodies = sleep_requests(&server.base, n, sleep_ms);
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
                    let (status, text) = post_text(&agent, &url, &body)?;
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

/// `n` request bodies, each an execution of `sleep <sleep_ms>` encrypted to a session of its
/// own on `base`, with time to spare in its limits.
fn sleep_requests(base: &str, n: usize, sleep_ms: u64) -> Vec<Vec<u8>> {
    let program = wasm::read("sleep");
    (0..n)
        .map(|_| {
            let session = Client::new(base)
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
        .collect()
}

/// The value of `series` in the server's `/metrics`.
fn metric(base: &str, series: &str) -> f64 {
    let (_, text) = get_text(&agent(), &format!("{base}/metrics")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}
