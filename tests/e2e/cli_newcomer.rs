//! What a newcomer meets on the command line (issue 48), through the real client binary
//! against a real host: options recognised wherever they stand (`--` ends them), server URLs and
//! transport failures explained, files that are not programs refused with a hint, wallet keys
//! made and attached without clashing with the client's own key, priced agents paid from
//! `agent invoke`, empty secrets refused, execution records and followed logs read, and
//! environments kept apart in `agent list`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use hypervisor_client::agents::Deployment;
use hypervisor_protocol::ClientSecret;
use serde_json::Value;

use crate::client_cli::{client_binary, run};
use crate::harness::{TestServer, wasm, wasm_path};
use crate::payments::payments_table;

/// Runs the client with exactly `args` (no `--server` added), HOME-less: (code, stdout, stderr).
fn run_bare(home: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(client_binary())
        .args(args)
        .env("XDG_CONFIG_HOME", home)
        .env_remove("HYPERVISOR_CLIENT_KEY")
        .env_remove("HYPERVISOR_URL")
        .stdin(Stdio::null())
        .output()
        .expect("run hypervisor-client");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Deploys `component` in the clear as `name`, owned by the key in `key_file` (created).
fn deploy(server: &TestServer, key_file: &Path, name: &str, component: &str, price: Option<&str>) {
    let (owner, _) = hypervisor_client::keyfile::load_or_create(key_file).unwrap();
    server
        .client()
        .deploy_agent(
            &owner,
            &Deployment {
                name,
                component: &wasm(component),
                price: price.map(str::to_string),
                ..Deployment::default()
            },
        )
        .unwrap();
}

#[test]
fn options_stand_anywhere_and_a_double_dash_ends_them() {
    let server = TestServer::start();
    let home = tempfile::tempdir().unwrap();
    let grep = wasm_path("grep");
    let hello = wasm_path("hello");

    // `--stdin -` after the pattern is the client's option, not grep's arguments.
    let (code, stdout, stderr) = run(
        &server,
        home.path(),
        &["exec", path(&grep), "^[ab]", "--stdin", "-"],
        b"alpha\nbeta\ngamma\n",
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("alpha") && stdout.contains("beta"),
        "{stdout}"
    );
    assert!(!stdout.contains("gamma"), "{stdout}");

    let (code, stdout, stderr) = run(
        &server,
        home.path(),
        &["exec", path(&hello), "a", "--time-ms", "5000"],
        b"",
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "Hello a\n");

    // After `--`, everything goes to the program as it is.
    let (code, stdout, stderr) = run(
        &server,
        home.path(),
        &["exec", path(&hello), "--", "--time-ms", "5"],
        b"",
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "Hello --time-ms 5\n");

    // An unknown option is the client's error, with the way to pass it on.
    let (code, _, stderr) = run(&server, home.path(), &["exec", path(&hello), "-x"], b"");
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("-- -x"), "{stderr}");

    // The same for a CLI agent's arguments.
    let key = home.path().join("owner.key");
    deploy(&server, &key, "echo", "hello", None);
    let (code, stdout, stderr) = run(
        &server,
        home.path(),
        &["agent", "invoke", "echo", "one", "--json", "--", "--two"],
        b"",
    );
    assert_eq!(code, 0, "{stderr}");
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["stdout"], "Hello one --two\n", "{doc}");
}

#[test]
fn server_urls_and_transport_failures_say_what_to_do() {
    let server = TestServer::start();
    let home = tempfile::tempdir().unwrap();
    let authority = server.url.trim_start_matches("http://").to_string();

    let (code, _, stderr) = run_bare(home.path(), &["--server", &authority, "ping"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("no scheme"), "{stderr}");
    assert!(stderr.contains(&format!("http://{authority}")), "{stderr}");

    // https:// against the plain port.
    let https = format!("https://{authority}");
    let (code, _, stderr) = run_bare(home.path(), &["--server", &https, "ping"]);
    assert_ne!(code, 0);
    assert!(stderr.contains(&https), "{stderr}");
    assert!(stderr.contains("plain-HTTP port"), "{stderr}");
    assert!(stderr.contains("use http://"), "{stderr}");

    // Nothing listening: the URL is named, and what to do.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let (code, _, stderr) = run_bare(home.path(), &["--server", &closed, "ping"]);
    assert_ne!(code, 0);
    assert!(stderr.contains(&closed), "{stderr}");
    assert!(stderr.contains("connection refused"), "{stderr}");
}

#[test]
fn files_that_are_not_programs_are_refused_with_a_hint_before_anything_is_sent() {
    let server = TestServer::start();
    let home = tempfile::tempdir().unwrap();
    let script = home.path().join("stats.py");
    std::fs::write(&script, "import statistics\nprint(1)\n").unwrap();
    let (code, _, stderr) = run(&server, home.path(), &["exec", path(&script)], b"");
    assert_ne!(code, 0);
    assert!(
        stderr.contains("use --python") || stderr.contains("exec --python"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");

    let module = home.path().join("main.ts");
    std::fs::write(&module, "export function handler() { return 1; }\n").unwrap();
    let (code, _, stderr) = run(
        &server,
        home.path(),
        &["agent", "deploy", "x", path(&module)],
        b"",
    );
    assert_ne!(code, 0);
    assert!(stderr.contains("--js"), "{stderr}");
}

#[test]
fn wallet_keys_are_made_attached_and_read_without_touching_the_client_key() {
    let server = TestServer::start();
    let home = tempfile::tempdir().unwrap();
    let owner_key = home.path().join("owner.key");
    let owner = path(&owner_key);
    deploy(&server, &owner_key, "buyer", "hello", None);
    let wallet_key = home.path().join("wallet.key");
    let wallet = path(&wallet_key);

    let (code, address, stderr) = run(&server, home.path(), &["keygen", "--wallet", wallet], b"");
    assert_eq!(code, 0, "{stderr}");
    let address = address.trim().to_string();
    assert!(
        address.starts_with("0x") && address.len() == 42,
        "{address}"
    );
    let (code, _, stderr) = run(&server, home.path(), &["keygen", "--wallet", wallet], b"");
    assert_ne!(code, 0, "never overwritten");
    assert!(stderr.contains("exists"), "{stderr}");

    // No wallet yet: said so, with its own code.
    let (code, _, stderr) = run(
        &server,
        home.path(),
        &["--key", owner, "agent", "wallet", "buyer"],
        b"",
    );
    assert_ne!(code, 0);
    assert!(stderr.contains("wallet_not_found"), "{stderr}");
    assert!(stderr.contains("has no wallet"), "{stderr}");

    let policy = home.path().join("policy.json");
    std::fs::write(
        &policy,
        r#"{"networks": ["eip155:84532"], "assets": ["0x036CbD53842c5426634e7929541eC2318f3dCF7e"],
            "max_per_call": "10000", "max_per_day": "50000", "max_total": "1000000"}"#,
    )
    .unwrap();
    // A missing wallet key is an error that says how to make one, and is not created.
    let missing = home.path().join("missing.key");
    let (code, _, stderr) = run(
        &server,
        home.path(),
        &[
            "--key",
            owner,
            "agent",
            "wallet",
            "buyer",
            "--wallet-key",
            path(&missing),
            "--policy",
            path(&policy),
        ],
        b"",
    );
    assert_ne!(code, 0);
    assert!(stderr.contains("keygen --wallet"), "{stderr}");
    assert!(!missing.exists());

    // Attached with --wallet-key while --key stays the owner's key.
    let (code, stdout, stderr) = run(
        &server,
        home.path(),
        &[
            "--key",
            owner,
            "agent",
            "wallet",
            "buyer",
            "--wallet-key",
            wallet,
            "--policy",
            path(&policy),
        ],
        b"",
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let info: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        info["address"].as_str().unwrap().to_lowercase(),
        address.to_lowercase(),
        "{info}"
    );
    // Read back without --policy.
    let (code, stdout, stderr) = run(
        &server,
        home.path(),
        &["--key", owner, "agent", "wallet", "buyer"],
        b"",
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.to_lowercase().contains(&address.to_lowercase()),
        "{stdout}"
    );
}

#[test]
fn agent_invoke_pays_a_priced_agent_in_the_clear_and_sealed() {
    let server = TestServer::start_with(&payments_table(""));
    let home = tempfile::tempdir().unwrap();
    let owner_key = home.path().join("owner.key");
    deploy(&server, &owner_key, "stats", "text-stats", Some("10000"));
    let wallet_key = home.path().join("wallet.key");
    let wallet = path(&wallet_key);
    assert_eq!(
        run(&server, home.path(), &["keygen", "--wallet", wallet], b"").0,
        0
    );
    let event = r#"{"text": "Pay for these words."}"#;

    let (code, _, stderr) = run(
        &server,
        home.path(),
        &["agent", "invoke", "stats", "--event", event],
        b"",
    );
    assert_ne!(code, 0);
    assert!(stderr.contains("payment required"), "{stderr}");
    assert!(stderr.contains("10000 atomic units"), "{stderr}");
    assert!(stderr.contains("--pay-with"), "{stderr}");

    // Above --max-price: refused before anything is signed.
    let (code, _, stderr) = run(
        &server,
        home.path(),
        &[
            "agent",
            "invoke",
            "stats",
            "--event",
            event,
            "--pay-with",
            wallet,
            "--max-price",
            "9999",
        ],
        b"",
    );
    assert_ne!(code, 0);
    assert!(stderr.contains("payment refused"), "{stderr}");

    let (code, stdout, stderr) = run(
        &server,
        home.path(),
        &[
            "--json",
            "agent",
            "invoke",
            "stats",
            "--event",
            event,
            "--pay-with",
            wallet,
            "--max-price",
            "10000",
        ],
        b"",
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["result"]["words"], 4, "{doc}");
    assert_eq!(doc["payment_response"]["success"], true, "{doc}");

    // Sealed (the caller's key given): paid the same way, the result checked.
    let (code, stdout, stderr) = run(
        &server,
        home.path(),
        &[
            "--key",
            path(&owner_key),
            "--json",
            "agent",
            "invoke",
            "stats",
            "--event",
            event,
            "--pay-with",
            wallet,
            "--max-price",
            "10000",
        ],
        b"",
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["commitment_verified"], true, "{doc}");
    let result: Value = serde_json::from_str(doc["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(result["words"], 4, "{doc}");
    assert_eq!(doc["settlement"]["success"], true, "{doc}");
}

#[test]
fn empty_config_values_are_refused_unless_allowed() {
    let server = TestServer::start();
    let home = tempfile::tempdir().unwrap();
    let owner_key = home.path().join("owner.key");
    let owner = path(&owner_key);
    deploy(&server, &owner_key, "keeper", "state-agent", None);
    // `--set API_KEY=$UNSET` as the shell expands it.
    let (code, _, stderr) = run(
        &server,
        home.path(),
        &[
            "--key", owner, "agent", "config", "keeper", "--set", "API_KEY=",
        ],
        b"",
    );
    assert_ne!(code, 0);
    assert!(
        stderr.contains("API_KEY would be set to an empty value"),
        "{stderr}"
    );
    let (code, stdout, _) = run(
        &server,
        home.path(),
        &["--key", owner, "agent", "config", "keeper"],
        b"",
    );
    assert_eq!(code, 0);
    assert!(!stdout.contains("API_KEY"), "nothing stored: {stdout}");

    let (code, stdout, stderr) = run(
        &server,
        home.path(),
        &[
            "--key",
            owner,
            "agent",
            "config",
            "keeper",
            "--set",
            "API_KEY=",
            "--allow-empty",
        ],
        b"",
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("API_KEY"), "{stdout}");
}

#[test]
fn execution_records_are_read_by_their_id_and_listed() {
    let server = TestServer::start();
    let home = tempfile::tempdir().unwrap();
    let hello = wasm_path("hello");
    let (code, _, stderr) = run(&server, home.path(), &["exec", path(&hello), "rec"], b"");
    assert_eq!(code, 0, "{stderr}");
    let id = stderr
        .split("execution ")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .unwrap_or_else(|| panic!("no execution id: {stderr}"))
        .to_string();

    let (code, stdout, stderr) = run(&server, home.path(), &["--json", "executions", &id], b"");
    assert_eq!(code, 0, "{stderr}");
    let record: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(record["id"], id.as_str(), "{record}");
    assert_eq!(record["route"], "/test/execute/wasm", "{record}");

    let (code, stdout, stderr) = run(&server, home.path(), &["executions", "--since", "1h"], b"");
    assert_eq!(code, 0, "{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.contains(&id))
        .unwrap_or_else(|| panic!("{id} not listed: {stdout}"));
    assert!(line.contains("exit 0"), "{line}");
    assert!(line.contains("Z "), "an RFC 3339 time: {line}");

    // A run stopped by its limit has a record too, and says which.
    let endless = wasm_path("endless-loop");
    let (code, _, stderr) = run(
        &server,
        home.path(),
        &["exec", path(&endless), "--time-ms", "300"],
        b"",
    );
    assert_eq!(code, 124, "{stderr}");
    assert!(stderr.contains("time_limit_exceeded"), "{stderr}");
    assert!(stderr.contains(" · execution "), "{stderr}");

    // Another key reads none of them.
    let other = home.path().join("other.key");
    let (code, _, stderr) = run(
        &server,
        home.path(),
        &["--key", path(&other), "executions", &id],
        b"",
    );
    assert_ne!(code, 0);
    assert!(stderr.contains("execution_not_found"), "{stderr}");
}

#[test]
fn logs_are_followed_as_invocations_write_them() {
    let server = TestServer::start();
    let home = tempfile::tempdir().unwrap();
    let owner_key = home.path().join("owner.key");
    deploy(&server, &owner_key, "noisy", "hello", None);
    let client = server.client();
    client.invoke_cli("noisy", &["--fail"], None).unwrap();

    let mut follower = Command::new(client_binary())
        .args([
            "--server",
            &server.url,
            "--key",
            path(&owner_key),
            "--json",
            "agent",
            "logs",
            "noisy",
            "--follow",
        ])
        .env("XDG_CONFIG_HOME", home.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follower.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["stderr"], "failing on request\n", "{first}");

    // Two more while following: each printed once, in order.
    let second = client.invoke_cli("noisy", &["--fail", "2"], None).unwrap();
    let third = client.invoke_cli("noisy", &["--fail", "3"], None).unwrap();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let entry: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        ids.push(entry["execution_id"].as_str().unwrap().to_string());
    }
    follower.kill().unwrap();
    let _ = follower.wait();
    assert_eq!(ids, [second.execution_id, third.execution_id]);
}

#[test]
fn environments_are_kept_apart_in_agent_list_and_unattested_hosts_can_be_expected() {
    let server = TestServer::start();
    let home = tempfile::tempdir().unwrap();
    let owner_key = home.path().join("owner.key");
    deploy(&server, &owner_key, "stats", "text-stats", None);
    let (status, body) = server
        .client()
        .post_json(
            "/environments/setup",
            &serde_json::json!({"mainModule": "main.ts", "modules": {"main.ts":
            "export async function handler(event) { return {ok: true}; }"}}),
        )
        .unwrap();
    assert_eq!(status, 200, "{body}");

    let (code, stdout, stderr) = run(&server, home.path(), &["agent", "list"], b"");
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("stats"), "{stdout}");
    assert!(!stdout.contains("env-"), "{stdout}");
    assert!(stderr.contains("1 environment not shown"), "{stderr}");
    let (code, stdout, _) = run(
        &server,
        home.path(),
        &["agent", "list", "--environments"],
        b"",
    );
    assert_eq!(code, 0);
    let line = stdout.lines().find(|l| l.starts_with("env-")).unwrap();
    assert!(line.contains("environment"), "{line}");
    assert!(
        line.contains("JavaScript environment: main.ts (1 module)"),
        "{line}"
    );
    assert!(!line.contains('{'), "no raw JSON: {line}");

    // A host without attestation: warned, unless expected.
    let (code, _, stderr) = run(&server, home.path(), &["a2a", "card", "stats"], b"");
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("WARNING"), "{stderr}");
    let (code, stdout, stderr) = run(
        &server,
        home.path(),
        &["a2a", "card", "stats", "--allow-unattested"],
        b"",
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("WARNING"), "{stderr}");
    assert!(stdout.contains("not signed"), "{stdout}");
}

#[test]
fn sealed_http_agents_deploy_from_the_cli_as_public_or_with_callers() {
    let server = TestServer::start();
    let home = tempfile::tempdir().unwrap();
    let owner_key = home.path().join("owner.key");
    let owner = path(&owner_key);
    let web = wasm_path("http-hello");
    let (code, _, stderr) = run(
        &server,
        home.path(),
        &[
            "--key",
            owner,
            "agent",
            "deploy",
            "web",
            path(&web),
            "--private",
        ],
        b"",
    );
    assert_ne!(code, 0);
    assert!(stderr.contains("public"), "{stderr}");

    let (code, stdout, stderr) = run(
        &server,
        home.path(),
        &[
            "--key",
            owner,
            "--json",
            "agent",
            "deploy",
            "web",
            path(&web),
            "--private",
            "--public",
        ],
        b"",
    );
    assert_eq!(code, 0, "{stderr}");
    let agent: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(agent["public"], true, "{agent}");
    let answer = ureq::get(format!("{}/agents/web/", server.url))
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    assert!(answer.contains("Hello"), "{answer}");

    let caller_owner = ClientSecret::generate().unwrap().public_key().to_hex();
    let (code, stdout, stderr) = run(
        &server,
        home.path(),
        &[
            "--key",
            owner,
            "--json",
            "agent",
            "deploy",
            "inner-web",
            path(&web),
            "--private",
            "--caller",
            &format!("front={caller_owner}"),
        ],
        b"",
    );
    assert_eq!(code, 0, "{stderr}");
    let agent: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(agent["public"], false, "{agent}");
    let grants = server
        .client()
        .agent_grants(
            &hypervisor_client::keyfile::load_or_create(&owner_key)
                .unwrap()
                .0,
            "inner-web",
        )
        .unwrap();
    let callers = grants.callers.unwrap();
    assert_eq!(callers.len(), 1);
    assert_eq!(callers[0].name, "front");
}

/// An HTTPS host whose certificate comes from a private authority: `--cacert` trusts it,
/// `--insecure` (warned) checks nothing, and without either the refusal says what to do.
#[cfg(feature = "simulated-attestation")]
#[test]
fn https_with_a_private_authority_needs_cacert_or_an_explicit_insecure() {
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key) = (tmp.path().join("cert.pem"), tmp.path().join("key.pem"));
    let pair = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    std::fs::write(&key, pair.signing_key.serialize_pem()).unwrap();
    std::fs::write(&cert, pair.cert.pem()).unwrap();
    let server = TestServer::start_with(&format!(
        "[attestation]\nprovider = \"simulated\"\n[tls]\nlisten = \"127.0.0.1:0\"\nplain = false\n\
         certificate = {:?}\nkey = {:?}\n",
        path(&cert),
        path(&key)
    ));
    assert!(server.url.starts_with("https://"));
    let home = tempfile::tempdir().unwrap();

    let (code, _, stderr) = run(&server, home.path(), &["ping"], b"");
    assert_ne!(code, 0);
    assert!(stderr.contains(&server.url), "{stderr}");
    assert!(stderr.contains("--cacert FILE"), "{stderr}");

    let (code, stdout, stderr) = run(
        &server,
        home.path(),
        &["--cacert", path(&cert), "ping"],
        b"",
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(!stdout.trim().is_empty());
    assert!(!stderr.contains("WARNING"), "{stderr}");

    let (code, _, stderr) = run(&server, home.path(), &["--insecure", "ping"], b"");
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("WARNING: --insecure"), "{stderr}");

    // A file without a certificate is refused before anything is sent.
    let (code, _, stderr) = run(&server, home.path(), &["--cacert", path(&key), "ping"], b"");
    assert_ne!(code, 0);
    assert!(stderr.contains("no CERTIFICATE"), "{stderr}");
}
