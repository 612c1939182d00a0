//! The MCP section (`mcp`): the same handler agent (`text-stats`) invoked natively
//! (`POST /agents/stats/invoke`) and as an MCP tool (`POST /mcp`, `tools/call`, in the
//! `initialize`-based shape and in the stateless 2026-07-28 shape with its headers and
//! `_meta`), against the release binary over loopback, one request at a time on one
//! keep-alive connection, the three interleaved request by request. What the MCP front adds
//! is the difference of the medians (target: ≤ 100 µs at p50).

use std::time::{Duration, Instant};

use hypervisor_client::Client;
use hypervisor_protocol::ClientSecret;
use serde_json::json;

use crate::common::http::{agent, deploy, post_json};
use crate::common::process::start_hypervisor;
use crate::common::stats::{report, us};
use crate::common::{self, wasm};
use crate::{EVENT_TEXT, HTTP_TIMEOUT, write_config};

/// The MCP section (see the module's doc).
pub fn run() {
    let iterations = common::iterations(2000);
    let tmp = tempfile::tempdir().unwrap();
    let server = start_hypervisor(&write_config(&tmp.path().join("data")));
    deploy(
        &Client::new(&server.base),
        &ClientSecret::generate().unwrap(),
        "stats",
        &wasm::read("text-stats"),
    );
    let http = agent(HTTP_TIMEOUT);
    let arguments = json!({ "text": EVENT_TEXT });
    let native = (
        format!("{}/agents/stats/invoke", server.base),
        json!({ "event": arguments }).to_string(),
        Vec::new(),
    );
    let mcp_url = format!("{}/mcp", server.base);
    let handshake = (
        mcp_url.clone(),
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": "stats", "arguments": arguments}})
        .to_string(),
        vec![("mcp-protocol-version", "2025-11-25".to_owned())],
    );
    let stateless = (
        mcp_url,
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": "stats", "arguments": arguments, "_meta": {
                   "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                   "io.modelcontextprotocol/clientCapabilities": {}}}})
        .to_string(),
        vec![
            ("mcp-protocol-version", "2026-07-28".to_owned()),
            ("mcp-method", "tools/call".to_owned()),
            ("mcp-name", "stats".to_owned()),
        ],
    );
    let cases = [native, handshake, stateless];
    let mut samples: [Vec<Duration>; 3] = Default::default();
    for i in 0..iterations + 100 {
        for ((url, body, headers), out) in cases.iter().zip(samples.iter_mut()) {
            let t = Instant::now();
            let mut resp = post_json(&http, url, headers)
                .send(body.as_bytes())
                .expect("request");
            let text = resp.body_mut().read_to_string().expect("body");
            let elapsed = t.elapsed();
            assert_eq!(resp.status(), 200, "{text}");
            assert!(text.contains("\"words\""), "{text}");
            if i >= 100 {
                out.push(elapsed);
            }
        }
    }
    println!();
    let [native, handshake, stateless] = samples;
    let n = report("handler invoke, native POST /agents/stats/invoke", native);
    let h = report("handler as MCP tool, tools/call (2025-11-25)", handshake);
    let s = report("handler as MCP tool, tools/call (2026-07-28)", stateless);
    println!(
        "MCP front over native invoke, p50: +{:.1} µs (2025-11-25), +{:.1} µs (2026-07-28); target ≤ 100 µs",
        us(h) - us(n),
        us(s) - us(n)
    );
    server.stop();
}
