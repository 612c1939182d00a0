//! JavaScript and TypeScript agents (`js`), the release binary over loopback: Assist TEE's own
//! example (`main.ts` importing `sum` from `utils.ts`, docs/PROTOCOL.md §24).
//!
//! 1. **Setup**: `BENCH_JS_DEPLOYS` (5) deployments of the two modules, each made distinct by a
//!    comment (so each is a new snapshot and a new compilation, nothing cached), timed from the
//!    request to the answer: type stripping, the runtime's `setup`, the snapshot, and compiling
//!    it. Target ≤ 500 ms.
//! 2. **Invoke**: the sum handler invoked `BENCH_ITERATIONS` (2000) times, one request at a time
//!    (`POST /agents/{name}/invoke` with the client library): p50 and p99 as the client sees
//!    them and the engine's own `duration_us` (instantiating the snapshot and running the
//!    handler). Target ≤ 2 ms p50, ≥ 50× faster than Assist's 100–200 ms per execution.
//! 3. **A CPU-bound handler** (sort 10 000 numbers, objects, JSON): the engine's own speed.
//! 4. **Other engines** (`BENCH_JS_COMPONENTS`, optional): the same handlers compiled ahead of
//!    time into components by another engine (StarlingMonkey via componentize-js), deployed
//!    and invoked as handler agents on the same server, in the same run.
//!
//! `BENCH_JS_RUNTIME` runs it with another runtime component (a candidate build of
//! `components/js-runtime`). `BASELINE_BIN` (an older `hypervisor`) serves beside this build,
//! on its own data directory, every step alternating between the two servers.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hypervisor_client::Client;
use hypervisor_client::agents::Deployment;
use hypervisor_protocol::ClientSecret;
use hypervisor_protocol::agents::{JsEngine, JsSource};
use serde_json::json;

use crate::common::process::start_hypervisor;
use crate::common::stats::{report, us};
use crate::common::{self};

/// Assist TEE's example, as its README gives it (TypeScript).
const MAIN: &str = r#"import { sum } from "./utils.ts";

interface Event { data: { numbers: number[] }; env?: Record<string, string> }

export async function handler(event: Event, context: { executionId: string }) {
  const total: number = sum(event.data.numbers);
  return { sum: total, executionId: context.executionId };
}
"#;
const UTILS: &str = "export function sum(numbers: number[]): number {\n  return numbers.reduce((a, b) => a + b, 0);\n}\n";

/// A handler with work to do: sorting, objects, JSON.
const BUSY: &str = r#"export function handler(event) {
  let x = 12345;
  const xs = [];
  for (let i = 0; i < event.n; i++) { x = (x * 1103515245 + 12345) % 2147483648; xs.push(x); }
  xs.sort((a, b) => a - b);
  const rows = xs.slice(0, 500).map((v, i) => ({ i, v, hex: v.toString(16) }));
  return { min: xs[0], max: xs[xs.length - 1], size: JSON.stringify(rows).length };
}
"#;

/// The two modules, `main.ts` marked with `n` so that every deployment is a distinct snapshot.
pub fn assist_example(n: usize, engine: JsEngine) -> JsSource {
    JsSource {
        engine,
        main: "main.ts".into(),
        modules: BTreeMap::from([
            ("main.ts".into(), format!("// deployment {n}\n{MAIN}")),
            ("utils.ts".into(), UTILS.into()),
        ]),
    }
}

/// The JavaScript section (see the module's doc).
pub fn run() {
    let tmp = tempfile::tempdir().unwrap();
    // `BENCH_JS_RUNTIME`: another runtime component (a candidate build) instead of the built-in.
    let runtime = std::env::var("BENCH_JS_RUNTIME")
        .ok()
        .filter(|p| !p.is_empty())
        .map(|p| format!("\n[javascript]\ncomponent = {p:?}\n"))
        .unwrap_or_default();
    let config = common::process::write_config(
        &tmp.path().join("data"),
        &format!("\n[policy]\nenabled = false\n\n[python]\nenabled = false\n{runtime}"),
    );
    let mut servers = vec![("", start_hypervisor(&config))];
    if let Ok(bin) = std::env::var("BASELINE_BIN") {
        let config = common::process::write_config(
            &tmp.path().join("baseline"),
            &format!("\n[policy]\nenabled = false\n\n[python]\nenabled = false\n{runtime}"),
        );
        servers.insert(
            0,
            (
                "baseline ",
                common::process::start_hypervisor_bin(&bin, &config),
            ),
        );
    }
    let owner = ClientSecret::generate().unwrap();
    let deploys = common::env_or("BENCH_JS_DEPLOYS", 5usize);
    // `BENCH_JS_ENGINES=boa` measures the default engine alone.
    let engines: Vec<JsEngine> = match std::env::var("BENCH_JS_ENGINES").as_deref() {
        Ok("boa") => vec![JsEngine::Boa],
        _ => vec![JsEngine::Boa, JsEngine::StarlingMonkey],
    };
    // Every (server, engine) pair, measured alternating so that all see the same machine.
    let variants: Vec<Variant> = servers
        .iter()
        .flat_map(|(label, server)| {
            engines.iter().map(move |engine| Variant {
                label: format!("{label}{}", engine.as_str()),
                client: Client::new(&server.base),
                engine: *engine,
            })
        })
        .collect();
    println!();
    let mut setups = vec![Vec::with_capacity(deploys); variants.len()];
    for n in 0..deploys {
        for (k, v) in variants.iter().enumerate() {
            let name = format!("sum-{}-{n}", v.engine.as_str());
            let t = Instant::now();
            v.client
                .deploy_js(
                    &owner,
                    &Deployment {
                        name: &name,
                        description: "Assist's sum example",
                        ..Deployment::default()
                    },
                    &assist_example(n, v.engine),
                )
                .expect("deploy");
            setups[k].push(t.elapsed());
        }
    }
    let mut setup_p50 = Vec::new();
    for (k, v) in variants.iter().enumerate() {
        println!(
            "JS setup on {}: the process's first (instruments and compiles the engine) {:.0} ms",
            v.label,
            us(setups[k][0]) / 1000.0
        );
        let first = 1.min(setups[k].len());
        let later = setups[k].split_off(first);
        setup_p50.push(report(
            &format!(
                "JS setup on {}: deploy of main.ts + utils.ts (distinct, later ones)",
                v.label
            ),
            later,
        ));
    }
    // Where a setup's time goes, as the server logs it (instrumenting the engine, the set-up
    // and the snapshot, making the component, compiling).
    let log = std::fs::read_to_string(config.with_extension("log")).unwrap_or_default();
    for line in log.lines().filter(|l| {
        l.contains("JavaScript agent set up") || l.contains("the JavaScript runtime's code")
    }) {
        println!("  {}", line.trim());
    }
    for (label, server) in &servers {
        println!(
            "{label}server RSS after the set-ups: {} MiB",
            common::process::rss_of(server.pid()) >> 20
        );
    }

    let iterations = common::iterations(2000);
    let mut samples = vec![Vec::new(); variants.len()];
    let mut engine_us = vec![Vec::new(); variants.len()];
    for i in 0..iterations + 100 {
        for (k, v) in variants.iter().enumerate() {
            let name = format!("sum-{}-0", v.engine.as_str());
            let t = Instant::now();
            let resp = v
                .client
                .invoke(&name, json!({"data": {"numbers": [1, 2, 3, 4]}}))
                .expect("invoke");
            let elapsed = t.elapsed();
            assert!(resp.ok, "{resp:?}");
            if i == 0 {
                assert_eq!(resp.result_json().unwrap()["sum"], 10);
            }
            if i >= 100 {
                samples[k].push(elapsed);
                engine_us[k].push(Duration::from_micros(resp.duration_us));
            }
        }
    }
    let mut invoke_p50 = Vec::new();
    for (k, v) in variants.iter().enumerate() {
        invoke_p50.push(report(
            &format!(
                "JS sum handler on {}: invoke, loopback HTTP (release)",
                v.label
            ),
            std::mem::take(&mut samples[k]),
        ));
        report(
            "  of which instantiate + run (engine's duration_us)",
            std::mem::take(&mut engine_us[k]),
        );
    }

    // A handler that works: sorts 10 000 numbers, builds and serialises objects (the engine's
    // speed, not the host's).
    let mut work = vec![Vec::new(); variants.len()];
    for v in &variants {
        let busy = JsSource {
            engine: v.engine,
            main: "main.js".into(),
            modules: BTreeMap::from([("main.js".into(), BUSY.into())]),
        };
        v.client
            .deploy_js(
                &owner,
                &Deployment {
                    name: &format!("busy-{}", v.engine.as_str()),
                    description: "a handler that works",
                    ..Deployment::default()
                },
                &busy,
            )
            .expect("deploy");
    }
    for i in 0..(iterations / 10).max(20) + 5 {
        for (k, v) in variants.iter().enumerate() {
            let name = format!("busy-{}", v.engine.as_str());
            let resp = v.client.invoke(&name, json!({"n": 10000})).expect("invoke");
            assert!(resp.ok, "{resp:?}");
            if i >= 5 {
                work[k].push(Duration::from_micros(resp.duration_us));
            }
        }
    }
    let mut busy_p50 = Vec::new();
    for (k, v) in variants.iter().enumerate() {
        busy_p50.push(report(
            &format!(
                "JS busy handler (sort 10k, JSON) on {}, engine's duration_us",
                v.label
            ),
            std::mem::take(&mut work[k]),
        ));
    }
    if let (false, [boa, sm]) = (servers.len() > 1, &busy_p50[..]) {
        let (boa, sm) = (*boa, *sm);
        println!(
            "JS CPU-bound: Boa {:.1} ms, StarlingMonkey {:.1} ms: Boa takes {:.1}x StarlingMonkey's time",
            us(boa) / 1000.0,
            us(sm) / 1000.0,
            us(boa) / us(sm)
        );
    }

    // The same two handlers compiled ahead of time by another engine, side by side:
    // `BENCH_JS_COMPONENTS` names a directory with `sum-sm.wasm` and `busy-sm.wasm`
    // (StarlingMonkey via componentize-js, built for world `hypervisor:host/handler-agent`).
    let client = Client::new(&servers[servers.len() - 1].1.base);
    if let Ok(dir) = std::env::var("BENCH_JS_COMPONENTS") {
        for (file, name, event, n) in [
            (
                "sum-sm.wasm",
                "sm-sum",
                json!({"data": {"numbers": [1, 2, 3, 4]}}),
                iterations,
            ),
            (
                "busy-sm.wasm",
                "sm-busy",
                json!({"n": 10000}),
                (iterations / 10).max(20),
            ),
        ] {
            let component = std::fs::read(std::path::Path::new(&dir).join(file)).expect(file);
            let t = Instant::now();
            crate::common::http::deploy(&client, &owner, name, &component);
            let deployed = t.elapsed();
            let (mut http, mut engine) = (Vec::new(), Vec::new());
            for i in 0..n + 5 {
                let t = Instant::now();
                let resp = client.invoke(name, event.clone()).expect("invoke");
                let elapsed = t.elapsed();
                assert!(resp.ok, "{resp:?}");
                if i >= 5 {
                    http.push(elapsed);
                    engine.push(Duration::from_micros(resp.duration_us));
                }
            }
            println!(
                "{:<58} {:.0} ms ({} bytes)",
                format!("{file}: deploy (compile)"),
                us(deployed) / 1000.0,
                component.len()
            );
            report(&format!("{file}: invoke, loopback HTTP"), http);
            report(&format!("{file}: engine's duration_us"), engine);
        }
    }
    for (label, server) in &servers {
        println!(
            "{label}server RSS at the end: {} MiB",
            common::process::rss_of(server.pid()) >> 20
        );
    }
    for (_, server) in servers {
        server.stop();
    }
    for (k, v) in variants.iter().enumerate() {
        let p50 = invoke_p50[k];
        println!(
            "JS on {}: setup p50 {:.0} ms (target ≤ 500 ms), invoke p50 {:.2} ms (target ≤ 2 ms; \
             Assist 100–200 ms: {:.0}× to {:.0}×)",
            v.label,
            us(setup_p50[k]) / 1000.0,
            us(p50) / 1000.0,
            100_000.0 / us(p50),
            200_000.0 / us(p50),
        );
    }
}

/// One server and engine measured.
struct Variant {
    label: String,
    client: Client,
    engine: JsEngine,
}
