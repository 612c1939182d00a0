//! Starting and stopping a real server, and small helpers shared by the tests.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use hypervisor_client::{Client, ExecuteInput, Execution, Session};
use hypervisor_protocol::ClientSecret;

/// A running `hypervisor serve` with its own data directory. Killed on drop.
pub struct TestServer {
    child: Child,
    pub url: String,
    /// The server's data directory.
    pub data_dir: PathBuf,
    log: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

/// Configuration used by every test server unless a test adds more: a small instance pool so
/// that many servers can run side by side, short default limits, the plug-ins built by
/// `scripts/build-programs.sh`, and the shared plug-in cache (see [`warm_plugin_cache`]).
fn base_config() -> String {
    format!(
        r#"
listen = "127.0.0.1:0"
plugin_cache_dir = {cache:?}
[engine]
max_concurrent_executions = 128
[limits]
default_time_ms = 20000
{policy}
[python]
component = {python:?}
"#,
        cache = plugin_cache().display().to_string(),
        policy = policy_table("policy-python", ""),
        python = wasm_path("policy-python").display().to_string(),
    )
}

/// A `[policy]` table using the component `target/wasm/<component>.wasm`, plus `extra` lines.
pub fn policy_table(component: &str, extra: &str) -> String {
    format!(
        "[policy]\ncomponent = {:?}\ninstances = 2\n{extra}\n",
        wasm_path(component).display().to_string()
    )
}

/// The plug-in cache shared by all test servers, so the componentized CPython (tens of seconds
/// of compilation) is compiled once per machine rather than once per test server.
fn plugin_cache() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-plugin-cache")
}

/// The sealing key every test server shares (the plug-in cache is sealed under it).
fn shared_key() -> PathBuf {
    plugin_cache().join("warm/keys/at-rest.key")
}

/// Starts one server on a data directory inside the shared cache, once per test process, so
/// that the plug-ins are compiled (or found in the cache) before any test server starts.
fn warm_plugin_cache() {
    static WARM: std::sync::Once = std::sync::Once::new();
    WARM.call_once(|| {
        let warm = plugin_cache().join("warm");
        // Payments on, so the payments component is compiled here too.
        let payments = format!(
            "[payments]\nenabled = true\ncomponent = {:?}\n[payments.price]\npay_to = \"0x209693Bc6afc0C5328bA36FaF03C514EF312287C\"\n",
            wasm_path("payments").display().to_string()
        );
        let server = TestServer::spawn(&warm, &payments, "info", "serve")
            .unwrap_or_else(|log| panic!("server did not start; log:\n{log}"));
        server.stop();
    });
}

impl TestServer {
    /// A server with the base configuration.
    pub fn start() -> Self {
        Self::start_with("")
    }

    /// A server with extra TOML appended to the base configuration (later keys win only in
    /// tables that the base does not set; pass whole tables).
    pub fn start_with(extra_toml: &str) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().join("data");
        let mut s = Self::start_in(&data, extra_toml);
        s._tmp = Some(tmp);
        s
    }

    /// A server whose log is filtered by `log_filter` (a `RUST_LOG` value; the others log at
    /// `info`).
    pub fn start_logging(log_filter: &str, extra_toml: &str) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().join("data");
        let mut s = Self::start_in_logging(&data, extra_toml, log_filter);
        s._tmp = Some(tmp);
        s
    }

    /// A server on an existing data directory (for restart tests).
    pub fn start_in(data_dir: &Path, extra_toml: &str) -> Self {
        Self::start_in_logging(data_dir, extra_toml, "info")
    }

    fn start_in_logging(data_dir: &Path, extra_toml: &str, log_filter: &str) -> Self {
        warm_plugin_cache();
        let keys = data_dir.join("keys");
        if !keys.join("at-rest.key").exists() {
            std::fs::create_dir_all(&keys).expect("keys dir");
            std::fs::copy(shared_key(), keys.join("at-rest.key")).expect("copy the shared key");
        }
        Self::spawn(data_dir, extra_toml, log_filter, "serve")
            .unwrap_or_else(|log| panic!("server did not start; log:\n{log}"))
    }

    /// A server on `data_dir` started with `args` after the configuration file, as
    /// `hypervisor serve ARGS` (what `scripts/serve.sh ARGS` runs); `Err` holds the log of a
    /// server that exited instead of listening.
    pub fn start_in_with_args(data_dir: &Path, args: &[String]) -> Result<Self, String> {
        Self::start_in_with(data_dir, "", args)
    }

    /// A server on `data_dir` with extra TOML and `args` after the configuration file;
    /// `Err` holds the log of a server that exited instead of listening.
    pub fn start_in_with(
        data_dir: &Path,
        extra_toml: &str,
        args: &[String],
    ) -> Result<Self, String> {
        warm_plugin_cache();
        let keys = data_dir.join("keys");
        if !keys.join("at-rest.key").exists() {
            std::fs::create_dir_all(&keys).expect("keys dir");
            std::fs::copy(shared_key(), keys.join("at-rest.key")).expect("copy the shared key");
        }
        Self::spawn_with_args(data_dir, extra_toml, "info", "serve", args)
    }

    /// A server started with `hypervisor launch` (measure, then serve) instead of `serve`.
    pub fn launch_with(extra_toml: &str) -> Self {
        warm_plugin_cache();
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().join("data");
        let keys = data.join("keys");
        std::fs::create_dir_all(&keys).expect("keys dir");
        std::fs::copy(shared_key(), keys.join("at-rest.key")).expect("copy the shared key");
        let mut s = Self::spawn(&data, extra_toml, "info", "launch")
            .unwrap_or_else(|log| panic!("server did not start; log:\n{log}"));
        s._tmp = Some(tmp);
        s
    }

    /// Writes the configuration and starts the process; `Err` holds the log of a server that
    /// exited instead of listening.
    fn spawn(
        data_dir: &Path,
        extra_toml: &str,
        log_filter: &str,
        subcommand: &str,
    ) -> Result<Self, String> {
        Self::spawn_with_args(data_dir, extra_toml, log_filter, subcommand, &[])
    }

    fn spawn_with_args(
        data_dir: &Path,
        extra_toml: &str,
        log_filter: &str,
        subcommand: &str,
        args: &[String],
    ) -> Result<Self, String> {
        std::fs::create_dir_all(data_dir).expect("data dir");
        let config = data_dir.with_extension("toml");
        let base = merge_toml(&base_config(), extra_toml);
        std::fs::write(
            &config,
            format!("data_dir = {:?}\n{base}", data_dir.display().to_string()),
        )
        .expect("write config");
        let log = data_dir.with_extension("log");
        let log_file = std::fs::File::create(&log).expect("log file");
        // Run from the test's own directory, not the checkout: nothing may depend on the
        // working directory.
        let mut child = Command::new(env!("CARGO_BIN_EXE_hypervisor"))
            .current_dir(data_dir.parent().unwrap_or(data_dir))
            .arg(subcommand)
            .arg("--config")
            .arg(&config)
            .args(args)
            .env("RUST_LOG", log_filter)
            .env_remove("HYPERVISOR_HOST")
            .env_remove("HYPERVISOR_CONFIG")
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .expect("spawn hypervisor");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("hypervisor listening on ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        // A cold plug-in cache means compiling CPython: minutes on a loaded 2-core machine.
        let url = match rx.recv_timeout(Duration::from_secs(600)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(std::fs::read_to_string(&log).unwrap_or_default());
            }
        };
        Ok(Self {
            child,
            url,
            data_dir: data_dir.to_owned(),
            log,
            _tmp: None,
        })
    }

    /// Starts a server that must refuse to start; returns its log.
    pub fn start_expecting_failure(extra_toml: &str) -> String {
        warm_plugin_cache();
        let tmp = tempfile::tempdir().expect("tempdir");
        match Self::spawn(&tmp.path().join("data"), extra_toml, "info", "serve") {
            Ok(server) => panic!("server started at {} but should not have", server.url),
            Err(log) => log,
        }
    }

    /// The process id (to send signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the log contains `needle` (at most `timeout`).
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// A client for this server.
    pub fn client(&self) -> Client {
        Client::new(&self.url)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the server (SIGKILL) and waits for it.
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the process is still alive.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Appends `extra` tables to `base`, replacing base tables of the same name.
fn merge_toml(base: &str, extra: &str) -> String {
    // Top-level keys of `extra` (before its first table) go first, where TOML reads them as
    // top-level.
    let split = extra
        .lines()
        .position(|l| l.trim().starts_with('['))
        .unwrap_or(extra.lines().count());
    let mut out: String = extra.lines().take(split).flat_map(|l| [l, "\n"]).collect();
    let extra: String = extra.lines().skip(split).flat_map(|l| [l, "\n"]).collect();
    let extra = extra.as_str();
    let extra_tables: Vec<&str> = extra
        .lines()
        .filter_map(|l| l.trim().strip_prefix('[').and_then(|l| l.strip_suffix(']')))
        .collect();
    let mut skipping = false;
    for line in base.lines() {
        if let Some(t) = line
            .trim()
            .strip_prefix('[')
            .and_then(|l| l.strip_suffix(']'))
        {
            skipping = extra_tables.contains(&t);
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str(extra);
    out
}

/// Where `scripts/build-programs.sh` puts the component `name`.
pub fn wasm_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/wasm")
        .join(format!("{name}.wasm"))
}

/// A guest component built by `scripts/build-programs.sh`.
pub fn wasm(name: &str) -> Vec<u8> {
    let path = wasm_path(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}. Build the guests first: scripts/build-programs.sh (scripts/test.sh does it)",
            path.display()
        )
    })
}

/// A RISC-V program (ELF) built by `scripts/build-programs.sh` from `guests/riscv/<name>`.
pub fn riscv(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/riscv")
        .join(format!("{name}.elf"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}. Build the programs first: scripts/build-programs.sh (scripts/test.sh does it)",
            path.display()
        )
    })
}

/// The SHA-256 of the host binary under test: what its attestation names as the host
/// measurement, and what a verifier pins (`hypervisor-client measure`).
pub fn host_measurement() -> [u8; 32] {
    let binary = std::fs::read(env!("CARGO_BIN_EXE_hypervisor")).expect("the host binary");
    hypervisor_protocol::sha256(&binary)
}

/// A register of the default simulated platform, computed here independently of the host:
/// SHA-384 of `wasm-hypervisor simulated NAME` (`attestation.simulated_platform`).
pub fn simulated_register(name: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha384::digest(format!(
        "wasm-hypervisor simulated {name}"
    )))
}

/// Grants to call the hypervisor at `origin`, accepted on the reference set of the host under
/// test on the default simulated platform (simulated evidence allowed).
#[cfg(feature = "simulated-attestation")]
pub fn simulated_remote_grant(origin: &str) -> hypervisor_protocol::grants::Grants {
    hypervisor_protocol::grants::Grants {
        hypervisors: vec![hypervisor_protocol::grants::HypervisorGrant {
            origin: origin.to_string(),
            reference_values: vec![simulated_reference()],
            measurements: Vec::new(),
            allow_simulated: true,
        }],
        ..Default::default()
    }
}

/// The reference value set of the host binary under test on the default simulated platform:
/// its registers, and the launcher's RTMR3 event naming the binary (what a verifier pins).
pub fn simulated_reference() -> hypervisor_protocol::reference::ReferenceValues {
    use hypervisor_protocol::reference::{AppReference, ReferenceValues, TdxReference};
    ReferenceValues {
        version: 1,
        name: "the host under test, simulated".into(),
        tee: "simulated".into(),
        tdx: Some(TdxReference {
            mrtd: simulated_register("MRTD"),
            rtmr0: simulated_register("RTMR0"),
            rtmr1: simulated_register("RTMR1"),
            rtmr2: simulated_register("RTMR2"),
            app: AppReference {
                compose_hash: None,
                app_id: None,
                host_event: true,
            },
        }),
        sev_snp: None,
        host_measurements: vec![hex::encode(host_measurement())],
        tcb: Default::default(),
    }
}

/// A fresh client key and a session on `server`.
pub fn session(server: &TestServer) -> (Client, ClientSecret, Session) {
    session_at(&server.url)
}

/// A fresh client key and a session on the server at `url` (for use from other threads).
pub fn session_at(url: &str) -> (Client, ClientSecret, Session) {
    let client = Client::new(url);
    let key = ClientSecret::generate().expect("key");
    let session = client.create_session(&key).expect("session");
    (client, key, session)
}

/// `GET path` on the host at `url`, returning the status and the body's text.
pub fn get_text(url: &str, path: &str) -> (u16, String) {
    let mut resp = ureq::get(format!("{url}{path}"))
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .expect("GET");
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_to_string().expect("body"))
}

/// `GET path`, returning the status and the JSON body.
pub fn get_json(server: &TestServer, path: &str) -> (u16, serde_json::Value) {
    let (status, text) = get_text(&server.url, path);
    (status, serde_json::from_str(&text).expect("JSON body"))
}

/// A host started with `extra` TOML and one public agent `stats` (`text-stats`).
pub fn with_public_stats(extra: &str) -> TestServer {
    let server = TestServer::start_with(extra);
    server
        .client()
        .deploy_agent(
            &ClientSecret::generate().expect("a key"),
            &hypervisor_client::agents::Deployment {
                name: "stats",
                description: "word counts",
                component: &wasm("text-stats"),
                public: Some(true),
                ..hypervisor_client::agents::Deployment::default()
            },
        )
        .expect("deploy stats");
    server
}

/// Runs `guest` with `args` in a new session and returns the checked execution.
pub fn run(server: &TestServer, guest: &str, args: &[&str]) -> Execution {
    let (client, _key, session) = session(server);
    let program = wasm(guest);
    client
        .execute(&session, &ExecuteInput::new(&program).args(args))
        .expect("execute")
}

/// Error code of an error body.
pub fn code(body: &serde_json::Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no code>")
}

/// The value of the sample `series` (exact name and labels) in a Prometheus text.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The value of the sample `series` in the server's `GET /metrics` (panics if absent).
pub fn metric(server: &TestServer, series: &str) -> f64 {
    let mut resp = ureq::get(format!("{}/metrics", server.url))
        .call()
        .expect("GET /metrics");
    let text = resp.body_mut().read_to_string().expect("metrics body");
    sample(&text, series).unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}

/// A host taking payments (verify-only, the `payments` component, paying a fixed test
/// address) with simulated attestation, so that every route answers as in production.
pub fn paid_simulated_config() -> String {
    format!(
        "[attestation]\nprovider = \"simulated\"\n[payments]\nenabled = true\ncomponent = {:?}\n\
         [payments.price]\npay_to = \"0x209693Bc6afc0C5328bA36FaF03C514EF312287C\"\n",
        wasm_path("payments").display().to_string()
    )
}

/// POSTs `body` to `path` with `headers` (curl, so that nothing of the client's shapes the
/// request): (status, body as JSON or null).
pub fn curl_post(
    server: &TestServer,
    path: &str,
    headers: &[&str],
    body: &[u8],
) -> (u16, serde_json::Value) {
    let mut command = Command::new("curl");
    command.args(["-s", "-o", "-", "-w", "\n%{http_code}"]);
    for h in headers {
        command.args(["-H", h]);
    }
    let mut child = command
        .args(["--data-binary", "@-", &format!("{}{path}", server.url)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("curl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body)
        .expect("write the body");
    let out = child.wait_with_output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, status) = text.rsplit_once('\n').expect("curl's status line");
    (
        status.parse().expect("a status"),
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

/// Deploys `text-stats` as the handler agent `paid`, at `price` atomic units a run, with a
/// fresh owner key.
pub fn deploy_priced_stats(server: &TestServer, price: &str) {
    server
        .client()
        .deploy_agent(
            &ClientSecret::generate().expect("a key"),
            &hypervisor_client::agents::Deployment {
                name: "paid",
                description: "word counts",
                component: &wasm("text-stats"),
                price: Some(price.into()),
                ..hypervisor_client::agents::Deployment::default()
            },
        )
        .expect("deploy paid");
}

/// Deploys, as `owner`, a JavaScript agent `name` of one module (`main.js`, `source`).
pub fn deploy_js_main(server: &TestServer, owner: &ClientSecret, name: &str, source: &str) {
    use hypervisor_client::agents::Deployment;
    use hypervisor_protocol::agents::JsSource;
    server
        .client()
        .deploy_js(
            owner,
            &Deployment {
                name,
                description: name,
                ..Deployment::default()
            },
            &JsSource {
                engine: Default::default(),
                main: "main.js".into(),
                modules: std::collections::BTreeMap::from([(
                    "main.js".to_string(),
                    source.to_string(),
                )]),
            },
        )
        .unwrap_or_else(|e| panic!("deploying {name}: {e}"));
}
