//! The TLS section (`tls`): HTTPS against plain HTTP on the same release binary, which listens
//! on both (`[tls]`, the self-generated certificate, TLS 1.3). `wrk` drives, interleaved
//! (plain, TLS, plain, TLS, ...) after a warm-up of each:
//! - keep-alive on `/ping` (the HTTP front alone) and on the `hello` HTTP agent (a fresh
//!   instance per request): the cost of TLS on a busy connection (target: HTTPS ≥ 0.8× HTTP);
//! - `Connection: close` on `/ping`: a new connection, so for HTTPS a new TLS handshake (P-256
//!   ECDHE and an ECDSA signature), per request: new TLS connections per second.
//!
//! Each line gives the medians and the server's CPU time per request.

use hypervisor_client::Client;
use hypervisor_protocol::ClientSecret;

use crate::common::http::deploy;
use crate::common::process::{start_hypervisor, write_config};
use crate::common::stats::{median, ms, us};
use crate::common::wasm;
use crate::wrk::{Run, Settings, wrk_with};

/// The TLS section (see the module's doc).
pub fn run() {
    let w = Settings::from_env();

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(
        &tmp.path().join("data"),
        &format!(
            "\n[policy]\nenabled = false\n\n[python]\nenabled = false\n\n[tls]\nlisten = \"127.0.0.1:{port}\"\n"
        ),
    );
    let server = start_hypervisor(&config);
    let plain = server.base.clone();
    let secure = format!("https://127.0.0.1:{port}");
    let bytes = std::fs::read(wasm::path("http-hello")).expect("run scripts/build-programs.sh");
    deploy(
        &Client::new(&plain),
        &ClientSecret::generate().unwrap(),
        "hello",
        &bytes,
    );
    println!(
        "\nTLS: {plain} and {secure} (one process, pid {})",
        server.pid()
    );

    let cases: [(&str, &str, &[&str]); 3] = [
        ("/ping, keep-alive", "/ping", &[]),
        ("/agents/hello/, keep-alive", "/agents/hello/", &[]),
        (
            "/ping, a new connection per request",
            "/ping",
            &["Connection: close"],
        ),
    ];
    for (title, path, headers) in cases {
        let urls = [format!("{plain}{path}"), format!("{secure}{path}")];
        for url in &urls {
            wrk_with(
                &w.wrk,
                url,
                w.threads,
                w.connections,
                w.warmup,
                &server,
                headers,
            );
        }
        let mut runs: [Vec<Run>; 2] = [Vec::new(), Vec::new()];
        for _ in 0..w.rounds {
            for (side, url) in runs.iter_mut().zip(&urls) {
                side.push(wrk_with(
                    &w.wrk,
                    url,
                    w.threads,
                    w.connections,
                    w.seconds.max(1),
                    &server,
                    headers,
                ));
            }
        }
        println!(
            "\n{title}: wrk -t{} -c{} -d{}s --latency, {} rounds interleaved, medians",
            w.threads,
            w.connections,
            w.seconds.max(1),
            w.rounds
        );
        println!(
            "{:<8} {:>11} {:>9} {:>9} {:>12} {:>8}  runs (req/s)",
            "", "req/s", "p50 ms", "p99 ms", "CPU µs/req", "errors"
        );
        for (name, side) in ["HTTP", "HTTPS"].iter().zip(&runs) {
            let each: Vec<String> = side.iter().map(|r| format!("{:.0}", r.rps)).collect();
            println!(
                "{:<8} {:>11.0} {:>9.3} {:>9.3} {:>12.1} {:>8}  {}",
                name,
                median(side.iter().map(|r| r.rps).collect()),
                ms(median(side.iter().map(|r| r.p50).collect())),
                ms(median(side.iter().map(|r| r.p99).collect())),
                us(median(side.iter().map(|r| r.cpu_per_request).collect())),
                side.iter().map(|r| r.errors).sum::<u64>(),
                each.join(" ")
            );
        }
        let rps = |i: usize| median(runs[i].iter().map(|r| r.rps).collect::<Vec<f64>>());
        println!("ratio HTTPS / HTTP: req/s {:.2}x", rps(1) / rps(0));
    }
    server.stop();
}
