//! RISC-V programs (`guests/riscv`, PolkaVM) through the same routes as WebAssembly commands,
//! on both backends: the encrypted round trip with its commitment, each limit with the same
//! outcome as a WebAssembly guest, refusals of files of the wrong kind, the linker contained
//! in its child process, the policy seeing the kind, verifiable and paid runs, statements of the
//! host's attested key, and CLI agents (clear and sealed, across a restart).

use std::time::{Duration, Instant};

use hypervisor_client::agents::Deployment;
use hypervisor_client::x402::Wallet;
use hypervisor_client::{Client, ClientError, ExecuteInput, Execution, Session};
use hypervisor_protocol::wire::{ExitStatus, Limits, ProgramKind};
use hypervisor_protocol::{ClientSecret, sha256};

use crate::agents::refused;
use crate::harness::{TestServer, code, get_json, riscv, session, wasm};
use crate::payments::{limit, payments_table};

const INTERPRETER: &str = "[riscv]\nbackend = \"interpreter\"\n";

/// A server on each backend: the recompiler (this machine runs its sandbox) and the
/// interpreter.
fn both_backends() -> Vec<(TestServer, &'static str)> {
    vec![
        (
            TestServer::start_with("[riscv]\nbackend = \"recompiler\"\n"),
            "recompiler",
        ),
        (TestServer::start_with(INTERPRETER), "interpreter"),
    ]
}

fn run_with(
    client: &Client,
    session: &Session,
    program: &[u8],
    args: &[&str],
    limits: Option<Limits>,
) -> Execution {
    let mut input = ExecuteInput::new(program).args(args);
    if let Some(l) = limits {
        input = input.limits(l);
    }
    client.execute(session, &input).expect("an answer")
}

fn stopped(run: &Execution) -> &str {
    run.stopped.as_ref().map_or("", |s| s.code.as_str())
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).expect("UTF-8")
}

#[test]
fn the_host_says_which_backend_runs_riscv_programs() {
    for (server, backend) in both_backends() {
        let (status, host) = get_json(&server, "/host");
        assert_eq!(status, 200);
        assert_eq!(host["riscv"]["backend"], backend, "{host}");
        assert!(host["riscv"].get("fallback_reason").is_none(), "{host}");
    }
    let off = TestServer::start_with("[riscv]\nenabled = false\n");
    let (_, host) = get_json(&off, "/host");
    assert!(host.get("riscv").is_none(), "{host}");
    let (client, _key, s) = session(&off);
    let (status, body) = client
        .execute_raw(
            "/test/execute/wasm",
            &s,
            &ExecuteInput::new(&riscv("hello")),
        )
        .map(|(status, body, _)| (status, body))
        .expect("an answer");
    assert_eq!((status, code(&body)), (503, "riscv_unavailable"), "{body}");
}

#[test]
fn an_encrypted_round_trip_keeps_arguments_stdin_output_and_the_whole_exit_code() {
    for (server, backend) in both_backends() {
        let (client, _key, s) = session(&server);
        let hello = riscv("hello");
        let input = ExecuteInput::new(&hello)
            .args(["world", "42"])
            .stdin(b"from stdin\n");
        // The client checks the commitment over the ELF file's SHA-256 as the program.
        let run = client.execute(&s, &input).expect("runs");
        assert_eq!(run.result.status, ExitStatus::Exited, "{backend}");
        assert_eq!(run.result.exit_code, Some(0));
        assert_eq!(
            text(run.stdout().unwrap()),
            "Hello world 42\nstdin: from stdin\n"
        );
        assert!(run.stopped.is_none());

        // Declared, the same program runs the same.
        let declared = client
            .execute(
                &s,
                &ExecuteInput::new(&hello)
                    .args(["declared"])
                    .program_kind(ProgramKind::Riscv),
            )
            .expect("runs");
        assert_eq!(text(declared.stdout().unwrap()), "Hello declared\n");

        // Unlike WASI 0.2, whose exit carries only success or failure, the code arrives whole.
        let failed = run_with(&client, &s, &hello, &["--fail"], None);
        assert_eq!(failed.result.exit_code, Some(3), "{backend}");
        assert_eq!(text(failed.stderr().unwrap()), "failing on request\n");

        let grep = riscv("grep");
        let filtered = client
            .execute(
                &s,
                &ExecuteInput::new(&grep)
                    .args(["^[ab]"])
                    .stdin(b"alpha\nbeta\ngamma\nabc\n"),
            )
            .expect("runs");
        assert_eq!(text(filtered.stdout().unwrap()), "alpha\nbeta\nabc\n");
        assert_eq!(text(filtered.stderr().unwrap()), "3 matching lines\n");
    }
}

#[test]
fn each_limit_stops_a_riscv_program_as_it_stops_a_webassembly_one() {
    for (server, backend) in both_backends() {
        let (client, _key, s) = session(&server);
        let started = Instant::now();
        let timed = run_with(
            &client,
            &s,
            &riscv("endless-loop"),
            &[],
            Some(Limits {
                time_ms: Some(500),
                ..Limits::default()
            }),
        );
        assert_eq!(stopped(&timed), "time_limit_exceeded", "{backend}");
        assert_eq!(timed.result.status, ExitStatus::TimeLimitExceeded);
        assert_eq!(text(timed.stdout().unwrap()), "spinning\n");
        assert!(started.elapsed() < Duration::from_secs(10));

        let bomb = run_with(
            &client,
            &s,
            &riscv("memory-bomb"),
            &[],
            Some(Limits {
                memory_bytes: Some(64 << 20),
                ..Limits::default()
            }),
        );
        assert_eq!(stopped(&bomb), "memory_limit_exceeded", "{backend}");
        assert!(
            text(bomb.stderr().unwrap()).contains("memory allocation of 16777216 bytes failed"),
            "the program's own panic: {:?}",
            bomb.stderr()
        );

        let panicked = run_with(&client, &s, &riscv("hello"), &["--panic"], None);
        assert_eq!(stopped(&panicked), "guest_trap", "{backend}");
        assert!(
            text(panicked.stderr().unwrap()).contains("asked to panic"),
            "{:?}",
            panicked.stderr()
        );
        assert!(panicked.result.trap.is_some());

        let huge = run_with(&client, &s, &riscv("huge-output"), &[], None);
        assert_eq!(huge.result.status, ExitStatus::Exited);
        assert!(huge.result.stdout_truncated && huge.result.stderr_truncated);
        assert_eq!(
            huge.stdout().unwrap().len(),
            1 << 20,
            "the default 1 MiB cap"
        );

        // The host still serves.
        let again = run_with(&client, &s, &riscv("hello"), &["still"], None);
        assert_eq!(text(again.stdout().unwrap()), "Hello still\n");
    }
}

#[test]
fn fuel_is_gas_exhausted_at_the_budget() {
    // On the default backend only: a host with fuel metering compiles its plug-ins for it (tens
    // of seconds on a busy CI machine); crates/riscv/tests/programs.rs shows gas the same on
    // both backends.
    let server = TestServer::start_with("[engine]\nfuel = true\n");
    let (client, _key, s) = session(&server);
    let spun = run_with(
        &client,
        &s,
        &riscv("endless-loop"),
        &[],
        Some(Limits {
            fuel: Some(10_000_000),
            ..Limits::default()
        }),
    );
    assert_eq!(stopped(&spun), "fuel_exhausted");
    let used = spun.result.fuel_consumed.expect("reported");
    assert!((9_990_000..=10_000_000).contains(&used), "{used}");
    // A run that finishes reports what it used, the same on every run.
    let a = run_with(&client, &s, &riscv("hello"), &["x"], None);
    let b = run_with(&client, &s, &riscv("hello"), &["x"], None);
    assert_eq!(a.result.fuel_consumed, b.result.fuel_consumed);
    assert!(a.result.fuel_consumed.unwrap() > 0);
}

#[test]
fn programs_of_the_wrong_kind_are_refused_with_their_own_code() {
    let server = TestServer::start();
    let (client, _key, s) = session(&server);
    let send = |program: &[u8], kind: Option<ProgramKind>| {
        let mut input = ExecuteInput::new(program);
        if let Some(k) = kind {
            input = input.program_kind(k);
        }
        let (status, body, _) = client
            .execute_raw("/test/execute/wasm", &s, &input)
            .expect("an answer");
        (
            status,
            code(&body).to_string(),
            body["error"]["message"].clone(),
        )
    };
    // A WebAssembly file sent as RISC-V, and the reverse.
    let (status, c, message) = send(&wasm("hello"), Some(ProgramKind::Riscv));
    assert_eq!((status, c.as_str()), (422, "program_kind_mismatch"));
    assert_eq!(
        message,
        "`program_kind` is riscv (a RISC-V ELF file), but the program is wasm (a WebAssembly component)"
    );
    let (status, c, _) = send(&riscv("hello"), Some(ProgramKind::Wasm));
    assert_eq!((status, c.as_str()), (422, "program_kind_mismatch"));

    // An ELF file for another machine (this test binary, x86-64) sent as RISC-V names it.
    let native = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    let (status, c, message) = send(&native[..4096], Some(ProgramKind::Riscv));
    assert_eq!((status, c.as_str()), (422, "invalid_riscv_program"));
    assert!(message.as_str().unwrap().contains("x86-64"), "{message}");
    // Undeclared, it is no WebAssembly component either.
    let (status, c, _) = send(&native[..4096], None);
    assert_eq!((status, c.as_str()), (422, "invalid_component"));

    // A RISC-V program outside the contract: its heap would escape the memory limit.
    let (status, c, message) = send(&riscv("raw-sbrk"), None);
    assert_eq!((status, c.as_str()), (422, "invalid_riscv_program"));
    assert!(message.as_str().unwrap().contains("sbrk"), "{message}");
}

#[test]
fn a_file_that_crashes_the_linker_is_a_refusal_and_the_host_serves_on() {
    let server = TestServer::start();
    let (client, _key, s) = session(&server);
    // Found by fuzz/fuzz_targets/riscv_program.rs: PolkaVM's linker panics on it.
    let crash = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../crates/riscv/tests/data/linker-panic.elf"),
    )
    .expect("fixture");
    let (status, body, _) = client
        .execute_raw("/test/execute/wasm", &s, &ExecuteInput::new(&crash))
        .expect("an answer");
    assert_eq!(
        (status, code(&body)),
        (422, "invalid_riscv_program"),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unable to map section index"),
        "{body}"
    );
    let run = run_with(&client, &s, &riscv("hello"), &["after"], None);
    assert_eq!(text(run.stdout().unwrap()), "Hello after\n");
}

#[test]
fn the_policy_sees_the_kind() {
    let rules = tempfile::Builder::new().suffix(".json").tempfile().unwrap();
    std::fs::write(rules.path(), r#"{"riscv": {"enabled": false}}"#).unwrap();
    let server = TestServer::start_with(&crate::harness::policy_table(
        "policy-python",
        &format!("rules = {:?}\n", rules.path().display().to_string()),
    ));
    let (client, _key, s) = session(&server);
    let (status, body, _) = client
        .execute_raw(
            "/test/execute/wasm",
            &s,
            &ExecuteInput::new(&riscv("hello")),
        )
        .expect("an answer");
    assert_eq!((status, code(&body)), (403, "policy_denied"), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("riscv.enabled"),
        "{body}"
    );
    // WebAssembly is not affected.
    let run = client
        .execute(&s, &ExecuteInput::new(&wasm("hello")))
        .expect("runs");
    assert_eq!(run.result.exit_code, Some(0));
    // Nor are RISC-V agents spared.
    let owner = ClientSecret::generate().unwrap();
    let program = riscv("hello");
    client
        .deploy_agent(
            &owner,
            &Deployment {
                name: "rv-hello",
                component: &program,
                ..Deployment::default()
            },
        )
        .expect("deploys: the policy decides on runs");
    assert_eq!(
        refused(client.invoke_cli("rv-hello", &["x"], None)),
        (403, "policy_denied".to_string())
    );
}

#[cfg(feature = "simulated-attestation")]
#[test]
fn verifiable_runs_sign_the_elf_files_hash_and_programs_get_statements() {
    use hypervisor_client::verify::{Policy, verify_component_statement};
    use hypervisor_protocol::attest::ComponentStatement;

    let server = TestServer::start_with("[attestation]\nprovider = \"simulated\"\n");
    let client = server.client();
    let key = ClientSecret::generate().unwrap();
    let policy = Policy {
        allow_simulated: true,
        reference_values: vec![crate::harness::simulated_reference()],
        ..Policy::default()
    };
    let s = client.create_verifiable_session(&key, &policy).unwrap();
    let program = riscv("host-crypto");
    let run = client
        .execute_verifiable(&s, &ExecuteInput::new(&program).args(["abc"]))
        .expect("runs, its receipt verified");
    let receipt = run.receipt.as_ref().expect("a receipt");
    assert_eq!(receipt.program_sha256, hex::encode(sha256(&program)));
    let out = text(run.stdout().unwrap());
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some(hex::encode(sha256(b"abc")).as_str()));
    assert_eq!(lines.next(), Some("attestation provider: simulated"));
    let json = lines
        .next()
        .and_then(|l| l.strip_prefix("attest: "))
        .unwrap_or_else(|| panic!("{out}"));
    let statement: ComponentStatement = serde_json::from_str(json).expect("the statement JSON");
    assert_eq!(statement.tee, "simulated");
    assert_eq!(statement.component_hash, hex::encode(sha256(&program)));
    assert_eq!(statement.user_data, "42".repeat(64));
    let (_, verified) = s.verified.as_ref().expect("a verified session");
    assert_eq!(statement.signing_key, verified.signing_key.to_hex());
    let signature = hex::decode(&statement.signature).unwrap();
    verify_component_statement(verified, &sha256(&program), &[0x42; 64], &signature)
        .expect("signed by the session's verified key");
    // Over another program's hash it does not verify.
    assert!(
        verify_component_statement(
            verified,
            &sha256(&wasm("host-crypto")),
            &[0x42; 64],
            &signature,
        )
        .is_err()
    );
}

#[test]
fn a_paid_riscv_run_is_charged_like_any_other() {
    let server = TestServer::start_with(&payments_table(""));
    let (client, _key, s) = session(&server);
    let wallet = Wallet::random().unwrap();
    let run = client
        .execute_paid(
            &s,
            &ExecuteInput::new(&riscv("hello")).args(["paid"]),
            false,
            &wallet,
            &limit(),
        )
        .expect("paid and run");
    assert_eq!(text(run.stdout().unwrap()), "Hello paid\n");
    let settlement = run.settlement.expect("a settlement");
    assert_eq!(settlement["success"], true, "{settlement}");
}

#[test]
fn riscv_cli_agents_deploy_once_and_run_clear_sealed_and_after_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let program = riscv("hello");
    let code_hash = hex::encode(sha256(&program));
    let owner = ClientSecret::generate().unwrap();
    {
        let server = TestServer::start_in(data.path(), "");
        let client = server.client();
        let agent = client
            .deploy_agent(
                &owner,
                &Deployment {
                    name: "rv-greeter",
                    description: "greets in RISC-V",
                    component: &program,
                    program_kind: Some(ProgramKind::Riscv),
                    ..Deployment::default()
                },
            )
            .expect("deploys");
        assert_eq!(agent["latest"]["kind"], "cli", "{agent}");
        assert_eq!(agent["latest"]["world"], "hypervisor:riscv/command");
        assert_eq!(agent["latest"]["code_hash"], code_hash.as_str());
        let out = client
            .invoke_cli("rv-greeter", &["agents"], Some("in\n"))
            .expect("runs");
        assert_eq!(
            (out.ok, out.exit_code, out.stdout.as_deref()),
            (true, Some(0), Some("Hello agents\nstdin: in\n"))
        );
        let failed = client.invoke_cli("rv-greeter", &["--fail"], None).unwrap();
        assert_eq!((failed.ok, failed.exit_code), (false, Some(3)));

        // Sealed: deployed to the owner's session, invoked with sealed arguments.
        let owner_session = client.create_session(&owner).unwrap();
        client
            .deploy_agent_sealed(
                &owner,
                &owner_session,
                &Deployment {
                    name: "rv-private",
                    component: &program,
                    ..Deployment::default()
                },
            )
            .expect("deploys sealed");
        let caller = ClientSecret::generate().unwrap();
        let caller_session = client.create_session(&caller).unwrap();
        let run = client
            .invoke_command_sealed(&caller_session, "rv-private", &code_hash, &["sealed"], b"")
            .expect("runs, its commitment checked against the ELF file's hash");
        assert_eq!(text(run.stdout().unwrap()), "Hello sealed\n");

        // A WebAssembly file declared RISC-V is refused at deployment.
        let mismatch = client.deploy_agent(
            &owner,
            &Deployment {
                name: "rv-wrong",
                component: &wasm("hello"),
                program_kind: Some(ProgramKind::Riscv),
                ..Deployment::default()
            },
        );
        assert_eq!(
            refused(mismatch),
            (422, "program_kind_mismatch".to_string())
        );
        server.stop();
    }
    // After a restart the sealed code is read back, linked and compiled again.
    let server = TestServer::start_in(data.path(), INTERPRETER);
    let client = server.client();
    let out = client.invoke_cli("rv-greeter", &["again"], None).unwrap();
    assert_eq!(out.stdout.as_deref(), Some("Hello again\n"));
    let caller = ClientSecret::generate().unwrap();
    let caller_session = client.create_session(&caller).unwrap();
    let run = client
        .invoke_command_sealed(&caller_session, "rv-private", &code_hash, &["later"], b"")
        .unwrap();
    assert_eq!(text(run.stdout().unwrap()), "Hello later\n");
}

#[test]
fn many_riscv_runs_at_once_all_succeed() {
    let server = TestServer::start();
    let url = server.url.clone();
    let program = riscv("hello");
    let threads: Vec<_> = (0..16)
        .map(|i| {
            let url = url.clone();
            let program = program.clone();
            std::thread::spawn(move || {
                let (client, _key, s) = crate::harness::session_at(&url);
                let arg = format!("n{i}");
                let run = client
                    .execute(&s, &ExecuteInput::new(&program).args([arg.as_str()]))
                    .map_err(|e: ClientError| e.to_string())?;
                Ok::<_, String>(text(run.stdout().unwrap()) == format!("Hello n{i}\n"))
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), Ok(true));
    }
}

#[test]
fn the_test_vectors_elf_file_is_a_real_program_that_the_host_runs() {
    let vectors: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/test-vectors.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let v = &vectors["riscv_program"];
    let elf = hex::decode(v["elf"].as_str().unwrap()).unwrap();
    let server = TestServer::start();
    let (client, _key, s) = session(&server);
    let run = run_with(
        &client,
        &s,
        &elf,
        &["ignored"],
        Some(Limits {
            time_ms: Some(500),
            ..Limits::default()
        }),
    );
    assert_eq!(stopped(&run), "time_limit_exceeded");
    assert_eq!(text(run.stdout().unwrap()), "spinning\n");
    // The host committed to the vector's program hash: the client checked the commitment
    // over sha256(elf), which is the vector's program_sha256.
    assert_eq!(
        hex::encode(sha256(&elf)),
        v["program_sha256"].as_str().unwrap()
    );
}
