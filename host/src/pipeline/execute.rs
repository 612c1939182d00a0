//! The WebAssembly execution routes: `POST /test/execute/wasm` and
//! `POST /verifiable/execute/wasm` (and, with payments, their paid twins): run an encrypted
//! command component.

use hypervisor_protocol::wire::{ExecuteRequest, ExecutionResult};

use super::admission::{Admission, Admitted};
use super::agents::now_ms;
use super::payment::{Paid, receipt_payment};
use super::request::{ExecuteOutcome, Opened, RouteKind, Sealed, limits_applied};
use super::{Pipeline, ProgramKind};
use crate::engine::{CommandInput, RunOutcome};
use crate::error::ApiError;
use crate::plugins::payments::PaymentHeader;
use crate::storage::records::ExecutionRecord;
use hypervisor_protocol::sha256;

/// `argv[0]` given to every command.
pub const ARGV0: &str = "main.wasm";

impl Pipeline {
    /// Runs an encrypted command component. A guest that exits (with any code) is a success;
    /// one stopped by a limit or a trap is [`ApiError::GuestStopped`], which still carries the
    /// encrypted output.
    ///
    /// # Errors
    /// Every [`ApiError`] a malformed, unauthorised, unpaid, refused or undecryptable request
    /// can cause, engine errors for bad components, and [`ApiError::GuestStopped`].
    pub async fn execute_wasm(
        &self,
        req: ExecuteRequest,
        route: RouteKind,
        payment: Option<PaymentHeader>,
    ) -> Result<ExecuteOutcome, ApiError> {
        // 0–4. payment, session, open, limits, admission (the policy decides on metadata
        //      only, before anything is compiled), payment recorded
        let Admitted {
            opened,
            admission: Admission { limits, policy },
            paid,
        } = self
            .admit_request(
                Sealed::wasm(&req),
                route,
                ProgramKind::WasmComponent,
                payment,
                |_| Ok(()),
            )
            .await?;
        drop(req);

        // 5–6. prepare and run (a failure without a result gives a reserved payment back)
        let ran = async {
            let prepared = self
                .engine
                .prepare_command(opened.digests.program, opened.program.clone())
                .await?;
            let mut argv = Vec::with_capacity(opened.args.len() + 1);
            argv.push(ARGV0.to_string());
            argv.extend(opened.args.iter().cloned());
            let input = CommandInput {
                args: argv,
                stdin: opened.stdin.clone(),
                limits,
            };
            let capabilities = crate::engine::Capabilities::of(crate::engine::Role::ClientProgram);
            Ok(self
                .engine
                .run_command(&capabilities, &prepared, input)
                .await?)
        }
        .await;
        let outcome = self.or_release(paid.as_ref(), ran)?;

        // 7–9. seal, receipt, settle
        let doc = result_document(&outcome, &limits);
        self.finish(&opened, route, &doc, policy, paid.as_ref())
            .await
    }

    /// Steps 7–9 of every code route: seal and receipt, then settlement on paid routes.
    pub(super) async fn finish(
        &self,
        opened: &Opened,
        route: RouteKind,
        doc: &ExecutionResult,
        policy: Option<String>,
        paid: Option<&Paid>,
    ) -> Result<ExecuteOutcome, ApiError> {
        let payment = receipt_payment(paid);
        let mut outcome = self.seal(opened, route, doc, policy, payment.clone())?;
        outcome.execution_id = uuid::Uuid::now_v7().to_string();
        let duration_ms = doc.duration_us / 1000;
        self.record(ExecutionRecord {
            id: outcome.execution_id.clone(),
            route: route.path.to_string(),
            agent: None,
            agent_version: None,
            code_hash: hex::encode(opened.digests.program),
            caller_hash: hex::encode(sha256(opened.client_key.as_bytes())),
            started_ms: now_ms().saturating_sub(duration_ms),
            duration_us: doc.duration_us,
            status: status_name(doc.status),
            exit_code: doc.exit_code,
            commitment: Some(outcome.result.result_commitment.clone()),
            payment,
        })
        .await?;
        if let Some(paid) = paid {
            outcome.settlement = Some(self.settle_payment(paid).await?);
        }
        outcome.into_result()
    }
}

/// The plaintext result document (see `docs/PROTOCOL.md`), without the Python fields.
pub(super) fn result_document(
    o: &RunOutcome,
    limits: &crate::engine::RunLimits,
) -> ExecutionResult {
    ExecutionResult {
        version: 1,
        status: o.status,
        exit_code: o.exit_code,
        stdout: ExecutionResult::encode_output(&o.stdout),
        stderr: ExecutionResult::encode_output(&o.stderr),
        stdout_truncated: o.stdout_truncated,
        stderr_truncated: o.stderr_truncated,
        duration_us: u64::try_from(o.duration.as_micros()).unwrap_or(u64::MAX),
        trap: o.trap.clone(),
        limits: limits_applied(limits),
        fuel_consumed: o.fuel_consumed,
        returned: None,
        exception: None,
    }
}

/// The wire name of a status (`exited`, `time_limit_exceeded`, …).
pub(super) fn status_name(status: hypervisor_protocol::wire::ExitStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
