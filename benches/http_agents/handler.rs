//! The handler section: a deployed handler agent's time per invocation, in-process through the
//! pipeline and over loopback HTTP against the release binary.

use std::time::{Duration, Instant};

use hypervisor::pipeline::agents::invoke::Invoked;
use hypervisor::server::Host;
use hypervisor_client::Client;
use hypervisor_protocol::ClientSecret;
use hypervisor_protocol::agents::InvokeRequest;

use crate::common::http::deploy;
use crate::common::process::start_hypervisor;
use crate::common::stats::{report, us};
use crate::common::{self, in_process, wasm};
use crate::{EVENT_TEXT, storage, write_config};

/// The handler section (see the benchmark's header).
pub fn run() {
    let iterations = common::iterations(2000);
    let component = wasm::read("text-stats");
    let event = serde_json::json!({ "text": EVENT_TEXT });
    println!();

    // (a) In-process, through the pipeline.
    let rt = common::runtime();
    let tmp = tempfile::tempdir().unwrap();
    let host = rt
        .block_on(Host::build(in_process::config(tmp.path())))
        .unwrap();
    let pipeline = host.pipeline().clone();
    let owner = ClientSecret::generate().unwrap();
    in_process::deploy(&rt, &pipeline, &owner, "stats", &component, None, None);
    let req = InvokeRequest {
        event: Some(serde_json::value::to_raw_value(&event).unwrap()),
        ..InvokeRequest::default()
    };
    let (samples, engine) = rt.block_on(async {
        let mut samples = Vec::with_capacity(iterations);
        let mut engine = Vec::with_capacity(iterations);
        for i in 0..iterations + 100 {
            let r = req.clone();
            let t = Instant::now();
            let out = pipeline.invoke_agent("stats", r, None, None).await.unwrap();
            let elapsed = t.elapsed();
            let Invoked::Clear { response: resp, .. } = out else {
                panic!("not a clear answer")
            };
            assert!(resp.ok, "{resp:?}");
            if i >= 100 {
                samples.push(elapsed);
                engine.push(Duration::from_micros(resp.duration_us));
            }
        }
        (samples, engine)
    });
    let p50 = report("handler invoke, in-process Pipeline::invoke_agent", samples);
    report(
        "  of which instantiate + run (engine's duration_us)",
        engine,
    );
    storage::costs(&rt, tmp.path(), "stats", iterations);
    drop(host);
    drop(rt);

    // (b) Over loopback HTTP against the release binary, one request at a time.
    let data = tmp.path().join("http-data");
    let server = start_hypervisor(&write_config(&data));
    let client = Client::new(&server.base);
    deploy(&client, &owner, "stats", &component);
    let mut samples = Vec::with_capacity(iterations);
    for i in 0..iterations + 100 {
        let t = Instant::now();
        let resp = client.invoke("stats", event.clone()).unwrap();
        let elapsed = t.elapsed();
        assert!(resp.ok);
        if i >= 100 {
            samples.push(elapsed);
        }
    }
    let http_p50 = report(
        "handler invoke, loopback HTTP (client library, release)",
        samples,
    );
    server.stop();
    println!(
        "handler p50: {:.0} µs in-process (target ≤ 1000 µs), {:.0} µs over loopback HTTP",
        us(p50),
        us(http_p50)
    );
}
