//! One encoding for binary in JSON (PROTOCOL §1): hex digits, no `0x` prefix. Every hex field
//! of real requests, found by walking them (any string of hex digits), is sent again with the
//! prefix, on each route family that takes binary: the request is refused, naming the field,
//! and the unchanged request then succeeds (so the prefix was the only fault).

use hypervisor_client::ExecuteInput;
use hypervisor_client::agents::{Deployment, sealed_deploy_request};
use hypervisor_protocol::agents::InvokeRequest;
use hypervisor_protocol::{ClientSecret, Role};
use serde_json::{Value, json};

use crate::harness::{TestServer, code, session, wasm};

/// The JSON pointers of every string in `v` made of hex digits (even length, at least 2).
fn hex_fields(v: &Value, at: &str, out: &mut Vec<String>) {
    match v {
        Value::String(s)
            if s.len() >= 2 && s.len() % 2 == 0 && s.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            out.push(at.to_string());
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                hex_fields(item, &format!("{at}/{i}"), out);
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                hex_fields(item, &format!("{at}/{k}"), out);
            }
        }
        _ => {}
    }
}

/// Sends `body` to `path` once per hex field with that field prefixed by `0x`; each must be
/// refused with one of `codes`, the message naming the field. Returns how many were sent.
fn each_prefixed(server: &TestServer, path: &str, body: &Value, codes: &[&str]) -> usize {
    let mut fields = Vec::new();
    hex_fields(body, "", &mut fields);
    assert!(!fields.is_empty(), "{path}: no hex field in {body}");
    for pointer in &fields {
        let mut bad = body.clone();
        let slot = bad.pointer_mut(pointer).expect("the field");
        *slot = Value::String(format!("0x{}", slot.as_str().expect("a string")));
        let (status, answer) = server.client().post_json(path, &bad).expect("POST");
        assert!(
            (400..500).contains(&status) && codes.contains(&code(&answer)),
            "{path} {pointer} with 0x: {status} {answer}"
        );
        if code(&answer) == "malformed_hex" {
            let name = pointer.rsplit('/').find(|p| p.parse::<usize>().is_err());
            let message = answer["error"]["message"].as_str().unwrap_or("");
            assert!(
                name.is_some_and(|n| message.contains(n)),
                "{pointer}: {message}"
            );
        }
    }
    fields.len()
}

#[test]
fn a_0x_prefix_is_refused_in_every_hex_field_and_the_plain_request_then_passes() {
    let server = TestServer::start();
    let client = server.client();

    // POST /encrypt/create_keypair: pubkey.
    let key = ClientSecret::generate().unwrap();
    let body = json!({"pubkey": key.public_key().to_hex()});
    assert_eq!(
        each_prefixed(
            &server,
            "/encrypt/create_keypair",
            &body,
            &["malformed_hex"]
        ),
        1
    );
    let (status, answer) = client.post_json("/encrypt/create_keypair", &body).unwrap();
    assert_eq!(status, 200, "{answer}");

    // POST /test/execute/wasm: public_key, the sealed program, arguments and stdin.
    let (client, _key, session_) = session(&server);
    let program = wasm("hello");
    let (req, _) = session_
        .encrypt_execution(&ExecuteInput::new(&program).args(["a"]).stdin(b"in"))
        .unwrap();
    let body = serde_json::to_value(&req).unwrap();
    let sent = each_prefixed(&server, "/test/execute/wasm", &body, &["malformed_hex"]);
    assert!(
        sent >= 4,
        "public_key, encrypted_wasm, an argument, stdin: {sent}"
    );
    let (status, answer) = client.post_json("/test/execute/wasm", &body).unwrap();
    assert_eq!(status, 200, "{answer}");

    // POST /agent/deploy, sealed: public_key, encrypted_component, the owner's signature
    // (refused as an owner signature that is not hex).
    let owner = ClientSecret::generate().unwrap();
    let owner_session = client.create_session(&owner).unwrap();
    let audience = client.audience().unwrap();
    let deployment = Deployment {
        name: "hexes",
        description: "hex fields",
        component: &wasm("text-stats"),
        ..Deployment::default()
    };
    let req = sealed_deploy_request(&owner, &audience, &owner_session, &deployment).unwrap();
    let body = serde_json::to_value(&req).unwrap();
    let sent = each_prefixed(
        &server,
        "/agent/deploy",
        &body,
        &["malformed_hex", "owner_signature_invalid"],
    );
    assert!(
        sent >= 3,
        "public_key, encrypted_component, signature: {sent}"
    );
    let (status, answer) = client.post_json("/agent/deploy", &body).unwrap();
    assert_eq!(status, 201, "{answer}");

    // POST /agents/{name}/invoke, sealed: public_key, encrypted_event.
    let invoke = InvokeRequest {
        encrypted_event: Some(hex::encode(
            owner_session
                .envelope()
                .seal(Role::Event, br#"{"text": "a b"}"#)
                .unwrap(),
        )),
        public_key: Some(owner.public_key().to_hex()),
        session_id: Some(owner_session.id),
        ..InvokeRequest::default()
    };
    let body = serde_json::to_value(&invoke).unwrap();
    let sent = each_prefixed(&server, "/agents/hexes/invoke", &body, &["malformed_hex"]);
    assert!(sent >= 2, "public_key, encrypted_event: {sent}");
    let (status, answer) = client.post_json("/agents/hexes/invoke", &body).unwrap();
    assert_eq!(status, 200, "{answer}");
}
