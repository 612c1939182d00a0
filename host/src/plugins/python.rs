//! The Python runtime: a component exporting `hypervisor:host/python` (by default the same
//! componentized CPython as the policy) that runs one client script per **fresh** instance, so
//! no state passes between scripts, or from a script into the policy.

use bytes::Bytes;
use hypervisor_protocol::wire::ExitStatus;
use std::sync::Arc;

use super::PluginError;
use super::instance::{Bound, plugin_world};
use crate::config::PythonConfig;
use crate::engine::{
    Capabilities, Engine, EngineError, Invocation, Role, RunLimits, RunOutcome, cap_text,
    classify_error,
};

plugin_world!(
    world: "python-runtime",
    bindings: PythonRuntime,
    pre: PythonRuntimePre,
    interface: "hypervisor:host/python"
);

pub use bindings::exports::hypervisor::host::python::ScriptException;
use bindings::exports::hypervisor::host::python::ScriptResult;

/// A finished script: the sandbox outcome plus what the runtime reported.
#[derive(Debug)]
pub struct ScriptRun {
    /// Status, exit code, captured output, duration, trap.
    pub outcome: RunOutcome,
    /// JSON text of `main`'s return value, when it returned one.
    pub returned: Option<String>,
    /// The exception that escaped the script.
    pub exception: Option<ScriptException>,
}

/// The loaded runtime.
pub struct PythonRuntime {
    plugin: Bound<bindings::PythonRuntime>,
}

impl PythonRuntime {
    /// Loads the runtime component named by `config`.
    ///
    /// # Errors
    /// [`PluginError`] naming the file and the reason.
    pub async fn load(engine: Arc<Engine>, config: &PythonConfig) -> Result<Self, PluginError> {
        let capabilities = Capabilities::of(Role::PythonScript);
        let plugin = Bound::load(engine, capabilities, &config.component).await?;
        Ok(Self { plugin })
    }

    /// SHA-256 of the runtime component file.
    pub fn hash(&self) -> [u8; 32] {
        self.plugin.hash
    }

    /// Runs `source` with `args` (and `stdin` as `sys.stdin`) in a fresh instance under `limits`, in one of the engine's
    /// execution slots. A script's exception is an outcome (exit code 1 with the traceback),
    /// not an error; at the memory limit it is reported as `memory_limit_exceeded`.
    ///
    /// # Errors
    /// [`EngineError`] for host-side failures only.
    pub async fn run(
        &self,
        source: &str,
        args: &[String],
        stdin: Bytes,
        limits: RunLimits,
    ) -> Result<ScriptRun, EngineError> {
        let engine: &Engine = &self.plugin.engine;
        let _slot = engine.execution_slot().await?;
        let invocation = Invocation { args: &[], stdin };
        let mut sandbox = self.plugin.sandbox(invocation, limits)?;
        let (result, duration) = self
            .plugin
            .call(&mut sandbox, async |runtime, store| {
                runtime
                    .hypervisor_host_python()
                    .call_run_script(store, source, args)
                    .await
            })
            .await;
        let memory_refused = sandbox.memory_refused();
        let (mut returned, mut exception) = (None, None);
        let (status, exit_code, trap) = match result {
            None => (ExitStatus::TimeLimitExceeded, None, None),
            Some(Err(e)) => {
                let (status, trap) = classify_error(&e, memory_refused);
                (status, None, trap)
            }
            Some(Ok(ScriptResult::Returned(value))) => {
                let max = engine.output_bytes();
                match value {
                    Some(json) if json.len() > max => {
                        // Cutting JSON would not be JSON: the run fails with a clear exception.
                        exception = Some(ScriptException {
                            kind: "OutputLimitExceeded".into(),
                            message: format!(
                                "main() returned {} bytes of JSON, more than this host's output \
                                 limit of {max}",
                                json.len()
                            ),
                            traceback: String::new(),
                        });
                        (ExitStatus::Exited, Some(1), None)
                    }
                    value => {
                        returned = value;
                        (ExitStatus::Exited, Some(0), None)
                    }
                }
            }
            Some(Ok(ScriptResult::Exited(code))) => (ExitStatus::Exited, Some(code), None),
            Some(Ok(ScriptResult::Raised(e))) => {
                let status = if memory_refused && e.kind == "MemoryError" {
                    ExitStatus::MemoryLimitExceeded
                } else {
                    ExitStatus::Exited
                };
                let max = engine.output_bytes();
                exception = Some(ScriptException {
                    kind: cap_text(e.kind, crate::engine::LABEL_BYTES),
                    message: cap_text(e.message, max),
                    traceback: cap_text(e.traceback, max),
                });
                (status, (status == ExitStatus::Exited).then_some(1), None)
            }
        };
        Ok(ScriptRun {
            outcome: sandbox.finish(status, exit_code, trap, duration),
            returned,
            exception,
        })
    }
}
