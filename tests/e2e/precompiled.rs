//! Plug-ins compiled ahead of time (`hypervisor precompile`): a first start loads them instead
//! of compiling, and refuses, with the reason in its log, an artifact that is not what its
//! manifest says, one built with other engine settings, and any under `hypervisor launch`.

use std::path::Path;
use std::process::Command;

use crate::harness::{TestServer, metric, wasm_path};

/// The plug-ins of these tests: the small Rust policy and payments (the Python runtime off, so
/// no test compiles CPython).
fn plugins_toml() -> String {
    format!(
        "[policy]\ncomponent = {policy:?}\ninstances = 1\n[python]\nenabled = false\ncomponent = {policy:?}\n\
         [payments]\nenabled = true\ncomponent = {payments:?}\n\
         [payments.price]\npay_to = \"0x209693Bc6afc0C5328bA36FaF03C514EF312287C\"\n",
        policy = wasm_path("policy-rust").display().to_string(),
        payments = wasm_path("payments").display().to_string(),
    )
}

/// `hypervisor precompile --out DIR` with `config` (plus `extra` arguments); its stdout.
fn precompile(config: &Path, out: &Path, extra: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_hypervisor"))
        .arg("precompile")
        .arg("--config")
        .arg(config)
        .arg("--out")
        .arg(out)
        .args(extra)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run hypervisor precompile");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn loads(server: &TestServer, source: &str) -> f64 {
    metric(
        server,
        &format!("hypervisor_plugin_loads_total{{source=\"{source}\"}}"),
    )
}

fn serve(tmp: &Path, name: &str, extra_toml: &str, args: &[String]) -> TestServer {
    TestServer::start_in_with(&tmp.join(name), extra_toml, args)
        .unwrap_or_else(|log| panic!("server did not start; log:\n{log}"))
}

#[test]
fn a_first_start_loads_checked_precompiled_plugins_and_compiles_the_ones_that_fail_a_check() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("precompiled");
    let config = tmp.path().join("precompile.toml");
    std::fs::write(&config, plugins_toml()).unwrap();
    let printed = precompile(&config, &dir, &[]);
    assert!(
        printed.contains("compiled  ") && printed.contains("policy-rust.wasm"),
        "{printed}"
    );
    assert!(printed.contains("payments.wasm"), "{printed}");
    let use_dir = vec!["--precompiled-dir".to_string(), dir.display().to_string()];

    // A new data directory: both plug-ins come from the directory, none is compiled.
    let server = serve(tmp.path(), "first", &plugins_toml(), &use_dir);
    assert_eq!(loads(&server, "precompiled"), 2.0, "{}", server.log());
    assert_eq!(loads(&server, "compiled") + loads(&server, "disk"), 0.0);
    assert!(server.log().contains("plug-in loaded precompiled"));
    // And they work: the policy admits a run.
    let (client, _key, session) = crate::harness::session_at(&server.url);
    let program = crate::harness::wasm("hello");
    let out = client
        .execute(&session, &hypervisor_client::ExecuteInput::new(&program))
        .unwrap();
    assert_eq!(out.stdout().unwrap(), b"Hello\n");
    // The JavaScript runtime too: its first set-up maps the instrumented runtime and the shared
    // code from the directory, compiling neither.
    assert!(
        printed.contains("(instrumented for set-ups)") && printed.contains("(shared code)"),
        "{printed}"
    );
    let owner = hypervisor_protocol::ClientSecret::generate().unwrap();
    let js = crate::javascript::source_on(
        hypervisor_protocol::agents::JsEngine::Boa,
        "main.js",
        &[(
            "main.js",
            "export function handler(e) { return { twice: e.n * 2 }; }",
        )],
    );
    crate::javascript::deploy(&server.client(), &owner, "twice", &js).expect("deploy");
    let r = server
        .client()
        .invoke("twice", serde_json::json!({"n": 21}))
        .unwrap();
    assert_eq!(r.result_json().unwrap()["twice"], 42, "{r:?}");
    let log = server.log();
    assert!(
        log.contains("a module of the host's loaded precompiled"),
        "{log}"
    );
    assert_eq!(loads(&server, "precompiled"), 3.0, "{log}");
    assert_eq!(loads(&server, "compiled") + loads(&server, "disk"), 0.0);
    server.stop();

    // A damaged artifact is refused by its hash, named in the log, and compiled instead.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let policy = manifest["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"].as_str().unwrap().ends_with("policy-rust.wasm"))
        .unwrap();
    let file = dir.join(policy["file"].as_str().unwrap());
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&file, &bytes).unwrap();
    let server = serve(tmp.path(), "damaged", &plugins_toml(), &use_dir);
    let log = server.log();
    assert!(
        log.contains("precompiled plug-in unusable") && log.contains("the manifest says"),
        "{log}"
    );
    assert_eq!(loads(&server, "precompiled"), 1.0, "{log}");
    assert_eq!(loads(&server, "compiled") + loads(&server, "disk"), 1.0);
    server.stop();

    // precompile again: the damaged one is compiled, the good one kept.
    let printed = precompile(&config, &dir, &[]);
    assert!(
        printed.contains("kept      ") && printed.contains("compiled  "),
        "{printed}"
    );

    // Other engine settings (fuel metering) change the code: nothing is used, the log says why.
    let server = serve(
        tmp.path(),
        "fuel",
        &plugins_toml(),
        &[use_dir.clone(), vec!["--fuel".into()]].concat(),
    );
    let log = server.log();
    assert!(
        log.contains("precompiled plug-ins unusable") && log.contains("other engine settings"),
        "{log}"
    );
    assert_eq!(loads(&server, "precompiled"), 0.0);
    server.stop();

    // `launch` measures the binary alone: precompiled code beside it is not used.
    let extend = tmp.path().join("rtmr3:sha384");
    std::fs::write(&extend, b"").unwrap();
    let server = TestServer::launch_with(&format!(
        "precompiled_dir = {:?}\n{}[attestation]\nrtmr3_extend_file = {:?}\nruntime_event_log = {:?}\n",
        dir.display().to_string(),
        plugins_toml(),
        extend.display().to_string(),
        tmp.path().join("events.log").display().to_string(),
    ));
    assert_eq!(loads(&server, "precompiled"), 0.0, "{}", server.log());
    assert!(server.log().contains("precompiled plug-ins are not used"));
    server.stop();
}
