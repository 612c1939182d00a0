//! The routes section: each main route driven at saturation, one after the other, with the
//! server's resident memory watched throughout.

use std::time::Duration;

use crate::common::process::{Server, start_hypervisor};
use crate::common::{env_or, wanted};
use crate::drive::{drive, header, memory};
use crate::requests::{Route, routes};
use crate::write_config;

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
    println!("{}   RSS10%   peak    end  memory", header());
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
    let d = drive(
        server,
        &[(route, connections)],
        Duration::from_secs(seconds),
    );
    let (early, peak, end, flat) = memory(&d.rss);
    let seen = &d.seen[0];
    println!(
        "{}   {early:>6.0} {peak:>6.0} {end:>6.0}  {}",
        seen.line(route.name, d.wall),
        if flat { "flat" } else { "GREW" },
    );
    if let Some(e) = &seen.first_error {
        println!("    first error: {e}");
    }
}
