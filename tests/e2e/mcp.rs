//! MCP at `/mcp` (`docs/PROTOCOL.md` §20): the official MCP SDKs, Python (`mcp`, both the
//! stateless 2026-07-28 revision and the initialize-based ones) and TypeScript
//! (`@modelcontextprotocol/sdk`), list and call deployed agents as tools; malformed JSON-RPC
//! gets its error, never a 500.

use std::path::PathBuf;
use std::process::Command;

use hypervisor_client::agents::Deployment;
use hypervisor_protocol::ClientSecret;
use serde_json::{Value, json};

use crate::harness::{TestServer, wasm};

fn interop(dir: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/interop")
        .join(dir)
}

/// A host with `stats` (a public handler agent, the one tool), and agents that are not tools:
/// a private handler agent and an HTTP agent.
fn host_with_agents() -> TestServer {
    let server = TestServer::start();
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    for (name, guest, public) in [
        ("stats", "text-stats", true),
        ("secret-stats", "text-stats", false),
        ("web", "http-hello", true),
    ] {
        client
            .deploy_agent(
                &owner,
                &Deployment {
                    name,
                    description: "word counts",
                    component: &wasm(guest),
                    public: Some(public),
                    ..Deployment::default()
                },
            )
            .unwrap();
    }
    server
}

/// What a client script printed (one JSON object), or a failure with its stderr.
fn run(command: &mut Command, server: &TestServer) -> Value {
    let out = command.output().expect("run the MCP client");
    assert!(
        out.status.success(),
        "MCP client failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

/// The checks every SDK run must pass: one tool, `stats`; its call counts words, as structured
/// content and as text; an unknown tool is the protocol error -32602.
fn check_run(out: &Value, revision: &str) {
    assert_eq!(out["protocol_version"], revision, "{out}");
    let tools = out["tools"].as_array().unwrap();
    assert_eq!(
        tools.len(),
        1,
        "only the public handler agent is a tool: {out}"
    );
    assert_eq!(tools[0]["name"], "stats");
    assert_eq!(tools[0]["inputSchema"]["type"], "object");
    let result = &out["result"];
    assert_eq!(result["isError"], false, "{out}");
    assert_eq!(result["structuredContent"]["words"], 3, "{out}");
    let text: Value = serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(text["words"], 3);
    assert_eq!(out["unknown_tool"]["code"], -32602, "{out}");
}

#[test]
fn the_official_python_sdk_lists_and_calls_tools_in_every_revision() {
    let server = host_with_agents();
    let url = format!("{}/mcp", server.url);
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/py-mcp/bin/python");
    assert!(python.is_file(), "scripts/test.sh installs target/py-mcp");
    // `auto` is the SDK's default: it probes with server/discover and settles on 2026-07-28.
    for (asked, negotiated) in [
        ("2026-07-28", "2026-07-28"),
        ("auto", "2026-07-28"),
        ("2025-11-25", "2025-11-25"),
        ("2025-06-18", "2025-06-18"),
        ("2025-03-26", "2025-03-26"),
    ] {
        let out = run(
            Command::new(&python)
                .arg(interop("mcp-python").join("client.py"))
                .args([url.as_str(), asked, "stats"])
                .arg(json!({"text": "one two three"}).to_string()),
            &server,
        );
        check_run(&out, negotiated);
    }
}

#[test]
fn the_official_typescript_sdk_lists_and_calls_tools() {
    let server = host_with_agents();
    let dir = interop("mcp-js");
    assert!(
        dir.join("node_modules/@modelcontextprotocol/sdk").is_dir(),
        "run `npm ci` in {} (scripts/test.sh does)",
        dir.display()
    );
    let out = run(
        Command::new("node")
            .arg(dir.join("client.mjs"))
            .args([format!("{}/mcp", server.url).as_str(), "stats"])
            .arg(json!({"text": "one two three"}).to_string()),
        &server,
    );
    check_run(&out, "2025-11-25");
    assert_eq!(out["server"]["name"], "wasm-hypervisor");
}

/// POSTs `body` to `/mcp` with `headers` (curl): (status, body as JSON or null).
fn post(server: &TestServer, headers: &[&str], body: &[u8]) -> (u16, Value) {
    let mut all = vec![
        "content-type: application/json",
        "accept: application/json, text/event-stream",
    ];
    all.extend_from_slice(headers);
    crate::harness::curl_post(server, "/mcp", &all, body)
}

/// The `_meta` and headers of a 2026-07-28 request.
fn stateless(method: &str, params: Value) -> (Vec<String>, Vec<u8>) {
    let mut params = params;
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let headers = vec![
        "mcp-protocol-version: 2026-07-28".to_owned(),
        format!("mcp-method: {method}"),
    ];
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    (headers, body.to_string().into_bytes())
}

/// `tools/list` pages by MCP's cursor: a full page of 100 tools carries `nextCursor`, which
/// leads to the rest; agents that are not tools are skipped across pages; a cursor that is not
/// a string is invalid params.
#[test]
fn tools_are_listed_in_pages_with_a_cursor() {
    let server = host_with_agents();
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    let component = wasm("text-stats");
    for i in 0..101 {
        client
            .deploy_agent(
                &owner,
                &Deployment {
                    name: &format!("tool-{i:03}"),
                    description: "word counts",
                    component: &component,
                    ..Deployment::default()
                },
            )
            .unwrap();
    }
    let list = |params: Value| {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": params});
        let (status, answer) = post(
            &server,
            &["mcp-protocol-version: 2025-11-25"],
            body.to_string().as_bytes(),
        );
        assert_eq!(status, 200, "{answer}");
        answer
    };
    let names = |answer: &Value| -> Vec<String> {
        answer["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    };
    let first = list(json!({}));
    assert_eq!(names(&first).len(), 100, "{first}");
    let cursor = first["result"]["nextCursor"]
        .as_str()
        .expect("a cursor")
        .to_string();
    let rest = list(json!({ "cursor": cursor }));
    let mut all = names(&first);
    all.extend(names(&rest));
    assert!(rest["result"].get("nextCursor").is_none(), "{rest}");
    // 101 tools and `stats`; the private and HTTP agents are not tools.
    assert_eq!(all.len(), 102);
    assert!(all.contains(&"stats".to_string()) && !all.contains(&"web".to_string()));
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted, "by name, without repeats");
    sorted.dedup();
    assert_eq!(sorted.len(), 102);
    let bad = list(json!({ "cursor": 7 }));
    assert_eq!(bad["error"]["code"], -32602, "{bad}");
}

/// A malformed-message case: what, headers, body, expected status and JSON-RPC error code.
type Case = (&'static str, Vec<&'static str>, Vec<u8>, u16, Option<i64>);

#[test]
fn malformed_json_rpc_gets_its_error_and_never_a_500() {
    let server = host_with_agents();
    let code = |v: &Value| v["error"]["code"].as_i64();
    let cases: Vec<Case> = vec![
        ("invalid JSON", vec![], b"{".to_vec(), 400, Some(-32700)),
        (
            "a batch",
            vec![],
            br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#.to_vec(),
            400,
            Some(-32600),
        ),
        (
            "wrong jsonrpc",
            vec![],
            br#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#.to_vec(),
            400,
            Some(-32600),
        ),
        (
            "params not an object",
            vec![],
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":[]}"#.to_vec(),
            400,
            Some(-32602),
        ),
        (
            "unknown method, initialize-based revision",
            vec!["mcp-protocol-version: 2025-11-25"],
            br#"{"jsonrpc":"2.0","id":1,"method":"resources/list"}"#.to_vec(),
            200,
            Some(-32601),
        ),
        (
            "unknown tool, initialize-based revision",
            vec!["mcp-protocol-version: 2025-11-25"],
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"secret-stats"}}"#
                .to_vec(),
            200,
            Some(-32602),
        ),
        (
            "a key given twice",
            vec![],
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call"}"#.to_vec(),
            400,
            Some(-32600),
        ),
        (
            "Mcp-Name naming another tool, initialize-based revision",
            vec!["mcp-protocol-version: 2025-11-25", "mcp-name: web"],
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"stats"}}"#.to_vec(),
            400,
            Some(-32020),
        ),
        (
            "a page on another origin (DNS rebinding)",
            vec!["origin: http://evil.example"],
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#.to_vec(),
            403,
            Some(-32600),
        ),
        (
            "a notification",
            vec![],
            br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_vec(),
            202,
            None,
        ),
    ];
    for (what, headers, body, status, expected) in cases {
        let (got, answer) = post(&server, &headers, &body);
        assert_eq!(got, status, "{what}: {answer}");
        assert_eq!(code(&answer), expected, "{what}: {answer}");
    }

    // The stateless revision: headers must agree with the body, the revision must be known,
    // an unknown method is a 404.
    let (headers, body) = stateless("tools/list", json!({}));
    let h: Vec<&str> = headers.iter().map(String::as_str).collect();
    let (status, answer) = post(&server, &h, &body);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["result"]["resultType"], "complete");
    assert_eq!(answer["result"]["ttlMs"], 0);
    let (status, answer) = post(&server, &[h[0], "mcp-method: tools/call"], &body);
    assert_eq!((status, code(&answer)), (400, Some(-32020)), "{answer}");
    let (headers, body) = stateless("tools/call", json!({"name": "stats"}));
    let h: Vec<&str> = headers.iter().map(String::as_str).collect();
    let (status, answer) = post(&server, &[h[0], h[1], "mcp-name: web"], &body);
    assert_eq!((status, code(&answer)), (400, Some(-32020)), "{answer}");
    let (headers, body) = stateless("prompts/list", json!({}));
    let h: Vec<&str> = headers.iter().map(String::as_str).collect();
    let (status, answer) = post(&server, &h, &body);
    assert_eq!((status, code(&answer)), (404, Some(-32601)), "{answer}");
    let newer = String::from_utf8(body)
        .unwrap()
        .replace("2026-07-28", "2099-01-01");
    let (status, answer) = post(
        &server,
        &[
            "mcp-protocol-version: 2099-01-01",
            "mcp-method: prompts/list",
        ],
        newer.as_bytes(),
    );
    assert_eq!((status, code(&answer)), (400, Some(-32022)), "{answer}");
    assert_eq!(answer["error"]["data"]["requested"], "2099-01-01");
    assert!(
        answer["error"]["data"]["supported"]
            .as_array()
            .unwrap()
            .contains(&json!("2026-07-28"))
    );
    let (status, answer) = post(
        &server,
        &["mcp-protocol-version: 2026-07-28"],
        &body_without_meta(),
    );
    assert_eq!((status, code(&answer)), (400, Some(-32602)), "{answer}");

    // An oversized body: 413 with a JSON-RPC error, read no further than the limit.
    let big = vec![b' '; 33 << 20];
    let (status, answer) = post(&server, &[], &big);
    assert_eq!((status, code(&answer)), (413, Some(-32600)), "{answer}");

    // A body that is not declared JSON (a browser form or text/plain POST): 415.
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            "content-type: text/plain",
        ])
        .args([
            "--data",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
        ])
        .arg(format!("{}/mcp", server.url))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "415");

    // GET and DELETE: 405 (no stream to open, no session to end).
    for method in ["GET", "DELETE"] {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", method])
            .arg(format!("{}/mcp", server.url))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "405", "{method}");
    }
}

fn body_without_meta() -> Vec<u8> {
    br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#.to_vec()
}

/// Priced tools through the x402 MCP binding: the official MCP SDKs call, the official x402
/// SDKs sign (Python on 2026-07-28 and 2025-11-25, TypeScript on 2025-11-25). Unpaid: an
/// `isError` result with PaymentRequired; paid: the result and the settlement in `_meta`; the
/// same payment again: refused as a replay.
#[cfg(feature = "simulated-attestation")]
#[test]
fn priced_tools_are_paid_through_the_x402_binding_with_the_official_sdks() {
    let config = crate::harness::paid_simulated_config();
    let server = TestServer::start_with(&config);
    crate::harness::deploy_priced_stats(&server, "1000");
    let url = format!("{}/mcp", server.url);
    let arguments = json!({"text": "one two three"}).to_string();
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/py-mcp/bin/python");
    let mut runs = Vec::new();
    for revision in ["2026-07-28", "2025-11-25"] {
        runs.push(run(
            Command::new(&python)
                .arg(interop("mcp-python").join("pay.py"))
                .args([url.as_str(), revision, "paid", arguments.as_str()]),
            &server,
        ));
    }
    runs.push(run(
        Command::new("node")
            .arg(interop("mcp-js").join("pay.mjs"))
            .args([url.as_str(), "paid", arguments.as_str()]),
        &server,
    ));
    for (out, revision) in runs.iter().zip(["2026-07-28", "2025-11-25", "2025-11-25"]) {
        assert_eq!(out["protocol_version"], revision, "{out}");
        assert_eq!(out["first"]["isError"], true, "{out}");
        assert_eq!(out["first"]["x402Version"], 2, "{out}");
        assert_eq!(out["paid"]["isError"], false, "{out}");
        assert_eq!(out["paid"]["structuredContent"]["words"], 3, "{out}");
        assert_eq!(out["paid"]["payment_response"]["success"], true, "{out}");
        assert_eq!(out["paid"]["payment_response"]["network"], "eip155:84532");
        assert_eq!(out["replay"]["isError"], true, "{out}");
        assert_eq!(
            out["replay"]["error"], "invalid_exact_evm_nonce_already_used",
            "{out}"
        );
    }
}

/// Schemas declared at deployment (signed) are the tool's `inputSchema` and `outputSchema`: the
/// official SDKs list them, and their result validation (against `outputSchema`) passes; a
/// schema that is not an object schema, or on an agent that is not a handler, is refused.
#[test]
fn declared_schemas_reach_the_official_sdks() {
    use hypervisor_protocol::agents::ToolSchemas;
    let server = TestServer::start();
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    let schemas = ToolSchemas {
        input: Some(json!({
            "type": "object",
            "properties": {"text": {"type": "string", "description": "The text to count"}},
            "required": ["text"]
        })),
        output: Some(json!({
            "type": "object",
            "properties": {"words": {"type": "integer"}, "sentences": {"type": "integer"}},
            "required": ["words"]
        })),
    };
    let deploy = |name: &str, guest: &str, schemas: ToolSchemas| {
        client.deploy_agent(
            &owner,
            &Deployment {
                name,
                description: "word counts",
                component: &wasm(guest),
                schemas: Some(schemas),
                ..Deployment::default()
            },
        )
    };
    let agent = deploy("stats", "text-stats", schemas.clone()).unwrap();
    assert_eq!(agent["schemas"]["input"]["required"][0], "text", "{agent}");

    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/py-mcp/bin/python");
    let url = format!("{}/mcp", server.url);
    let out = run(
        Command::new(&python)
            .arg(interop("mcp-python").join("client.py"))
            .args([url.as_str(), "2026-07-28", "stats"])
            .arg(json!({"text": "one two three"}).to_string()),
        &server,
    );
    let tool = &out["tools"][0];
    assert_eq!(tool["inputSchema"], schemas.input.clone().unwrap(), "{out}");
    assert_eq!(
        tool["outputSchema"],
        schemas.output.clone().unwrap(),
        "{out}"
    );
    assert_eq!(out["result"]["structuredContent"]["words"], 3, "{out}");
    let out = run(
        Command::new("node")
            .arg(interop("mcp-js").join("client.mjs"))
            .args([url.as_str(), "stats"])
            .arg(json!({"text": "one two"}).to_string()),
        &server,
    );
    assert_eq!(
        out["tools"][0]["inputSchema"]["required"][0], "text",
        "{out}"
    );
    assert_eq!(out["result"]["structuredContent"]["words"], 2, "{out}");

    let not_an_object = ToolSchemas {
        input: Some(json!({"type": "string"})),
        output: None,
    };
    let err = deploy("bad", "text-stats", not_an_object).unwrap_err();
    assert_eq!(
        err.error_code().map(|c| c.as_str()),
        Some("invalid_request"),
        "{err}"
    );
    let err = deploy("web", "http-hello", schemas).unwrap_err();
    assert!(err.to_string().contains("handler agent"), "{err}");
}
