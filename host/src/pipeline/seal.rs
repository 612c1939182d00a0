//! After a run: the plaintext result document, **seal** (encrypt it for the session and
//! commit to it) and, on verifiable routes and sessions, the signed **receipt**.

use hypervisor_protocol::attest::{StatementKind, as_refs};
use hypervisor_protocol::envelope::nonce_of;
use hypervisor_protocol::wire::{
    AppliedLimits, EncryptedResult, ExecutionResult, ExitStatus, Receipt,
};
use hypervisor_protocol::{Envelope, InputDigests, Role, result_commitment};

use super::Pipeline;
use super::open::Opened;
use crate::attestation::AttestedKey;
use crate::clock::unix_seconds;
use crate::engine::{RunLimits, RunOutcome};
use crate::error::ApiError;
use crate::plugins::payments::SettlementHeader;

/// A finished execution: the encrypted result, its receipt on verifiable routes, the payment's
/// settlement on paid routes, and how the guest ended (the front turns a stopped guest into an
/// error response carrying the same encrypted result, receipt and settlement).
#[derive(Debug)]
pub struct ExecuteOutcome {
    /// What goes back to the client.
    pub result: EncryptedResult,
    /// The signed receipt (verifiable routes).
    pub receipt: Option<Receipt>,
    /// The settlement header (paid routes).
    pub settlement: Option<SettlementHeader>,
    /// How the guest ended.
    pub status: ExitStatus,
    /// The execution's record id (`GET /executions/{id}`), returned in `x-execution-id`.
    pub execution_id: String,
}

impl ExecuteOutcome {
    /// `Ok` for a guest that exited; [`ApiError::GuestStopped`] (carrying everything) for one
    /// stopped by a limit or a trap.
    pub(super) fn into_result(self) -> Result<Self, ApiError> {
        if self.status == ExitStatus::Exited {
            return Ok(self);
        }
        Err(ApiError::GuestStopped {
            status: self.status,
            result: Box::new(self.result),
            receipt: self.receipt.map(Box::new),
            settlement: self.settlement.map(Box::new),
            execution_id: self.execution_id,
        })
    }
}

/// What a sealed result binds besides the request: the route named in the receipt, whether a
/// receipt is signed, and the receipt's policy and payment fields.
pub(super) struct SealAs<'a> {
    /// The route (template) named in the receipt.
    pub route: &'a str,
    /// Sign a receipt (needs an attested session).
    pub verifiable: bool,
    /// The policy's receipt field.
    pub policy: Option<String>,
    /// The payment's receipt field.
    pub payment: Option<String>,
    /// The calls an agent's run made (none: not in the receipt).
    pub calls: Option<Vec<hypervisor_protocol::wire::CallLink>>,
}

impl Pipeline {
    /// Encodes and seals the result document for the request's session, commits to it, and
    /// when asked signs and records the receipt.
    pub(super) fn seal(
        &self,
        opened: &Opened,
        doc: &ExecutionResult,
        seal_as: SealAs<'_>,
        execution_id: String,
    ) -> Result<ExecuteOutcome, ApiError> {
        let session = opened
            .session()
            .ok_or_else(|| ApiError::Internal("sealing a request that has no session".into()))?;
        // The result document in the clear: wiped once sealed and committed to.
        let plaintext = zeroize::Zeroizing::new(
            serde_json::to_vec(doc)
                .map_err(|e| ApiError::Internal(format!("cannot encode result: {e}")))?,
        );
        let sealed = Envelope::new(&session.key, session.id).seal(Role::Result, &plaintext)?;
        let digests = opened.digests();
        let commitment = result_commitment(&session.id, &digests, &plaintext);
        let result = EncryptedResult {
            session_id: session.id,
            result_nonce: hex::encode(nonce_of(&sealed).unwrap_or_default()),
            encrypted_result: hex::encode(&sealed),
            result_commitment: hex::encode(commitment),
        };
        tracing::info!(
            session = %session.id,
            route = seal_as.route,
            status = ?doc.status,
            duration_us = doc.duration_us,
            "execution finished"
        );
        let receipt = if seal_as.verifiable {
            let key = session
                .attested
                .as_ref()
                .ok_or(ApiError::SessionNotVerifiable(session.id))?;
            Some(self.sign_receipt(
                key,
                ReceiptOf {
                    id: session.id,
                    sequence: session.next_sequence(),
                    route: seal_as.route,
                    digests: &digests,
                    commitment,
                    status: doc.status,
                    limits: doc.limits,
                    policy: seal_as.policy,
                    payment: seal_as.payment,
                    calls: seal_as.calls,
                },
            )?)
        } else {
            None
        };
        Ok(ExecuteOutcome {
            result,
            receipt,
            settlement: None,
            status: doc.status,
            execution_id,
        })
    }
}

/// What a receipt binds, besides the signing key's TEE and evidence.
pub(super) struct ReceiptOf<'a> {
    /// The session (or, for a clear invocation, the id it was asked for: an A2A task's).
    pub id: uuid::Uuid,
    /// Its per-session sequence number (1 for a clear invocation).
    pub sequence: u64,
    /// The route named.
    pub route: &'a str,
    /// The inputs' digests.
    pub digests: &'a InputDigests,
    /// The result commitment.
    pub commitment: [u8; 32],
    /// How the run ended.
    pub status: ExitStatus,
    /// The limits applied.
    pub limits: AppliedLimits,
    /// The policy's receipt field.
    pub policy: Option<String>,
    /// The payment's receipt field.
    pub payment: Option<String>,
    /// The calls the run made.
    pub calls: Option<Vec<hypervisor_protocol::wire::CallLink>>,
}

impl Pipeline {
    /// Signs a receipt with `key` and appends it to the receipt log.
    pub(super) fn sign_receipt(
        &self,
        key: &AttestedKey,
        of: ReceiptOf<'_>,
    ) -> Result<Receipt, ApiError> {
        let mut receipt = Receipt {
            version: hypervisor_protocol::wire::RECEIPT_VERSION,
            session_id: of.id,
            sequence: of.sequence,
            route: of.route.to_string(),
            program_sha256: hex::encode(of.digests.program),
            argument_sha256: of.digests.arguments.iter().map(hex::encode).collect(),
            stdin_sha256: hex::encode(of.digests.stdin),
            result_commitment: hex::encode(of.commitment),
            status: of.status,
            limits: of.limits,
            issued_at: unix_seconds(),
            policy: of.policy,
            payment: of.payment,
            calls: of.calls,
            tee: key.evidence.tee.name().to_string(),
            evidence_sha256: hex::encode(key.evidence_sha256),
            replica: self.replica_label().unwrap_or_default().to_string(),
            signing_key: key.public.to_hex(),
            signature: String::new(),
        };
        let fields = receipt.signed_fields()?;
        receipt.signature = hex::encode(
            key.sign(StatementKind::Receipt, &as_refs(&fields))
                .map_err(|e| ApiError::Internal(e.to_string()))?,
        );
        self.receipts.record(receipt.clone());
        Ok(receipt)
    }
}

/// The plaintext result document (see `docs/PROTOCOL.md`), without the Python fields.
pub(super) fn result_document(o: &RunOutcome, limits: &RunLimits) -> ExecutionResult {
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

/// The limits as recorded in results and receipts.
pub(super) fn limits_applied(l: &RunLimits) -> AppliedLimits {
    AppliedLimits {
        time_ms: u64::try_from(l.time.as_millis()).unwrap_or(u64::MAX),
        memory_bytes: l.memory_bytes,
        fuel: l.fuel,
    }
}
