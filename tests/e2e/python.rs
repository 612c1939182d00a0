//! The Python routes: client scripts in a fresh componentized-CPython instance each, under the
//! request's limits, with no files, environment or network.

use hypervisor_client::{ExecuteInput, Execution};
use hypervisor_protocol::wire::{ExitStatus, Limits};
use serde_json::json;

use crate::harness::{TestServer, code, session, session_at};

/// Runs `source` with `args` in a new session.
fn python(server: &TestServer, source: &str, args: &[&str]) -> Execution {
    let (client, _key, s) = session(server);
    client
        .execute_python(&s, &ExecuteInput::new(source.as_bytes()).args(args))
        .expect("python")
}

fn stdout(run: &Execution) -> String {
    String::from_utf8(run.stdout().unwrap()).unwrap()
}

#[test]
fn scripts_print_take_arguments_return_values_and_read_stdin() {
    let server = TestServer::start();
    let run = python(&server, "print('Hello from Python')", &[]);
    assert_eq!(run.result.status, ExitStatus::Exited);
    assert_eq!(run.result.exit_code, Some(0));
    assert_eq!(stdout(&run), "Hello from Python\n");
    assert_eq!(run.result.returned, None);

    let run = python(
        &server,
        "import sys\nprint(ARGS, sys.argv[1:])\ndef main(args):\n    return {'n': len(args), 'joined': '-'.join(args)}\n",
        &["a", "b c", "ü"],
    );
    assert_eq!(
        stdout(&run),
        "['a', 'b c', 'ü'] ['a', 'b c', 'ü']\n",
        "{:?}",
        run.result
    );
    assert_eq!(
        run.result.returned,
        Some(json!({"n": 3, "joined": "a-b c-ü"}))
    );

    // JSON processing with the standard library, input on stdin.
    let (client, _k, s) = session(&server);
    let doc = json!({"orders": [{"sku": "a", "qty": 2, "price": "1.10"}, {"sku": "b", "qty": 1, "price": "0.35"}]});
    let script = r#"
import json, sys
from decimal import Decimal
from collections import Counter
doc = json.load(sys.stdin)
total = sum(Decimal(o["price"]) * o["qty"] for o in doc["orders"])
print(json.dumps({"total": str(total), "skus": sorted(Counter(o["sku"] for o in doc["orders"]))}))
"#;
    let input = doc.to_string();
    let run = client
        .execute_python(
            &s,
            &ExecuteInput::new(script.as_bytes()).stdin(input.as_bytes()),
        )
        .unwrap();
    let out: serde_json::Value = serde_json::from_str(&stdout(&run)).unwrap();
    assert_eq!(out, json!({"total": "2.55", "skus": ["a", "b"]}));
}

#[test]
fn exceptions_and_exits_are_results_not_host_errors() {
    let server = TestServer::start();
    let run = python(
        &server,
        "print('before')\ndef f(x):\n    return 1 / x\nf(0)\n",
        &[],
    );
    assert!(run.stopped.is_none());
    assert_eq!(run.result.status, ExitStatus::Exited);
    assert_eq!(run.result.exit_code, Some(1));
    assert_eq!(stdout(&run), "before\n");
    let e = run.result.exception.as_ref().expect("exception");
    assert_eq!(e.kind, "ZeroDivisionError");
    assert_eq!(e.message, "division by zero");
    // The traceback names the script's lines, not the runtime's.
    assert!(
        e.traceback.contains("File \"<script>\", line 4"),
        "{}",
        e.traceback
    );
    assert!(e.traceback.contains("return 1 / x"), "{}", e.traceback);
    assert!(!e.traceback.contains("app.py"), "{}", e.traceback);

    let run = python(&server, "import sys\nsys.exit(3)", &[]);
    assert_eq!(
        (run.result.status, run.result.exit_code),
        (ExitStatus::Exited, Some(3))
    );
    assert!(run.result.exception.is_none());

    let run = python(&server, "def broken(:\n  pass", &[]);
    assert_eq!(run.result.exception.as_ref().unwrap().kind, "SyntaxError");

    // Only the allow-listed standard library exists.
    let run = python(&server, "import ctypes", &[]);
    assert_eq!(
        run.result.exception.as_ref().unwrap().kind,
        "ModuleNotFoundError"
    );
}

#[test]
fn endless_loops_and_memory_bombs_stop_at_their_limits() {
    let server = TestServer::start();
    let (client, _k, s) = session(&server);
    let run = client
        .execute_python(
            &s,
            &ExecuteInput::new(b"print('spinning', flush=True)\nwhile True:\n    pass\n").limits(
                Limits {
                    time_ms: Some(300),
                    ..Limits::default()
                },
            ),
        )
        .unwrap();
    assert_eq!(run.result.status, ExitStatus::TimeLimitExceeded);
    assert_eq!(
        run.stopped.as_ref().map(|e| e.code.as_str()),
        Some("time_limit_exceeded")
    );
    assert_eq!(stdout(&run), "spinning\n");

    let run = client
        .execute_python(
            &s,
            &ExecuteInput::new(b"x = []\nwhile True:\n    x.append(bytearray(1 << 20))\n").limits(
                Limits {
                    memory_bytes: Some(96 << 20),
                    ..Limits::default()
                },
            ),
        )
        .unwrap();
    assert_eq!(run.result.status, ExitStatus::MemoryLimitExceeded);
    assert_eq!(
        run.stopped.as_ref().map(|e| e.code.as_str()),
        Some("memory_limit_exceeded")
    );
    assert_eq!(run.result.exception.as_ref().unwrap().kind, "MemoryError");

    // The host is unharmed.
    assert_eq!(stdout(&python(&server, "print(6 * 7)", &[])), "42\n");
}

#[test]
fn scripts_cannot_reach_files_environment_or_network() {
    let server = TestServer::start();
    let script = r#"
import os, socket
def attempt(f):
    try:
        f()
        return "ALLOWED"
    except Exception as e:
        return type(e).__name__
print(attempt(lambda: open("/etc/passwd").read()))
print(attempt(lambda: open("/tmp/x", "w").write("x")))
print(attempt(lambda: os.listdir("/")))
print(attempt(lambda: os.listdir(".")))
print(len(os.environ))
print(attempt(lambda: socket.create_connection(("127.0.0.1", 80), timeout=1)))
print(attempt(lambda: socket.getaddrinfo("localhost", 80)))
"#;
    let run = python(&server, script, &[]);
    let out = stdout(&run);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 7, "{out}\n{:?}", run.result.exception);
    assert!(!out.contains("ALLOWED"), "{out}");
    assert_eq!(lines[4], "0", "environment must be empty");
}

#[test]
fn output_is_bounded() {
    let server = TestServer::start_with("[limits]\ndefault_time_ms = 20000\nstdout_bytes = 1000\n");
    let run = python(
        &server,
        "for i in range(10000):\n    print('x' * 100)\n",
        &[],
    );
    assert_eq!(run.result.status, ExitStatus::Exited);
    assert!(run.result.stdout_truncated);
    assert_eq!(run.stdout().unwrap().len(), 1000);

    // What `main` returns is output too: over the limit the run fails with a clear exception
    // (cut JSON would not be JSON), and an exception's text is cut at the limit.
    let run = python(&server, "def main(args):\n    return 'y' * 5000\n", &[]);
    assert_eq!(run.result.exit_code, Some(1));
    assert_eq!(run.result.returned, None);
    let e = run.result.exception.as_ref().expect("an exception");
    assert_eq!(e.kind, "OutputLimitExceeded", "{e:?}");
    assert!(
        e.message
            .contains("more than this host's output limit of 1000"),
        "{e:?}"
    );
    let run = python(&server, "raise ValueError('z' * 5000)\n", &[]);
    let e = run.result.exception.as_ref().expect("an exception");
    assert_eq!(e.kind, "ValueError");
    assert!(e.message.len() < 1100, "{}", e.message.len());
    assert!(e.message.ends_with("limit 1000]"), "{e:?}");
}

#[test]
fn no_state_passes_between_scripts_or_into_the_policy() {
    let tmp = tempfile::tempdir().unwrap();
    let target = "print('the denied script ran')\n";
    let rules = tmp.path().join("rules.toml");
    std::fs::write(
        &rules,
        format!(
            "[programs]\ndeny = [{:?}]\n",
            hex::encode(hypervisor_protocol::sha256(target.as_bytes()))
        ),
    )
    .unwrap();
    let server = TestServer::start_with(&crate::harness::policy_table(
        "policy-python",
        &format!("rules = {:?}", rules.display().to_string()),
    ));

    // A script that rewrites everything it can reach in its own interpreter: the policy
    // module's rules and code, builtins, the module table.
    let tamper = r#"
import builtins, sys
import app, rules
app._rules = rules.Rules("{}")
rules.Rules.decide = lambda self, r, k: None
builtins.LEAKED = "from the first script"
sys.modules["json"] = None
print("tampered")
"#;
    // Run it more often than there are warm policy instances, to be sure none is affected.
    for _ in 0..4 {
        assert_eq!(stdout(&python(&server, tamper, &[])), "tampered\n");
    }
    // The policy still refuses the denied script.
    let (client, _k, s) = session(&server);
    let err = client
        .execute_python(&s, &ExecuteInput::new(target.as_bytes()))
        .unwrap_err();
    assert!(
        matches!(&err, hypervisor_client::ClientError::Server { status: 403, code, .. } if code == "policy_denied"),
        "{err}"
    );
    // And the next script starts clean.
    let run = python(
        &server,
        "import builtins, json\nprint(hasattr(builtins, 'LEAKED'), json.dumps([1]))",
        &[],
    );
    assert_eq!(stdout(&run), "False [1]\n");
}

/// Every script draws fresh randomness: the interpreter is a snapshot taken at build time, so
/// any generator seeded while it was taken (the `random` module's Mersenne Twister) would
/// otherwise give every script the same sequence, and one known to anyone holding the build.
#[test]
fn every_script_draws_fresh_randomness() {
    let server = TestServer::start();
    let script = "import os, random, secrets, uuid\n\
                  print(random.random(), random.getrandbits(64), random.choice(range(10**9)))\n\
                  print(os.urandom(8).hex(), secrets.token_hex(8), uuid.uuid4())";
    let runs: Vec<Vec<String>> = (0..2)
        .map(|_| {
            let out = stdout(&python(&server, script, &[]));
            out.split_whitespace().map(str::to_owned).collect()
        })
        .collect();
    assert_eq!(runs[0].len(), 6, "{:?}", runs[0]);
    for (i, (first, second)) in runs[0].iter().zip(&runs[1]).enumerate() {
        assert_ne!(first, second, "value {i} repeats between two scripts");
    }
}

#[test]
fn fifty_concurrent_scripts() {
    let server = TestServer::start();
    let url = server.url.clone();
    let threads: Vec<_> = (0..50)
        .map(|i| {
            let url = url.clone();
            std::thread::spawn(move || {
                let (client, _k, s) = session_at(&url);
                let script = "import hashlib\nprint(hashlib.sha256(ARGS[0].encode()).hexdigest())";
                let arg = format!("script {i}");
                let run = client
                    .execute_python(&s, &ExecuteInput::new(script.as_bytes()).args([&arg]))
                    .unwrap();
                let expected = format!(
                    "{}\n",
                    hex::encode(hypervisor_protocol::sha256(arg.as_bytes()))
                );
                assert_eq!(String::from_utf8(run.stdout().unwrap()).unwrap(), expected);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn bad_python_requests_get_clear_errors() {
    let server = TestServer::start();
    let (client, _k, s) = session(&server);
    let (mut req, _) = s.encrypt_python(&ExecuteInput::new(b"print(1)")).unwrap();

    // Not UTF-8.
    let (bad, _) = s.encrypt_python(&ExecuteInput::new(&[0xff, 0xfe])).unwrap();
    let (status, body) = client
        .post_json("/test/policy/unsafe/python", &bad)
        .unwrap();
    assert_eq!((status, code(&body)), (400, "invalid_script"), "{body}");

    // The program field of the wasm route is not accepted here.
    let mut wrong = serde_json::to_value(&req).unwrap();
    wrong["encrypted_wasm"] = wrong["encrypted_python"].take();
    wrong.as_object_mut().unwrap().remove("encrypted_python");
    let (status, body) = client
        .post_json("/test/policy/unsafe/python", &wrong)
        .unwrap();
    assert_eq!((status, code(&body)), (400, "invalid_request"), "{body}");

    // A ciphertext for another role does not open.
    req.encrypted_arguments = vec![req.encrypted_python.clone()];
    let (status, body) = client
        .post_json("/test/policy/unsafe/python", &req)
        .unwrap();
    assert_eq!((status, code(&body)), (400, "decryption_failed"), "{body}");

    // The attested route needs a verifiable session.
    let (req, _) = s.encrypt_python(&ExecuteInput::new(b"print(1)")).unwrap();
    let (status, body) = client
        .post_json("/test/policy/unsafe/python/attest", &req)
        .unwrap();
    assert_eq!(
        (status, code(&body)),
        (400, "session_not_verifiable"),
        "{body}"
    );
}

#[test]
fn python_routes_can_be_disabled() {
    let server = TestServer::start_with("[python]\nenabled = false\n");
    let (client, _k, s) = session(&server);
    let (req, _) = s.encrypt_python(&ExecuteInput::new(b"print(1)")).unwrap();
    let (status, body) = client
        .post_json("/test/policy/unsafe/python", &req)
        .unwrap();
    assert_eq!((status, code(&body)), (503, "python_unavailable"), "{body}");
}
