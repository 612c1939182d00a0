//! One run of a compiled program: a fresh instance, gas handed out in slices with the clock
//! checked between them, host calls answered, output captured up to its caps.

use std::time::{Duration, Instant};

use polkavm::{InterruptKind, MemoryProtection, RawInstance, Reg};

use crate::abi::{self, HostCall};
use crate::executor::{Backend, Compiled, Executor, ExecutorError};

/// The crypto and attestation behind the host calls of the same names: the host's own
/// implementations, as the WebAssembly guests' `hypervisor:host` imports use them.
pub trait Services {
    /// SHA-256.
    fn sha256(&self, data: &[u8]) -> [u8; 32];
    /// SHA-512.
    fn sha512(&self, data: &[u8]) -> [u8; 64];
    /// HMAC-SHA-256.
    fn hmac_sha256(&self, key: &[u8], data: &[u8]) -> [u8; 32];
    /// ECDSA P-256 / SHA-256: whether `signature` (64 bytes `r || s`) over `message` is valid
    /// for `public_key` (SEC1).
    ///
    /// # Errors
    /// [`CryptoError`] when the key or signature cannot be read.
    fn verify_p256_sha256(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, CryptoError>;
    /// The uncompressed secp256k1 key (65 bytes) that signed the 32-byte `digest`
    /// (`signature`: 65 bytes `r || s || v`).
    ///
    /// # Errors
    /// [`CryptoError`] for a bad length or an unrecoverable signature.
    fn recover_secp256k1(&self, digest: &[u8], signature: &[u8]) -> Result<[u8; 65], CryptoError>;
    /// 0 none, 1 simulated, 2 TDX, 3 SEV-SNP.
    fn attestation_provider(&self) -> u32;
    /// A statement of the host's attested key over the program's hash and `user_data`, as
    /// JSON.
    ///
    /// # Errors
    /// [`AttestError`].
    fn attest(&self, user_data: &[u8; 64]) -> Result<Vec<u8>, AttestError>;
}

/// Why a crypto host call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptoError {
    /// The public key cannot be read.
    InvalidKey,
    /// The signature cannot be read.
    InvalidSignature,
    /// A buffer has the wrong length.
    InvalidLength,
}

/// Why `attest` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttestError {
    /// No attestation provider on this host.
    NotConfigured,
    /// The provider failed.
    ProviderFailed,
}

/// One run's input and limits.
#[derive(Debug, Clone, Copy)]
pub struct RunRequest<'a> {
    /// Arguments, `argv[0]` first.
    pub args: &'a [String],
    /// Standard input.
    pub stdin: &'a [u8],
    /// Gas budget (one unit per instruction, charged per basic block); `None`: unmetered.
    pub gas: Option<u64>,
    /// Memory limit: the program's fixed memory plus its heap.
    pub memory_bytes: u64,
    /// Wall-clock limit, instantiation included.
    pub time: Duration,
    /// Most bytes of standard output kept.
    pub stdout_cap: usize,
    /// Most bytes of standard error kept.
    pub stderr_cap: usize,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// `main` returned, or `proc_exit` was called, with this code.
    Exited(i32),
    /// The gas budget ran out.
    OutOfGas,
    /// The time limit passed.
    TimeLimit,
    /// The memory limit refused the heap (and the program then trapped), or the program's
    /// fixed memory alone is over the limit.
    MemoryLimit,
    /// The program trapped (the detail is for its owner: confidential).
    Trap(String),
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// How it ended.
    pub stop: Stop,
    /// Standard output, at most its cap.
    pub stdout: Vec<u8>,
    /// Standard error, at most its cap.
    pub stderr: Vec<u8>,
    /// Whether standard output was cut.
    pub stdout_truncated: bool,
    /// Whether standard error was cut.
    pub stderr_truncated: bool,
    /// Gas used.
    pub gas_consumed: u64,
    /// Instantiation and run.
    pub duration: Duration,
}

/// Gas given to a run without a budget: more than any run can use in its time limit.
const UNMETERED: u64 = 1 << 62;
/// Slices grow or shrink from the executor's first one to take about [`SLICE_TARGET`].
const MIN_SLICE: u64 = 1 << 14;
const MAX_SLICE: u64 = 1 << 32;
const SLICE_TARGET: Duration = Duration::from_millis(5);
/// How long past its deadline a recompiler worker may stay in a slice before the watchdog
/// kills it.
const WATCHDOG_GRACE: Duration = Duration::from_millis(250);

impl Executor {
    /// Runs `compiled` once, in a fresh instance.
    ///
    /// # Errors
    /// [`ExecutorError::Run`] for a host-side failure (no worker process, or one that died
    /// without a limit being the cause). The program's own failures are [`Stop`]s.
    pub fn run(
        &self,
        compiled: &Compiled,
        request: &RunRequest<'_>,
        services: &dyn Services,
    ) -> Result<RunResult, ExecutorError> {
        let started = Instant::now();
        let deadline = started + request.time;
        let mut state = RunState::new(request, compiled.static_memory);
        if compiled.static_memory > request.memory_bytes {
            state.memory_refused = true;
            return Ok(state.finish(Stop::MemoryLimit, 0, started));
        }
        let run_error = |e: &dyn std::fmt::Display| ExecutorError::Run(e.to_string());
        let mut instance = match compiled.warm.take() {
            Some(instance) => instance,
            None => compiled.module.instantiate().map_err(|e| run_error(&e))?,
        };
        if self.backend() == Backend::Interpreter {
            // The heap is bounded by the `sbrk` host call; this bounds the interpreter's own
            // buffers (which grow by doubling) as a second line.
            let backstop = request
                .memory_bytes
                .saturating_mul(2)
                .saturating_add(1 << 20);
            instance.set_interpreter_guest_memory_limit(Some(
                usize::try_from(backstop).unwrap_or(usize::MAX),
            ));
        }
        let guard = match (&self.watchdog, instance.pid()) {
            (Some(watchdog), Some(pid)) => Some(
                watchdog
                    .watch(pid, deadline + WATCHDOG_GRACE)
                    .map_err(|e| run_error(&e))?,
            ),
            _ => None,
        };
        instance.prepare_call_untyped(compiled.program.entry, &[]);
        let mut meter = Meter::new(request.gas, self.first_slice);
        meter.hand_out(&mut instance);

        let stop = loop {
            if Instant::now() >= deadline {
                break Stop::TimeLimit;
            }
            let interrupt = match instance.run() {
                Ok(interrupt) => interrupt,
                Err(_) if guard.as_ref().is_some_and(|g| g.fired()) => break Stop::TimeLimit,
                Err(e) => return Err(run_error(&e)),
            };
            match interrupt {
                InterruptKind::Finished => {
                    let code = instance.get_result_typed::<u32>();
                    break Stop::Exited(i32::from_ne_bytes(code.to_ne_bytes()));
                }
                InterruptKind::NotEnoughGas => {
                    if !meter.hand_out(&mut instance) {
                        break Stop::OutOfGas;
                    }
                }
                InterruptKind::Ecalli(index) => {
                    let call = compiled.program.imports.get(index as usize).copied();
                    match call.map(|c| host_call(c, &mut instance, &mut state, services)) {
                        Some(Ok(Next::Return(value))) => instance.set_reg(Reg::A0, value),
                        Some(Ok(Next::Exit(code))) => break Stop::Exited(code),
                        Some(Err(detail)) => break Stop::Trap(detail),
                        None => break Stop::Trap(format!("host call #{index} does not exist")),
                    }
                }
                InterruptKind::Trap if state.memory_refused => break Stop::MemoryLimit,
                InterruptKind::Trap => {
                    break Stop::Trap(match instance.program_counter() {
                        Some(pc) => format!("trap at program counter {}", pc.0),
                        None => "trap".into(),
                    });
                }
                other => break Stop::Trap(format!("unexpected interruption: {other:?}")),
            }
        };
        let gas = meter.consumed(&instance);
        drop(guard);
        drop(instance);
        Ok(state.finish(stop, gas, started))
    }
}

/// Hands gas out in slices, so that a long computation comes back to the run loop (and its
/// clock) every few milliseconds. Synchronous metering makes the total exact whatever the
/// slices: a basic block is charged whole on entry, and one that does not fit a slice waits,
/// with what was left, for the next.
struct Meter {
    /// Gas not handed out yet.
    remaining: u64,
    /// Gas handed out so far.
    handed: u64,
    slice: u64,
    slice_started: Instant,
}

impl Meter {
    fn new(budget: Option<u64>, first_slice: u64) -> Self {
        Self {
            remaining: budget.unwrap_or(UNMETERED).min(UNMETERED),
            handed: 0,
            slice: first_slice,
            slice_started: Instant::now(),
        }
    }

    /// Gives the instance its next slice; `false` when the budget is spent.
    fn hand_out(&mut self, instance: &mut RawInstance) -> bool {
        if self.remaining == 0 {
            return false;
        }
        if self.handed > 0 {
            let took = self.slice_started.elapsed();
            if took < SLICE_TARGET / 4 {
                self.slice = (self.slice * 4).min(MAX_SLICE);
            } else if took > SLICE_TARGET * 4 {
                self.slice = (self.slice / 2).max(MIN_SLICE);
            }
        }
        let give = self.slice.min(self.remaining);
        self.remaining -= give;
        self.handed += give;
        let left = u64::try_from(instance.gas()).unwrap_or(0);
        instance.set_gas(i64::try_from(left + give).unwrap_or(i64::MAX));
        self.slice_started = Instant::now();
        true
    }

    fn consumed(&self, instance: &RawInstance) -> u64 {
        self.handed
            .saturating_sub(u64::try_from(instance.gas()).unwrap_or(0))
    }
}

/// Output kept up to a cap; what comes after is counted as cut.
struct Capped {
    bytes: Vec<u8>,
    cap: usize,
    truncated: bool,
}

impl Capped {
    fn new(cap: usize) -> Self {
        Self {
            bytes: Vec::new(),
            cap,
            truncated: false,
        }
    }

    /// How many more bytes are kept.
    fn room(&self) -> usize {
        self.cap.saturating_sub(self.bytes.len())
    }
}

struct RunState<'a> {
    args: Vec<u8>,
    stdin: &'a [u8],
    stdin_at: usize,
    stdout: Capped,
    stderr: Capped,
    memory_bytes: u64,
    static_memory: u64,
    memory_refused: bool,
}

impl<'a> RunState<'a> {
    fn new(request: &RunRequest<'a>, static_memory: u64) -> Self {
        let mut args = Vec::new();
        for arg in request.args {
            args.extend_from_slice(arg.as_bytes());
            args.push(0);
        }
        Self {
            args,
            stdin: request.stdin,
            stdin_at: 0,
            stdout: Capped::new(request.stdout_cap),
            stderr: Capped::new(request.stderr_cap),
            memory_bytes: request.memory_bytes,
            static_memory,
            memory_refused: false,
        }
    }

    fn finish(self, stop: Stop, gas_consumed: u64, started: Instant) -> RunResult {
        RunResult {
            stop,
            stdout: self.stdout.bytes,
            stderr: self.stderr.bytes,
            stdout_truncated: self.stdout.truncated,
            stderr_truncated: self.stderr.truncated,
            gas_consumed,
            duration: started.elapsed(),
        }
    }
}

enum Next {
    Return(u64),
    Exit(i32),
}

type Answer = Result<Next, String>;

/// A register as a guest address (programs address 4 GiB, 64-bit ones too).
fn address(value: u64, what: &str) -> Result<u32, String> {
    u32::try_from(value).map_err(|_| format!("{what} {value:#x} is not a guest address"))
}

fn arg(instance: &RawInstance, reg: Reg) -> u64 {
    instance.reg(reg)
}

/// Reads `len` bytes at `at`, refusing (before allocating anything) a range the program
/// cannot read.
fn read(instance: &mut RawInstance, at: u64, len: u64, what: &str) -> Result<Vec<u8>, String> {
    let (at, len) = (address(at, what)?, address(len, what)?);
    if !instance.is_memory_accessible(at, len, MemoryProtection::Read) {
        return Err(format!(
            "{what}: {len} bytes at {at:#x} are outside the program's memory"
        ));
    }
    instance
        .read_memory(at, len)
        .map_err(|e| format!("{what}: {e}"))
}

fn write(instance: &mut RawInstance, at: u64, data: &[u8], what: &str) -> Result<(), String> {
    let at = address(at, what)?;
    let len = u32::try_from(data.len()).map_err(|_| format!("{what}: too long"))?;
    if !instance.is_memory_accessible(at, len, MemoryProtection::ReadWrite) {
        return Err(format!(
            "{what}: {len} bytes at {at:#x} are not writable memory of the program"
        ));
    }
    instance
        .write_memory(at, data)
        .map_err(|e| format!("{what}: {e}"))
}

fn crypto_code(e: CryptoError) -> u64 {
    u64::from(match e {
        CryptoError::InvalidKey => abi::ERR_INVALID_KEY,
        CryptoError::InvalidSignature => abi::ERR_INVALID_SIGNATURE,
        CryptoError::InvalidLength => abi::ERR_INVALID_LENGTH,
    })
}

fn host_call(
    call: HostCall,
    instance: &mut RawInstance,
    state: &mut RunState<'_>,
    services: &dyn Services,
) -> Answer {
    let [a0, a1, a2, a3, a4, a5] =
        [Reg::A0, Reg::A1, Reg::A2, Reg::A3, Reg::A4, Reg::A5].map(|r| arg(instance, r));
    let name = call.name();
    let ok = |v: u64| Ok(Next::Return(v));
    match call {
        HostCall::ArgsLen => ok(state.args.len() as u64),
        HostCall::ArgsGet => {
            let n = usize::try_from(a1)
                .unwrap_or(usize::MAX)
                .min(state.args.len());
            write(instance, a0, &state.args[..n], name)?;
            ok(state.args.len() as u64)
        }
        HostCall::FdRead => {
            if a0 != 0 {
                return ok(u64::from(abi::ERR_BAD_DESCRIPTOR));
            }
            let rest = &state.stdin[state.stdin_at..];
            let n = usize::try_from(a2).unwrap_or(usize::MAX).min(rest.len());
            write(instance, a1, &rest[..n], name)?;
            state.stdin_at += n;
            ok(n as u64)
        }
        HostCall::FdWrite => {
            let out = match a0 {
                1 => &mut state.stdout,
                2 => &mut state.stderr,
                _ => return ok(u64::from(abi::ERR_BAD_DESCRIPTOR)),
            };
            let (at, len) = (address(a1, name)?, address(a2, name)?);
            // The whole buffer must be the program's, as an out-of-bounds write would trap;
            // only what fits the cap is copied.
            if !instance.is_memory_accessible(at, len, MemoryProtection::Read) {
                return Err(format!(
                    "{name}: {len} bytes at {at:#x} are outside the program's memory"
                ));
            }
            let keep = out.room().min(len as usize);
            if keep < len as usize {
                out.truncated = true;
            }
            if keep > 0 {
                let kept = read(instance, a1, keep as u64, name)?;
                out.bytes.extend_from_slice(&kept);
            }
            ok(a2)
        }
        HostCall::ProcExit => Ok(Next::Exit(i32::from_ne_bytes((a0 as u32).to_ne_bytes()))),
        HostCall::Sbrk => {
            let increment = a0;
            let heap = u64::from(instance.heap_size());
            let fits = state
                .static_memory
                .checked_add(heap)
                .and_then(|used| used.checked_add(increment))
                .is_some_and(|total| total <= state.memory_bytes);
            if !fits {
                state.memory_refused = true;
                return ok(0);
            }
            let Ok(increment) = u32::try_from(increment) else {
                state.memory_refused = true;
                return ok(0);
            };
            match instance.sbrk(increment) {
                Ok(Some(top)) => ok(u64::from(top)),
                Ok(None) => {
                    state.memory_refused = true;
                    ok(0)
                }
                Err(e) => Err(format!("{name}: {e}")),
            }
        }
        HostCall::Sha256 => {
            let data = read(instance, a0, a1, name)?;
            write(instance, a2, &services.sha256(&data), name)?;
            ok(0)
        }
        HostCall::Sha512 => {
            let data = read(instance, a0, a1, name)?;
            write(instance, a2, &services.sha512(&data), name)?;
            ok(0)
        }
        HostCall::HmacSha256 => {
            let key = read(instance, a0, a1, name)?;
            let data = read(instance, a2, a3, name)?;
            write(instance, a4, &services.hmac_sha256(&key, &data), name)?;
            ok(0)
        }
        HostCall::VerifyP256Sha256 => {
            let key = read(instance, a0, a1, name)?;
            let message = read(instance, a2, a3, name)?;
            let signature = read(instance, a4, a5, name)?;
            ok(
                match services.verify_p256_sha256(&key, &message, &signature) {
                    Ok(valid) => u64::from(valid),
                    Err(e) => crypto_code(e),
                },
            )
        }
        HostCall::RecoverSecp256k1 => {
            let digest = read(instance, a0, 32, name)?;
            let signature = read(instance, a1, a2, name)?;
            match services.recover_secp256k1(&digest, &signature) {
                Ok(key) => {
                    write(instance, a3, &key, name)?;
                    ok(0)
                }
                Err(e) => ok(crypto_code(e)),
            }
        }
        HostCall::AttestationProvider => ok(u64::from(services.attestation_provider())),
        HostCall::Attest => {
            let user_data = read(instance, a0, 64, name)?;
            let mut fixed = [0u8; 64];
            fixed.copy_from_slice(&user_data);
            match services.attest(&fixed) {
                Ok(statement) => {
                    if statement.len() as u64 <= a2 {
                        write(instance, a1, &statement, name)?;
                    }
                    ok(statement.len() as u64)
                }
                Err(AttestError::NotConfigured) => ok(u64::from(abi::ERR_NOT_CONFIGURED)),
                Err(AttestError::ProviderFailed) => ok(u64::from(abi::ERR_PROVIDER_FAILED)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;
    use crate::executor::{BackendChoice, ExecutorConfig};
    use crate::program::Program;

    /// No crypto, no attestation: these tests do not call them.
    pub(crate) struct NoServices;

    impl Services for NoServices {
        fn sha256(&self, _: &[u8]) -> [u8; 32] {
            unreachable!()
        }
        fn sha512(&self, _: &[u8]) -> [u8; 64] {
            unreachable!()
        }
        fn hmac_sha256(&self, _: &[u8], _: &[u8]) -> [u8; 32] {
            unreachable!()
        }
        fn verify_p256_sha256(&self, _: &[u8], _: &[u8], _: &[u8]) -> Result<bool, CryptoError> {
            unreachable!()
        }
        fn recover_secp256k1(&self, _: &[u8], _: &[u8]) -> Result<[u8; 65], CryptoError> {
            unreachable!()
        }
        fn attestation_provider(&self) -> u32 {
            0
        }
        fn attest(&self, _: &[u8; 64]) -> Result<Vec<u8>, AttestError> {
            Err(AttestError::NotConfigured)
        }
    }

    fn endless() -> Program {
        let blob = polkavm::program::assemble(
            Some(polkavm::program::InstructionSetKind::Latest64),
            "pub @main:\n@again:\na0 = a0 + 1\njump @again\n",
        )
        .expect("assembles");
        Program::from_blob(blob).expect("valid")
    }

    fn request(time: Duration) -> RunRequest<'static> {
        RunRequest {
            args: &[],
            stdin: &[],
            gas: None,
            memory_bytes: 1 << 20,
            time,
            stdout_cap: 1024,
            stderr_cap: 1024,
        }
    }

    /// The recompiler's tests one at a time: the worker-killing test must find only its own
    /// busy worker among this process's children.
    static WORKERS: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn recompiler() -> Executor {
        Executor::new(&ExecutorConfig {
            backend: BackendChoice::Recompiler,
            idle_workers: 1,
            warm_instances: 0,
        })
        .expect("the recompiler's sandbox starts on this machine")
    }

    /// Runs on another thread, so that a hang fails the test instead of stalling it.
    fn run_within(
        executor: Executor,
        compiled: Compiled,
        time: Duration,
        kill_after: Option<Duration>,
        within: Duration,
    ) -> Result<RunResult, ExecutorError> {
        let (tx, rx) = mpsc::channel();
        let executor = Arc::new(executor);
        let runner = executor.clone();
        std::thread::spawn(move || {
            let _ = tx.send(runner.run(&compiled, &request(time), &NoServices));
        });
        if let Some(after) = kill_after {
            std::thread::sleep(after);
            // A loaded machine may not have run the worker long enough yet: look again
            // until it has.
            let deadline = Instant::now() + Duration::from_secs(15);
            let pids = loop {
                let pids = busy_worker_pids();
                if !pids.is_empty() || Instant::now() > deadline {
                    break pids;
                }
                std::thread::sleep(Duration::from_millis(10));
            };
            assert!(!pids.is_empty(), "no worker is running the program");
            for pid in pids {
                let pid = rustix::process::Pid::from_raw(pid).expect("pid");
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
        rx.recv_timeout(within)
            .expect("the run came back (it did not hang)")
    }

    use std::sync::Arc;

    /// utime + stime (fields 14 and 15 of /proc/PID/stat; `fields` starts at field 3).
    fn cpu_ticks(fields: &[&str]) -> u64 {
        [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
            .sum()
    }

    /// This process's children that are PolkaVM workers busy running a program.
    fn busy_worker_pids() -> Vec<i32> {
        let me = std::process::id();
        std::fs::read_dir("/proc")
            .expect("/proc")
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                    let fields: Vec<&str> = stat
                        .rsplit(')')
                        .next()
                        .unwrap_or("")
                        .split_whitespace()
                        .collect();
                    fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(me)
                        && stat.contains("(polkavm-sandbox)")
                        // Busy: it has used 100 ms of CPU or more (an idle or freshly
                        // started worker has not), whatever its state at this instant.
                        && cpu_ticks(&fields) >= 10
                })
            })
            .collect()
    }

    #[test]
    fn a_slice_that_does_not_end_is_killed_by_the_watchdog() {
        let _one = WORKERS.lock().unwrap_or_else(|p| p.into_inner());
        let mut executor = recompiler();
        // One slice would run for minutes: only the watchdog can end it.
        executor.first_slice = 1 << 42;
        let compiled = executor.compile(&endless()).expect("compiles");
        let started = Instant::now();
        let result = run_within(
            executor,
            compiled,
            Duration::from_millis(200),
            None,
            Duration::from_secs(20),
        )
        .expect("a time limit is an outcome");
        assert_eq!(result.stop, Stop::TimeLimit);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_worker_that_dies_mid_run_is_an_error_not_a_hang() {
        // Before vendor/polkavm.patch, the host thread spun for ever once the worker was gone.
        let _one = WORKERS.lock().unwrap_or_else(|p| p.into_inner());
        let executor = recompiler();
        let compiled = executor.compile(&endless()).expect("compiles");
        let result = run_within(
            executor,
            compiled,
            Duration::from_secs(60),
            Some(Duration::from_millis(300)),
            Duration::from_secs(20),
        );
        let Err(ExecutorError::Run(message)) = result else {
            panic!("{result:?}")
        };
        assert!(message.contains("SIGKILL"), "{message}");
    }

    fn returning(code: u32) -> Program {
        let blob = polkavm::program::assemble(
            Some(polkavm::program::InstructionSetKind::Latest64),
            &format!("pub @main:\na0 = {code}\nret\n"),
        )
        .expect("assembles");
        Program::from_blob(blob).expect("valid")
    }

    #[test]
    fn warm_instances_serve_the_next_run_and_the_oldest_gives_way() {
        let _one = WORKERS.lock().unwrap_or_else(|p| p.into_inner());
        let executor = Executor::new(&ExecutorConfig {
            backend: BackendChoice::Recompiler,
            idle_workers: 1,
            warm_instances: 2,
        })
        .expect("the recompiler's sandbox starts on this machine");
        let programs: Vec<Compiled> = (0..3)
            .map(|i| executor.compile(&returning(i)).expect("compiles"))
            .collect();
        executor.prewarm(&programs[0]).unwrap();
        executor.prewarm(&programs[1]).unwrap();
        executor.prewarm(&programs[1]).unwrap(); // one per program
        assert_eq!(executor.warm_count(), 2);
        // A third program takes the place of the one parked longest ago.
        executor.prewarm(&programs[2]).unwrap();
        assert_eq!(executor.warm_count(), 2);
        assert!(!programs[0].warm.is_full());
        assert!(programs[1].warm.is_full() && programs[2].warm.is_full());
        // The next run takes its program's instance (and runs that program).
        let result = executor
            .run(&programs[2], &request(Duration::from_secs(5)), &NoServices)
            .unwrap();
        assert_eq!(result.stop, Stop::Exited(2));
        assert!(!programs[2].warm.is_full());
        assert_eq!(executor.warm_count(), 1);
        // A program dropped gives its instance back.
        drop(programs);
        assert_eq!(executor.warm_count(), 0);
        // The interpreter parks nothing: it instantiates in a fraction of a microsecond.
        let interpreter = Executor::new(&ExecutorConfig {
            backend: BackendChoice::Interpreter,
            idle_workers: 0,
            warm_instances: 2,
        })
        .unwrap();
        let p = interpreter.compile(&returning(7)).unwrap();
        interpreter.prewarm(&p).unwrap();
        assert_eq!(interpreter.warm_count(), 0);
    }

    #[test]
    fn gas_is_exact_whatever_the_slices() {
        let executor = Executor::new(&ExecutorConfig {
            backend: BackendChoice::Interpreter,
            idle_workers: 0,
            warm_instances: 0,
        })
        .expect("interpreter");
        let compiled = executor.compile(&endless()).expect("compiles");
        for (budget, first_slice) in [
            (1_000_000u64, 1u64 << 20),
            (1_000_000, 1 << 14),
            (999_999, 12_345),
        ] {
            let mut executor = Executor::new(&ExecutorConfig {
                backend: BackendChoice::Interpreter,
                idle_workers: 0,
                warm_instances: 0,
            })
            .expect("interpreter");
            executor.first_slice = first_slice;
            let mut r = request(Duration::from_secs(30));
            r.gas = Some(budget);
            let result = executor.run(&compiled, &r, &NoServices).expect("runs");
            assert_eq!(result.stop, Stop::OutOfGas);
            // a two-instruction loop body: all the budget but what a block could not pay
            assert!(
                budget - result.gas_consumed < 3,
                "{budget} {}",
                result.gas_consumed
            );
        }
        drop(executor);
    }
}
