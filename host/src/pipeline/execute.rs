//! The execution routes: `POST /test/execute/wasm` and `POST /verifiable/execute/wasm` (and,
//! with payments, their paid twins): run an encrypted command, a WebAssembly component or a
//! RISC-V program (its kind declared by `program_kind` or recognised by its first bytes).

use hypervisor_protocol::wire::{ExecuteRequest, ExecutionResult, ProgramKind as WireKind};

use super::admission::{Admission, Admitted, Subject};
use super::binary::{BinaryField, Sent};
use super::conclude::RecordOf;
use super::open::{EncryptedRequest, Opened};
use super::route::RouteKind;
use super::seal::{ExecuteOutcome, SealAs, result_document};
use super::x402::Reservation;
use super::{Pipeline, ProgramKind};
use crate::clock::unix_millis;
use crate::engine::{Capabilities, CommandInput, Role};
use crate::error::ApiError;
use crate::plugins::payments::PaymentHeader;

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
        binary: Option<BinaryField>,
        route: RouteKind,
        payment: Option<PaymentHeader>,
    ) -> Result<ExecuteOutcome, ApiError> {
        // the program: in the JSON body or in a binary part, never in both
        let program = Sent::required("encrypted_wasm", &req.encrypted_wasm, binary)?;
        let declared = req.program_kind;
        // payment verified, request opened, admitted (the policy decides on metadata only,
        // before anything is compiled), payment recorded
        let verified = self
            .verify_payment(self.route_charge(route), payment)
            .await?;
        let opened = self.open(
            EncryptedRequest::execution(
                "encrypted_wasm",
                program,
                &req.encrypted_arguments,
                req.encrypted_stdin.as_deref(),
                &req.public_key,
                req.session_id,
                req.limits.as_ref(),
            ),
            route,
        )?;
        drop(req);
        // its kind, before the policy sees it (a program of another kind than declared is
        // refused here, before anything is compiled or reserved)
        let kind = match &opened.program {
            super::open::Program::Plain { bytes, .. } => {
                crate::engine::program_kind(bytes, declared)?
            }
            super::open::Program::Stored { .. } => {
                return Err(ApiError::Internal(
                    "an execution without its program".into(),
                ));
            }
        };
        let Admitted {
            opened,
            admission: Admission { limits, policy },
            reservation,
        } = self
            .admit(opened, route_subject(route, policy_kind(kind)), verified)
            .await?;

        // prepare and run (a failure without a result drops, and so releases, the reservation)
        let super::open::Program::Plain { hash, bytes } = &opened.program else {
            return Err(ApiError::Internal(
                "an execution without its program".into(),
            ));
        };
        let prepared = self.engine.prepare_command(*hash, bytes.clone()).await?;
        let mut argv = Vec::with_capacity(opened.args.len() + 1);
        argv.push(ARGV0.to_string());
        argv.extend(opened.args.iter().cloned());
        let input = CommandInput {
            args: argv,
            stdin: opened.input.clone(),
            limits,
        };
        let capabilities = Capabilities::of(Role::ClientProgram);
        let outcome = self
            .engine
            .run_command(&capabilities, &prepared, input)
            .await?;

        // seal, receipt, record, settle
        let doc = result_document(&outcome, &limits);
        self.finish(&opened, route, &doc, policy, reservation).await
    }

    /// Seals the result of an execution route and concludes it (record, settlement).
    pub(super) async fn finish(
        &self,
        opened: &Opened,
        route: RouteKind,
        doc: &ExecutionResult,
        policy: Option<String>,
        reservation: Option<Reservation<'_>>,
    ) -> Result<ExecuteOutcome, ApiError> {
        let payment = reservation.as_ref().map(Reservation::receipt_field);
        let id = uuid::Uuid::now_v7().to_string();
        let mut outcome = self.seal(
            opened,
            doc,
            SealAs {
                calls: None,
                route: route.path,
                verifiable: route.verifiable,
                policy,
                payment: payment.clone(),
            },
            id.clone(),
        )?;
        let record = RecordOf {
            id: &id,
            route: route.path.to_string(),
            agent: None,
            code_hash: opened.program.hash(),
            caller_hash: opened.caller.key_hash(),
            started_ms: unix_millis().saturating_sub(doc.duration_us / 1000),
            commitment: Some(outcome.result.result_commitment.clone()),
            payment,
        };
        let record = record.of_document(doc);
        // The execution routes charge every run that gave a result (a guest stopped by its
        // limits consumed the compute).
        outcome.settlement = self.conclude(Some(record), reservation).await?;
        outcome.into_result()
    }
}

/// What the policy calls a kind of program.
pub(super) fn policy_kind(kind: WireKind) -> ProgramKind {
    match kind {
        WireKind::Wasm => ProgramKind::WasmComponent,
        WireKind::Riscv => ProgramKind::RiscvProgram,
    }
}

/// How an execution route presents itself to the policy.
pub(super) fn route_subject(route: RouteKind, kind: ProgramKind) -> Subject<'static> {
    Subject {
        route: route.path,
        verifiable: route.verifiable,
        kind,
        agent: None,
    }
}
