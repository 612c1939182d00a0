//! Encrypted execution: round trips, and every way a request can be wrong.

use hypervisor_client::{ClientError, ExecuteInput};
use hypervisor_protocol::wire::{ExecuteRequest, ExitStatus, Limits};
use hypervisor_protocol::{ClientSecret, Envelope, Role, SessionKey};
use serde_json::json;

use crate::harness::{TestServer, code, run, session, session_at, wasm};

#[test]
fn hello_round_trip_with_arguments_and_stdin() {
    let server = TestServer::start();
    let (client, _key, session) = session(&server);
    let program = wasm("hello");
    let input = ExecuteInput::new(&program)
        .args(["world", "42"])
        .stdin(b"from stdin\n");
    let run = client.execute(&session, &input).unwrap();
    assert_eq!(run.result.status, ExitStatus::Exited);
    assert_eq!(run.result.exit_code, Some(0));
    assert_eq!(
        String::from_utf8(run.stdout().unwrap()).unwrap(),
        "Hello world 42\nstdin: from stdin\n"
    );
    assert!(run.stopped.is_none());
    assert!(!run.result.stdout_truncated);
    assert_eq!(run.result.limits.time_ms, 20_000);

    // The same session serves a second execution; the commitment changes with the input.
    let again = client
        .execute(&session, &ExecuteInput::new(&program).args(["again"]))
        .unwrap();
    assert_eq!(again.stdout().unwrap(), b"Hello again\n");
    assert_ne!(again.commitment, run.commitment);
}

#[test]
fn exit_codes_and_stderr_come_back() {
    let server = TestServer::start();
    let run = run(&server, "hello", &["--fail"]);
    assert_eq!(run.result.status, ExitStatus::Exited);
    // WASI 0.2's `wasi:cli/exit` carries only success or failure, so `exit(3)` arrives as 1.
    assert_eq!(run.result.exit_code, Some(1));
    assert_eq!(run.stderr().unwrap(), b"failing on request\n");
}

#[test]
fn a_wrong_client_key_cannot_decrypt_the_result() {
    let server = TestServer::start();
    let (client, _key, session) = session(&server);
    let program = wasm("hello");
    let (req, _) = session
        .encrypt_execution(&ExecuteInput::new(&program).args(["secret"]))
        .unwrap();
    let (status, body) = client.post_json("/test/execute/wasm", &req).unwrap();
    assert_eq!(status, 200, "{body}");
    let sealed = hex::decode(body["encrypted_result"].as_str().unwrap()).unwrap();
    assert_eq!(
        &sealed[..12],
        &hex::decode(body["result_nonce"].as_str().unwrap()).unwrap()[..]
    );
    // The right key opens it...
    assert!(session.envelope().open(Role::Result, &sealed).is_ok());
    // ...another client key, even with the same server key and session id, does not.
    let intruder = ClientSecret::generate().unwrap();
    let wrong = SessionKey::for_client(&intruder, &session.server_public, &session.id);
    assert!(
        Envelope::new(&wrong, session.id)
            .open(Role::Result, &sealed)
            .is_err()
    );
    // Nor can the result be read as another field.
    assert!(session.envelope().open(Role::Program, &sealed).is_err());
}

fn post(server: &TestServer, req: &ExecuteRequest) -> (u16, serde_json::Value) {
    server
        .client()
        .post_json("/test/execute/wasm", req)
        .unwrap()
}

#[test]
fn tampered_swapped_and_foreign_ciphertexts_are_refused() {
    let server = TestServer::start();
    let (_, _, a) = session(&server);
    let program = wasm("hello");
    let input = ExecuteInput::new(&program).args(["first", "second"]);
    let (good, _) = a.encrypt_execution(&input).unwrap();

    let mut tampered = good.clone();
    let mut bytes = hex::decode(&tampered.encrypted_wasm).unwrap();
    bytes[40] ^= 0x01;
    tampered.encrypted_wasm = hex::encode(bytes);
    let (status, body) = post(&server, &tampered);
    assert_eq!((status, code(&body)), (400, "decryption_failed"), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("program")
    );

    let mut swapped = good.clone();
    swapped.encrypted_arguments.swap(0, 1);
    let (status, body) = post(&server, &swapped);
    assert_eq!((status, code(&body)), (400, "decryption_failed"), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("argument 0")
    );

    let mut program_as_arg = good.clone();
    program_as_arg.encrypted_arguments[0] = good.encrypted_wasm.clone();
    assert_eq!(code(&post(&server, &program_as_arg).1), "decryption_failed");

    // A ciphertext from another session of the same client key.
    let client = server.client();
    let key = ClientSecret::generate().unwrap();
    let s1 = client.create_session(&key).unwrap();
    let s2 = client.create_session(&key).unwrap();
    let (mut cross, _) = s1.encrypt_execution(&input).unwrap();
    cross.session_id = Some(s2.id);
    let (status, body) = post(&server, &cross);
    assert_eq!((status, code(&body)), (400, "decryption_failed"), "{body}");

    let mut short = good.clone();
    short.encrypted_wasm = "00".repeat(10);
    assert_eq!(code(&post(&server, &short).1), "decryption_failed");
    let mut not_hex = good.clone();
    not_hex.encrypted_arguments[1] = "xyz".into();
    let (status, body) = post(&server, &not_hex);
    assert_eq!((status, code(&body)), (400, "malformed_hex"));
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("encrypted_arguments[1]")
    );

    // The untouched request still works.
    assert_eq!(post(&server, &good).0, 200);
}

#[test]
fn sessions_unknown_expired_or_of_another_key_are_refused() {
    let server = TestServer::start_with("[sessions]\nttl_seconds = 1\n");
    let (client, _key, session) = session(&server);
    let program = wasm("hello");
    let (req, _) = session
        .encrypt_execution(&ExecuteInput::new(&program))
        .unwrap();

    let mut unknown = req.clone();
    unknown.session_id = Some(uuid::Uuid::now_v7());
    let (status, body) = post(&server, &unknown);
    assert_eq!((status, code(&body)), (404, "session_not_found"), "{body}");

    let mut no_session_for_key = req.clone();
    no_session_for_key.session_id = None;
    no_session_for_key.public_key = ClientSecret::generate().unwrap().public_key().to_hex();
    assert_eq!(
        code(&post(&server, &no_session_for_key).1),
        "session_not_found"
    );

    let mut other_key = req.clone();
    other_key.public_key = ClientSecret::generate().unwrap().public_key().to_hex();
    let (status, body) = post(&server, &other_key);
    assert_eq!(
        (status, code(&body)),
        (403, "session_key_mismatch"),
        "{body}"
    );

    // Without a session id the caller's newest session is used.
    let mut implicit = req.clone();
    implicit.session_id = None;
    let (status, body) = post(&server, &implicit);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["session_id"], json!(session.id));

    std::thread::sleep(std::time::Duration::from_millis(1500));
    let (status, body) = post(&server, &req);
    assert!(
        status == 404 && ["session_expired", "session_not_found"].contains(&code(&body)),
        "{status} {body}"
    );
    match client.execute(&session, &ExecuteInput::new(&program)) {
        Err(ClientError::Server { status: 404, .. }) => {}
        other => panic!("expected 404, got {other:?}"),
    }
}

#[test]
fn limits_above_the_maximum_and_bad_programs_are_refused() {
    let server = TestServer::start();
    let (client, _key, session) = session(&server);
    let program = wasm("hello");
    let too_long = ExecuteInput::new(&program).limits(Limits {
        time_ms: Some(10_000_000),
        ..Limits::default()
    });
    match client.execute(&session, &too_long) {
        Err(ClientError::Server {
            status: 400,
            code,
            message,
        }) => {
            assert_eq!(code, "limit_exceeds_maximum");
            assert!(message.contains("60000"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let fuel = ExecuteInput::new(&program).limits(Limits {
        fuel: Some(1000),
        ..Limits::default()
    });
    assert!(
        matches!(client.execute(&session, &fuel), Err(ClientError::Server { code, .. }) if code == "fuel_not_enabled")
    );

    let garbage = b"definitely not wasm".to_vec();
    assert!(
        matches!(client.execute(&session, &ExecuteInput::new(&garbage)),
        Err(ClientError::Server { status: 422, code, .. }) if code == "invalid_component")
    );
    // A core module is not a component.
    let core_module = b"\0asm\x01\0\0\0".to_vec();
    assert!(
        matches!(client.execute(&session, &ExecuteInput::new(&core_module)),
        Err(ClientError::Server { status: 422, code, .. }) if code == "invalid_component")
    );

    let not_utf8 = ExecuteInput::new(&program).args([vec![0xff, 0xfe]]);
    assert!(matches!(client.execute(&session, &not_utf8),
        Err(ClientError::Server { status: 400, code, .. }) if code == "invalid_argument"));
}

#[test]
fn one_hundred_concurrent_executions_all_succeed() {
    let server = TestServer::start();
    let program = std::sync::Arc::new(wasm("hello"));
    let url = server.url.clone();
    let handles: Vec<_> = (0..100)
        .map(|i| {
            let program = program.clone();
            let url = url.clone();
            std::thread::spawn(move || {
                let (client, _key, session) = session_at(&url);
                let arg = format!("caller-{i}");
                let run = client
                    .execute(&session, &ExecuteInput::new(&program).args([&arg]))
                    .unwrap_or_else(|e| panic!("caller {i}: {e}"));
                assert_eq!(run.stdout().unwrap(), format!("Hello {arg}\n").into_bytes());
            })
        })
        .collect();
    for h in handles {
        h.join().expect("an execution failed");
    }
}

#[test]
fn every_execution_slot_can_be_busy_at_once_beside_the_policys_instances() {
    // 8 slots; the policy keeps 2 instances live from the same pool. Twelve callers released
    // together: 8 hold a slot for ~1 s each, the rest wait; all succeed (the pool has room for
    // the plug-ins on top of the slots).
    let server = TestServer::start_with("[engine]\nmax_concurrent_executions = 8\n");
    let program = std::sync::Arc::new(wasm("sleep"));
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(12));
    let handles: Vec<_> = (0..12)
        .map(|i| {
            let (program, url, barrier) = (program.clone(), server.url.clone(), barrier.clone());
            std::thread::spawn(move || {
                let (client, _key, session) = session_at(&url);
                barrier.wait();
                let run = client
                    .execute(&session, &ExecuteInput::new(&program).args(["1000"]))
                    .unwrap_or_else(|e| panic!("caller {i}: {e}"));
                assert_eq!(
                    run.result.exit_code,
                    Some(0),
                    "caller {i}: {:?}",
                    run.result
                );
                assert!(
                    String::from_utf8(run.stdout().unwrap())
                        .unwrap()
                        .starts_with("slept ")
                );
            })
        })
        .collect();
    for h in handles {
        h.join().expect("an execution failed");
    }
}

#[test]
fn a_real_program_with_a_dependency_filters_stdin() {
    let server = TestServer::start();
    let (client, _key, session) = session(&server);
    let program = wasm("grep");
    let input = "alpha\nbeta\ngamma\nδelta\n";
    let run = client
        .execute(
            &session,
            &ExecuteInput::new(&program)
                .args([r"^(a|\p{Greek})"])
                .stdin(input.as_bytes()),
        )
        .unwrap();
    assert_eq!(
        String::from_utf8(run.stdout().unwrap()).unwrap(),
        "alpha\nδelta\n"
    );
    assert_eq!(run.stderr().unwrap(), b"2 matching lines\n");
}
