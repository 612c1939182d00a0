//! The `hypervisor-client` command line against a real host: `agent invoke` sends standard
//! input to a command agent (`--stdin`), and invokes as the caller (sealed to a session of the
//! key) when a key is given or the agent is private, anonymously in the clear otherwise.
//!
//! Runs the client binary built next to the host binary (`cargo test --workspace` builds both).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use hypervisor_client::agents::Deployment;

use crate::harness::{TestServer, wasm};

pub(crate) fn client_binary() -> PathBuf {
    let host = PathBuf::from(env!("CARGO_BIN_EXE_hypervisor"));
    let client = host.with_file_name("hypervisor-client");
    assert!(
        client.exists(),
        "{} is missing: build the workspace (cargo test --workspace)",
        client.display()
    );
    client
}

/// Runs the client with `args`, `stdin` on its standard input; returns (exit code, stdout,
/// stderr).
pub(crate) fn run(
    server: &TestServer,
    home: &std::path::Path,
    args: &[&str],
    stdin: &[u8],
) -> (i32, String, String) {
    let mut child = Command::new(client_binary())
        .arg("--server")
        .arg(&server.url)
        .args(args)
        .env("XDG_CONFIG_HOME", home)
        .env_remove("HYPERVISOR_CLIENT_KEY")
        .env_remove("HYPERVISOR_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run hypervisor-client");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn agent_invoke_sends_stdin_and_invokes_as_the_caller_when_a_key_is_given() {
    let server = TestServer::start();
    let home = tempfile::tempdir().unwrap();
    let key_file = home.path().join("owner.key");
    let (owner, _) = hypervisor_client::keyfile::load_or_create(&key_file).unwrap();
    let client = server.client();
    let hello = wasm("hello");
    client
        .deploy_agent(
            &owner,
            &Deployment {
                name: "echo",
                component: &hello,
                ..Deployment::default()
            },
        )
        .unwrap();
    let session = client.create_session(&owner).unwrap();
    client
        .deploy_agent_sealed(
            &owner,
            &session,
            &Deployment {
                name: "private-echo",
                component: &hello,
                ..Deployment::default()
            },
        )
        .unwrap();
    let key = key_file.to_str().unwrap();

    // Clear and anonymous: arguments and a file's content as stdin.
    let input = home.path().join("input.txt");
    std::fs::write(&input, "from a file\n").unwrap();
    let (code, stdout, stderr) = run(
        &server,
        home.path(),
        &[
            "agent",
            "invoke",
            "echo",
            "--stdin",
            input.to_str().unwrap(),
            "a",
            "b",
        ],
        b"",
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("Hello a b"), "{stdout}");
    assert!(stdout.contains("stdin: from a file"), "{stdout}");

    // With a key: sealed to a session of that key, stdin from this process's stdin.
    let (code, stdout, stderr) = run(
        &server,
        home.path(),
        &[
            "--key", key, "--json", "agent", "invoke", "echo", "--stdin", "-", "x",
        ],
        b"piped",
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["commitment_verified"], true, "{doc}");
    assert!(doc["session_id"].is_string(), "{doc}");
    assert!(
        doc["stdout"].as_str().unwrap().contains("stdin: piped"),
        "{doc}"
    );

    // A private agent takes only sealed invocations: the client seals without being asked.
    let (code, stdout, stderr) = run(
        &server,
        home.path(),
        &[
            "--key",
            key,
            "agent",
            "invoke",
            "private-echo",
            "--stdin",
            "-",
        ],
        b"secret",
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("stdin: secret"), "{stdout}");
    let refused = client.invoke_cli("private-echo", &[], Some("secret"));
    assert!(
        matches!(
            refused,
            Err(hypervisor_client::ClientError::Server { status: 403, .. })
        ),
        "{refused:?}"
    );

    // An event for a command is a usage error, not a request.
    let (code, _, stderr) = run(
        &server,
        home.path(),
        &["agent", "invoke", "echo", "--event", "{}"],
        b"",
    );
    assert_ne!(code, 0);
    assert!(stderr.contains("is a command"), "{stderr}");
}

/// `hypervisor-client mcp list|call`: the host's tools as an MCP client sees them.
#[test]
fn mcp_lists_and_calls_tools_from_the_command_line() {
    let server = TestServer::start();
    let owner = hypervisor_protocol::ClientSecret::generate().unwrap();
    server
        .client()
        .deploy_agent(
            &owner,
            &Deployment {
                name: "stats",
                description: "word counts",
                component: &wasm("text-stats"),
                ..Deployment::default()
            },
        )
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let (code, out, err) = run(&server, home.path(), &["mcp", "list"], b"");
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("stats") && out.contains("word counts"),
        "{out}"
    );
    let (code, out, err) = run(
        &server,
        home.path(),
        &[
            "--json",
            "mcp",
            "call",
            "stats",
            "--arguments",
            r#"{"text":"a b c d"}"#,
        ],
        b"",
    );
    assert_eq!(code, 0, "{err}");
    let result: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(result["structuredContent"]["words"], 4, "{out}");
    // An unknown tool is the JSON-RPC error -32602: a failure (exit 2), reported.
    let (code, _, err) = run(&server, home.path(), &["mcp", "call", "nope"], b"");
    assert_eq!(code, 2);
    assert!(
        err.contains("-32602") && err.contains("unknown tool"),
        "{err}"
    );
}

/// `hypervisor-client a2a card|send|get` and `mcp call`: a card's signature and a task's
/// receipt checked against the host's verified key, a priced agent paid within the limit (over
/// A2A and over MCP), and refused above it.
#[cfg(feature = "simulated-attestation")]
#[test]
fn a2a_and_mcp_check_cards_and_receipts_and_pay_within_the_limit() {
    let config = crate::harness::paid_simulated_config();
    let server = TestServer::start_with(&config);
    crate::harness::deploy_priced_stats(&server, "1000");
    let home = tempfile::tempdir().unwrap();
    let policy = ["--allow-simulated", "--accept-any-measurement"];
    let with = |args: &[&str]| -> Vec<String> {
        args.iter()
            .chain(policy.iter())
            .map(ToString::to_string)
            .collect()
    };
    let call = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&server, home.path(), &args, b"")
    };
    let (code, out, err) = call(with(&["a2a", "card", "paid"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("verified          card signed by the attested key"),
        "{out}"
    );

    let wallet = home.path().join("wallet.key");
    std::fs::write(
        &wallet,
        "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    )
    .unwrap();
    let wallet = wallet.display().to_string();
    let (code, out, err) = call(with(&[
        "--json",
        "a2a",
        "send",
        "paid",
        "--data",
        r#"{"text":"a b c"}"#,
        "--caller",
        "me",
        "--pay-with",
        &wallet,
        "--max-price",
        "5000",
    ]));
    assert_eq!(code, 0, "{err}");
    let task: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(task["status"]["state"], "TASK_STATE_COMPLETED", "{task}");
    assert_eq!(
        task["status"]["message"]["metadata"]["x402.payment.status"],
        "payment-completed"
    );
    assert_eq!(task["artifacts"][0]["parts"][0]["data"]["words"], 3);
    assert!(task["metadata"]["wasm-hypervisor/receipt"]["signature"].is_string());
    let id = task["id"].as_str().unwrap().to_string();

    // The same agent as an MCP tool, paid through the x402 MCP binding.
    let (code, out, err) = run(
        &server,
        home.path(),
        &[
            "--json",
            "mcp",
            "call",
            "paid",
            "--arguments",
            r#"{"text":"a b"}"#,
            "--pay-with",
            &wallet,
            "--max-price",
            "5000",
        ],
        b"",
    );
    assert_eq!(code, 0, "{err}");
    let result: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(result["structuredContent"]["words"], 2, "{result}");
    assert_eq!(result["_meta"]["x402/payment-response"]["success"], true);

    let (code, _, err) = call(with(&[
        "a2a",
        "send",
        "paid",
        "--text",
        "x",
        "--pay-with",
        &wallet,
        "--max-price",
        "10",
    ]));
    assert_ne!(code, 0);
    assert!(err.contains("payment refused, nothing signed"), "{err}");

    let (code, out, err) = run(
        &server,
        home.path(),
        &["--json", "a2a", "get", "paid", &id, "--caller", "me"],
        b"",
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&id));
    let (code, _, err) = run(
        &server,
        home.path(),
        &["a2a", "get", "paid", &id, "--caller", "someone-else"],
        b"",
    );
    assert_ne!(code, 0);
    assert!(err.contains("-32001"), "{err}");
}

#[test]
fn agent_config_and_state_from_the_command_line() {
    let server = TestServer::start();
    let home = tempfile::tempdir().unwrap();
    let key_file = home.path().join("owner.key");
    let (owner, _) = hypervisor_client::keyfile::load_or_create(&key_file).unwrap();
    let client = server.client();
    client
        .deploy_agent(
            &owner,
            &Deployment {
                name: "keeper",
                component: &wasm("state-agent"),
                ..Deployment::default()
            },
        )
        .unwrap();
    let key = key_file.to_str().unwrap();
    // A secret from standard input, a variable on the command line.
    let (code, stdout, stderr) = run(
        &server,
        home.path(),
        &[
            "--key",
            key,
            "agent",
            "config",
            "keeper",
            "--set-file",
            "API_KEY=-",
            "--set",
            "REGION=eu",
        ],
        b"cli-secret-value\n",
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("API_KEY") && stdout.contains("REGION"),
        "{stdout}"
    );
    assert!(!stdout.contains("cli-secret-value"), "{stdout}");
    let read = client
        .invoke(
            "keeper",
            serde_json::json!({"op": "config", "name": "API_KEY"}),
        )
        .unwrap();
    assert_eq!(read.result_json().unwrap()["value"], "cli-secret-value");
    client
        .invoke(
            "keeper",
            serde_json::json!({"op": "set", "key": "k", "value": "v"}),
        )
        .unwrap();

    let out = home.path().join("export.json");
    let (code, stdout, stderr) = run(
        &server,
        home.path(),
        &[
            "--key",
            key,
            "agent",
            "state",
            "export",
            "keeper",
            "--out",
            out.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let exported: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(exported["buckets"]["default"]["k"], "dg==", "{exported}");
    let (code, stdout, stderr) = run(
        &server,
        home.path(),
        &["--key", key, "agent", "state", "wipe", "keeper"],
        b"",
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("\"keys_removed\": 1"), "{stdout}");
}

/// `agent deploy NAME --js main.ts lib/utils.ts`: modules named by their paths relative to the
/// main module's directory; `--private` seals the source; both then invoked from the command
/// line. A module outside the main module's directory is refused before anything is sent.
#[test]
fn js_agents_deploy_from_source_files_on_the_command_line() {
    let server = TestServer::start();
    let home = tempfile::tempdir().unwrap();
    let key_file = home.path().join("owner.key");
    let key = key_file.to_str().unwrap();
    let src = home.path().join("src");
    std::fs::create_dir_all(src.join("lib")).unwrap();
    let main = src.join("main.ts");
    std::fs::write(
        &main,
        "import { twice } from \"./lib/utils.ts\";\n\
         export function handler(event: { data: number }): { doubled: number } {\n\
           return { doubled: twice(event.data) };\n\
         }\n",
    )
    .unwrap();
    let utils = src.join("lib/utils.ts");
    std::fs::write(
        &utils,
        "export const twice = (n: number): number => n * 2;\n",
    )
    .unwrap();
    let (main, utils) = (main.to_str().unwrap(), utils.to_str().unwrap());

    for (name, private) in [("doubler", false), ("private-doubler", true)] {
        let mut args = vec!["--key", key, "--json", "agent", "deploy", name];
        if private {
            args.push("--private");
        }
        args.extend(["--js", main, utils]);
        let (code, stdout, stderr) = run(&server, home.path(), &args, b"");
        assert_eq!(code, 0, "{stdout}{stderr}");
        let agent: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(agent["latest"]["kind"], "handler", "{agent}");
        assert_eq!(agent["public"], !private, "{agent}");
        // With the key, the invocation is sealed (and checked against the code hash).
        let (code, stdout, stderr) = run(
            &server,
            home.path(),
            &[
                "--key",
                key,
                "agent",
                "invoke",
                name,
                "--event",
                r#"{"data": 21}"#,
            ],
            b"",
        );
        assert_eq!(code, 0, "{stdout}{stderr}");
        assert!(stdout.contains(r#""doubled":42"#), "{stdout}");
    }

    let outside = home.path().join("elsewhere.ts");
    std::fs::write(&outside, "export const x = 1;\n").unwrap();
    let (code, stdout, stderr) = run(
        &server,
        home.path(),
        &[
            "--key",
            key,
            "agent",
            "deploy",
            "bad",
            "--js",
            main,
            outside.to_str().unwrap(),
        ],
        b"",
    );
    assert_ne!(code, 0, "{stdout}");
    assert!(stderr.contains("not under"), "{stderr}");
}

/// README's simulated walk-through, as written there (with the test build's binaries): refused
/// as simulated, refused with nothing pinned, refused with a host pin alone, then verified
/// under the reference set `reference-values` drafted from the host's evidence.
#[cfg(feature = "simulated-attestation")]
#[test]
fn the_readme_verifiable_walk_through_pins_a_reference_set() {
    let server = TestServer::start_with("[attestation]\nprovider = \"simulated\"\n");
    let home = tempfile::tempdir().unwrap();
    let hello = crate::harness::wasm_path("hello");
    let hello = hello.to_str().unwrap();
    let exec = |extra: &[&str]| {
        let mut args = vec!["exec", "--verifiable"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[hello, "world"]);
        run(&server, home.path(), &args, b"")
    };
    let (status, _, err) = exec(&[]);
    assert_ne!(status, 0);
    assert!(err.contains("SIMULATED"), "{err}");
    let (status, _, err) = exec(&["--allow-simulated"]);
    assert_ne!(status, 0);
    assert!(err.contains("no reference values"), "{err}");
    let measurement = hex::encode(crate::harness::host_measurement());
    let (status, _, err) = exec(&[
        "--allow-simulated",
        "--expect-host-measurement",
        &measurement,
    ]);
    assert_ne!(status, 0);
    assert!(
        err.contains("only the host binary's SHA-256 is pinned"),
        "{err}"
    );

    let (status, set, err) = run(
        &server,
        home.path(),
        &["reference-values", "--name", "simulated"],
        b"",
    );
    assert_eq!(status, 0, "{err}");
    assert!(
        err.contains("NOT verified") && err.contains("SIMULATED"),
        "{err}"
    );
    let file = home.path().join("reference.json");
    std::fs::write(&file, &set).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&set).unwrap();
    assert_eq!(parsed["tee"], "simulated");
    assert_eq!(parsed["tdx"]["app"]["host_event"], true);
    assert_eq!(parsed["host_measurements"][0], measurement.as_str());
    let (status, out, err) = exec(&[
        "--allow-simulated",
        "--reference-values",
        file.to_str().unwrap(),
    ]);
    assert_eq!(status, 0, "{err}");
    assert!(out.contains("Hello world"), "{out}");
}
