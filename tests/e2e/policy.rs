//! The operator's policy: rules decide before any code runs, a broken policy fails closed, the
//! policy component can be swapped (and reloaded) without rebuilding the host.

use std::time::Duration;

use hypervisor_client::{ClientError, ExecuteInput};
use hypervisor_protocol::{ClientSecret, sha256};

use crate::harness::{TestServer, policy_table, session, session_at, wasm};

/// Writes `rules` to a file and returns a server using the Python policy with them.
fn server_with_rules(dir: &tempfile::TempDir, rules: &str) -> TestServer {
    let path = dir.path().join("rules.toml");
    std::fs::write(&path, rules).unwrap();
    TestServer::start_with(&policy_table(
        "policy-python",
        &format!("rules = {:?}", path.display().to_string()),
    ))
}

/// The status and error code of a refused request, or panics if it ran.
fn refused(r: Result<hypervisor_client::Execution, ClientError>) -> (u16, String, String) {
    match r {
        Err(ClientError::Server {
            status,
            code,
            message,
        }) => (status, code, message),
        Err(e) => panic!("unexpected error: {e}"),
        Ok(run) => panic!("request ran: {:?}", run.result),
    }
}

#[test]
fn rules_allow_and_deny_by_program_caller_size_and_route() {
    let dir = tempfile::tempdir().unwrap();
    let banned = ClientSecret::generate().unwrap();
    let rules = format!(
        r#"
[programs]
deny = [{hello:?}]
[callers]
deny = [{banned:?}]
[limits]
max_arguments = 3
max_time_ms = 1500
[python]
max_source_bytes = 64
[routes."/verifiable/execute/wasm"]
enabled = false
"#,
        hello = hex::encode(sha256(&wasm("hello"))),
        banned = banned.public_key().to_hex(),
    );
    let server = server_with_rules(&dir, &rules);
    let (client, _k, s) = session(&server);

    // A denied program: 403 with the rule and the policy's reason; it never ran.
    let (status, code, message) = refused(client.execute(&s, &ExecuteInput::new(&wasm("hello"))));
    assert_eq!((status, code.as_str()), (403, "policy_denied"));
    assert!(message.contains("programs.deny"), "{message}");
    assert!(message.contains("refused by the operator"), "{message}");
    assert!(
        !server.log().contains("component compiled"),
        "denied before compiling"
    );

    // Another program runs, its time limit tightened to the rules' maximum.
    let capabilities = wasm("capabilities");
    let run = client
        .execute(&s, &ExecuteInput::new(&capabilities))
        .unwrap();
    assert_eq!(run.result.limits.time_ms, 1500);
    let (_, code, message) = refused(client.execute(
        &s,
        &ExecuteInput::new(&capabilities).args(["1", "2", "3", "4"]),
    ));
    assert_eq!(code, "policy_denied");
    assert!(message.contains("limits.max_arguments"), "{message}");

    // A refused caller key.
    let banned_session = client.create_session(&banned).unwrap();
    let (_, code, message) =
        refused(client.execute(&banned_session, &ExecuteInput::new(&capabilities)));
    assert_eq!(code, "policy_denied");
    assert!(message.contains("callers.deny"), "{message}");

    // Python: the script size rule.
    let (_, code, message) = refused(client.execute_python(
        &s,
        &ExecuteInput::new(format!("print({:?})", "x".repeat(100)).as_bytes()),
    ));
    assert_eq!(code, "policy_denied");
    assert!(message.contains("python.max_source_bytes"), "{message}");
    let run = client
        .execute_python(&s, &ExecuteInput::new(b"print('small')"))
        .unwrap();
    assert_eq!(run.stdout().unwrap(), b"small\n");
}

#[test]
fn invalid_rules_stop_the_host_from_starting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.toml");
    std::fs::write(&path, "[programs]\nalow = []\n").unwrap();
    let log = TestServer::start_expecting_failure(&policy_table(
        "policy-python",
        &format!("rules = {:?}", path.display().to_string()),
    ));
    assert!(log.contains("refused its rules"), "{log}");
    assert!(log.contains("unknown key rules.programs.alow"), "{log}");

    let log = TestServer::start_expecting_failure(&policy_table("hello", ""));
    assert!(
        log.contains("does not export hypervisor:host/policy"),
        "{log}"
    );
}

#[test]
fn a_trapping_or_slow_policy_fails_closed_and_the_host_keeps_serving() {
    let server = TestServer::start_with(&policy_table("policy-misbehaving", "time_ms = 200"));
    let url = server.url.clone();
    let hello = wasm("hello");

    // Two kinds of failure (the test policy traps on one argument and spins on two), in
    // parallel with requests it allows.
    let failing: Vec<_> = (0..4)
        .map(|i| {
            let url = url.clone();
            std::thread::spawn(move || {
                let (client, _k, s) = session_at(&url);
                let args: &[&str] = if i % 2 == 0 {
                    &["trap"]
                } else {
                    &["spin", "spin"]
                };
                refused(client.execute(&s, &ExecuteInput::new(&wasm("hello")).args(args)))
            })
        })
        .collect();
    let (client, _k, s) = session(&server);
    for _ in 0..10 {
        let run = client.execute(&s, &ExecuteInput::new(&hello)).unwrap();
        assert_eq!(run.stdout().unwrap(), b"Hello\n");
    }
    for t in failing {
        let (status, code, message) = t.join().unwrap();
        assert_eq!(
            (status, code.as_str()),
            (503, "policy_unavailable"),
            "{message}"
        );
        assert!(message.contains("refused"), "{message}");
    }
    let log = server.log();
    assert!(log.contains("policy instance trapped"), "{log}");
    assert!(log.contains("did not decide within 200 ms"), "{log}");
    // Broken instances were replaced: the policy still answers.
    for _ in 0..5 {
        let run = client.execute(&s, &ExecuteInput::new(&hello)).unwrap();
        assert_eq!(run.stdout().unwrap(), b"Hello\n");
    }
}

#[test]
fn the_policy_is_swappable_for_a_rust_component_and_reloads_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.json");
    std::fs::write(
        &rules,
        // Decisions reusable for a minute: the reload below must discard them.
        r#"{"routes": ["/test/execute/wasm"], "max_time_ms": 700, "reuse_ms": 60000}"#,
    )
    .unwrap();
    let server = TestServer::start_with(&policy_table(
        "policy-rust",
        &format!("rules = {:?}", rules.display().to_string()),
    ));
    let (client, _k, s) = session(&server);
    let hello = wasm("hello");
    let run = client.execute(&s, &ExecuteInput::new(&hello)).unwrap();
    assert_eq!(run.stdout().unwrap(), b"Hello\n");
    assert_eq!(run.result.limits.time_ms, 700);
    // The Python routes still run on the Python runtime, but this policy refuses them.
    let (status, code, message) =
        refused(client.execute_python(&s, &ExecuteInput::new(b"print(1)")));
    assert_eq!((status, code.as_str()), (403, "policy_denied"));
    assert!(message.contains("rust.routes"), "{message}");

    // New rules, then SIGHUP: the policy reloads without a restart.
    std::fs::write(&rules, r#"{"routes": ["/test/policy/unsafe/python"]}"#).unwrap();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        server.wait_for_log("policy reloaded", Duration::from_secs(60)),
        "{}",
        server.log()
    );
    let run = client
        .execute_python(&s, &ExecuteInput::new(b"print(2)"))
        .unwrap();
    assert_eq!(run.stdout().unwrap(), b"2\n");
    let (_, code, _) = refused(client.execute(&s, &ExecuteInput::new(&hello)));
    assert_eq!(code, "policy_denied");

    // Broken rules on reload: the current policy stays in force.
    std::fs::write(&rules, r#"{"routs": []}"#).unwrap();
    std::process::Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(server.wait_for_log("policy reload failed", Duration::from_secs(60)));
    let run = client
        .execute_python(&s, &ExecuteInput::new(b"print(3)"))
        .unwrap();
    assert_eq!(run.stdout().unwrap(), b"3\n");
}

#[test]
fn without_a_policy_every_request_is_admitted() {
    let server = TestServer::start_with("[policy]\nenabled = false\n");
    let (client, _k, s) = session(&server);
    let run = client
        .execute(&s, &ExecuteInput::new(&wasm("hello")))
        .unwrap();
    assert_eq!(run.stdout().unwrap(), b"Hello\n");
    assert!(server.log().contains("admitted without a policy"));
}

#[test]
fn the_shipped_example_rules_are_accepted() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../components/policy-python/rules.example.toml");
    let server = TestServer::start_with(&policy_table(
        "policy-python",
        &format!("rules = {:?}", example.display().to_string()),
    ));
    let (client, _k, s) = session(&server);
    let run = client
        .execute(&s, &ExecuteInput::new(&wasm("hello")))
        .unwrap();
    assert_eq!(run.stdout().unwrap(), b"Hello\n");
    // The example caps the time limit at 30 s (the test servers' default is 20 s: untouched).
    assert_eq!(run.result.limits.time_ms, 20_000);
}
