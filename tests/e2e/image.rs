//! The OCI image (deploy/image/Containerfile, built by scripts/build-image.sh) run the way an
//! operator runs it: podman on loopback (`--runtime runc --network host`, small ulimits:
//! docs/DEPLOY.md, "The image"), against SQLite on its data volume and against PostgreSQL
//! named in `HYPERVISOR_DATABASE` (as dstack's encrypted environment passes it). Through the
//! published port: ping, an encrypted execution, a deploy and invocations, and the CLI inside
//! the image.
//!
//! The image is the one `HYPERVISOR_TEST_IMAGE` names (in the podman store
//! `HYPERVISOR_TEST_IMAGE_STORE`, if set: scripts/reproducible-image.sh runs this test on the
//! reproducible release image that way); otherwise one built by scripts/build-image.sh from
//! this test's own binaries (debug info stripped). Needs podman (scripts/test.sh installs it)
//! and root; says SKIPPED without them, except under CI, where it fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use hypervisor::storage::postgres::scratch::ScratchPostgres;
use hypervisor_client::agents::Deployment;
use hypervisor_client::{Client, ExecuteInput};
use hypervisor_protocol::ClientSecret;
use hypervisor_protocol::wire::ExitStatus;
use serde_json::{Value, json};

use crate::harness::{get_text, session_at, wasm};

/// The image under test and the podman store holding it.
struct Image {
    name: String,
    /// `--root`, `--runroot` and the storage driver of its store (empty: the system store).
    store: Vec<String>,
    /// Keeps a store built here until the test process ends.
    _dir: Option<tempfile::TempDir>,
}

fn skip(why: &str) -> Option<&'static Image> {
    assert!(std::env::var_os("CI").is_none(), "{why}");
    eprintln!("SKIPPED: the image tests: {why}");
    None
}

/// The image, built once per test process (both tests share it).
fn image() -> Option<&'static Image> {
    static IMAGE: OnceLock<Result<Image, String>> = OnceLock::new();
    if !Path::new("/usr/bin/podman").exists() {
        return skip("podman is not installed (scripts/install-containers.sh installs it)");
    }
    // Root: rootless podman would need subordinate ids this machine kind does not set up.
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    if !root {
        return skip("they run podman as root");
    }
    match IMAGE.get_or_init(build_or_name) {
        Ok(image) => Some(image),
        Err(why) => panic!("{why}"),
    }
}

fn build_or_name() -> Result<Image, String> {
    if let Ok(name) = std::env::var("HYPERVISOR_TEST_IMAGE") {
        let store = std::env::var("HYPERVISOR_TEST_IMAGE_STORE")
            .map(|s| store_args(Path::new(&s)))
            .unwrap_or_default();
        return Ok(Image {
            name,
            store,
            _dir: None,
        });
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let from = dir.path().join("binaries");
    std::fs::create_dir(&from).map_err(|e| e.to_string())?;
    let host = PathBuf::from(env!("CARGO_BIN_EXE_hypervisor"));
    for binary in ["hypervisor", "hypervisor-client"] {
        let built = host.with_file_name(binary);
        let status = Command::new("objcopy")
            .arg("--strip-debug")
            .arg(&built)
            .arg(from.join(binary))
            .status()
            .map_err(|e| format!("objcopy: {e}"))?;
        if !status.success() {
            return Err(format!("objcopy --strip-debug {} failed", built.display()));
        }
    }
    let store = dir.path().join("store");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/build-image.sh");
    let built = Command::new(script)
        .arg("--from")
        .arg(&from)
        .arg("--layout")
        .arg(dir.path().join("layout"))
        .args(["--tag", "e2e", "--store"])
        .arg(&store)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("scripts/build-image.sh: {e}"))?;
    if !built.status.success() {
        return Err("scripts/build-image.sh failed (its output is above)".to_string());
    }
    let digest = String::from_utf8_lossy(&built.stdout).trim().to_string();
    assert!(digest.starts_with("sha256:"), "a manifest digest: {digest}");
    Ok(Image {
        name: "localhost/hypervisor:e2e".to_string(),
        store: store_args(&store),
        _dir: Some(dir),
    })
}

fn store_args(store: &Path) -> Vec<String> {
    vec![
        "--root".into(),
        store.join("root").display().to_string(),
        "--runroot".into(),
        store.join("run").display().to_string(),
        "--storage-driver".into(),
        "vfs".into(),
    ]
}

impl Image {
    fn podman(&self, args: &[&str]) -> Output {
        Command::new("podman")
            .args(&self.store)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run podman")
    }
}

/// A container of the image serving on a loopback port; removed (with its logs printed if the
/// test failed) on drop.
struct Container<'a> {
    image: &'a Image,
    name: String,
    url: String,
}

/// Flags every run needs on this machine kind (../shared notes, docs/DEPLOY.md): runc (crun
/// fails on the hybrid cgroup layout), small ulimits (the defaults exceed the sandbox's),
/// host networking on loopback (bridges leave interfaces behind).
const RUN_FLAGS: &[&str] = &[
    "--runtime",
    "runc",
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=4096:4096",
    "--network",
    "host",
];

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl<'a> Container<'a> {
    /// Starts the image's own entry point with its default command's data directory, on
    /// `volume`, listening on a free loopback port, with `env`.
    fn start(image: &'a Image, volume: &str, env: &[(&str, &str)]) -> Self {
        Self::start_with(image, volume, env, &[])
    }

    /// [`Self::start`] with more `podman run` flags.
    fn start_with(image: &'a Image, volume: &str, env: &[(&str, &str)], flags: &[&str]) -> Self {
        let port = free_port();
        let name = format!("hypervisor-e2e-{}-{port}", std::process::id());
        let listen = format!("127.0.0.1:{port}");
        let mount = format!("{volume}:/data");
        let mut args = vec!["run", "-d", "--name", &name, "-v", &mount];
        args.extend_from_slice(RUN_FLAGS);
        args.extend_from_slice(flags);
        let pairs: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        for pair in &pairs {
            args.extend(["-e", pair]);
        }
        args.extend([
            &image.name,
            "serve",
            "--listen",
            &listen,
            "--data-dir",
            "/data",
        ]);
        let out = image.podman(&args);
        assert!(
            out.status.success(),
            "podman run: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let container = Self {
            image,
            name,
            url: format!("http://{listen}"),
        };
        container.wait_ready();
        container
    }

    fn logs(&self) -> String {
        let out = self.image.podman(&["logs", &self.name]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        let client = Client::new(&self.url);
        while Instant::now() < deadline {
            if client.ping().is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!(
            "the container never answered /ping; its log:\n{}",
            self.logs()
        );
    }

    /// Stops the container (the host's graceful shutdown on SIGTERM) and removes it.
    fn stop(self) {
        let out = self.image.podman(&["stop", "--time", "20", &self.name]);
        assert!(out.status.success(), "podman stop: {out:?}");
        // (Drop removes it.)
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("container {} log:\n{}", self.name, self.logs());
        }
        let _ = self.image.podman(&["rm", "-f", "--time", "1", &self.name]);
    }
}

/// A named podman volume, removed on drop.
struct Volume<'a> {
    image: &'a Image,
    name: String,
}

impl<'a> Volume<'a> {
    fn new(image: &'a Image, purpose: &str) -> Self {
        let name = format!("hypervisor-e2e-{purpose}-{}", std::process::id());
        let out = image.podman(&["volume", "create", &name]);
        assert!(out.status.success(), "podman volume create: {out:?}");
        Self { image, name }
    }
}

impl Drop for Volume<'_> {
    fn drop(&mut self) {
        let _ = self.image.podman(&["volume", "rm", "-f", &self.name]);
    }
}

/// `GET /ping` answers `pong`; an encrypted execution of `hello` comes back decrypted.
fn ping_and_execute(url: &str) {
    let (status, body) = get_text(url, "/ping");
    assert_eq!((status, body.trim()), (200, "pong"));
    let (client, _key, session) = session_at(url);
    let program = wasm("hello");
    let run = client
        .execute(&session, &ExecuteInput::new(&program).args(["image"]))
        .expect("an encrypted execution");
    assert_eq!(run.result.status, ExitStatus::Exited);
    assert_eq!(run.stdout().expect("decrypted stdout"), b"Hello image\n");
}

fn deploy_stats(url: &str) {
    let owner = ClientSecret::generate().expect("a key");
    Client::new(url)
        .deploy_agent(
            &owner,
            &Deployment {
                name: "stats",
                description: "an agent deployed into the image",
                component: &wasm("text-stats"),
                ..Deployment::default()
            },
        )
        .expect("deploy");
}

fn invoke_stats(url: &str, text: &str) -> Value {
    let (status, _, body) = Client::new(url)
        .post_json_with(
            "/agents/stats/invoke",
            &json!({"event": {"text": text}}),
            &[],
        )
        .expect("invoke");
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn the_image_serves_on_sqlite_and_keeps_its_data_volume_across_a_restart() {
    let Some(image) = image() else { return };
    let volume = Volume::new(image, "sqlite");
    let container = Container::start(image, &volume.name, &[]);
    // A new volume, and nothing compiled: the image's precompiled plug-ins passed their checks
    // (owned by root, read by the unprivileged user the host runs as).
    let logs = container.logs();
    assert!(
        logs.contains("plug-in loaded precompiled") && !logs.contains("plug-in compiled"),
        "{logs}"
    );
    ping_and_execute(&container.url);
    deploy_stats(&container.url);
    assert_eq!(
        invoke_stats(&container.url, "one two three")["result"]["words"],
        3
    );

    // The CLI inside the image, against the same host.
    let url = container.url.clone();
    let mut args = vec![
        "run",
        "--rm",
        "--entrypoint",
        "/usr/local/bin/hypervisor-client",
    ];
    args.extend_from_slice(RUN_FLAGS);
    args.extend([
        &image.name,
        "--server",
        &url,
        "search",
        "deployed into the image",
    ]);
    let out = image.podman(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("stats"), "{stdout}");

    // A new container on the same volume: the agent (sealed under the at-rest key kept in the
    // volume) is still there, on the SQLite database in the volume.
    container.stop();
    let again = Container::start(image, &volume.name, &[]);
    assert_eq!(invoke_stats(&again.url, "a b")["result"]["words"], 2);
    assert!(
        again.logs().contains("backend=\"sqlite\""),
        "{}",
        again.logs()
    );
}

#[test]
fn the_image_serves_on_postgresql_named_in_its_environment() {
    let Some(image) = image() else { return };
    let pg = match ScratchPostgres::start() {
        Ok(pg) => pg,
        Err(why) => {
            assert!(std::env::var_os("CI").is_none(), "PostgreSQL: {why}");
            eprintln!("SKIPPED: the image test on PostgreSQL needs its server binaries: {why}");
            return;
        }
    };
    pg.create_database("image").expect("create the database");
    let volume = Volume::new(image, "postgres");
    let database = pg.url("image");
    let container = Container::start(
        image,
        &volume.name,
        &[
            ("HYPERVISOR_DATABASE", &database),
            ("HYPERVISOR_REPLICA_ID", "image-1"),
        ],
    );
    assert!(
        container.logs().contains("backend=\"postgresql\""),
        "{}",
        container.logs()
    );
    ping_and_execute(&container.url);
    deploy_stats(&container.url);
    assert_eq!(
        invoke_stats(&container.url, "x y z w")["result"]["words"],
        4
    );
    // The agent and its invocation are rows of the shared database, not of a file in the
    // container.
    let agents = pg
        .psql("image", "SELECT count(*) FROM agents WHERE name = 'stats'")
        .expect("psql");
    assert_eq!(agents.trim(), "1");
}

/// Runs `hello` as a RISC-V program on the container at `url`; returns what `GET /host` says of
/// the RISC-V backend.
fn riscv_backend_and_run(url: &str) -> Value {
    let (status, host) = get_text(url, "/host");
    assert_eq!(status, 200, "{host}");
    let host: Value = serde_json::from_str(&host).expect("GET /host is JSON");
    let (client, _key, session) = session_at(url);
    let program = crate::harness::riscv("hello");
    let run = client
        .execute(&session, &ExecuteInput::new(&program).args(["container"]))
        .expect("a RISC-V execution");
    assert_eq!(run.stdout().expect("stdout"), b"Hello container\n");
    host["riscv"].clone()
}

#[test]
fn riscv_programs_run_in_the_image_on_the_interpreter_under_the_default_seccomp_profile() {
    let Some(image) = image() else { return };
    // The container runtime's default seccomp profile refuses what the recompiler's sandbox
    // needs (podman's, like Docker's, refuses `sethostname` in the worker's new namespaces
    // without CAP_SYS_ADMIN): the host says so once, and runs the interpreter.
    let volume = Volume::new(image, "riscv");
    let container = Container::start(image, &volume.name, &[]);
    let riscv = riscv_backend_and_run(&container.url);
    assert_eq!(riscv["backend"], "interpreter", "{riscv}");
    let reason = riscv["fallback_reason"].as_str().unwrap_or_default();
    assert!(!reason.is_empty(), "{riscv}");
    let logs = container.logs();
    assert_eq!(
        logs.matches("RISC-V programs run on PolkaVM's interpreter")
            .count(),
        1,
        "{logs}"
    );
    container.stop();

    // Without the profile, the same image as the same user runs the recompiler: the profile
    // was the cause.
    let unconfined = Container::start_with(
        image,
        &volume.name,
        &[],
        &["--security-opt", "seccomp=unconfined"],
    );
    let riscv = riscv_backend_and_run(&unconfined.url);
    assert_eq!(riscv["backend"], "recompiler", "{riscv}");
    assert!(riscv.get("fallback_reason").is_none(), "{riscv}");
}
