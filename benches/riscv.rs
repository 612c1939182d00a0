//! RISC-V beside WebAssembly: `cargo bench -p hypervisor --bench riscv`.
//!
//! The same programs (`crates/cpu-kernel` for the CPU-bound loop, `hello`, `grep`) natively,
//! as WebAssembly (wasmtime, through the host's engine) and as RISC-V (PolkaVM's recompiler
//! and its interpreter), side by side in one run:
//! - `cpu`: the CPU-bound loop, each form's time against native (target: RISC-V on the
//!   recompiler ≤ 2× native);
//! - `hello`: instantiate + run of `hello` in process (target: ≤ 100 µs p50 for RISC-V);
//! - `grep`: `grep` over 1 MB of text;
//! - `http`: a CLI agent's invocation through HTTP, `hello` deployed as WebAssembly and as
//!   RISC-V on one release host, interleaved rounds (target: RISC-V within 1.2× of
//!   WebAssembly's p50).
//!
//! `BENCH_RISCV=cpu,hello` runs some sections; `BENCH_ITERATIONS` sets the sample counts;
//! `CPU_ROUNDS` the loop's rounds (default 50 million). Needs `scripts/build-programs.sh`.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::stats::{median, ms, report, us};
use common::{http, in_process, process, wasm};
use hypervisor::attestation::{Attestor, NoAttestation};
use hypervisor::config::RiscvBackend;
use hypervisor::crypto::plaintext::Plaintext;
use hypervisor::engine::{Capabilities, CommandInput, Engine, Prepared, Role, RunLimits};
use hypervisor_protocol::{ClientSecret, sha256};
use hypervisor_riscv::{
    AttestError, BackendChoice, Compiled, CryptoError, Executor, ExecutorConfig, Program,
    RunRequest, Services, Stop,
};

fn riscv_elf(name: &str) -> Vec<u8> {
    let path = common::target().join("riscv").join(format!("{name}.elf"));
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/build-programs.sh)", path.display()))
}

/// The executors on both backends, each program compiled for it (no instance made ahead of a
/// run: `hello` measures that separately).
fn executors() -> Vec<(&'static str, Executor)> {
    [
        ("RISC-V recompiler", BackendChoice::Recompiler),
        ("RISC-V interpreter", BackendChoice::Interpreter),
    ]
    .into_iter()
    .map(|(name, backend)| {
        let e = Executor::new(&ExecutorConfig {
            backend,
            idle_workers: 2,
            warm_instances: 0,
        })
        .expect("the executor starts");
        (name, e)
    })
    .collect()
}

fn compile(executor: &Executor, name: &str) -> Compiled {
    executor
        .compile(&Program::from_elf(&riscv_elf(name)).expect("intake"))
        .expect("compiles")
}

/// No host calls but the command's: these programs make none.
struct NoServices;

impl Services for NoServices {
    fn sha256(&self, data: &[u8]) -> [u8; 32] {
        sha256(data)
    }
    fn sha512(&self, _: &[u8]) -> [u8; 64] {
        [0; 64]
    }
    fn hmac_sha256(&self, _: &[u8], _: &[u8]) -> [u8; 32] {
        [0; 32]
    }
    fn verify_p256_sha256(&self, _: &[u8], _: &[u8], _: &[u8]) -> Result<bool, CryptoError> {
        Err(CryptoError::InvalidKey)
    }
    fn recover_secp256k1(&self, _: &[u8], _: &[u8]) -> Result<[u8; 65], CryptoError> {
        Err(CryptoError::InvalidSignature)
    }
    fn attestation_provider(&self) -> u32 {
        0
    }
    fn attest(&self, _: &[u8; 64]) -> Result<Vec<u8>, AttestError> {
        Err(AttestError::NotConfigured)
    }
}

fn run_riscv(executor: &Executor, program: &Compiled, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let mut argv = vec!["main".to_string()];
    argv.extend(args.iter().map(|a| a.to_string()));
    let result = executor
        .run(
            program,
            &RunRequest {
                args: &argv,
                stdin,
                gas: None,
                memory_bytes: 256 << 20,
                time: Duration::from_secs(600),
                stdout_cap: 16 << 20,
                stderr_cap: 1 << 20,
            },
            &NoServices,
        )
        .expect("runs");
    assert_eq!(result.stop, Stop::Exited(0), "{:?}", result.stderr);
    result.stdout
}

/// The host's engine (wasmtime, pooling, no caches on disk), linking RISC-V in process: a
/// benchmark binary is not the host binary its linking child would run.
fn engine(rt: &tokio::runtime::Runtime) -> Engine {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = in_process::config(tmp.path());
    c.engine.disk_cache = false;
    c.riscv.isolate_linker = false;
    c.riscv.warm_instances = common::env_or("RISCV_WARM", c.riscv.warm_instances);
    let _guard = rt.enter();
    Engine::new(
        &c,
        None,
        None,
        Arc::new(Attestor::new(Arc::new(NoAttestation), [0; 32])),
    )
    .unwrap()
}

fn prepare(rt: &tokio::runtime::Runtime, engine: &Engine, bytes: Vec<u8>) -> Arc<Prepared> {
    rt.block_on(engine.prepare_command(sha256(&bytes), Arc::new(Plaintext::new(bytes))))
        .expect("prepares")
}

fn run_engine(
    rt: &tokio::runtime::Runtime,
    engine: &Engine,
    prepared: &Prepared,
    args: &[&str],
    stdin: &[u8],
) -> Vec<u8> {
    let mut argv = vec!["main.wasm".to_string()];
    argv.extend(args.iter().map(|a| a.to_string()));
    let input = CommandInput {
        args: argv,
        stdin: bytes::Bytes::copy_from_slice(stdin),
        limits: RunLimits {
            time: Duration::from_secs(600),
            memory_bytes: 256 << 20,
            fuel: None,
        },
    };
    let outcome = rt
        .block_on(engine.run_command(&Capabilities::of(Role::ClientProgram), prepared, input))
        .expect("runs");
    assert_eq!(outcome.exit_code, Some(0), "{:?}", outcome.stderr);
    outcome.stdout.to_vec()
}

/// The median of `runs` timings of `f`.
fn timed(runs: usize, mut f: impl FnMut() -> Vec<u8>) -> (Duration, Vec<u8>) {
    let mut out = Vec::new();
    let samples: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            out = f();
            t.elapsed()
        })
        .collect();
    (median(samples), out)
}

fn cpu() {
    let rounds: u64 = common::env_or("CPU_ROUNDS", 50_000_000);
    let runs = common::env_or("CPU_RUNS", 5);
    let arg = rounds.to_string();
    println!("\n== CPU-bound loop (crates/cpu-kernel), {rounds} rounds, median of {runs} runs");
    let (native, sum) = timed(runs, || {
        cpu_kernel::work(std::hint::black_box(rounds))
            .to_string()
            .into_bytes()
    });
    let expected = [sum, b"\n".to_vec()].concat();
    let line = |name: &str, d: Duration| {
        println!(
            "{name:<40} {:>9.1} ms  {:>5.2}× native",
            ms(d),
            d.as_secs_f64() / native.as_secs_f64()
        );
    };
    line("native (this process)", native);
    let rt = common::runtime();
    let engine = engine(&rt);
    let wasm_loop = prepare(&rt, &engine, wasm::read("cpu-loop"));
    let (d, out) = timed(runs, || run_engine(&rt, &engine, &wasm_loop, &[&arg], b""));
    assert_eq!(out, expected);
    line("WebAssembly (wasmtime, host engine)", d);
    for (name, executor) in executors() {
        let program = compile(&executor, "cpu-loop");
        let runs = if name.contains("interpreter") {
            1
        } else {
            runs
        };
        let (d, out) = timed(runs, || run_riscv(&executor, &program, &[&arg], b""));
        assert_eq!(out, expected);
        line(name, d);
    }
    let rv = prepare(&rt, &engine, riscv_elf("cpu-loop"));
    let (d, out) = timed(runs, || run_engine(&rt, &engine, &rv, &[&arg], b""));
    assert_eq!(out, expected);
    line("RISC-V through the host engine", d);
}

fn hello() {
    let n = common::iterations(2000);
    println!("\n== instantiate + run of hello in process, {n} samples");
    for (name, executor) in executors() {
        let program = compile(&executor, "hello");
        for _ in 0..50 {
            run_riscv(&executor, &program, &["bench"], b"");
        }
        let samples = (0..n)
            .map(|_| {
                let t = Instant::now();
                run_riscv(&executor, &program, &["bench"], b"");
                t.elapsed()
            })
            .collect();
        report(&format!("{name}: instantiate + run"), samples);
    }
    // As the host runs them: the next run's instance made ahead, off the request's path.
    let executor = Executor::new(&ExecutorConfig {
        backend: BackendChoice::Recompiler,
        idle_workers: 2,
        warm_instances: 4,
    })
    .expect("the recompiler starts");
    let program = compile(&executor, "hello");
    executor.prewarm(&program).unwrap();
    let samples = (0..n)
        .map(|_| {
            let t = Instant::now();
            run_riscv(&executor, &program, &["bench"], b"");
            let took = t.elapsed();
            executor.prewarm(&program).unwrap();
            took
        })
        .collect();
    report("RISC-V recompiler: run on an instance made ahead", samples);

    let rt = common::runtime();
    let engine = engine(&rt);
    for (name, bytes) in [
        ("WebAssembly: host engine run_command", wasm::read("hello")),
        (
            "RISC-V: host engine run_command (made ahead)",
            riscv_elf("hello"),
        ),
    ] {
        let prepared = prepare(&rt, &engine, bytes);
        for _ in 0..50 {
            run_engine(&rt, &engine, &prepared, &["bench"], b"");
        }
        let samples = (0..n)
            .map(|_| {
                let t = Instant::now();
                run_engine(&rt, &engine, &prepared, &["bench"], b"");
                let took = t.elapsed();
                // Let the host's background instantiation finish, as between requests.
                std::thread::sleep(Duration::from_micros(200));
                took
            })
            .collect();
        report(name, samples);
    }
}

/// 1 MiB of lines of words, a quarter of them starting with `a` or `b`.
fn text() -> Vec<u8> {
    let words = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
    ];
    let mut out = Vec::with_capacity(1 << 20);
    let mut i = 0usize;
    while out.len() < 1 << 20 {
        for k in 0..6 {
            out.extend_from_slice(words[(i * 7 + k * 3) % words.len()].as_bytes());
            out.push(if k == 5 { b'\n' } else { b' ' });
        }
        i += 1;
    }
    out
}

fn grep() {
    let runs = common::env_or("GREP_RUNS", 9);
    let input = text();
    let pattern = "^[ab][a-z]+ .*o$";
    println!(
        "\n== grep {pattern:?} over {} bytes, median of {runs} runs",
        input.len()
    );
    let native_re = regex_automata::meta::Regex::new(pattern).unwrap();
    let (native, lines) = timed(runs, || {
        let mut out = Vec::new();
        for line in input.split(|b| *b == b'\n') {
            if let Ok(t) = std::str::from_utf8(line)
                && !t.is_empty()
                && native_re.is_match(t)
            {
                out.extend_from_slice(line);
                out.push(b'\n');
            }
        }
        out
    });
    let line = |name: &str, d: Duration| {
        println!(
            "{name:<40} {:>9.2} ms  {:>5.2}× native",
            ms(d),
            d.as_secs_f64() / native.as_secs_f64()
        );
    };
    line("native (regex-automata, this process)", native);
    let rt = common::runtime();
    let engine = engine(&rt);
    let wasm_grep = prepare(&rt, &engine, wasm::read("grep"));
    let (d, out) = timed(runs, || {
        run_engine(&rt, &engine, &wasm_grep, &[pattern], &input)
    });
    assert_eq!(out, lines);
    line("WebAssembly (regex, host engine)", d);
    for (name, executor) in executors() {
        let program = compile(&executor, "grep");
        let (d, out) = timed(runs, || run_riscv(&executor, &program, &[pattern], &input));
        assert_eq!(out, lines);
        line(name, d);
    }
}

fn http_invocations() {
    let n = common::iterations(2000);
    println!(
        "\n== a CLI agent's invocation through HTTP (release host, keep-alive), {n} samples each, interleaved"
    );
    for backend in [RiscvBackend::Recompiler, RiscvBackend::Interpreter] {
        let backend = match backend {
            RiscvBackend::Recompiler => "recompiler",
            _ => "interpreter",
        };
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let config = process::write_config(
            &data,
            &format!("[policy]\nenabled = false\n[riscv]\nbackend = \"{backend}\"\n"),
        );
        let server = process::start_hypervisor(&config);
        let client = hypervisor_client::Client::new(&server.base);
        let owner = ClientSecret::generate().unwrap();
        http::deploy(&client, &owner, "hello-wasm", &wasm::read("hello"));
        http::deploy(&client, &owner, "hello-riscv", &riscv_elf("hello"));
        let agent = http::agent(Duration::from_secs(30));
        let body = br#"{"args":["bench"]}"#;
        let invoke = |name: &str| {
            let url = format!("{}/agents/{name}/invoke", server.base);
            let t = Instant::now();
            let (status, text) = http::post_text(&agent, &url, body).expect("an answer");
            assert_eq!(status, 200, "{text}");
            assert!(text.contains("Hello bench"), "{text}");
            t.elapsed()
        };
        for _ in 0..100 {
            invoke("hello-wasm");
            invoke("hello-riscv");
        }
        let (mut w, mut r) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for _ in 0..5 {
            for _ in 0..n / 5 {
                w.push(invoke("hello-wasm"));
                r.push(invoke("hello-riscv"));
            }
        }
        let wp = report("WebAssembly CLI agent hello", w);
        let rp = report(&format!("RISC-V CLI agent hello ({backend})"), r);
        println!(
            "{:<58} RISC-V / WebAssembly p50 = {:.2} ({} vs {} µs)",
            "",
            rp.as_secs_f64() / wp.as_secs_f64(),
            us(rp).round(),
            us(wp).round()
        );
        server.stop();
    }
}

fn main() {
    common::run_sections(
        "BENCH_RISCV",
        &[
            ("cpu", cpu as fn()),
            ("hello", hello),
            ("grep", grep),
            ("http", http_invocations),
        ],
    );
}
