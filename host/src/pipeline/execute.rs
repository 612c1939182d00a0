//! The execution routes: `POST /test/execute/wasm` and `POST /verifiable/execute/wasm` (and,
//! with payments, their paid twins): run an encrypted command component.

use std::sync::Arc;

use bytes::Bytes;
use hypervisor_protocol::attest::{StatementKind, as_refs};
use hypervisor_protocol::envelope::nonce_of;
use hypervisor_protocol::wire::{
    AppliedLimits, EncryptedResult, ExecuteRequest, ExecutionResult, ExitStatus, Receipt,
    decode_hex,
};
use hypervisor_protocol::{EncodedPublicKey, Envelope, InputDigests, Role, result_commitment};

use super::{Pipeline, resolve_limits};
use crate::attestation::signer::unix_now;
use crate::engine::{CommandInput, RunLimits, RunOutcome};
use crate::error::ApiError;
use crate::session::Session;

/// Which route is executing, and whether it must produce a receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteKind {
    /// The route path, bound into the receipt.
    pub path: &'static str,
    /// Verifiable routes need a verifiable session and return a signed receipt.
    pub verifiable: bool,
}

impl RouteKind {
    /// `/test/execute/wasm`.
    pub const TEST: Self = Self {
        path: "/test/execute/wasm",
        verifiable: false,
    };
    /// `/verifiable/execute/wasm`.
    pub const VERIFIABLE: Self = Self {
        path: "/verifiable/execute/wasm",
        verifiable: true,
    };
}

/// `argv[0]` given to every command.
pub const ARGV0: &str = "main.wasm";

/// A finished execution: the encrypted result, its receipt on verifiable routes, and how the
/// guest ended (the front turns a stopped guest into an error response carrying the same
/// encrypted result and receipt).
#[derive(Debug)]
pub struct ExecuteOutcome {
    /// What goes back to the client.
    pub result: EncryptedResult,
    /// The signed receipt (verifiable routes).
    pub receipt: Option<Receipt>,
    /// How the guest ended.
    pub status: ExitStatus,
}

impl Pipeline {
    /// Runs an encrypted command component. A guest that exits (with any code) is a success;
    /// one stopped by a limit or a trap is [`ApiError::GuestStopped`], which still carries the
    /// encrypted output.
    ///
    /// # Errors
    /// Every [`ApiError`] a malformed, unauthorised or undecryptable request can cause, engine
    /// errors for bad components, and [`ApiError::GuestStopped`].
    pub async fn execute_wasm(
        &self,
        req: ExecuteRequest,
        route: RouteKind,
    ) -> Result<ExecuteOutcome, ApiError> {
        // 1. session
        let client_key = EncodedPublicKey::from_hex("public_key", &req.public_key)?;
        let session = self.sessions.lookup(req.session_id, &client_key)?;
        if route.verifiable && session.attested.is_none() {
            return Err(ApiError::SessionNotVerifiable(session.id));
        }

        // 2. open: decode everything first (cheap), then decrypt each field under its role.
        if req.encrypted_arguments.len() > self.config.http.max_arguments {
            return Err(ApiError::InvalidRequest(format!(
                "{} arguments exceed this host's maximum of {}",
                req.encrypted_arguments.len(),
                self.config.http.max_arguments
            )));
        }
        let wasm_ct = decode_hex("encrypted_wasm", &req.encrypted_wasm)?;
        let arg_cts = req
            .encrypted_arguments
            .iter()
            .enumerate()
            .map(|(i, a)| decode_hex(&format!("encrypted_arguments[{i}]"), a))
            .collect::<Result<Vec<_>, _>>()?;
        let stdin_ct = req
            .encrypted_stdin
            .as_deref()
            .map(|s| decode_hex("encrypted_stdin", s))
            .transpose()?;

        let envelope = Envelope::new(&session.key, session.id);
        let wasm = envelope.open(Role::Program, &wasm_ct)?;
        let mut args = Vec::with_capacity(arg_cts.len());
        for (i, ct) in arg_cts.iter().enumerate() {
            let index = u32::try_from(i)
                .map_err(|_| ApiError::InvalidRequest("too many arguments".into()))?;
            args.push(envelope.open(Role::Argument(index), ct)?);
        }
        let stdin = match &stdin_ct {
            Some(ct) => envelope.open(Role::Stdin, ct)?,
            None => Vec::new(),
        };
        let digests = InputDigests::compute(&wasm, &args, &stdin);
        let mut argv = Vec::with_capacity(args.len() + 1);
        argv.push(ARGV0.to_string());
        for (i, a) in args.into_iter().enumerate() {
            argv.push(String::from_utf8(a).map_err(|_| {
                ApiError::InvalidArgument(format!(
                    "argument {i} is not valid UTF-8 (WASI arguments are strings)"
                ))
            })?);
        }

        // 3. limits
        let limits = resolve_limits(
            req.limits.as_ref(),
            &self.config.limits,
            self.engine.fuel_enabled(),
        )?;

        // 4. admission: the policy component (and payment verification on paid routes) will
        //    decide here, on metadata only, before anything is compiled or run.

        // 5. prepare
        let prepared = self
            .engine
            .prepare_command(digests.program, Arc::new(wasm))
            .await?;

        // 6. run
        let outcome = self
            .engine
            .run_command(
                &prepared,
                CommandInput {
                    args: argv,
                    stdin: Bytes::from(stdin),
                    limits,
                },
            )
            .await?;

        // 7. seal
        let status = outcome.status;
        let applied = limits_applied(&limits);
        let plaintext = encode_result(&outcome, applied)?;
        let sealed = envelope.seal(Role::Result, &plaintext)?;
        let commitment = result_commitment(&session.id, &digests, &plaintext);
        let result = EncryptedResult {
            session_id: session.id,
            result_nonce: hex::encode(nonce_of(&sealed).unwrap_or_default()),
            encrypted_result: hex::encode(&sealed),
            result_commitment: hex::encode(commitment),
        };
        tracing::info!(
            session = %session.id,
            status = ?status,
            duration_us = outcome.duration.as_micros() as u64,
            "execution finished"
        );

        // 8. receipt
        let receipt = if route.verifiable {
            let r = self.receipt(&session, route, &digests, &commitment, status, applied)?;
            self.receipts.record(r.clone());
            Some(r)
        } else {
            None
        };
        if status == ExitStatus::Exited {
            Ok(ExecuteOutcome {
                result,
                receipt,
                status,
            })
        } else {
            Err(ApiError::GuestStopped {
                status,
                result: Box::new(result),
                receipt: receipt.map(Box::new),
            })
        }
    }

    /// Builds and signs the receipt of one execution with the session's attested key.
    fn receipt(
        &self,
        session: &Session,
        route: RouteKind,
        digests: &InputDigests,
        commitment: &[u8; 32],
        status: ExitStatus,
        limits: AppliedLimits,
    ) -> Result<Receipt, ApiError> {
        let key = session
            .attested
            .as_ref()
            .ok_or(ApiError::SessionNotVerifiable(session.id))?;
        let mut receipt = Receipt {
            version: 1,
            session_id: session.id,
            sequence: session.next_sequence(),
            route: route.path.to_string(),
            program_sha256: hex::encode(digests.program),
            argument_sha256: digests.arguments.iter().map(hex::encode).collect(),
            stdin_sha256: hex::encode(digests.stdin),
            result_commitment: hex::encode(commitment),
            status,
            limits,
            issued_at: unix_now(),
            // Filled by the policy and payment stages when they exist.
            policy: None,
            payment: None,
            signing_key: key.public.to_hex(),
            signature: String::new(),
        };
        let fields = receipt.signed_fields()?;
        receipt.signature = hex::encode(
            key.sign(StatementKind::Receipt, &as_refs(&fields))
                .map_err(|e| ApiError::Internal(e.to_string()))?,
        );
        Ok(receipt)
    }
}

fn limits_applied(l: &RunLimits) -> AppliedLimits {
    AppliedLimits {
        time_ms: u64::try_from(l.time.as_millis()).unwrap_or(u64::MAX),
        memory_bytes: l.memory_bytes,
        fuel: l.fuel,
    }
}

/// The plaintext result document (see `docs/PROTOCOL.md`).
fn encode_result(o: &RunOutcome, limits: AppliedLimits) -> Result<Vec<u8>, ApiError> {
    let doc = ExecutionResult {
        version: 1,
        status: o.status,
        exit_code: o.exit_code,
        stdout: ExecutionResult::encode_output(&o.stdout),
        stderr: ExecutionResult::encode_output(&o.stderr),
        stdout_truncated: o.stdout_truncated,
        stderr_truncated: o.stderr_truncated,
        duration_us: u64::try_from(o.duration.as_micros()).unwrap_or(u64::MAX),
        trap: o.trap.clone(),
        limits,
        fuel_consumed: o.fuel_consumed,
    };
    serde_json::to_vec(&doc).map_err(|e| ApiError::Internal(format!("cannot encode result: {e}")))
}
