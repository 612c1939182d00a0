//! `hypervisor run`: a program run locally, without a server, with the host's engine, limits
//! and imports (issue 48), for quick iteration; its exit status is the program's, or the
//! client's codes for a limit (124 time, 125 trap, 137 memory, 152 fuel).

use std::io::Write;
use std::process::{Command, Stdio};

use crate::harness::wasm_path;

/// Runs `hypervisor run ARGS` in a scratch directory with `stdin`: (code, stdout, stderr).
fn run(args: &[&str], stdin: &[u8]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hypervisor"))
        .current_dir(dir.path())
        .arg("run")
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("HYPERVISOR_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "a local run leaves nothing behind"
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn program(name: &str) -> String {
    wasm_path(name).to_str().unwrap().to_string()
}

#[test]
fn a_program_runs_locally_with_the_hosts_limits_and_exit_codes() {
    let hello = program("hello");
    let (code, stdout, stderr) = run(&[&hello, "world"], b"");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "Hello world\n");
    assert!(stderr.contains("[exit 0"), "{stderr}");
    assert!(stderr.contains("not encrypted, not recorded"), "{stderr}");
    assert!(!stderr.contains("INFO"), "no start-up log: {stderr}");

    // Options anywhere; `--` before the program's own dashes.
    let grep = program("grep");
    let (code, stdout, _) = run(&[&grep, "^[ab]", "--stdin", "-"], b"alpha\nbeta\ngamma\n");
    assert_eq!(code, 0);
    assert!(stdout.starts_with("alpha\nbeta\n"), "{stdout}");
    // WASI 0.2 carries only failure (1); a RISC-V program's whole code arrives (below).
    let (code, stdout, _) = run(&[&hello, "--", "--fail"], b"");
    assert_eq!(code, 1);
    assert_eq!(stdout, "Hello --fail\n");

    let endless = program("endless-loop");
    let (code, _, stderr) = run(&["--time-ms", "300", &endless], b"");
    assert_eq!(code, 124, "{stderr}");
    assert!(stderr.contains("time_limit_exceeded"), "{stderr}");

    // The configured maximum holds here too.
    let (code, _, stderr) = run(&["--time-ms", "999999999", &hello], b"");
    assert_eq!(code, 1);
    assert!(stderr.contains("time_ms"), "{stderr}");

    // Fuel: metered when asked, and exhausted.
    let (code, _, stderr) = run(&["--fuel-limit", "1000", &endless], b"");
    assert_eq!(code, 152, "{stderr}");

    // RISC-V programs run the same way.
    let elf = wasm_path("hello").with_file_name("../riscv/hello.elf");
    let (code, stdout, stderr) = run(&[elf.to_str().unwrap(), "elf"], b"");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "Hello elf\n");
    let (code, _, stderr) = run(&[elf.to_str().unwrap(), "--", "--fail"], b"");
    assert_eq!(code, 3, "the whole exit code: {stderr}");

    // A handler agent runs deployed, and says so.
    let (code, _, stderr) = run(&[&program("text-stats")], b"");
    assert_eq!(code, 1);
    assert!(stderr.contains("agent deploy"), "{stderr}");

    // Not a program: refused, and the program never ran.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("x.py");
    std::fs::write(&script, "print(1)\n").unwrap();
    let (code, stdout, stderr) = run(&[script.to_str().unwrap()], b"");
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    assert!(stderr.contains("hypervisor:"), "{stderr}");
}
