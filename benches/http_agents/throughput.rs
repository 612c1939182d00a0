//! The throughput section: the release binary and `wasmtime serve` serving the same HTTP
//! component, driven by `wrk` in interleaved rounds, then compared side by side.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use hypervisor_client::Client;
use hypervisor_protocol::{ClientSecret, sha256};

use crate::common::http::{self, deploy, get_text};
use crate::common::process::{Server, hypervisor_bin, spawn_server, start_hypervisor};
use crate::common::stats::{median, ms, us};
use crate::common::{env_or, target, wasm};
use crate::wrk::{Run, Settings, wrk};
use crate::{HTTP_TIMEOUT, write_config};

/// The throughput section (see the benchmark's header).
pub fn run() {
    let component = std::env::var_os("HTTP_BENCH_COMPONENT")
        .map_or_else(|| wasm::path("http-hello"), PathBuf::from);
    let bytes = std::fs::read(&component).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run scripts/build-programs.sh)",
            component.display()
        )
    });
    let wasmtime = std::env::var_os("WASMTIME")
        .map_or_else(|| target().join("wasmtime-cli/bin/wasmtime"), PathBuf::from);
    let Settings {
        wrk: wrk_bin,
        threads,
        connections,
        seconds,
        rounds,
        warmup,
    } = Settings::from_env();

    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let ours = start_hypervisor(&write_config(&data));
    let client = Client::new(&ours.base);
    let owner = ClientSecret::generate().unwrap();
    deploy(&client, &owner, "hello", &bytes);
    let theirs = if wasmtime.is_file() {
        let version = Command::new(&wasmtime).arg("--version").output().unwrap();
        println!("{}", String::from_utf8_lossy(&version.stdout).trim());
        Some(start_wasmtime(
            &wasmtime,
            &component,
            &tmp.path().join("wasmtime.log"),
        ))
    } else {
        println!(
            "{} is missing: no comparison (benches/http-agents.sh builds it)",
            wasmtime.display()
        );
        None
    };
    println!(
        "component {} ({} bytes, sha256 {})",
        component.display(),
        bytes.len(),
        hex::encode(sha256(&bytes))
    );
    println!(
        "hypervisor {} (pid {}), ready {:.0} ms after spawn",
        hypervisor_bin(),
        ours.pid(),
        ms(ours.ready_after)
    );
    if let Some(t) = &theirs {
        println!(
            "wasmtime serve (pid {}), ready {:.0} ms after spawn",
            t.pid(),
            ms(t.ready_after)
        );
    }

    let mut servers = vec![(
        "hypervisor /agents/hello/",
        format!("{}/agents/hello/", ours.base),
        &ours,
    )];
    if let Some(t) = &theirs {
        servers.push((
            "wasmtime serve -S cli -O pooling",
            format!("{}/", t.base),
            t,
        ));
    }
    // Both must answer the same thing.
    let agent = http::agent(HTTP_TIMEOUT);
    let answers: Vec<(u16, String)> = servers
        .iter()
        .map(|(_, url, _)| get_text(&agent, url).unwrap())
        .collect();
    for ((name, url, _), (status, body)) in servers.iter().zip(&answers) {
        println!("{name:<34} GET {url} -> {status} {body:?}");
        assert_eq!(*status, 200, "{name} did not answer 200");
    }
    assert!(
        answers.iter().all(|a| a.1 == answers[0].1),
        "the servers answered different bodies"
    );

    for (c, t, secs, title) in (rounds > 0)
        .then_some([
            (connections, threads, seconds, "throughput"),
            (1, 1, seconds / 2, "one connection"),
        ])
        .into_iter()
        .flatten()
    {
        if c == 1 && std::env::var("HTTP_BENCH_SKIP_SINGLE").is_ok() {
            continue;
        }
        for (_, url, server) in &servers {
            wrk(&wrk_bin, url, t, c, warmup, server);
        }
        let mut sides: Vec<Side> = servers
            .iter()
            .map(|(name, url, _)| Side {
                name,
                url: url.clone(),
                runs: Vec::new(),
            })
            .collect();
        for _ in 0..rounds {
            for (side, (_, _, server)) in sides.iter_mut().zip(&servers) {
                let run = wrk(&wrk_bin, &side.url, t, c, secs.max(1), server);
                side.runs.push(run);
            }
        }
        print_runs(
            &format!(
                "{title}: wrk -t{t} -c{c} -d{}s --latency (keep-alive), {rounds} rounds interleaved, medians",
                secs.max(1)
            ),
            &sides,
        );
    }
    // For profiling: both servers stay up, with the agent deployed, for this long.
    let hold: u64 = env_or("HTTP_BENCH_HOLD_SECONDS", 0);
    if hold > 0 {
        for (name, url, server) in &servers {
            println!("holding {name}: {url} (pid {})", server.pid());
        }
        std::thread::sleep(Duration::from_secs(hold));
    }
    drop(theirs);
    ours.stop();
}

/// Starts `wasmtime serve -S cli -O pooling-allocator` on a free loopback port.
fn start_wasmtime(wasmtime: &Path, component: &Path, log: &Path) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    spawn_server(
        Command::new(wasmtime)
            .args(["serve", "-S", "cli", "-O", "pooling-allocator"])
            .args(["--max-instance-reuse-count", "1"])
            .arg("--addr")
            .arg(format!("127.0.0.1:{port}"))
            .arg(component)
            .stdout(std::fs::File::create(log).unwrap())
            .stderr(Stdio::piped()),
        "Serving HTTP on http://",
        "wasmtime serve",
    )
}

/// One server's runs at one setting.
struct Side {
    name: &'static str,
    url: String,
    runs: Vec<Run>,
}

/// Prints the medians of each side's runs, and the ratios when there are two sides.
fn print_runs(title: &str, sides: &[Side]) {
    println!("\n{title}");
    println!(
        "{:<34} {:>11} {:>11} {:>11} {:>12} {:>8}  runs (req/s)",
        "server", "req/s (med)", "p50 ms", "p99 ms", "CPU µs/req", "errors"
    );
    for s in sides {
        let runs: Vec<String> = s.runs.iter().map(|r| format!("{:.0}", r.rps)).collect();
        println!(
            "{:<34} {:>11.0} {:>11.3} {:>11.3} {:>12.1} {:>8}  {}",
            s.name,
            median(s.runs.iter().map(|r| r.rps).collect()),
            ms(median(s.runs.iter().map(|r| r.p50).collect())),
            ms(median(s.runs.iter().map(|r| r.p99).collect())),
            us(median(s.runs.iter().map(|r| r.cpu_per_request).collect())),
            s.runs.iter().map(|r| r.errors).sum::<u64>(),
            runs.join(" "),
        );
    }
    if let [ours, theirs] = sides {
        let o = median(ours.runs.iter().map(|r| r.rps).collect());
        let t = median(theirs.runs.iter().map(|r| r.rps).collect());
        let oc = median(ours.runs.iter().map(|r| r.cpu_per_request).collect());
        let tc = median(theirs.runs.iter().map(|r| r.cpu_per_request).collect());
        let per_round: Vec<String> = ours
            .runs
            .iter()
            .zip(&theirs.runs)
            .map(|(a, b)| format!("{:.2}", a.rps / b.rps))
            .collect();
        println!(
            "ratio hypervisor / wasmtime serve: req/s {:.2}x (per round: {}); CPU per request {:.2}x",
            o / t,
            per_round.join(" "),
            us(oc) / us(tc),
        );
    }
}
