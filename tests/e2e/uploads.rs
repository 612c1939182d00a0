//! Binary uploads (docs/PROTOCOL.md, "Binary uploads"): components larger than a JSON body
//! can carry are deployed and executed as `multipart/form-data`, in the clear and sealed, up to
//! `http.max_upload_bytes`; every malformed upload is a JSON error.

use hypervisor_client::agents::Deployment;
use hypervisor_client::{ClientError, ExecuteInput};
use hypervisor_protocol::Role;

use crate::harness::{TestServer, code, session, wasm};

/// `component` with a custom section of `payload` bytes appended: a valid component of about
/// that size, as toolchains that embed runtimes and data produce (componentize-py: 18-22 MB).
pub fn padded(component: &[u8], payload: usize) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let name = b"padding";
    let mut section = Vec::with_capacity(payload + 16);
    leb(name.len(), &mut section);
    section.extend_from_slice(name);
    section.resize(section.len() + payload, 0x5a);
    let mut out = component.to_vec();
    out.push(0); // custom section
    leb(section.len(), &mut out);
    out.extend_from_slice(&section);
    out
}

/// A component larger than the default JSON body limit (32 MiB) even before hex or base64.
fn large_hello() -> Vec<u8> {
    padded(&wasm("hello"), 40 << 20)
}

#[test]
fn a_component_larger_than_a_json_body_deploys_and_runs_in_the_clear_and_sealed() {
    let server = TestServer::start();
    let (client, owner, owner_session) = session(&server);
    let component = large_hello();
    assert!(component.len() > 40 << 20);

    // In JSON (forced), it cannot be sent: the host refuses the body as too large.
    let json_only = client.clone().binary_uploads_above(usize::MAX);
    let refused = json_only.deploy_agent(
        &owner,
        &Deployment {
            name: "big-json",
            component: &component,
            ..Deployment::default()
        },
    );
    assert!(
        matches!(&refused, Err(ClientError::Server { status: 413, code, .. }) if code == "body_too_large"),
        "{refused:?}"
    );

    // As a binary part (the client's default above 4 MiB): deployed in the clear, invoked.
    let deployed = client
        .deploy_agent(
            &owner,
            &Deployment {
                name: "big-clear",
                component: &component,
                ..Deployment::default()
            },
        )
        .unwrap();
    assert_eq!(
        deployed["latest"]["code_hash"],
        hex::encode(hypervisor_protocol::sha256(&component))
    );
    assert_eq!(deployed["latest"]["size"], component.len());
    let out = client.invoke_cli("big-clear", &["uploads"], None).unwrap();
    assert_eq!(out.stdout.as_deref(), Some("Hello uploads\n"));

    // Sealed to the owner's session: a private agent whose code the operator never sees.
    let deployed = client
        .deploy_agent_sealed(
            &owner,
            &owner_session,
            &Deployment {
                name: "big-sealed",
                component: &component,
                ..Deployment::default()
            },
        )
        .unwrap();
    let code_hash = deployed["latest"]["code_hash"].as_str().unwrap();
    let run = client
        .invoke_command_sealed(&owner_session, "big-sealed", code_hash, &["sealed"], b"")
        .unwrap();
    assert_eq!(run.stdout().unwrap(), b"Hello sealed\n");

    // The spool files are gone (they never had a name).
    let uploads = server.data_dir.join("uploads");
    assert_eq!(
        std::fs::read_dir(&uploads).unwrap().count(),
        0,
        "{uploads:?}"
    );
}

#[test]
fn large_programs_execute_as_binary_parts_on_every_execution_route() {
    let server = TestServer::start();
    let (client, _, session) = session(&server);
    let program = large_hello();
    let run = client
        .execute(&session, &ExecuteInput::new(&program).args(["binary"]))
        .unwrap();
    assert_eq!(run.stdout().unwrap(), b"Hello binary\n");
    // (The client checked the result's commitment, which binds the hash of the program it
    // sent: the host ran exactly the padded component.)

    // A small Python script as a binary part too (forced), on the Python route.
    let forced = client.clone().binary_uploads_above(0);
    let run = forced
        .execute_python(&session, &ExecuteInput::new(b"print('from a part')"))
        .unwrap();
    assert_eq!(run.stdout().unwrap(), b"from a part\n");
}

/// A multipart body by hand: `parts` of (name, content type, bytes).
pub fn multipart(parts: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "hv-test-boundary-7d1f";
    let mut body = Vec::new();
    for (name, content_type, bytes) in parts {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\
                 Content-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn post_raw(
    server: &TestServer,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, serde_json::Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = agent
        .post(format!("{}{path}", server.url))
        .header("content-type", content_type);
    // as the client does: a large body waits for the server's go-ahead, so a refusal is heard
    if body.len() > 64 << 10 {
        request = request.header("expect", "100-continue");
    }
    let mut resp = request.send(body).unwrap();
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap();
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status} {text:?}: {e}"));
    (status, json)
}

#[test]
fn malformed_uploads_are_json_errors() {
    let server =
        TestServer::start_with("[http]\nmax_upload_bytes = 2097152\nmax_body_bytes = 1048576\n");
    let (client, owner, session) = session(&server);
    let program = wasm("hello");
    let (req, envelope, _) = session
        .encrypt_execution_parts(&ExecuteInput::new(&program))
        .unwrap();
    let json = serde_json::to_vec(&req).unwrap();
    let with_hex = {
        let mut r = req.clone();
        r.encrypted_wasm = hex::encode(&envelope);
        serde_json::to_vec(&r).unwrap()
    };
    let path = "/test/execute/wasm";
    let octet = "application/octet-stream";
    let app_json = "application/json";

    // The well-formed upload runs.
    let (ct, body) = multipart(&[
        ("request", app_json, &json),
        ("encrypted_wasm", octet, &envelope),
    ]);
    let (status, answer) = post_raw(&server, path, &ct, &body);
    assert_eq!(status, 200, "{answer}");

    // (what, (content type, body), expected status, expected code)
    type Case<'a> = (&'a str, (String, Vec<u8>), u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "sent twice",
            multipart(&[
                ("request", app_json, &with_hex),
                ("encrypted_wasm", octet, &envelope),
            ]),
            400,
            "invalid_request",
        ),
        (
            "no request part",
            multipart(&[("encrypted_wasm", octet, &envelope)]),
            400,
            "invalid_request",
        ),
        (
            "neither field nor part",
            multipart(&[("request", app_json, &json)]),
            400,
            "invalid_request",
        ),
        (
            "a part of another route",
            multipart(&[
                ("request", app_json, &json),
                ("component", octet, &envelope),
            ]),
            400,
            "invalid_request",
        ),
        (
            "two binary parts",
            multipart(&[
                ("request", app_json, &json),
                ("encrypted_wasm", octet, &envelope),
                ("encrypted_wasm", octet, &envelope),
            ]),
            400,
            "invalid_request",
        ),
        (
            "request part not JSON",
            multipart(&[
                ("request", app_json, b"{not json"),
                ("encrypted_wasm", octet, &envelope),
            ]),
            400,
            "malformed_json",
        ),
        (
            "request part an array",
            multipart(&[
                ("request", app_json, b"[1,2]"),
                ("encrypted_wasm", octet, &envelope),
            ]),
            400,
            "invalid_request",
        ),
        (
            "request part above http.max_body_bytes",
            multipart(&[
                ("request", app_json, &vec![b' '; (1 << 20) + 1024]),
                ("encrypted_wasm", octet, &envelope),
            ]),
            413,
            "body_too_large",
        ),
        (
            "upload above http.max_upload_bytes",
            multipart(&[
                ("request", app_json, &json),
                ("encrypted_wasm", octet, &vec![0u8; 3 << 20]),
            ]),
            413,
            "body_too_large",
        ),
        (
            "no boundary",
            ("multipart/form-data".to_string(), b"--x\r\n".to_vec()),
            400,
            "invalid_request",
        ),
        (
            "cut short",
            {
                let (ct, mut body) = multipart(&[("request", app_json, &json)]);
                body.truncate(body.len() - 10);
                (ct, body)
            },
            400,
            "invalid_request",
        ),
        (
            "envelope tampered with",
            {
                let mut bad = envelope.clone();
                let last = bad.len() - 1;
                bad[last] ^= 1;
                multipart(&[
                    ("request", app_json, &json),
                    ("encrypted_wasm", octet, &bad),
                ])
            },
            400,
            "decryption_failed",
        ),
    ];
    for (what, (ct, body), want_status, want_code) in &cases {
        let (status, answer) = post_raw(&server, path, ct, body);
        assert_eq!(
            (status, code(&answer)),
            (*want_status, *want_code),
            "{what}: {answer}"
        );
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}"
        );
    }

    // Deploy: an envelope of the wrong role does not open as a component; the client shows the
    // server's 413 for an upload above the limit (not a broken pipe).
    let too_big = client.deploy_agent(
        &owner,
        &Deployment {
            name: "too-big",
            component: &padded(&program, 3 << 20),
            ..Deployment::default()
        },
    );
    assert!(
        matches!(&too_big, Err(ClientError::Server { status: 413, code, .. }) if code == "body_too_large"),
        "{too_big:?}"
    );
    let d = Deployment {
        name: "wrong-role",
        component: &program,
        ..Deployment::default()
    };
    let audience = client.audience().unwrap();
    let (req, envelope) =
        hypervisor_client::agents::sealed_deploy_parts(&owner, &audience, &session, &d).unwrap();
    let deploy = |part: &str, bytes: &[u8]| {
        let (ct, body) = multipart(&[
            ("request", app_json, &serde_json::to_vec(&req).unwrap()),
            (part, octet, bytes),
        ]);
        post_raw(&server, "/agent/deploy", &ct, &body)
    };
    let wrong_role = session.envelope().seal(Role::Program, &program).unwrap();
    let (status, answer) = deploy("encrypted_component", &wrong_role);
    assert_eq!(
        (status, code(&answer)),
        (400, "decryption_failed"),
        "{answer}"
    );
    // the execute route's part name is not a deploy's
    let (status, answer) = deploy("encrypted_wasm", &envelope);
    assert_eq!(
        (status, code(&answer)),
        (400, "invalid_request"),
        "{answer}"
    );
    // the right envelope under the right name deploys
    let (status, answer) = deploy("encrypted_component", &envelope);
    assert_eq!(status, 201, "{answer}");
}
