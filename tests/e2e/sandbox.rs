//! Misbehaving guests are contained, and the sandbox grants nothing beyond its contract.

use std::time::{Duration, Instant};

use hypervisor_client::{ClientError, ExecuteInput};
use hypervisor_protocol::wire::{ExitStatus, Limits};

use crate::harness::{TestServer, run, session, session_at, wasm};

#[test]
fn endless_loops_stop_at_the_deadline_while_other_requests_keep_succeeding() {
    let server = TestServer::start();
    let url = server.url.clone();
    // Two spinning guests: on a 2-core machine they would occupy every worker thread if the
    // engine did not make running guests yield.
    let spinners: Vec<_> = (0..2)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let (client, _key, session) = session_at(&url);
                let program = wasm("endless-loop");
                let limits = Limits {
                    time_ms: Some(4000),
                    ..Limits::default()
                };
                let started = Instant::now();
                let run = client
                    .execute(&session, &ExecuteInput::new(&program).limits(limits))
                    .unwrap();
                (run, started.elapsed())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let mut served = 0;
    while spinners.iter().any(|h| !h.is_finished()) && served < 20 {
        let run = run(&server, "hello", &["meanwhile"]);
        assert_eq!(run.stdout().unwrap(), b"Hello meanwhile\n");
        served += 1;
    }
    assert!(
        served >= 3,
        "only {served} requests were served while the loops ran"
    );
    for h in spinners {
        let (run, elapsed) = h.join().unwrap();
        assert_eq!(run.result.status, ExitStatus::TimeLimitExceeded);
        assert_eq!(run.stopped.as_ref().unwrap().code, "time_limit_exceeded");
        assert_eq!(
            run.stdout().unwrap(),
            b"spinning\n",
            "output until the deadline is returned"
        );
        assert!(elapsed >= Duration::from_millis(4000), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
    }
}

#[test]
fn a_memory_bomb_hits_its_limit_and_the_host_survives() {
    let mut server = TestServer::start();
    let (client, _key, session) = session(&server);
    let program = wasm("memory-bomb");
    let limits = Limits {
        memory_bytes: Some(64 << 20),
        ..Limits::default()
    };
    let run = client
        .execute(&session, &ExecuteInput::new(&program).limits(limits))
        .unwrap();
    assert_eq!(run.result.status, ExitStatus::MemoryLimitExceeded);
    assert_eq!(run.stopped.as_ref().unwrap().code, "memory_limit_exceeded");
    assert_eq!(run.result.limits.memory_bytes, 64 << 20);
    assert!(String::from_utf8_lossy(&run.stderr().unwrap()).contains("memory allocation"));
    assert!(server.is_running());
    assert_eq!(run_hello(&server), b"Hello\n");
}

fn run_hello(server: &TestServer) -> Vec<u8> {
    run(server, "hello", &[]).stdout().unwrap()
}

#[test]
fn deep_recursion_traps_without_crashing_the_host() {
    let mut server = TestServer::start();
    let run = run(&server, "deep-recursion", &[]);
    assert_eq!(run.result.status, ExitStatus::Trapped);
    assert_eq!(run.stopped.unwrap().code, "guest_trap");
    assert!(
        run.result.trap.as_deref().unwrap_or("").contains("descend"),
        "the backtrace is in the encrypted result"
    );
    assert!(server.is_running());
    assert_eq!(run_hello(&server), b"Hello\n");
}

#[test]
fn huge_output_is_cut_at_the_cap_and_flagged() {
    let server = TestServer::start();
    let run = run(&server, "huge-output", &[]);
    assert_eq!(run.result.status, ExitStatus::Exited);
    assert_eq!(
        run.result.exit_code,
        Some(0),
        "the guest itself never noticed"
    );
    assert_eq!(run.stdout().unwrap().len(), 1 << 20);
    assert!(run.result.stdout_truncated);
    assert_eq!(run.stderr().unwrap().len(), 1 << 20);
    assert!(run.result.stderr_truncated);
}

#[test]
fn a_component_importing_a_foreign_interface_is_refused_before_running() {
    let server = TestServer::start();
    let (client, _key, session) = session(&server);
    let program = wasm("foreign-import");
    match client.execute(&session, &ExecuteInput::new(&program)) {
        Err(ClientError::Server {
            status,
            code,
            message,
        }) => {
            assert_eq!((status, code.as_str()), (422, "disallowed_import"));
            assert!(message.contains("example:foreign/raw-network"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // The refusal was not cached as a success, nor did it break the cache for others.
    assert_eq!(run_hello(&server), b"Hello\n");
}

#[test]
fn the_sandbox_denies_environment_files_and_network() {
    let server = TestServer::start();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let run = run(&server, "capabilities", &[&target]);
    let out = String::from_utf8(run.stdout().unwrap()).unwrap();
    let expected = "args: 2\nenv: 0\nread_root: denied\nread_file: denied\nread_cwd: denied\n\
                    write_file: denied\nconnect: denied\nhttp: denied (ErrorCode::HttpRequestDenied)\nresolve: denied\nclock_after_2020: true\nrandom: true\n";
    assert_eq!(out, expected);
    assert!(
        listener.accept().is_err(),
        "the guest must not have reached the listener"
    );
}

#[test]
fn the_host_crypto_import_works_and_attestation_says_not_configured() {
    use p256::ecdsa::signature::Signer;
    let server = TestServer::start();
    let run1 = run(&server, "host-crypto", &["abc", ""]);
    let out = String::from_utf8(run1.stdout().unwrap()).unwrap();
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    );
    assert_eq!(
        lines.next(),
        Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    assert_eq!(lines.next(), Some("attestation provider: TeeKind::None"));
    assert!(lines.next().unwrap().contains("NotConfigured"), "{out}");

    let sk = p256::ecdsa::SigningKey::from_slice(&[9u8; 32]).unwrap();
    let pk = hex::encode(sk.verifying_key().to_sec1_bytes());
    let sig: p256::ecdsa::Signature = sk.sign(b"signed message");
    let sig = hex::encode(sig.to_bytes());
    let good = run(
        &server,
        "host-crypto",
        &["--verify", &pk, "signed message", &sig],
    );
    assert!(
        String::from_utf8(good.stdout().unwrap())
            .unwrap()
            .starts_with("verify: true\n")
    );
    let bad = run(
        &server,
        "host-crypto",
        &["--verify", &pk, "other message", &sig],
    );
    assert!(
        String::from_utf8(bad.stdout().unwrap())
            .unwrap()
            .starts_with("verify: false\n")
    );
    let malformed = run(&server, "host-crypto", &["--verify", "00", "m", &sig]);
    assert!(
        String::from_utf8(malformed.stdout().unwrap())
            .unwrap()
            .contains("InvalidPublicKey")
    );
}

#[test]
fn with_fuel_metering_a_spinning_guest_runs_out_of_fuel() {
    let server = TestServer::start_with("[engine]\nmax_concurrent_executions = 64\nfuel = true\n");
    let (client, _key, session) = session(&server);
    let spin = wasm("endless-loop");
    let limits = Limits {
        fuel: Some(5_000_000),
        ..Limits::default()
    };
    let run = client
        .execute(&session, &ExecuteInput::new(&spin).limits(limits))
        .unwrap();
    assert_eq!(run.result.status, ExitStatus::FuelExhausted);
    assert_eq!(run.stopped.as_ref().unwrap().code, "fuel_exhausted");
    assert_eq!(run.result.limits.fuel, Some(5_000_000));

    let hello = wasm("hello");
    let ok = client
        .execute(&session, &ExecuteInput::new(&hello))
        .unwrap();
    let used = ok.result.fuel_consumed.expect("metered");
    assert!(used > 0 && used < ok.result.limits.fuel.unwrap(), "{used}");
}
