//! The executor on real RISC-V programs (guests/riscv, built by scripts/build-programs.sh into
//! target/riscv/), on both backends: the contract (arguments, standard input and output, exit
//! codes), each limit, the memory bound of the recompiler's worker, intake refusals.

mod common;

use std::time::{Duration, Instant};

use hypervisor_riscv::{
    AttestError, Backend, BackendChoice, Compiled, CryptoError, Executor, ExecutorConfig,
    IntakeError, Program, RunRequest, RunResult, Services, Stop,
};
use sha2::Digest;

fn executors() -> Vec<Executor> {
    [BackendChoice::Recompiler, BackendChoice::Interpreter]
        .into_iter()
        .map(|backend| {
            Executor::new(&ExecutorConfig {
                backend,
                idle_workers: 1,
                warm_instances: 0,
            })
            .expect("starts")
        })
        .collect()
}

fn compile(executor: &Executor, name: &str) -> Compiled {
    let program = Program::from_elf(&common::elf(name)).expect("passes intake");
    executor.compile(&program).expect("compiles")
}

/// SHA-2 and HMAC from RustCrypto, no signatures, a fixed "statement".
struct TestServices;

impl Services for TestServices {
    fn sha256(&self, data: &[u8]) -> [u8; 32] {
        sha2::Sha256::digest(data).into()
    }
    fn sha512(&self, data: &[u8]) -> [u8; 64] {
        sha2::Sha512::digest(data).into()
    }
    fn hmac_sha256(&self, key: &[u8], data: &[u8]) -> [u8; 32] {
        use hmac::{KeyInit, Mac};
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
        mac.update(data);
        mac.finalize().into_bytes().into()
    }
    fn verify_p256_sha256(&self, key: &[u8], _: &[u8], _: &[u8]) -> Result<bool, CryptoError> {
        if key.len() == 65 {
            Ok(false)
        } else {
            Err(CryptoError::InvalidKey)
        }
    }
    fn recover_secp256k1(&self, _: &[u8], _: &[u8]) -> Result<[u8; 65], CryptoError> {
        Err(CryptoError::InvalidSignature)
    }
    fn attestation_provider(&self) -> u32 {
        1
    }
    fn attest(&self, user_data: &[u8; 64]) -> Result<Vec<u8>, AttestError> {
        Ok(format!("{{\"user_data\":\"{}\"}}", hex::encode(user_data)).into_bytes())
    }
}

struct Run<'a> {
    args: &'a [&'a str],
    stdin: &'a [u8],
    gas: Option<u64>,
    memory: u64,
    time: Duration,
    caps: usize,
}

impl Default for Run<'_> {
    fn default() -> Self {
        Self {
            args: &[],
            stdin: b"",
            gas: None,
            memory: 64 << 20,
            time: Duration::from_secs(20),
            caps: 1 << 20,
        }
    }
}

fn run(executor: &Executor, compiled: &Compiled, r: Run<'_>) -> RunResult {
    let mut args = vec!["main".to_string()];
    args.extend(r.args.iter().map(|a| a.to_string()));
    executor
        .run(
            compiled,
            &RunRequest {
                args: &args,
                stdin: r.stdin,
                gas: r.gas,
                memory_bytes: r.memory,
                time: r.time,
                stdout_cap: r.caps,
                stderr_cap: r.caps,
            },
            &TestServices,
        )
        .expect("no host-side failure")
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).expect("UTF-8")
}

#[test]
fn arguments_stdin_output_and_exit_codes() {
    for executor in executors() {
        let hello = compile(&executor, "hello");
        let ok = run(
            &executor,
            &hello,
            Run {
                args: &["a", "b c"],
                stdin: b"some input\n",
                ..Run::default()
            },
        );
        assert_eq!(ok.stop, Stop::Exited(0), "{:?}", executor.backend());
        assert_eq!(text(&ok.stdout), "Hello a b c\nstdin: some input\n");
        assert!(ok.stderr.is_empty());
        let failed = run(
            &executor,
            &hello,
            Run {
                args: &["--fail"],
                ..Run::default()
            },
        );
        assert_eq!(failed.stop, Stop::Exited(3));
        assert_eq!(text(&failed.stderr), "failing on request\n");
        assert_eq!(text(&failed.stdout), "Hello --fail\n");
    }
}

#[test]
fn each_limit_stops_a_program_with_its_own_outcome() {
    for executor in executors() {
        let backend = executor.backend();
        let endless = compile(&executor, "endless-loop");
        let started = Instant::now();
        let timed = run(
            &executor,
            &endless,
            Run {
                time: Duration::from_millis(300),
                ..Run::default()
            },
        );
        assert_eq!(timed.stop, Stop::TimeLimit, "{backend:?}");
        assert_eq!(
            text(&timed.stdout),
            "spinning\n",
            "output before the limit is kept"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );

        let fuel = run(
            &executor,
            &endless,
            Run {
                gas: Some(5_000_000),
                ..Run::default()
            },
        );
        assert_eq!(fuel.stop, Stop::OutOfGas, "{backend:?}");
        assert!(fuel.gas_consumed > 4_999_000 && fuel.gas_consumed <= 5_000_000);

        let bomb = compile(&executor, "memory-bomb");
        let refused = run(
            &executor,
            &bomb,
            Run {
                memory: 48 << 20,
                ..Run::default()
            },
        );
        assert_eq!(refused.stop, Stop::MemoryLimit, "{backend:?}");
        assert!(
            text(&refused.stderr).contains("memory allocation of"),
            "the program's own panic message: {:?}",
            text(&refused.stderr)
        );
        // A limit below the program's fixed memory stops it before it runs.
        let hello = compile(&executor, "hello");
        assert!(hello.static_memory() > 4096);
        let tiny = run(
            &executor,
            &hello,
            Run {
                memory: 4096,
                ..Run::default()
            },
        );
        assert_eq!(tiny.stop, Stop::MemoryLimit);
        assert!(tiny.stdout.is_empty());

        let huge = compile(&executor, "huge-output");
        let capped = run(
            &executor,
            &huge,
            Run {
                caps: 100_000,
                ..Run::default()
            },
        );
        assert_eq!(capped.stop, Stop::Exited(0));
        assert_eq!(
            (capped.stdout.len(), capped.stderr.len()),
            (100_000, 100_000)
        );
        assert!(capped.stdout_truncated && capped.stderr_truncated);
        assert!(capped.stdout.iter().all(|b| *b == b'x'));
    }
}

#[test]
fn the_recompilers_worker_stays_within_the_memory_limit() {
    let executor = Executor::new(&ExecutorConfig {
        backend: BackendChoice::Recompiler,
        idle_workers: 1,
        warm_instances: 0,
    })
    .expect("starts");
    let bomb = compile(&executor, "memory-bomb");
    let limit: u64 = 64 << 20;
    let result = run(
        &executor,
        &bomb,
        Run {
            memory: limit,
            ..Run::default()
        },
    );
    assert_eq!(result.stop, Stop::MemoryLimit);
    // The worker that ran it is idle again (beside the others PolkaVM keeps): the highest
    // peak resident memory among them is the bomb's.
    let pids = executor.idle_worker_pids();
    assert!(!pids.is_empty());
    let peak_kib = pids
        .iter()
        .map(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                .expect("VmHWM")
        })
        .max()
        .expect("a worker");
    assert!(
        peak_kib * 1024 <= limit + (4 << 20),
        "the worker peaked at {peak_kib} KiB under a {} MiB limit",
        limit >> 20
    );
    assert!(
        peak_kib * 1024 > limit / 2,
        "the bomb did fill its memory: {peak_kib} KiB"
    );
}

#[test]
fn gas_is_deterministic_and_the_same_on_both_backends() {
    let mut used = Vec::new();
    for executor in executors() {
        let grep = compile(&executor, "grep");
        let input = "alpha\nbeta\ngamma\ndelta\n".repeat(500);
        for _ in 0..2 {
            let r = run(
                &executor,
                &grep,
                Run {
                    args: &["^[ab]"],
                    stdin: input.as_bytes(),
                    gas: Some(1 << 40),
                    ..Run::default()
                },
            );
            assert_eq!(r.stop, Stop::Exited(0));
            assert_eq!(text(&r.stderr), "1000 matching lines\n");
            assert_eq!(r.stdout.len(), 500 * "alpha\nbeta\n".len());
            used.push((executor.backend(), r.gas_consumed));
        }
    }
    assert_eq!(used.len(), 4);
    assert!(used.iter().all(|(_, gas)| *gas == used[0].1), "{used:?}");
    assert!(used.iter().any(|(b, _)| *b == Backend::Interpreter));
}

#[test]
fn the_cpu_loop_computes_what_the_same_source_computes_natively() {
    for executor in executors() {
        let cpu = compile(&executor, "cpu-loop");
        let r = run(
            &executor,
            &cpu,
            Run {
                args: &["100000"],
                ..Run::default()
            },
        );
        assert_eq!(r.stop, Stop::Exited(0));
        assert_eq!(text(&r.stdout), format!("{}\n", cpu_kernel::work(100_000)));
    }
}

#[test]
fn host_calls_reach_the_hosts_services() {
    for executor in executors() {
        let crypto = compile(&executor, "host-crypto");
        let r = run(
            &executor,
            &crypto,
            Run {
                args: &["abc"],
                ..Run::default()
            },
        );
        assert_eq!(r.stop, Stop::Exited(0));
        let expected = format!(
            "{}\nattestation provider: simulated\nattest: {{\"user_data\":\"{}\"}}\n",
            hex::encode(sha2::Sha256::digest(b"abc")),
            "42".repeat(64)
        );
        assert_eq!(text(&r.stdout), expected);
        let r = run(
            &executor,
            &crypto,
            Run {
                args: &["--verify", "04ab", "m", "00"],
                ..Run::default()
            },
        );
        assert!(text(&r.stdout).starts_with("verify error: InvalidKey\n"));
    }
}

#[test]
fn intake_refuses_the_sbrk_instruction_and_other_files() {
    assert_eq!(
        Program::from_elf(&common::elf("raw-sbrk")).expect_err("sbrk"),
        IntakeError::SbrkInstruction
    );
    let wasm = b"\0asm\x0d\0\x01\0".to_vec();
    assert!(matches!(
        Program::from_elf(&wasm),
        Err(IntakeError::NotElf(m)) if m.contains("WebAssembly")
    ));
    let mut cut = common::elf("hello");
    cut.truncate(cut.len() / 2);
    assert!(matches!(Program::from_elf(&cut), Err(IntakeError::Link(_))));
}

/// What a compiled program holds is counted, for the host's cache budget: at least its blob
/// and its fixed memory's image, and its compiled code on the recompiler (before, the host
/// weighed RISC-V programs as nothing, so its byte budget never evicted one).
#[test]
fn a_compiled_programs_held_bytes_count_its_blob_code_and_memory() {
    for executor in executors() {
        let hello = compile(&executor, "hello");
        let floor = hello.program().blob_len() as u64 + hello.static_memory();
        assert!(
            hello.held_bytes() as u64 >= floor,
            "{:?}: {} < {floor}",
            executor.backend(),
            hello.held_bytes()
        );
        if executor.backend() == Backend::Recompiler {
            assert!(hello.held_bytes() as u64 > floor, "its machine code too");
        }
    }
}
