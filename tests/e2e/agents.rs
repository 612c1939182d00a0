//! Agents end to end: deploy each kind (handler, `wasi:http`, CLI), search, invoke, sealed
//! (private) agents, records, policy and payment on invocations, a third-party `wasi:http`
//! component, and bad input. Lifecycle (versions, owners, restart, TTL, crashes, concurrency):
//! `agents_lifecycle.rs`.

use hypervisor_client::agents::{Deployment, owner_signature};
use hypervisor_client::{Client, ClientError};
use hypervisor_protocol::ClientSecret;
use hypervisor_protocol::agents::OwnerAction;
use serde_json::{Value, json};

use crate::harness::{TestServer, code, get_json, wasm};

pub(crate) fn deploy(
    client: &Client,
    owner: &ClientSecret,
    name: &str,
    guest: &str,
    description: &str,
    tags: &[&str],
) -> Value {
    let component = wasm(guest);
    client
        .deploy_agent(
            owner,
            &Deployment {
                name,
                description,
                tags: tags.iter().map(|t| t.to_string()).collect(),
                component: &component,
                ..Deployment::default()
            },
        )
        .unwrap_or_else(|e| panic!("deploying {name}: {e}"))
}

/// An HTTP request to `url`: status, content type and body.
pub(crate) fn http(method: &str, url: &str, body: Option<&str>) -> (u16, String, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let resp = match (method, body) {
        ("GET", _) => agent.get(url).call(),
        (_, Some(b)) => agent
            .post(url)
            .header("content-type", "application/json")
            .send(b),
        (_, None) => agent.post(url).send_empty(),
    }
    .unwrap();
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = resp.into_body().read_to_string().unwrap_or_default();
    (status, ctype, text)
}

pub(crate) fn refused(r: Result<impl std::fmt::Debug, ClientError>) -> (u16, String) {
    match r {
        Err(ClientError::Server { status, code, .. }) => (status, code),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn each_kind_deploys_searches_and_invokes() {
    let server = TestServer::start();
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();

    let stats = deploy(
        &client,
        &owner,
        "text-stats",
        "text-stats",
        "Word, line and sentence statistics for a text",
        &["text", "nlp"],
    );
    assert_eq!(
        (
            stats["latest"]["kind"].as_str(),
            stats["latest"]["version"].as_u64()
        ),
        (Some("handler"), Some(1))
    );
    assert_eq!(stats["latest"]["world"], "hypervisor:host/handler-agent");
    let web = deploy(
        &client,
        &owner,
        "hello-web",
        "http-hello",
        "Says hello over HTTP and echoes JSON",
        &["demo", "http"],
    );
    assert_eq!(web["latest"]["kind"], "http");
    let cli = deploy(
        &client,
        &owner,
        "hello-cli",
        "hello",
        "Greets its arguments on standard output",
        &["demo", "cli"],
    );
    assert_eq!(cli["latest"]["kind"], "cli");
    deploy(
        &client,
        &owner,
        "arxiv",
        "arxiv",
        "Search a bundled set of arXiv papers offline",
        &["papers", "research", "search"],
    );

    // Search: ranked, no hard-coded answers.
    let hits = client.search("papers research", None).unwrap();
    assert_eq!(hits["results"][0]["name"], "arxiv", "{hits}");
    let hits = client.search("sentence statistics", Some(5)).unwrap();
    let first = &hits["results"][0];
    assert_eq!(first["name"], "text-stats", "{hits}");
    assert_eq!(first["kind"], "handler");
    assert_eq!(first["latest"]["code_hash"], stats["latest"]["code_hash"]);
    assert!(first["score"].as_f64().unwrap() > 0.0);
    let hits = client.search("demo", None).unwrap();
    assert_eq!(hits["results"].as_array().unwrap().len(), 2, "{hits}");
    assert!(
        client.search("nothing-matches-this", None).unwrap()["results"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Handler: Lambda-style, with a context.
    let run = client
        .invoke(
            "text-stats",
            json!({"text": "The cat sat. The cat ran!\nA dog barked."}),
        )
        .unwrap();
    assert!(run.ok, "{run:?}");
    let result = run.result.clone().unwrap();
    assert_eq!(result["words"], 9, "{result}");
    assert_eq!(result["agent"], "text-stats");
    assert_eq!(result["execution_id"], run.execution_id.as_str());
    assert_eq!(result["top_words"][0], json!(["cat", 2]));
    // A bad event is the handler's own error, not a host error.
    let bad = client.invoke("text-stats", json!({"words": 3})).unwrap();
    assert!(!bad.ok);
    assert_eq!(bad.error.unwrap().code, "bad_event");

    // CLI: arguments in, stdout and exit code out.
    let out = client.invoke_cli("hello-cli", &["agents"], None).unwrap();
    assert_eq!(
        (out.ok, out.exit_code, out.stdout.as_deref()),
        (true, Some(0), Some("Hello agents\n"))
    );

    // wasi:http: served under /agents/{name}/.
    let (status, ctype, body) = http("GET", &format!("{}/agents/hello-web/", server.url), None);
    assert_eq!(
        (status, body.as_str()),
        (200, "Hello from a WASM Hypervisor agent\n")
    );
    assert!(ctype.starts_with("text/plain"), "{ctype}");
    let (status, _, body) = http(
        "POST",
        &format!("{}/agents/hello-web/echo", server.url),
        Some(r#"{"a":[1,2]}"#),
    );
    assert_eq!(status, 200, "{body}");
    let echoed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echoed["body"], json!({"a": [1, 2]}));
    assert_eq!(echoed["path"], "/echo");
    let (status, _, _) = http(
        "GET",
        &format!("{}/agents/hello-web/nope", server.url),
        None,
    );
    assert_eq!(status, 404);

    // The arxiv agent answers from its bundled dataset.
    let found = client
        .invoke(
            "arxiv",
            json!({"query": "attention transformer", "limit": 3}),
        )
        .unwrap();
    assert!(found.ok, "{found:?}");
    let results = found.result.unwrap()["results"].clone();
    assert!(!results.as_array().unwrap().is_empty(), "{results}");
    assert!(
        results[0]["url"]
            .as_str()
            .unwrap()
            .starts_with("https://arxiv.org/abs/")
    );

    // Every invocation is recorded: hashes and a commitment, never plaintext.
    let (status, record) = get_json(&server, &format!("/executions/{}", run.execution_id));
    assert_eq!(status, 200, "{record}");
    assert_eq!(record["agent"], "text-stats");
    assert_eq!(record["code_hash"], stats["latest"]["code_hash"]);
    assert_eq!(record["status"], "exited");
    assert_eq!(record["commitment"].as_str().unwrap().len(), 64);
    assert!(!record.to_string().contains("cat sat"), "{record}");
    let (_, audit) = get_json(&server, "/executions?limit=1000");
    assert!(
        audit["executions"].as_array().unwrap().len() >= 5,
        "{audit}"
    );
    let (status, body) = get_json(&server, "/executions/no-such-id");
    assert_eq!((status, code(&body)), (404, "execution_not_found"));

    let (status, listed) = get_json(&server, "/agents");
    assert_eq!(status, 200);
    assert_eq!(listed["agents"].as_array().unwrap().len(), 4);
}

#[test]
fn a_sealed_agent_is_private_and_its_results_are_bound_to_its_code() {
    let server = TestServer::start();
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    let session = client.create_session(&owner).unwrap();
    let component = wasm("text-stats");
    let deployed = client
        .deploy_agent_sealed(
            &owner,
            &session,
            &Deployment {
                name: "secret-stats",
                description: "private statistics",
                component: &component,
                ..Deployment::default()
            },
        )
        .unwrap();
    assert_eq!(deployed["public"], false);
    let code_hash = deployed["latest"]["code_hash"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        code_hash,
        hex::encode(hypervisor_protocol::sha256(&component))
    );

    // No clear invocations of a private agent.
    assert_eq!(
        refused(client.invoke("secret-stats", json!({"text": "a b"}))),
        (403, "agent_not_public".to_string())
    );

    // A caller with a session of its own invokes it sealed; the result checks out against
    // the agent's code hash.
    let caller = ClientSecret::generate().unwrap();
    let caller_session = client.create_session(&caller).unwrap();
    let run = client
        .invoke_sealed(
            &caller_session,
            "secret-stats",
            &code_hash,
            br#"{"text": "alpha beta gamma"}"#,
        )
        .unwrap();
    let result: Value = serde_json::from_slice(&run.stdout().unwrap()).unwrap();
    assert_eq!(result["words"], 3);
    // Checked against another code hash, the same answer is refused.
    let wrong = hex::encode([7u8; 32]);
    assert!(
        client
            .invoke_sealed(&caller_session, "secret-stats", &wrong, br#"{"text": "x"}"#)
            .is_err()
    );
    // What a sealed invocation printed is not in the owner's logs.
    assert!(
        client.agent_logs(&owner, "secret-stats").unwrap()["logs"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_wasi_http_component_not_written_here_runs_unchanged() {
    let server = TestServer::start();
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    let component = wasm("third-party-http");
    let d = client
        .deploy_agent(
            &owner,
            &Deployment {
                name: "upstream",
                component: &component,
                ..Deployment::default()
            },
        )
        .unwrap();
    assert_eq!(d["latest"]["kind"], "http");
    let (status, _, body) = http("GET", &format!("{}/agents/upstream/", server.url), None);
    // The upstream example (wasip2 crate, examples/http-proxy) answers every request so.
    assert_eq!((status, body.as_str()), (200, "Hello, WASI!"));
}

#[test]
fn bad_deployments_and_invocations_get_clear_errors() {
    let server = TestServer::start();
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    let hello = wasm("hello");
    let d = |name: &str, component: &[u8]| {
        refused(client.deploy_agent(
            &owner,
            &Deployment {
                name,
                component,
                ..Deployment::default()
            },
        ))
    };
    assert_eq!(d("Bad Name", &hello), (400, "invalid_request".to_string()));
    assert_eq!(
        d("garbage", b"not wasm"),
        (422, "invalid_component".to_string())
    );
    // A valid component that is no agent (the payments plug-in exports only its interface).
    assert_eq!(
        d("plugin", &wasm("payments")),
        (422, "not_an_agent".to_string())
    );

    // A clear deployment without a (valid) signature.
    let body = json!({"name": "x", "public_key": owner.public_key().to_hex(), "component": "AA=="});
    let (status, json) = client.post_json("/agent/deploy", &body).unwrap();
    assert_eq!(
        (status, code(&json)),
        (403, "owner_signature_invalid"),
        "{json}"
    );
    let (signature, signed_at) = owner_signature(&owner, OwnerAction::Deploy, "x", "00").unwrap();
    let body = json!({"name": "x", "public_key": owner.public_key().to_hex(), "component": "AA==", "signature": signature, "signed_at": signed_at});
    let (status, json) = client.post_json("/agent/deploy", &body).unwrap();
    assert_eq!(
        (status, code(&json)),
        (403, "owner_signature_invalid"),
        "{json}"
    );
    let (status, json) = client
        .post_json("/agent/deploy", &json!({"name": "x"}))
        .unwrap();
    assert_eq!((status, code(&json)), (400, "invalid_request"), "{json}");

    // Search needs words; invocations need the right fields for the kind.
    let (status, json) = client
        .post_json("/search", &json!({"query": " ?! "}))
        .unwrap();
    assert_eq!((status, code(&json)), (400, "invalid_request"));
    deploy(&client, &owner, "cli", "hello", "cli", &[]);
    let (status, json) = client
        .post_json("/agents/cli/invoke", &json!({"event": 1}))
        .unwrap();
    assert_eq!((status, code(&json)), (400, "invalid_request"), "{json}");
    let (status, json) = client
        .post_json(
            "/agents/cli/invoke",
            &json!({"args": ["a"], "encrypted_stdin": "00"}),
        )
        .unwrap();
    assert_eq!((status, code(&json)), (400, "invalid_request"), "{json}");
    let (status, json) = client
        .post_json("/agents/nobody/invoke", &json!({}))
        .unwrap();
    assert_eq!((status, code(&json)), (404, "agent_not_found"));
    // A handler agent has no HTTP paths, and an HTTP agent is not invoked with events.
    let (status, _, body) = http("GET", &format!("{}/agents/cli/", server.url), None);
    assert_eq!(status, 409, "{body}");
}

#[test]
fn executions_on_every_code_route_are_recorded_without_plaintext() {
    let server = TestServer::start();
    let (client, secret, session) = crate::harness::session(&server);
    let program = wasm("hello");
    let (req, _) = session
        .encrypt_execution(
            &hypervisor_client::ExecuteInput::new(&program).args(["secret-argument"]),
        )
        .unwrap();
    let body = serde_json::to_value(req).unwrap();
    let (status, headers, out) = client
        .post_json_with("/test/execute/wasm", &body, &[])
        .unwrap();
    assert_eq!(status, 200, "{out}");
    let id = headers
        .iter()
        .find(|(k, _)| k == "x-execution-id")
        .map(|(_, v)| v.clone())
        .expect("x-execution-id");
    let (status, record) = get_json(&server, &format!("/executions/{id}"));
    assert_eq!(status, 200, "{record}");
    assert_eq!(record["route"], "/test/execute/wasm");
    assert_eq!(
        record["code_hash"],
        hex::encode(hypervisor_protocol::sha256(&program))
    );
    assert_eq!(
        record["caller_hash"],
        hex::encode(hypervisor_protocol::sha256(secret.public_key().as_bytes()))
    );
    assert_eq!(record["commitment"], out["result_commitment"]);
    assert_eq!(
        (record["status"].as_str(), record["exit_code"].as_i64()),
        (Some("exited"), Some(0))
    );
    assert!(!record.to_string().contains("secret-argument"));
}

#[test]
fn policy_and_payment_run_on_every_invocation() {
    use hypervisor_client::x402::{Offer, Wallet};
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules.toml");
    std::fs::write(
        &rules,
        "[routes.\"/agents/blocked/invoke\"]\nenabled = false\n",
    )
    .unwrap();
    let server = TestServer::start_with(&format!(
        "{}{}",
        crate::payments::payments_table(""),
        crate::harness::policy_table(
            "policy-python",
            &format!("rules = {:?}", rules.display().to_string())
        ),
    ));
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    let stats = wasm("text-stats");

    // The operator's policy sees every invocation (route, agent, code hash) and may refuse it.
    deploy(
        &client,
        &owner,
        "blocked",
        "text-stats",
        "refused by policy",
        &[],
    );
    assert_eq!(
        refused(client.invoke("blocked", json!({"text": "x"}))),
        (403, "policy_denied".to_string())
    );

    // A paid agent answers 402 with its own price until paid, like any x402 resource.
    client
        .deploy_agent(
            &owner,
            &Deployment {
                name: "paid",
                component: &stats,
                price: Some("5000".into()),
                ..Deployment::default()
            },
        )
        .unwrap();
    let path = "/agents/paid/invoke";
    let body = json!({"event": {"text": "paid words here"}});
    let (status, headers, challenge) = client.post_json_with(path, &body, &[]).unwrap();
    assert_eq!(status, 402, "{challenge}");
    assert_eq!(challenge["accepts"][0]["maxAmountRequired"], "5000");
    assert!(
        challenge["accepts"][0]["resource"]
            .as_str()
            .unwrap()
            .ends_with(path)
    );
    let required = headers
        .iter()
        .find(|(k, _)| k == "payment-required")
        .map(|(_, v)| v.as_str());
    let offer = Offer::from_402(required, &challenge).unwrap();
    let wallet = Wallet::random().unwrap();
    let now = crate::payments::now();
    let (name, value) = wallet.pay(&offer, now).unwrap();
    let (status, headers, out) = client
        .post_json_with(path, &body, &[(name, value.clone())])
        .unwrap();
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["result"]["words"], 3);
    let settlement = headers
        .iter()
        .find(|(k, _)| k == "payment-response")
        .map(|(_, v)| crate::payments::b64_json(v))
        .expect("PAYMENT-RESPONSE");
    assert_eq!(settlement["success"], true);
    let (_, record) = get_json(
        &server,
        &format!("/executions/{}", out["execution_id"].as_str().unwrap()),
    );
    assert!(
        record["payment"]
            .as_str()
            .unwrap()
            .starts_with("x402 eip155:84532 5000 payer="),
        "{record}"
    );
    // The same payment again is a replay.
    let (status, _, out) = client
        .post_json_with(path, &body, &[(name, value)])
        .unwrap();
    assert_eq!(
        (status, out["error"].as_str()),
        (402, Some("invalid_exact_evm_nonce_already_used"))
    );

    // A paid HTTP agent too.
    let web = wasm("http-hello");
    client
        .deploy_agent(
            &owner,
            &Deployment {
                name: "paid-web",
                component: &web,
                price: Some("7000".into()),
                ..Deployment::default()
            },
        )
        .unwrap();
    let (status, _, text) = http("GET", &format!("{}/agents/paid-web/", server.url), None);
    assert_eq!(status, 402, "{text}");
    let json: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["accepts"][0]["maxAmountRequired"], "7000");
}
