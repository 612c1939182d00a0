//! README.md as executable documentation: every shell block runs, in order, against a real
//! host, as a reader copying it would run it (`readme_blocks.rs` says how a block is read).
//!
//! The reader's setting is rebuilt in a temporary directory: `target/release/hypervisor` and
//! `target/release/hypervisor-client` are the binaries under test, `target/wasm`, `target/riscv`
//! and `components` the repository's (built by `scripts/build-programs.sh`, which a block may
//! run again: it is the real script), a fresh `HOME`, so a fresh client key. A line
//! `./scripts/serve.sh ARGS` starts the host under test with the same arguments on a free
//! loopback port and the same data directory each time, and the blocks reach it where they say
//! `http://127.0.0.1:3000` (the client through `HYPERVISOR_URL`). Shell variables set by one
//! block are there in the next, as in the reader's terminal. A failure names the README line;
//! `README_TEST_SHOW=1` prints every step's output.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::TestServer;
use crate::readme_blocks::{NOT_RUN, Step, allowed_failure, line_matches, steps};

/// The address the documents use for the host.
const DOCUMENTED_URL: &str = "http://127.0.0.1:3000";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The reader's working directory, home, and the host they started.
struct Reader {
    dir: tempfile::TempDir,
    server: Option<TestServer>,
    /// Shell variables carried from one block to the next.
    state: PathBuf,
}

impl Reader {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let release = root.join("target/release");
        std::fs::create_dir_all(&release).unwrap();
        let host = PathBuf::from(env!("CARGO_BIN_EXE_hypervisor"));
        let client = crate::client_cli::client_binary();
        std::os::unix::fs::symlink(&host, release.join("hypervisor")).unwrap();
        std::os::unix::fs::symlink(&client, release.join("hypervisor-client")).unwrap();
        for built in ["target/wasm", "target/riscv"] {
            std::os::unix::fs::symlink(repo().join(built), root.join(built)).unwrap();
        }
        std::os::unix::fs::symlink(repo().join("components"), root.join("components")).unwrap();
        // The real script, run where it lives (it builds in the repository).
        std::fs::create_dir_all(root.join("scripts")).unwrap();
        let build = root.join("scripts/build-programs.sh");
        std::fs::write(
            &build,
            format!(
                "#!/bin/sh\nexec {:?} \"$@\"\n",
                repo().join("scripts/build-programs.sh")
            ),
        )
        .unwrap();
        std::fs::set_permissions(&build, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        std::fs::create_dir_all(root.join("home")).unwrap();
        let state = root.join(".readme-state");
        std::fs::write(&state, "").unwrap();
        Self {
            dir,
            server: None,
            state,
        }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn url(&self, line: usize) -> &str {
        match &self.server {
            Some(server) => &server.url,
            None => panic!("README line {line}: a command before any ./scripts/serve.sh"),
        }
    }

    /// `./scripts/serve.sh ARGS`: stops the running host and starts one with `args`.
    fn serve(&mut self, line: usize, args: &[String]) {
        if let Some(old) = self.server.take() {
            old.stop();
        }
        let data = self.root().join("data");
        let server = TestServer::start_in_with_args(&data, args).unwrap_or_else(|log| {
            panic!("README line {line}: ./scripts/serve.sh {args:?} did not start:\n{log}")
        });
        self.server = Some(server);
    }

    /// Runs `body` (README lines from `line`) in bash as the reader's shell; returns its
    /// output (standard output and error together) and the failed commands' (line, status).
    fn shell(&self, line: usize, body: &str) -> (String, Vec<(usize, i32)>) {
        let url = self.url(line).to_string();
        let failures = self.root().join(".readme-failures");
        std::fs::write(&failures, "").unwrap();
        // Line 1 restores the variables and installs the hooks, so that the body's line k is
        // the script's line k + 1.
        let prelude = format!(
            "source {state:?}; trap 'echo \"$LINENO $?\" >> {failures:?}' ERR; \
             trap 'declare -p $(compgen -v | grep -E \"^[A-Z][A-Z0-9_]*$\" | grep -vE \"^(BASH.*|EUID|UID|PPID|SHELLOPTS|GROUPS|FUNCNAME|PIPESTATUS|DIRSTACK|RANDOM|SRANDOM|SECONDS|LINENO|HISTCMD|EPOCH.*|OPTIND|OPTERR|IFS|PS[0-9]|COLUMNS|LINES|HOME|PATH|PWD|OLDPWD|SHLVL|_)$\") 2>/dev/null | grep -E \"^declare -- \" > {state:?}' EXIT; set -o pipefail\n",
            state = self.state,
        );
        let script = format!("{prelude}{}\n", body.replace(DOCUMENTED_URL, &url));
        let path = self.root().join(".readme-block.sh");
        std::fs::write(&path, script).unwrap();
        let out = Command::new("bash")
            .arg(&path)
            .current_dir(self.root())
            .env("HOME", self.root().join("home"))
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("HYPERVISOR_CLIENT_KEY")
            .env_remove("HYPERVISOR_WALLET_KEY_FILE")
            .env("HYPERVISOR_URL", &url)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run bash");
        let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
        output.push_str(&String::from_utf8_lossy(&out.stderr));
        if std::env::var_os("README_TEST_SHOW").is_some() {
            eprintln!("--- line {line}\n{output}");
        }
        let failed = std::fs::read_to_string(&failures)
            .unwrap()
            .lines()
            .filter_map(|l| {
                let (at, status) = l.split_once(' ')?;
                Some((at.parse::<usize>().ok()? - 1, status.parse().ok()?))
            })
            .collect();
        (output, failed)
    }
}

/// Runs every block of `document` (its text; `name` for messages); returns the number of
/// blocks not run and the steps run.
fn run_document(name: &str, document: &str) -> (usize, usize) {
    let mut reader = Reader::new();
    let (mut not_run, mut run) = (0, 0);
    for step in steps(document) {
        match step {
            Step::NotRun { .. } => not_run += 1,
            Step::Serve { line, args } => {
                reader.serve(line, &args);
                run += 1;
            }
            Step::Script { line, lines } => {
                // Stdout and stderr arrive in one stream: 2>&1 keeps their order.
                let body = format!("{{\n{}\n}} 2>&1", lines.join("\n"));
                let (output, failed) = reader.shell(line, &body);
                for (at, status) in failed {
                    // `at` counts the `{` line: the block's line k is `at` = k + 2 (0-based
                    // k); the group itself may be reported on its own lines, skipped.
                    let Some((k, text)) = at.checked_sub(2).and_then(|k| Some((k, lines.get(k)?)))
                    else {
                        continue;
                    };
                    assert!(
                        allowed_failure(text, status),
                        "{name} line {}: `{text}` ended with status {status}:\n{output}",
                        line + k
                    );
                }
                run += 1;
            }
            Step::Transcript {
                line,
                command,
                output: expected,
            } => {
                let (output, failed) = reader.shell(line, &format!("{{\n{command}\n}} 2>&1"));
                if let Some((_, status)) = failed.first() {
                    assert!(
                        allowed_failure(&command, *status),
                        "{name} line {line}: `{command}` ended with status {status}:\n{output}"
                    );
                }
                if !expected.is_empty() {
                    let actual: Vec<&str> = output.lines().collect();
                    let same = actual.len() == expected.len()
                        && expected
                            .iter()
                            .zip(&actual)
                            .all(|(e, a)| line_matches(e, a));
                    assert!(
                        same,
                        "{name} line {line}: `{command}` printed\n{output}\nbut the document shows\n{}",
                        expected.join("\n")
                    );
                }
                run += 1;
            }
        }
    }
    (not_run, run)
}

#[test]
fn the_readme_runs_as_written() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let (not_run, run) = run_document("README.md", &readme);
    eprintln!("README.md: {run} steps run, {not_run} blocks marked `{NOT_RUN}`");
    assert!(run >= 15, "{run} steps");
}

/// The other walk-through: every block of docs/DEPLOY.md runs, or says why it cannot here.
#[test]
fn the_deployment_guide_runs_as_written_where_it_can() {
    let guide = std::fs::read_to_string(repo().join("docs/DEPLOY.md")).unwrap();
    let (not_run, run) = run_document("docs/DEPLOY.md", &guide);
    eprintln!("docs/DEPLOY.md: {run} steps run, {not_run} blocks marked `{NOT_RUN}`");
    assert!(not_run + run > 0);
}
