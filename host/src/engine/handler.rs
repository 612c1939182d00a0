//! Running a handler agent (`hypervisor:host/handler`, world `handler-agent`): a fresh store and
//! instance per invocation, limits applied, one `handle(event, context)` call.

use bytes::Bytes;
use hypervisor_protocol::wire::ExitStatus;

use super::run::{CommandInput, RunOutcome, classify_error};
use super::{Capabilities, Engine, EngineError, Prepared, cap_text};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "handler-agent",
        exports: { default: async },
        with: {
            "hypervisor:host/crypto": crate::engine::host_imports::hypervisor::host::crypto,
            "hypervisor:host/attestation": crate::engine::host_imports::hypervisor::host::attestation,
        },
    });
}

pub use bindings::HandlerAgentPre;
use bindings::exports::hypervisor::host::handler as wit;

/// What the host tells a handler about the invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerContext {
    /// The execution id (UUID v7).
    pub execution_id: String,
    /// The agent's name.
    pub agent_name: String,
    /// The agent's version.
    pub agent_version: u32,
    /// SHA-256 of the caller's key, hex; empty for anonymous callers.
    pub caller: String,
}

/// An error the handler returned (not a trap).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerError {
    /// The handler's code.
    pub code: String,
    /// Its message.
    pub message: String,
}

/// How an invocation ended: the run's outcome (status, output, duration) and, when the
/// handler returned, what it returned.
#[derive(Debug, Clone)]
pub struct HandlerOutcome {
    /// Status, captured stdout/stderr, duration.
    pub run: RunOutcome,
    /// The handler's answer; `None` when it did not return (trap, limits).
    pub returned: Option<Result<Vec<u8>, HandlerError>>,
}

impl Engine {
    /// Invokes a prepared handler agent once, in a fresh instance with `capabilities` (those of
    /// [`super::Role::HandlerAgent`]), under `input`'s limits (`input.stdin` is its stdin;
    /// `input.args` its arguments). Waits for an execution slot.
    ///
    /// # Errors
    /// [`EngineError::Internal`] for host-side failures, [`EngineError::NotAHandler`] if the
    /// component does not export the handler interface.
    pub async fn run_handler(
        &self,
        capabilities: &Capabilities,
        prepared: &Prepared,
        event: &[u8],
        ctx: &HandlerContext,
        input: CommandInput,
    ) -> Result<HandlerOutcome, EngineError> {
        let pre = prepared.handler.as_ref().ok_or(EngineError::NotAHandler)?;
        let _slot = self.execution_slot().await?;
        let mut sandbox = self.sandbox(
            capabilities,
            input.invocation(),
            input.limits,
            prepared.hash,
        )?;
        let deadline_ms = u64::try_from(input.limits.time.as_millis()).unwrap_or(u64::MAX);
        let context = wit::Context {
            execution_id: ctx.execution_id.clone(),
            agent_name: ctx.agent_name.clone(),
            agent_version: ctx.agent_version,
            caller: ctx.caller.clone(),
            deadline_ms,
        };
        let (result, duration) = sandbox
            .run(self, async |store| {
                let agent = pre.instantiate_async(&mut *store).await?;
                agent
                    .hypervisor_host_handler()
                    .call_handle(&mut *store, event, &context)
                    .await
            })
            .await;
        let (status, returned, trap) = match result {
            None => (ExitStatus::TimeLimitExceeded, None, None),
            Some(Ok(answer)) => (ExitStatus::Exited, Some(self.bounded_answer(answer)), None),
            Some(Err(e)) => {
                let (status, detail) = classify_error(&e, sandbox.memory_refused());
                (status, None, detail)
            }
        };
        let exit_code = returned
            .as_ref()
            .map(|r: &Result<Vec<u8>, HandlerError>| i32::from(r.is_err()));
        Ok(HandlerOutcome {
            run: sandbox.finish(status, exit_code, trap, duration),
            returned,
        })
    }
}

impl Engine {
    /// A handler's answer within the output limit: a returned value larger than
    /// `limits.stdout_bytes` becomes the error `output_too_large` (cutting it would hand back
    /// something the handler never returned), and an error's code and message are cut.
    fn bounded_answer(
        &self,
        answer: Result<Vec<u8>, wit::HandlerError>,
    ) -> Result<Vec<u8>, HandlerError> {
        let max = self.output_bytes();
        match answer {
            Ok(bytes) if bytes.len() > max => Err(HandlerError {
                code: "output_too_large".into(),
                message: format!(
                    "the handler returned {} bytes, more than this host's output limit of {max}",
                    bytes.len()
                ),
            }),
            Ok(bytes) => Ok(bytes),
            Err(e) => Err(HandlerError {
                code: cap_text(e.code, super::LABEL_BYTES),
                message: cap_text(e.message, max),
            }),
        }
    }
}

/// Input of a handler invocation with no arguments and no stdin.
pub fn handler_input(limits: super::RunLimits) -> CommandInput {
    CommandInput {
        args: vec!["handler".into()],
        stdin: Bytes::new(),
        limits,
    }
}
