//! Running one command: a fresh store and instance, limits applied, the outcome classified.

use std::time::{Duration, Instant};

use bytes::Bytes;
use hypervisor_protocol::wire::ExitStatus;
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi::I32Exit;

use super::output::CappedOutput;
use super::sandbox::{HostState, SandboxSpec};
use super::{Engine, EngineError, Prepared};

/// Limits for one execution, already resolved against the operator's maxima.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunLimits {
    /// Wall-clock limit (instantiation and run).
    pub time: Duration,
    /// Linear-memory limit, bytes.
    pub memory_bytes: u64,
    /// Fuel budget; `Some` exactly when the engine meters fuel.
    pub fuel: Option<u64>,
}

/// The input of a command execution.
#[derive(Debug, Clone)]
pub struct CommandInput {
    /// Arguments, `argv[0]` first.
    pub args: Vec<String>,
    /// Standard input.
    pub stdin: Bytes,
    /// Limits.
    pub limits: RunLimits,
}

/// How an execution ended, with everything it produced.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// Exit, deadline, memory, fuel or trap.
    pub status: ExitStatus,
    /// The exit code when `status` is `Exited`.
    pub exit_code: Option<i32>,
    /// Captured stdout (at most the configured cap).
    pub stdout: Bytes,
    /// Captured stderr.
    pub stderr: Bytes,
    /// Whether stdout was cut.
    pub stdout_truncated: bool,
    /// Whether stderr was cut.
    pub stderr_truncated: bool,
    /// Instantiation plus run.
    pub duration: Duration,
    /// Trap details (confidential: only ever returned encrypted).
    pub trap: Option<String>,
    /// Fuel consumed, with metering on.
    pub fuel_consumed: Option<u64>,
}

/// Marker error raised by the epoch callback at the deadline.
#[derive(Debug)]
struct DeadlineExceeded;

impl std::fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("execution time limit exceeded")
    }
}

impl std::error::Error for DeadlineExceeded {}

pub(super) async fn run_command(
    engine: &Engine,
    prepared: &Prepared,
    input: CommandInput,
) -> Result<RunOutcome, EngineError> {
    let stdout = CappedOutput::new(engine.stdout_bytes);
    let stderr = CappedOutput::new(engine.stderr_bytes);
    let state = HostState::new(SandboxSpec {
        args: &input.args,
        stdin: input.stdin,
        stdout: stdout.clone(),
        stderr: stderr.clone(),
        memory_bytes: input.limits.memory_bytes,
        attestor: engine.attestor.clone(),
        component_hash: prepared.hash,
    });
    let mut store = Store::new(&engine.engine, state);
    store.limiter(|s| &mut s.limiter);
    if let Some(fuel) = input.limits.fuel {
        store
            .set_fuel(fuel)
            .map_err(|e| EngineError::Internal(e.to_string()))?;
    }

    let start = Instant::now();
    let deadline = start + input.limits.time;
    // Every tick, a running guest yields its thread to other requests; past the deadline it
    // traps. A guest blocked in a host call is stopped by the ticker's deadline instead.
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= deadline {
            Err(wasmtime::Error::new(DeadlineExceeded))
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
    let guard = engine.deadlines.register(deadline + engine.tick);

    let run = async {
        let command = prepared.pre.instantiate_async(&mut store).await?;
        command.wasi_cli_run().call_run(&mut store).await
    };
    let result = tokio::select! {
        r = run => Some(r),
        () = guard.expired() => None,
    };
    let duration = start.elapsed();
    drop(guard);

    let fuel_consumed = input.limits.fuel.and_then(|budget| {
        store
            .get_fuel()
            .ok()
            .map(|left| budget.saturating_sub(left))
    });
    let memory_refused = store.data().limiter.refused();
    drop(store);

    let (status, exit_code, trap) = match result {
        None => (ExitStatus::TimeLimitExceeded, None, None),
        Some(r) => classify(r, memory_refused),
    };
    let (stdout, stdout_truncated) = stdout.take();
    let (stderr, stderr_truncated) = stderr.take();
    Ok(RunOutcome {
        status,
        exit_code,
        stdout,
        stderr,
        stdout_truncated,
        stderr_truncated,
        duration,
        trap,
        fuel_consumed,
    })
}

fn classify(
    result: wasmtime::Result<Result<(), ()>>,
    memory_refused: bool,
) -> (ExitStatus, Option<i32>, Option<String>) {
    let err = match result {
        Ok(Ok(())) => return (ExitStatus::Exited, Some(0), None),
        Ok(Err(())) => return (ExitStatus::Exited, Some(1), None),
        Err(e) => e,
    };
    if let Some(exit) = err.downcast_ref::<I32Exit>() {
        return (ExitStatus::Exited, Some(exit.0), None);
    }
    let detail = Some(format!("{err:?}"));
    if err.is::<DeadlineExceeded>() {
        return (ExitStatus::TimeLimitExceeded, None, None);
    }
    if err.downcast_ref::<Trap>() == Some(&Trap::OutOfFuel) {
        return (ExitStatus::FuelExhausted, None, detail);
    }
    if memory_refused {
        return (ExitStatus::MemoryLimitExceeded, None, detail);
    }
    (ExitStatus::Trapped, None, detail)
}
