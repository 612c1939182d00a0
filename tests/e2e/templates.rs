//! `hypervisor-client new` (issue 48): every template makes a project that builds as its README
//! says (cargo for the Rust ones, componentize-py for Python, nothing for JavaScript and
//! TypeScript), deploys and answers on a real host. The Rust builds share a target directory
//! and the guests' lock file, offline (scripts/build-programs.sh fetched those crates).

use std::path::{Path, PathBuf};
use std::process::Command;

use hypervisor_client::agents::Deployment;
use hypervisor_protocol::ClientSecret;
use serde_json::json;

use crate::client_cli::{client_binary, run};
use crate::harness::TestServer;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `hypervisor-client new TEMPLATE NAME --dir DIR`.
fn new(template: &str, name: &str, dir: &Path) {
    let out = Command::new(client_binary())
        .args(["new", template, name, "--dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "new {template}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.join("README.md").is_file());
}

/// `cargo build --release --target wasm32-wasip2` in `dir`, as its README says; returns the
/// component.
fn cargo_build(dir: &Path, file: &str) -> Vec<u8> {
    std::fs::copy(repo().join("guests/Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let target = repo().join("target/templates");
    let out = Command::new("cargo")
        .current_dir(dir)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--offline",
        ])
        .env("CARGO_TARGET_DIR", &target)
        // As a user builds it: not through the Clippy wrapper of the CI's test build
        // (scripts/test.sh, HYPERVISOR_LINT).
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CLIPPY_ARGS")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo build in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(target.join("wasm32-wasip2/release").join(file)).unwrap()
}

#[test]
fn every_template_builds_deploys_and_answers() {
    let server = TestServer::start();
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let deploy = |name: &str, component: &[u8]| {
        client
            .deploy_agent(
                &owner,
                &Deployment {
                    name,
                    component,
                    ..Deployment::default()
                },
            )
            .unwrap();
    };

    let dir = tmp.path().join("tally");
    new("rust-cli", "tally", &dir);
    deploy("tally", &cargo_build(&dir, "tally.wasm"));
    let out = client
        .invoke_cli("tally", &["a", "b"], Some("x\ny\n"))
        .unwrap();
    assert_eq!(
        out.stdout.as_deref(),
        Some("tally: 2 argument(s) [a b], 2 line(s) of input\n"),
        "{out:?}"
    );

    let dir = tmp.path().join("greeter");
    new("rust-handler", "greeter", &dir);
    deploy("greeter", &cargo_build(&dir, "greeter.wasm"));
    let out = client.invoke("greeter", json!({"name": "Ada"})).unwrap();
    assert_eq!(
        out.result_json().unwrap()["greeting"],
        "Hello, Ada!",
        "{out:?}"
    );

    let dir = tmp.path().join("web-hello");
    new("rust-http", "web-hello", &dir);
    deploy("web-hello", &cargo_build(&dir, "web_hello.wasm"));
    let answer = ureq::get(format!("{}/agents/web-hello/there", server.url))
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    assert_eq!(answer, "Hello from web-hello: you asked for /there\n");

    // Python: componentize-py as pinned by scripts/build-programs.sh.
    let dir = tmp.path().join("py-greeter");
    new("python-handler", "py-greeter", &dir);
    let componentize = repo().join("target/py/bin/componentize-py");
    let status = Command::new(&componentize)
        .current_dir(&dir)
        .args([
            "-q",
            "-d",
            "wit",
            "-w",
            "handler-agent",
            "componentize",
            "app",
        ])
        .args(["-o", "py-greeter.wasm"])
        .status()
        .unwrap();
    assert!(status.success(), "componentize-py");
    deploy(
        "py-greeter",
        &std::fs::read(dir.join("py-greeter.wasm")).unwrap(),
    );
    let out = client.invoke("py-greeter", json!({"name": "Bo"})).unwrap();
    assert_eq!(
        out.result_json().unwrap()["greeting"],
        "Hello, Bo!",
        "{out:?}"
    );

    // JavaScript and TypeScript: deployed from the project's directory, as the README says.
    let home = tempfile::tempdir().unwrap();
    for (template, name, files) in [
        (
            "ts-handler",
            "ts-greeter",
            &["main.ts", "lib/greeting.ts"][..],
        ),
        ("js-handler", "js-greeter", &["main.js"][..]),
    ] {
        let dir = tmp.path().join(name);
        new(template, name, &dir);
        let paths: Vec<String> = files
            .iter()
            .map(|f| dir.join(f).to_str().unwrap().to_string())
            .collect();
        let mut args = vec!["agent", "deploy", name, "--js"];
        args.extend(paths.iter().map(String::as_str));
        let (code, stdout, stderr) = run(&server, home.path(), &args, b"");
        assert_eq!(code, 0, "{stdout}{stderr}");
        let out = client.invoke(name, json!({"name": "Cy"})).unwrap();
        assert_eq!(
            out.result_json().unwrap()["greeting"],
            "Hello, Cy!",
            "{out:?}"
        );
    }

    // A bad name, or a directory in use: nothing written.
    let out = Command::new(client_binary())
        .args(["new", "rust-cli", "Bad_Name"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!tmp.path().join("Bad_Name").exists());
    let out = Command::new(client_binary())
        .args(["new", "js-handler", "again", "--dir"])
        .arg(tmp.path().join("tally"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
}
