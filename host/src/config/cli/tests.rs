//! The layering of the configuration, through the real command-line parser: a flag beats the
//! environment, which beats the file, which beats the defaults.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;

use super::{Action, Cli};
use crate::config::{Config, ConfigError, ProviderChoice, SettlementMode};

/// Parses `args` (after the program name) as the binary does and resolves the configuration.
fn resolve(args: &[&str]) -> Result<(Action, Config), ConfigError> {
    let argv = std::iter::once("hypervisor").chain(args.iter().copied());
    Cli::try_parse_from(argv)
        .expect("the command line parses")
        .resolve()
}

fn config(args: &[&str]) -> Config {
    resolve(args).expect("the configuration resolves").1
}

/// A TOML file in `dir`.
fn file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config");
    path
}

const FILE: &str = "data_dir = \"/from/file\"\n\
                    [limits]\ndefault_time_ms = 20000\nmax_time_ms = 70000\n\
                    [engine]\nfuel = false\n";

#[test]
fn a_flag_beats_the_file_which_beats_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), "h.toml", FILE);
    let path = path.to_str().unwrap();
    let c = config(&["config", "--config", path, "--default-time-ms", "30000"]);
    assert_eq!(c.limits.default_time_ms, 30_000, "flag over file");
    assert_eq!(c.limits.max_time_ms, 70_000, "file over default");
    assert_eq!(c.data_dir, PathBuf::from("/from/file"));
    let d = Config::default();
    assert_eq!(
        c.limits.max_memory_bytes, d.limits.max_memory_bytes,
        "default"
    );
    assert_eq!(c.http.max_body_bytes, d.http.max_body_bytes, "default");
    assert_eq!(
        config(&["serve", "--config", path, "--data-dir", "/from/flag"]).data_dir,
        PathBuf::from("/from/flag")
    );
}

#[test]
fn flags_go_before_or_after_the_subcommand_and_the_subcommand_s_win() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), "h.toml", FILE);
    let path = path.to_str().unwrap();
    let (action, c) = resolve(&["--config", path, "--max-time-ms", "80000", "config"]).unwrap();
    assert_eq!(action, Action::PrintConfig);
    assert_eq!(c.limits.max_time_ms, 80_000);
    assert_eq!(c.limits.default_time_ms, 20_000);
    let (action, c) = resolve(&[
        "--max-time-ms",
        "80000",
        "serve",
        "--config",
        path,
        "--max-time-ms",
        "90000",
    ])
    .unwrap();
    assert_eq!(action, Action::Serve);
    assert_eq!(c.limits.max_time_ms, 90_000);
    let (action, c) = resolve(&["--config", path, "--max-concurrent-executions", "7"]).unwrap();
    assert_eq!(action, Action::Serve, "no subcommand serves");
    assert_eq!(c.engine.max_concurrent_executions, 7);
}

#[test]
fn switches_turn_their_setting_on_or_off_and_are_otherwise_the_file_s() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), "h.toml", FILE);
    let path = path.to_str().unwrap();
    let c = config(&["config", "--config", path]);
    assert!(!c.engine.fuel && c.engine.disk_cache && c.policy.enabled && !c.log.json);
    let c = config(&[
        "--fuel",
        "config",
        "--config",
        path,
        "--no-disk-cache",
        "--no-policy",
        "--log-json",
    ]);
    assert!(c.engine.fuel && !c.engine.disk_cache && !c.policy.enabled && c.log.json);
}

#[test]
fn each_override_sets_its_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), "h.toml", "");
    #[rustfmt::skip]
    let c = config(&[
        "config", "--config", path.to_str().unwrap(),
        "--listen", "0.0.0.0:8080", "--cache-dir", "/c", "--max-body-bytes", "4096",
        "--max-connections", "64", "--default-memory-bytes", "1024",
        "--max-memory-bytes", "2048", "--session-ttl-seconds", "5",
        "--attestation", "auto", "--policy-component", "/p.wasm", "--policy-rules", "/r.toml",
        "--python-component", "/py.wasm", "--pay-to", "0xab", "--payments-component", "/pay.wasm",
        "--facilitator-url", "https://x402.org/facilitator", "--log-level", "debug",
        "--price", "5000", "--asset", "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
        "--network", "eip155:8453", "--asset-name", "USD Coin", "--asset-version", "2",
    ]);
    assert_eq!(c.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(c.cache_dir, Some(PathBuf::from("/c")));
    assert_eq!((c.http.max_body_bytes, c.http.max_connections), (4096, 64));
    assert_eq!(
        (c.limits.default_memory_bytes, c.limits.max_memory_bytes),
        (1024, 2048)
    );
    assert_eq!(c.sessions.ttl_seconds, 5);
    assert_eq!(c.attestation.provider, ProviderChoice::Auto);
    assert_eq!(c.policy.component, PathBuf::from("/p.wasm"));
    assert_eq!(c.policy.rules, Some(PathBuf::from("/r.toml")));
    assert_eq!(c.python.component, PathBuf::from("/py.wasm"));
    assert!(c.payments.enabled);
    assert_eq!(c.payments.price.pay_to, "0xab");
    assert_eq!(c.payments.component, PathBuf::from("/pay.wasm"));
    assert_eq!(c.payments.mode, SettlementMode::Facilitator);
    assert_eq!(
        c.payments.facilitator_url.as_deref(),
        Some("https://x402.org/facilitator")
    );
    assert_eq!(c.log.level, "debug");
    let price = &c.payments.price;
    assert_eq!(
        (
            price.amount.as_str(),
            price.asset.as_str(),
            price.network.as_str(),
            price.eip712_name.as_str(),
            price.eip712_version.as_str()
        ),
        (
            "5000",
            "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
            "eip155:8453",
            "USD Coin",
            "2"
        )
    );
}

#[test]
fn unusable_values_are_refused_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), "h.toml", "listen = \"127.0.0.1:4000\"\n");
    let path = path.to_str().unwrap();
    let err = |args: &[&str]| {
        let mut all = vec!["config", "--config", path];
        all.extend_from_slice(args);
        resolve(&all).unwrap_err().to_string()
    };
    assert_eq!(
        err(&["--listen", "nowhere"]),
        "--listen / HYPERVISOR_HOST `nowhere` is neither IP:PORT nor IP"
    );
    assert_eq!(
        err(&["--attestation", "sgx"]),
        "--attestation `sgx`: expected none, auto, tdx, dstack, sev-snp or simulated"
    );
    assert!(err(&["--default-time-ms", "0"]).starts_with("invalid configuration:"));
    assert!(Cli::try_parse_from(["hypervisor", "--max-time-ms", "soon"]).is_err());
    // Just an IP keeps the file's port.
    assert_eq!(
        config(&["config", "--config", path, "--listen", "10.1.2.3"])
            .listen
            .to_string(),
        "10.1.2.3:4000"
    );
}

/// Set in a child test process: which layering case it checks (`env` or `cwd`), see
/// [`the_environment_sits_between_the_file_and_the_flags`].
const CHILD: &str = "HYPERVISOR_LAYERING_TEST_CHILD";

/// Runs [`layering_child`] in a new process of this test binary, with `env` set and the
/// configuration variables otherwise removed (the environment is process-wide).
fn run_child(mode: &str, dir: &Path, env: &[(&str, &Path)]) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "config::cli::tests::layering_child",
            "--test-threads=1",
        ])
        .env(CHILD, mode)
        .env_remove("HYPERVISOR_HOST")
        .env_remove("HYPERVISOR_CONFIG")
        .env_remove("HYPERVISOR_NETWORK")
        .env_remove("HYPERVISOR_ASSET_NAME")
        .env_remove("HYPERVISOR_DATABASE")
        .env_remove("HYPERVISOR_REPLICA_ID")
        .current_dir(dir);
    for (name, value) in env {
        command.env(name, value);
    }
    let out = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child `{mode}`:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_environment_sits_between_the_file_and_the_flags() {
    let dir = tempfile::tempdir().unwrap();
    let env_file = file(
        dir.path(),
        "env.toml",
        "listen = \"127.0.0.2:4000\"\n[storage]\ndatabase = \"postgres://file.test/db\"\n",
    );
    run_child(
        "env",
        dir.path(),
        &[
            ("HYPERVISOR_CONFIG", &env_file),
            ("HYPERVISOR_HOST", Path::new("10.0.0.1")),
            ("HYPERVISOR_NETWORK", Path::new("eip155:8453")),
            ("HYPERVISOR_ASSET_NAME", Path::new("USD Coin")),
            // Empty, as a compose file's `${HYPERVISOR_DATABASE:-}` gives when unset.
            ("HYPERVISOR_DATABASE", Path::new("")),
            ("HYPERVISOR_REPLICA_ID", Path::new("")),
        ],
    );
    file(
        dir.path(),
        "hypervisor.toml",
        "listen = \"127.0.0.3:5000\"\n",
    );
    run_child("cwd", dir.path(), &[]);
}

/// The child half of [`the_environment_sits_between_the_file_and_the_flags`]; passes trivially
/// in an ordinary test run.
#[test]
fn layering_child() {
    let Ok(mode) = std::env::var(CHILD) else {
        return;
    };
    match mode.as_str() {
        "env" => {
            // HYPERVISOR_CONFIG names the file; HYPERVISOR_HOST's IP beats the file's, its
            // port stays the file's; flags beat both.
            assert_eq!(config(&["config"]).listen.to_string(), "10.0.0.1:4000");
            assert_eq!(
                config(&["config", "--listen", "10.0.0.9:6000"])
                    .listen
                    .to_string(),
                "10.0.0.9:6000"
            );
            let other = file(
                Path::new("."),
                "other.toml",
                "listen = \"127.0.0.4:7000\"\n",
            );
            let other = other.to_str().unwrap();
            assert_eq!(
                config(&["config", "--config", other]).listen.to_string(),
                "10.0.0.1:7000"
            );
            // The payment asset from the environment, a flag beating it.
            let c = config(&["config"]);
            assert_eq!(c.payments.price.network, "eip155:8453");
            assert_eq!(c.payments.price.eip712_name, "USD Coin");
            let c = config(&["config", "--asset-name", "USDC"]);
            assert_eq!(c.payments.price.eip712_name, "USDC");
            // An empty variable is not given: the file's database stays, no replica name.
            assert_eq!(
                c.storage.database.as_deref(),
                Some("postgres://file.test/db")
            );
            assert_eq!(c.cluster.replica_id, None);
        }
        "cwd" => {
            // Without --config or HYPERVISOR_CONFIG, ./hypervisor.toml is read.
            assert_eq!(config(&["config"]).listen.to_string(), "127.0.0.3:5000");
            assert_eq!(config(&[]).listen.to_string(), "127.0.0.3:5000");
        }
        other => panic!("unknown child mode {other}"),
    }
}
