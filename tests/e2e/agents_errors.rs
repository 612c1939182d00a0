//! Agents end to end, bad input: deployments and invocations that are refused get clear
//! errors (status and code).

use hypervisor_client::agents::{Deployment, owner_signature};
use hypervisor_protocol::ClientSecret;
use hypervisor_protocol::agents::OwnerAction;
use serde_json::json;

use crate::agents::{deploy, http, refused};
use crate::harness::{TestServer, code, wasm};

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
    let signed = owner_signature(
        &owner,
        &client.audience().unwrap(),
        OwnerAction::Deploy,
        "x",
        "00",
    )
    .unwrap();
    let body = json!({"name": "x", "public_key": owner.public_key().to_hex(), "component": "AA==",
        "signature": signed.signature, "signed_at": signed.signed_at, "sequence": signed.sequence});
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
fn a_handler_answer_over_the_output_limit_is_an_error_not_a_cut_value() {
    let server = TestServer::start_with("[limits]\ndefault_time_ms = 20000\nstdout_bytes = 64\n");
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    deploy(
        &client,
        &owner,
        "text-stats",
        "text-stats",
        "Counts words",
        &[],
    );
    let run = client
        .invoke(
            "text-stats",
            json!({"text": "The cat sat. The cat ran!\nA dog barked."}),
        )
        .unwrap();
    assert!(!run.ok, "{run:?}");
    assert!(run.result.is_none());
    let error = run.error.expect("an error");
    assert_eq!(error.code, "output_too_large", "{error:?}");
    assert!(error.message.contains("output limit of 64"), "{error:?}");
}

#[test]
fn undecodable_paths_and_queries_get_json_errors_and_http_agents_see_raw_paths() {
    let server = TestServer::start();
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    deploy(&client, &owner, "web", "http-hello", "echoes", &[]);

    // axum's own rejections are plain text; the host's are JSON with a stable code.
    for path in ["/executions?limit=x", "/agents/%FF", "/executions/%FF"] {
        let (status, ctype, body) = http("GET", &format!("{}{path}", server.url), None);
        assert_eq!(status, 400, "{path}: {body}");
        assert!(ctype.starts_with("application/json"), "{path}: {ctype}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(code(&json), "invalid_request", "{path}: {body}");
    }

    // The agent gets the path as sent, still percent-encoded: `/ech%6F` is not `/echo`.
    let url = format!("{}/agents/web/echo", server.url);
    let (status, _, body) = http("POST", &url, Some("[1]"));
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = http(
        "POST",
        &format!("{}/agents/web/ech%6F", server.url),
        Some("[1]"),
    );
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("not_found"), "{body}");
    // Even bytes that do not decode to text reach the agent (its 404, not the host's 400).
    let (status, _, body) = http(
        "POST",
        &format!("{}/agents/web/%FF", server.url),
        Some("[1]"),
    );
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("\"error\":\"not_found\""), "{body}");
}

/// An HTTP agent is served in the clear: deployed private (the default of a sealed deployment)
/// with nobody named to call it, it could never be reached, so the deployment is refused with
/// a clear error; deployed public (still sealed at rest) it answers.
#[test]
fn a_private_http_agent_nobody_can_call_is_refused_at_deploy() {
    let server = TestServer::start();
    let (client, owner, session) = crate::harness::session(&server);
    let component = wasm("http-hello");
    let sealed = |public: Option<bool>| Deployment {
        name: "web",
        component: &component,
        public,
        ..Deployment::default()
    };
    for public in [None, Some(false)] {
        let (status, message) = match client.deploy_agent_sealed(&owner, &session, &sealed(public))
        {
            Err(hypervisor_client::ClientError::Server {
                status, message, ..
            }) => (status, message),
            other => panic!("{other:?}"),
        };
        assert_eq!(status, 400, "{message}");
        assert!(
            message.contains("HTTP agent is served in the clear"),
            "{message}"
        );
    }
    assert_eq!(crate::harness::get_json(&server, "/agents/web").0, 404);
    client
        .deploy_agent_sealed(&owner, &session, &sealed(Some(true)))
        .unwrap();
    let (status, _, body) = http("GET", &format!("{}/agents/web/", server.url), None);
    assert_eq!(status, 200, "{body}");
}

/// A price the payment scheme cannot carry (above 2^256 - 1), zero or with leading zeros is
/// refused at deploy, not accepted and then answered 503 at every invocation.
#[test]
fn prices_outside_what_a_payment_can_carry_are_refused_at_deploy() {
    let server = TestServer::start_with(&crate::payments::payments_table(""));
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    let hello = wasm("hello");
    let above_uint256 =
        "115792089237316195423570985008687907853269984665640564039457584007913129639936";
    for price in [above_uint256, "0", "0100"] {
        let refusal = refused(client.deploy_agent(
            &owner,
            &Deployment {
                name: "dear",
                component: &hello,
                price: Some(price.into()),
                ..Deployment::default()
            },
        ));
        assert_eq!(refusal, (400, "invalid_request".to_string()), "{price}");
    }
    assert_eq!(crate::harness::get_json(&server, "/agents/dear").0, 404);
}
