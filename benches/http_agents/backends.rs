//! The storage backends (`backends`, `catalogue`), the release binary over loopback.
//!
//! 1. **Backends** (`backends`): the same handler agent (`text-stats`) on a host with SQLite
//!    and on a host with PostgreSQL (one replica; a throwaway server from the installed
//!    binaries, `fsync = off` as in the tests, so the figure is the host's cost, not the
//!    disk's): latency on one keep-alive connection (the two interleaved request by request),
//!    then `FRONT_CLIENTS` (8) clients for `FRONT_SECONDS` (5) s on each: req/s and p99. On
//!    PostgreSQL, the database's transactions (`pg_stat_database.xact_commit`) per invocation:
//!    the round trips an invocation costs (target: none before the run; the record is written
//!    by the group-commit writer, many invocations per transaction). With `BASELINE_BIN`, an
//!    older build is measured the same way in the same run (its own data directory and
//!    database), and each build's PostgreSQL cost over SQLite is printed.
//! 2. **Catalogue** (`catalogue`): `BENCH_CATALOGUE` (100 000) agents seeded straight into each
//!    backend's tables (one real deployed `text-stats` copied under as many names), then the
//!    host restarted on them: time to listening (the search index is built before), resident
//!    memory, `POST /search` p50 for words every agent matches, `GET /agents` first and deep
//!    pages, and an invocation of a seeded agent (targets: search ≤ 10 ms p50, restart ≤ 2 s,
//!    RSS ≤ 300 MiB).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hypervisor::storage::postgres::scratch::ScratchPostgres;
use hypervisor_client::Client;
use hypervisor_protocol::ClientSecret;
use serde_json::json;

use crate::common::http::{agent, deploy, post_json};
use crate::common::process::{
    Server, hypervisor_bin, rss_of, start_hypervisor, start_hypervisor_bin,
    write_config as config_at,
};
use crate::common::stats::{ms, percentile, report, us};
use crate::common::{self, wasm};
use crate::{EVENT_TEXT, HTTP_TIMEOUT};

/// The configuration of a benchmark host on `database` (SQLite when `None`).
pub(crate) fn config(data_dir: &Path, database: Option<&str>) -> std::path::PathBuf {
    let storage = database.map_or(String::new(), |url| {
        format!("\n[storage]\ndatabase = {url:?}\npool_size = 16\n")
    });
    config_at(
        data_dir,
        &format!("\n[policy]\nenabled = false\n\n[python]\nenabled = false\n{storage}"),
    )
}

/// Sends one request and checks it is answered 200; its time.
fn send(http: &ureq::Agent, url: &str, body: &str) -> Duration {
    let t = Instant::now();
    let mut resp = post_json(http, url, &[])
        .send(body.as_bytes())
        .expect("request");
    let text = resp.body_mut().read_to_string().expect("body");
    let elapsed = t.elapsed();
    assert_eq!(resp.status(), 200, "{text}");
    elapsed
}

fn get(http: &ureq::Agent, url: &str) -> Duration {
    let t = Instant::now();
    let mut resp = http.get(url).call().expect("request");
    let _ = resp.body_mut().read_to_string();
    let elapsed = t.elapsed();
    assert_eq!(resp.status(), 200);
    elapsed
}

/// Transactions committed in database `db` so far.
fn commits(pg: &ScratchPostgres, db: &str) -> u64 {
    pg.psql(
        db,
        &format!("SELECT xact_commit FROM pg_stat_database WHERE datname = '{db}'"),
    )
    .expect("psql")
    .trim()
    .parse()
    .expect("a count")
}

/// The backends section (see the module's doc).
pub fn run_backends() {
    let pg = match ScratchPostgres::start() {
        Ok(pg) => pg,
        Err(why) => {
            println!("backends: skipped ({why})");
            return;
        }
    };
    let tmp = tempfile::tempdir().unwrap();
    // (label, binary, database): this build on SQLite and on PostgreSQL, and with
    // BASELINE_BIN an older build the same way (its own data directory and database).
    let mut hosts = vec![
        ("SQLite".to_string(), hypervisor_bin(), None),
        ("PostgreSQL".to_string(), hypervisor_bin(), Some("bench")),
    ];
    if let Ok(baseline) = std::env::var("BASELINE_BIN") {
        hosts.push(("SQLite, baseline".into(), baseline.clone(), None));
        hosts.push(("PostgreSQL, baseline".into(), baseline, Some("baseline")));
    }
    let component = wasm::read("text-stats");
    let servers: Vec<Server> = hosts
        .iter()
        .enumerate()
        .map(|(i, (_, bin, db))| {
            let url = db.map(|db| {
                pg.create_database(db).expect("createdb");
                pg.url(db)
            });
            let server = start_hypervisor_bin(
                bin,
                &config(&tmp.path().join(format!("host-{i}")), url.as_deref()),
            );
            deploy(
                &Client::new(&server.base),
                &ClientSecret::generate().unwrap(),
                "stats",
                &component,
            );
            server
        })
        .collect();
    let body = json!({ "event": { "text": EVENT_TEXT } }).to_string();
    let urls: Vec<String> = servers
        .iter()
        .map(|s| format!("{}/agents/stats/invoke", s.base))
        .collect();
    let http = agent(HTTP_TIMEOUT);
    let iterations = common::iterations(2000);
    let mut samples = vec![Vec::new(); urls.len()];
    let before = commits(&pg, "bench");
    for i in 0..iterations + 100 {
        for (url, out) in urls.iter().zip(samples.iter_mut()) {
            let elapsed = send(&http, url, &body);
            if i >= 100 {
                out.push(elapsed);
            }
        }
    }
    // Let the group-commit writer commit the last records before counting.
    std::thread::sleep(Duration::from_millis(200));
    let transactions = commits(&pg, "bench") - before;
    println!();
    let p50: Vec<Duration> = hosts
        .iter()
        .zip(samples)
        .map(|((name, _, _), s)| report(&format!("handler invoke, one connection, {name}"), s))
        .collect();
    for (i, pair) in p50.chunks(2).enumerate() {
        println!(
            "{:<58} +{:.1} µs at p50",
            format!(
                "PostgreSQL over SQLite{}",
                if i == 0 { ", this build" } else { ", baseline" }
            ),
            us(pair[1]) - us(pair[0])
        );
    }
    println!(
        "{:<58} {:.3} transactions per invocation ({} for {} invocations)",
        "PostgreSQL round trips, this build",
        transactions as f64 / (iterations + 100) as f64,
        transactions,
        iterations + 100
    );

    let clients = common::env_or("FRONT_CLIENTS", 8u64);
    let seconds = common::env_or("FRONT_SECONDS", 5u64);
    println!("\nthroughput, {clients} keep-alive clients, {seconds} s each:");
    for ((name, _, _), url) in hosts.iter().zip(&urls) {
        let (rps, latencies) = load(url, &body, clients, seconds);
        println!(
            "{:<58} {:>8.0} req/s  p50={:>8.1} µs  p99={:>8.1} µs",
            format!("handler invoke, {name}"),
            rps,
            us(percentile(&latencies, 0.5)),
            us(percentile(&latencies, 0.99)),
        );
    }
    for server in servers {
        server.stop();
    }
}

/// `clients` threads sending `body` to `url` for `seconds`: req/s and the sorted latencies.
fn load(url: &str, body: &str, clients: u64, seconds: u64) -> (f64, Vec<Duration>) {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (stop, done, url, body) = (
                stop.clone(),
                done.clone(),
                url.to_string(),
                body.to_string(),
            );
            std::thread::spawn(move || {
                let http = agent(HTTP_TIMEOUT);
                let mut latencies = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    latencies.push(send(&http, &url, &body));
                    done.fetch_add(1, Ordering::Relaxed);
                }
                latencies
            })
        })
        .collect();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    let mut latencies: Vec<Duration> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("client thread"))
        .collect();
    latencies.sort();
    let rps = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    (rps, latencies)
}

/// Copies the deployed agent `template` under `n` names (`text-stats-1` …), straight into the
/// tables, with SQL in `run` (one statement per table, one transaction).
fn seed_sql(n: u64, series: &str) -> [String; 2] {
    [
        format!(
            "INSERT INTO agents (name, owner_key, description, tags, public, latest_version,
               price_amount, created_at, updated_at, expires_at, charge, content_type, grants)
             SELECT 'text-stats-' || i, a.owner_key, a.description, a.tags, a.public, 1,
               NULL, a.created_at, a.updated_at, NULL, a.charge, NULL, a.grants
             FROM {series}, agents a WHERE a.name = 'template'"
        ),
        format!(
            "INSERT INTO agent_versions (name, version, code_hash, kind, world, size, limits,
               created_at)
             SELECT 'text-stats-' || i, 1, v.code_hash, v.kind, v.world, v.size, v.limits,
               v.created_at
             FROM {series}, agent_versions v WHERE v.name = 'template'"
        ),
    ]
    .map(|s| s.replace("{n}", &n.to_string()))
}

/// The catalogue section (see the module's doc).
pub fn run_catalogue() {
    let n = common::env_or("BENCH_CATALOGUE", 100_000u64);
    let component = wasm::read("text-stats");
    let owner = ClientSecret::generate().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    println!();

    // SQLite: the template deployed through the host, then the copies in one transaction.
    let data = tmp.path().join("sqlite");
    let server = start_hypervisor(&config(&data, None));
    deploy(&Client::new(&server.base), &owner, "template", &component);
    server.stop();
    {
        let conn = rusqlite::Connection::open(data.join("hypervisor.sqlite")).unwrap();
        let series = format!(
            "(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) SELECT i FROM s)"
        );
        let t = Instant::now();
        let tx = conn.unchecked_transaction().unwrap();
        for sql in seed_sql(n, &series) {
            tx.execute_batch(&sql).unwrap();
        }
        tx.commit().unwrap();
        println!(
            "catalogue: {n} agents seeded into SQLite in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    measure("SQLite", n, &config(&data, None));

    // PostgreSQL.
    let pg = match ScratchPostgres::start() {
        Ok(pg) => pg,
        Err(why) => {
            println!("catalogue on PostgreSQL: skipped ({why})");
            return;
        }
    };
    pg.create_database("catalogue").expect("createdb");
    let url = pg.url("catalogue");
    let data = tmp.path().join("pg");
    let server = start_hypervisor(&config(&data, Some(&url)));
    deploy(&Client::new(&server.base), &owner, "template", &component);
    server.stop();
    let t = Instant::now();
    let series = "generate_series(1, {n}) AS s(i)";
    for sql in seed_sql(n, series) {
        pg.psql("catalogue", &sql).expect("seed");
    }
    pg.psql("catalogue", "ANALYZE").expect("analyze");
    println!(
        "catalogue: {n} agents seeded into PostgreSQL in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    measure("PostgreSQL", n, &config(&data, Some(&url)));
}

/// Restarts the host on a seeded catalogue and measures it.
fn measure(backend: &str, n: u64, config: &Path) {
    let server: Server = start_hypervisor(config);
    println!(
        "{:<58} {:>9.1} ms (target ≤ 2000 ms)",
        format!("restart to listening, {n} agents, {backend}"),
        ms(server.ready_after)
    );
    let http = agent(HTTP_TIMEOUT);
    // Warm-up, then the figures.
    let search = format!("{}/search", server.base);
    let query = json!({ "query": "text statistics", "limit": 10 }).to_string();
    for _ in 0..20 {
        send(&http, &search, &query);
    }
    let samples: Vec<Duration> = (0..200).map(|_| send(&http, &search, &query)).collect();
    report(
        &format!("search matching all {n} agents, {backend}"),
        samples,
    );
    let first: Vec<Duration> = (0..200)
        .map(|_| get(&http, &format!("{}/agents?limit=100", server.base)))
        .collect();
    report(&format!("GET /agents first page (100), {backend}"), first);
    let deep: Vec<Duration> = (0..200)
        .map(|_| {
            get(
                &http,
                &format!("{}/agents?limit=100&after=text-stats-9", server.base),
            )
        })
        .collect();
    report(&format!("GET /agents deep page (100), {backend}"), deep);
    let invoke = format!("{}/agents/text-stats-{}/invoke", server.base, n / 2);
    let body = json!({ "event": { "text": EVENT_TEXT } }).to_string();
    send(&http, &invoke, &body);
    println!(
        "{:<58} {:>9.1} MiB (target ≤ 300 MiB)",
        format!("resident memory after these, {backend}"),
        rss_of(server.pid()) as f64 / (1 << 20) as f64
    );
    server.stop();
}
