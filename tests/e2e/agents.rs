//! Agents end to end: deploy each kind (handler, `wasi:http`, CLI), search, invoke, records,
//! and a third-party `wasi:http` component; the helpers the other agent tests share. Sealed
//! (private) agents, policy and payment on invocations: `agents_access.rs`. Bad input:
//! `agents_errors.rs`. Lifecycle (versions, owners, restart, TTL, crashes, concurrency):
//! `agents_lifecycle.rs`. Replayed ciphertexts and signed requests: `agents_security.rs`.

use hypervisor_client::agents::Deployment;
use hypervisor_client::{Client, ClientError};
use hypervisor_protocol::ClientSecret;
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
    let result = run.result_json().unwrap();
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
    let results = found.result_json().unwrap()["results"].clone();
    assert!(!results.as_array().unwrap().is_empty(), "{results}");
    assert!(
        results[0]["url"]
            .as_str()
            .unwrap()
            .starts_with("https://arxiv.org/abs/")
    );

    // Every invocation is recorded: hashes and a commitment, never plaintext.
    // Records link callers to code: an anonymous invocation's record is the agent owner's to
    // read, and nobody reads records without proving a key.
    let record = client.execution(&owner, &run.execution_id).unwrap();
    let (status, body) = get_json(&server, &format!("/executions/{}", run.execution_id));
    assert_eq!(
        (status, code(&body)),
        (403, "owner_signature_invalid"),
        "{body}"
    );
    let (status, body) = get_json(&server, "/executions");
    assert_eq!(
        (status, code(&body)),
        (403, "owner_signature_invalid"),
        "{body}"
    );
    let stranger = ClientSecret::generate().unwrap();
    assert!(matches!(
        client.execution(&stranger, &run.execution_id),
        Err(ClientError::Server { status: 404, .. })
    ));
    assert_eq!(record["agent"], "text-stats");
    assert_eq!(record["code_hash"], stats["latest"]["code_hash"]);
    assert_eq!(record["status"], "exited");
    assert_eq!(record["commitment"].as_str().unwrap().len(), 64);
    assert!(!record.to_string().contains("cat sat"), "{record}");
    let audit = client.executions(&owner, 0, 1000).unwrap();
    assert!(audit.len() >= 5, "{audit:?}");
    assert!(
        audit.iter().all(|r| r["agent"].is_string()),
        "only the owner's agents' records: {audit:?}"
    );
    // Execution ids are UUIDs: any text form names the same record; anything else is a 400.
    let id = uuid::Uuid::parse_str(&run.execution_id).unwrap();
    assert_eq!(
        id.hyphenated().to_string(),
        run.execution_id,
        "canonical when written"
    );
    for form in [
        id.hyphenated().to_string().to_uppercase(),
        id.simple().to_string(),
        id.braced().to_string(),
        id.urn().to_string(),
    ] {
        let same = client.execution(&owner, &form).unwrap();
        assert_eq!(same["id"], record["id"], "{form}: {same}");
    }
    let (status, body) = get_json(&server, "/executions/no-such-id");
    assert_eq!((status, code(&body)), (400, "invalid_request"), "{body}");
    assert!(matches!(
        client.execution(&owner, &uuid::Uuid::now_v7().to_string()),
        Err(ClientError::Server { status: 404, .. })
    ));

    let (status, listed) = get_json(&server, "/agents");
    assert_eq!(status, 200);
    assert_eq!(listed["agents"].as_array().unwrap().len(), 4);
    assert_eq!(listed["next"], serde_json::Value::Null, "{listed}");
    // Pages by name: the cursor of a full page leads to the rest, once.
    let names = |page: &serde_json::Value| -> Vec<String> {
        page["agents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, first) = get_json(&server, "/agents?limit=3");
    let next = first["next"].as_str().expect("a cursor").to_string();
    assert_eq!(next, names(&first)[2]);
    let (_, rest) = get_json(&server, &format!("/agents?limit=3&after={next}"));
    assert_eq!(names(&rest).len(), 1);
    assert_eq!(rest["next"], serde_json::Value::Null);
    let mut all = names(&first);
    all.extend(names(&rest));
    assert_eq!(all, names(&listed));
    let (status, body) = get_json(&server, "/agents?limit=0");
    assert_eq!(status, 200, "a limit is clamped into 1..=1000: {body}");
    assert_eq!(names(&body).len(), 1);
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
    // The key that ran it reads its record; nobody else does.
    let record = client.execution(&secret, &id).unwrap();
    assert_eq!(record["route"], "/test/execute/wasm");
    let stranger = hypervisor_protocol::ClientSecret::generate().unwrap();
    assert!(matches!(
        client.execution(&stranger, &id),
        Err(hypervisor_client::ClientError::Server { status: 404, .. })
    ));
    assert!(client.executions(&stranger, 0, 1000).unwrap().is_empty());
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
