//! Running one command: a fresh store and instance, limits applied, the outcome classified.

use std::time::{Duration, Instant};

use bytes::Bytes;
use hypervisor_protocol::wire::ExitStatus;
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi::I32Exit;

use super::capabilities::{Capabilities, Invocation};
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

impl CommandInput {
    /// The arguments and stdin handed to the guest.
    pub fn invocation(&self) -> Invocation<'_> {
        Invocation {
            args: &self.args,
            stdin: self.stdin.clone(),
        }
    }
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
    /// The last key-value write the host refused for a quota while the guest ran (its
    /// message), if any.
    pub state_refusal: Option<String>,
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
    capabilities: &Capabilities,
    prepared: &Prepared,
    input: CommandInput,
) -> Result<RunOutcome, EngineError> {
    let mut sandbox = engine.sandbox(
        capabilities,
        input.invocation(),
        input.limits,
        prepared.hash,
    )?;
    let (result, duration) = sandbox
        .run(engine, async |store| {
            let Some(pre) = &prepared.command else {
                return Err(wasmtime::Error::msg("not a command"));
            };
            let command = pre.instantiate_async(&mut *store).await?;
            command.wasi_cli_run().call_run(&mut *store).await
        })
        .await;
    let (status, exit_code, trap) = match result {
        None => (ExitStatus::TimeLimitExceeded, None, None),
        Some(r) => classify(r, sandbox.memory_refused()),
    };
    Ok(sandbox.finish(status, exit_code, trap, duration))
}

/// One execution's store with its output captures and limits: build it with
/// [`Engine::sandbox`], run guest code in it with [`Sandbox::run`] (deadline enforced), then
/// turn it into a [`RunOutcome`] with [`Sandbox::finish`].
pub struct Sandbox {
    store: Store<HostState>,
    stdout: CappedOutput,
    stderr: CappedOutput,
    limits: RunLimits,
}

impl Engine {
    /// A fresh store for one execution with exactly `capabilities` (the role's entry of the
    /// table in [`Capabilities`], with any egress its caller granted): the invocation's
    /// arguments and stdin as far as they allow, output captured up to the configured caps,
    /// the memory limit and fuel budget of `limits`.
    ///
    /// # Errors
    /// [`EngineError::Internal`] if the fuel budget cannot be set.
    pub fn sandbox(
        &self,
        capabilities: &Capabilities,
        invocation: Invocation<'_>,
        limits: RunLimits,
        component_hash: [u8; 32],
    ) -> Result<Sandbox, EngineError> {
        let stdout = CappedOutput::new(self.stdout_bytes);
        let stderr = CappedOutput::new(self.stderr_bytes);
        let state = HostState::new(SandboxSpec {
            capabilities,
            invocation,
            stdout: stdout.clone(),
            stderr: stderr.clone(),
            memory_bytes: limits.memory_bytes,
            attestor: self.attestor.clone(),
            component_hash,
        });
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        if let Some(fuel) = limits.fuel {
            store
                .set_fuel(fuel)
                .map_err(|e| EngineError::Internal(e.to_string()))?;
        }
        Ok(Sandbox {
            store,
            stdout,
            stderr,
            limits,
        })
    }

    /// Runs `call` on `store` until it completes or `time` has passed. A running guest yields
    /// its thread every epoch tick and traps with [`is_deadline`] past the deadline; a guest
    /// blocked in a host call is abandoned by the ticker's deadline instead (`None`). After
    /// `None`, or any error, the store's instances must not be called again.
    pub async fn call_with_deadline<T: Send, R>(
        &self,
        store: &mut Store<T>,
        time: Duration,
        call: impl AsyncFnOnce(&mut Store<T>) -> R,
    ) -> Option<R> {
        let deadline = Instant::now() + time;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Err(wasmtime::Error::new(DeadlineExceeded))
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        let guard = self.deadlines.register(deadline + self.tick);
        tokio::select! {
            r = call(store) => Some(r),
            () = guard.expired() => None,
        }
    }
}

impl Sandbox {
    /// The store.
    pub fn store(&mut self) -> &mut Store<HostState> {
        &mut self.store
    }

    /// Runs `call` under the execution's time limit (see [`Engine::call_with_deadline`]);
    /// returns its result (`None` at the deadline) and the elapsed time.
    pub async fn run<R>(
        &mut self,
        engine: &Engine,
        call: impl AsyncFnOnce(&mut Store<HostState>) -> R,
    ) -> (Option<R>, Duration) {
        let start = Instant::now();
        let r = engine
            .call_with_deadline(&mut self.store, self.limits.time, call)
            .await;
        (r, start.elapsed())
    }

    /// Whether the memory limiter refused a growth.
    pub fn memory_refused(&self) -> bool {
        self.store.data().limiter.refused()
    }

    /// The outcome: status as classified by the caller, captured output, fuel consumed.
    pub fn finish(
        mut self,
        status: ExitStatus,
        exit_code: Option<i32>,
        trap: Option<String>,
        duration: Duration,
    ) -> RunOutcome {
        let fuel_consumed = self.limits.fuel.and_then(|budget| {
            self.store
                .get_fuel()
                .ok()
                .map(|left| budget.saturating_sub(left))
        });
        let state_refusal = self.store.data_mut().take_state_refusal();
        drop(self.store);
        let (stdout, stdout_truncated) = self.stdout.take();
        let (stderr, stderr_truncated) = self.stderr.take();
        RunOutcome {
            status,
            exit_code,
            stdout,
            stderr,
            stdout_truncated,
            stderr_truncated,
            duration,
            trap,
            fuel_consumed,
            state_refusal,
        }
    }
}

/// Whether `err` is the deadline trap raised by [`Engine::call_with_deadline`].
pub fn is_deadline(err: &wasmtime::Error) -> bool {
    err.is::<DeadlineExceeded>()
}

/// Classifies a failed call: deadline, fuel, memory limit or trap, with trap details.
pub fn classify_error(err: &wasmtime::Error, memory_refused: bool) -> (ExitStatus, Option<String>) {
    if is_deadline(err) {
        return (ExitStatus::TimeLimitExceeded, None);
    }
    let detail = Some(super::cap_text(
        format!("{err:?}"),
        super::TRAP_DETAIL_BYTES,
    ));
    if err.downcast_ref::<Trap>() == Some(&Trap::OutOfFuel) {
        return (ExitStatus::FuelExhausted, detail);
    }
    if memory_refused {
        return (ExitStatus::MemoryLimitExceeded, detail);
    }
    (ExitStatus::Trapped, detail)
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
    let (status, detail) = classify_error(&err, memory_refused);
    (status, None, detail)
}
