//! The mixed and soak sections: every main route at once on one server, its resident memory
//! watched under load, after it, and over a long run.

use std::time::Duration;

use crate::common::process::{Server, rss_of, start_hypervisor};
use crate::common::stats::mib;
use crate::common::{env_or, wanted};
use crate::drive::{Drive, drive, header, memory};
use crate::requests::{Route, routes};
use crate::write_config;

/// The mixed section: the release host with its defaults, `LOAD_MIX_THREADS` (2) client
/// threads per route, every route at once for `LOAD_SECONDS` (60); then idle for
/// `LOAD_MIX_AFTER` (20) s. Reports each route and the server's memory idle before, under load,
/// and after.
pub fn mixed() {
    let seconds = env_or("LOAD_SECONDS", 60u64);
    let threads = env_or("LOAD_MIX_THREADS", 2usize);
    let after = env_or("LOAD_MIX_AFTER", 20u64);
    let tmp = tempfile::tempdir().unwrap();
    let server = start_hypervisor(&write_config(&tmp.path().join("data"), ""));
    let (idle, d) = all_at_once(&server, threads, seconds, "mixed", "default configuration");
    std::thread::sleep(Duration::from_secs(after));
    let (early, peak, end, _) = memory(&d.rss);
    println!(
        "mixed: server RSS idle before {:.0} MiB; under load {early:.0} at 10 %, peak {peak:.0}, end {end:.0}; {after} s after {:.0} MiB (target: ≤ 400 MiB under load)",
        mib(idle),
        mib(rss_of(server.pid()))
    );
}

/// The soak section: every route at once, `LOAD_SOAK_THREADS` (1) client thread each, as fast
/// as the server answers, for `LOAD_SOAK_SECONDS` (600). The session table holds 10,000
/// sessions on this server (`sessions.max_sessions`; 100,000 by default): the key-creation
/// route fills it within the first minute and from then on evicts its least recently used
/// sessions (never the other routes' sessions, which are used all the time), which is the
/// steady state a long-running host reaches anyway; with the default bound it takes the whole
/// run to fill (~1.2 KB a session), and that bounded growth would hide a leak. Reports the
/// server's peak memory in each minute, the growth from the second minute to the last, and the
/// slope of a least-squares line through minutes 2 to the end.
pub fn soak() {
    if std::env::var_os("LOAD_ONLY").is_none() {
        println!("soak: skipped by default (10 minutes): LOAD_ONLY=soak runs it");
        return;
    }
    let seconds = env_or("LOAD_SOAK_SECONDS", 600u64);
    let threads = env_or("LOAD_SOAK_THREADS", 1usize);
    let tmp = tempfile::tempdir().unwrap();
    let server = start_hypervisor(&write_config(
        &tmp.path().join("data"),
        "[sessions]\nmax_sessions = 10000\n",
    ));
    let (_, d) = all_at_once(&server, threads, seconds, "soak", "at most 10,000 sessions");
    let minutes: Vec<f64> = d
        .rss
        .chunks(60)
        .map(|m| mib(m.iter().copied().max().unwrap_or(0)))
        .collect();
    let list: Vec<String> = minutes.iter().map(|m| format!("{m:.0}")).collect();
    println!("soak: server peak RSS per minute (MiB): {}", list.join(" "));
    if minutes.len() < 3 {
        println!("soak: too short to judge growth (3 minutes at least)");
        return;
    }
    let settled = &minutes[1..];
    let (first, last) = (settled[0], settled[settled.len() - 1]);
    let grown = last - first;
    let flat = grown <= (first * 0.05).max(16.0);
    println!(
        "soak: minute 2 → last: {first:.0} → {last:.0} MiB ({grown:+.1} MiB); slope {:+.2} MiB/minute; {}",
        slope(settled),
        if flat { "no growth" } else { "GREW" }
    );
}

/// Deploys what the routes `LOAD_ROUTES` names (all by default) need on `server`, waits 2 s,
/// drives them all at once with `threads` client threads each for `seconds`, and prints one
/// line per route (and its first error, if any) under a title naming `section` and `setting`.
/// Returns the server's resident memory just before the load, and the drive.
fn all_at_once(
    server: &Server,
    threads: usize,
    seconds: u64,
    section: &str,
    setting: &str,
) -> (u64, Drive) {
    let routes: Vec<Route> = routes(&server.base)
        .into_iter()
        .filter(|r| wanted("LOAD_ROUTES", r.path()))
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let idle = rss_of(server.pid());
    println!(
        "{section}: {} routes at once, {threads} client thread(s) (keep-alive) each, {seconds} s, {setting}",
        routes.len()
    );
    let load: Vec<(&Route, usize)> = routes.iter().map(|r| (r, threads)).collect();
    let d = drive(server, &load, Duration::from_secs(seconds));
    println!("{}", header());
    for (route, seen) in routes.iter().zip(&d.seen) {
        println!("{}", seen.line(route.name, d.wall));
        if let Some(e) = &seen.first_error {
            println!("    first error: {e}");
        }
    }
    (idle, d)
}

/// The slope of the least-squares line through `ys` at x = 0, 1, 2, ….
fn slope(ys: &[f64]) -> f64 {
    let n = ys.len() as f64;
    let mean_x = (n - 1.0) / 2.0;
    let mean_y = ys.iter().sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for (i, y) in ys.iter().enumerate() {
        let dx = i as f64 - mean_x;
        num += dx * (y - mean_y);
        den += dx * dx;
    }
    if den == 0.0 { 0.0 } else { num / den }
}
