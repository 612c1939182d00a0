//! The HTTP surface: routes, error bodies, body limits, malformed input.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use hypervisor_protocol::ClientSecret;
use serde_json::json;

use crate::harness::{TestServer, code};

#[test]
fn ping_answers_pong() {
    let server = TestServer::start();
    assert_eq!(server.client().ping().unwrap(), "pong");
}

#[test]
fn create_keypair_returns_a_session_and_rejects_bad_keys() {
    let server = TestServer::start();
    let client = server.client();
    let key = ClientSecret::generate().unwrap();
    let (status, body) = client
        .post_json(
            "/encrypt/create_keypair",
            &json!({"pubkey": key.public_key().to_hex()}),
        )
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["session_pubkey"].as_str().unwrap().len(), 130);
    let id = uuid::Uuid::parse_str(body["session_id"].as_str().unwrap()).unwrap();
    assert_eq!(id.get_version_num(), 7, "session ids are UUID v7");

    // Compressed keys are accepted too.
    let compressed = {
        let k = key.public_key();
        let b = k.as_bytes();
        let mut c = vec![if b[64] & 1 == 1 { 3 } else { 2 }];
        c.extend_from_slice(&b[1..33]);
        hex::encode(c)
    };
    let (status, _) = client
        .post_json("/encrypt/create_keypair", &json!({"pubkey": compressed}))
        .unwrap();
    assert_eq!(status, 200);

    for (pubkey, expected) in [
        ("not hex", "malformed_hex"),
        ("04abcd", "invalid_public_key"),
        // 65 bytes, right prefix, not on the curve
        (&*format!("04{}", "11".repeat(64)), "invalid_public_key"),
    ] {
        let (status, body) = client
            .post_json("/encrypt/create_keypair", &json!({"pubkey": pubkey}))
            .unwrap();
        assert_eq!((status, code(&body)), (400, expected), "{body}");
        assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    }
    let (status, body) = client
        .post_json("/encrypt/create_keypair", &json!({"pubky": "04"}))
        .unwrap();
    assert_eq!((status, code(&body)), (400, "invalid_request"), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("pubky"));
}

/// Sends raw bytes and returns (status, body).
fn raw(server: &TestServer, request: &[u8]) -> (u16, String) {
    let addr = server.url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

#[test]
fn malformed_json_unknown_routes_and_wrong_methods_get_json_errors() {
    let server = TestServer::start();
    let (status, body) = raw(&server, b"POST /test/execute/wasm HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\nconnection: close\r\n\r\n{oops");
    assert_eq!(status, 400);
    assert!(body.contains("\"malformed_json\""), "{body}");
    let (status, body) = raw(
        &server,
        b"GET /nowhere HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    );
    assert_eq!(status, 404);
    assert!(body.contains("\"not_found\""), "{body}");
    let (status, body) = raw(
        &server,
        b"GET /test/execute/wasm HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    );
    assert_eq!(status, 405);
    assert!(body.contains("\"method_not_allowed\""), "{body}");
}

#[test]
fn oversized_bodies_get_413_declared_or_streamed() {
    let server =
        TestServer::start_with("[http]\nmax_body_bytes = 4096\nmax_upload_bytes = 1048576\n");
    let big = format!("{{\"pubkey\": \"{}\"}}", "a".repeat(10_000));
    let (status, body) = server
        .client()
        .post_json(
            "/encrypt/create_keypair",
            &serde_json::from_str::<serde_json::Value>(&big).unwrap(),
        )
        .unwrap();
    assert_eq!((status, code(&body)), (413, "body_too_large"), "{body}");

    // A body far larger than the socket buffers (the client sends this component as a multipart
    // upload, bounded by `http.max_upload_bytes`): the client hears the 413 (it sends large
    // bodies with `Expect: 100-continue`) instead of failing on a closed connection.
    let component = vec![7u8; 8 << 20];
    let owner = ClientSecret::generate().unwrap();
    let refused = server.client().deploy_agent(
        &owner,
        &hypervisor_client::agents::Deployment {
            name: "huge",
            component: &component,
            ..Default::default()
        },
    );
    match refused {
        Err(hypervisor_client::ClientError::Server { status, code, .. }) => {
            assert_eq!((status, code.as_str()), (413, "body_too_large"));
        }
        other => panic!("expected the server's 413, got {other:?}"),
    }

    // No Content-Length: a chunked body is cut off at the limit as it streams in.
    let chunk = "a".repeat(10_000);
    let req = format!(
        "POST /encrypt/create_keypair HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    let (status, body) = raw(&server, req.as_bytes());
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("body_too_large"));
}

#[test]
fn a_body_that_never_finishes_gets_408_not_a_hang() {
    let server = TestServer::start_with("[http]\nbody_timeout_ms = 500\n");
    let (status, body) = raw(
        &server,
        b"POST /encrypt/create_keypair HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\nconnection: close\r\n\r\n{\"pubkey\":",
    );
    assert_eq!(status, 408, "{body}");
    assert!(body.contains("body_timeout"));
    assert_eq!(server.client().ping().unwrap(), "pong");
}

/// A server configured with no plug-in files at all, started away from the checkout, runs the
/// plug-ins built into its binary: the policy, the Python runtime and payments.
#[test]
fn the_binary_runs_from_any_directory_with_its_built_in_plug_ins() {
    let server = TestServer::start_with(
        "[policy]\ninstances = 1\n[python]\nenabled = true\n\
         [payments]\nenabled = true\n[payments.price]\n\
         pay_to = \"0x209693Bc6afc0C5328bA36FaF03C514EF312287C\"\n",
    );
    let config = std::fs::read_to_string(server.data_dir.with_extension("toml")).unwrap();
    assert!(!config.contains("component"), "{config}");
    let log = server.log();
    for builtin in ["builtin:policy-python", "builtin:payments"] {
        assert!(log.contains(builtin), "{builtin} not loaded:\n{log}");
    }
    // The built-in Python runtime runs a script; the built-in payments component challenges.
    let (client, _key, session) = crate::harness::session(&server);
    let out = client
        .execute_python(
            &session,
            &hypervisor_client::ExecuteInput::new(b"print(6 * 7)"),
        )
        .unwrap();
    assert_eq!(out.stdout().unwrap(), b"42\n");
    let (_, headers, _) = crate::payments::challenge(&server, &session);
    assert!(crate::payments::header(&headers, "payment-required").is_some());
}

/// Requests are JSON objects: an array where an object is expected is a 400, at the top of a
/// body or inside it (JSON libraries would map a struct from an array of its fields); lists
/// longer than their bound are refused while they are parsed; a session id is the same session
/// in any UUID text form.
#[test]
fn arrays_for_objects_overlong_lists_and_uuid_forms_are_handled_alike_everywhere() {
    let server = TestServer::start();
    let client = server.client();
    let key = ClientSecret::generate().unwrap();
    let pubkey = key.public_key().to_hex();
    for (path, body) in [
        ("/search", json!(["text"])),
        ("/encrypt/create_keypair", json!([pubkey])),
        (
            "/test/execute/wasm",
            json!({"encrypted_wasm": "00", "public_key": pubkey, "limits": [1000, null, null]}),
        ),
        (
            "/agent/deploy",
            json!([
                "x",
                "",
                [],
                pubkey,
                "AA==",
                null,
                null,
                null,
                null,
                null,
                null,
                null,
                null,
                null,
                null,
                "00",
                1,
                1
            ]),
        ),
    ] {
        let (status, refusal) = client.post_json(path, &body).unwrap();
        assert_eq!(
            (status, code(&refusal)),
            (400, "invalid_request"),
            "{path} {body}: {refusal}"
        );
    }
    // Over-long lists: refused with the bound named.
    let (status, refusal) = client
        .post_json(
            "/test/execute/wasm",
            &json!({"encrypted_wasm": "00", "public_key": pubkey,
                    "encrypted_arguments": vec![""; 65_537]}),
        )
        .unwrap();
    assert_eq!((status, code(&refusal)), (400, "invalid_request"));
    assert!(
        refusal["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 65536"),
        "{refusal}"
    );

    // A session id in any text form is the same session.
    let session = client.create_session(&key).unwrap();
    let program = crate::harness::wasm("hello");
    for form in [
        session.id.hyphenated().to_string().to_uppercase(),
        session.id.simple().to_string(),
        session.id.braced().to_string(),
        session.id.urn().to_string(),
    ] {
        let (req, _) = session
            .encrypt_execution(&hypervisor_client::ExecuteInput::new(&program))
            .unwrap();
        let mut body = serde_json::to_value(&req).unwrap();
        body["session_id"] = json!(form);
        let (status, answer) = client.post_json("/test/execute/wasm", &body).unwrap();
        assert_eq!(status, 200, "{form}: {answer}");
        assert_eq!(answer["session_id"], session.id.to_string(), "{form}");
    }
    let (status, refusal) = client
        .post_json(
            "/test/execute/wasm",
            &json!({"encrypted_wasm": "00", "public_key": pubkey, "session_id": "not-a-uuid"}),
        )
        .unwrap();
    assert_eq!(
        (status, code(&refusal)),
        (400, "invalid_request"),
        "{refusal}"
    );
}

/// A request head hyper cannot parse never reaches the router, yet gets the same JSON error
/// body as every other error: malformed (400), a target too long (414), a head larger than
/// `http.max_head_bytes` (431), an unknown HTTP version (505).
#[test]
fn errors_before_the_router_carry_json_bodies() {
    let server = TestServer::start_with("[http]\nmax_head_bytes = 16384\n");
    let long_target = format!("GET /{} HTTP/1.1\r\nhost: x\r\n\r\n", "a".repeat(70_000));
    let big_header = format!(
        "GET /ping HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    for (request, status, expected) in [
        ("GARBAGE\r\n\r\n".to_string(), 400, "malformed_request"),
        (
            "GET /ping HTTP/1.1\r\nhost: x\r\ncontent-length: abc\r\n\r\n".to_string(),
            400,
            "malformed_request",
        ),
        (big_header, 431, "headers_too_large"),
        // A target longer than the head may be is a head too large.
        (long_target.clone(), 431, "headers_too_large"),
    ] {
        let (got, body) = raw(&server, request.as_bytes());
        let json: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{got} with a body that is not JSON ({e}): {body:?}"));
        assert_eq!((got, code(&json)), (status, expected), "{body}");
        assert!(!json["error"]["message"].as_str().unwrap().is_empty());
    }
    // A head just under the limit is served as usual.
    let fits = format!(
        "GET /ping HTTP/1.1\r\nhost: x\r\nconnection: close\r\nx-big: {}\r\n\r\n",
        "a".repeat(10_000)
    );
    assert_eq!(raw(&server, fits.as_bytes()), (200, "pong".to_string()));
    // Where heads may be larger than a target may be long (65534 bytes), a longer one is 414.
    let roomy = TestServer::start_with("[http]\nmax_head_bytes = 131072\n");
    let (got, body) = raw(&roomy, long_target.as_bytes());
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((got, code(&json)), (414, "uri_too_long"), "{body}");
}
