//! The steps every code-running route shares: **session** and **open** (find the session,
//! decode and decrypt every field under its role, resolve the limits) before the route runs its
//! code, and **seal** and **receipt** after.

use std::sync::Arc;

use bytes::Bytes;

use hypervisor_protocol::attest::{StatementKind, as_refs};
use hypervisor_protocol::envelope::nonce_of;
use hypervisor_protocol::wire::{
    AppliedLimits, EncryptedResult, ExecuteRequest, ExecutionResult, ExitStatus, Limits,
    PythonRequest, Receipt, decode_hex,
};
use hypervisor_protocol::{EncodedPublicKey, Envelope, InputDigests, Role, result_commitment};
use uuid::Uuid;

use super::payment::SettlementHeader;
use super::{Pipeline, resolve_limits};
use crate::attestation::signer::unix_now;
use crate::engine::RunLimits;
use crate::error::ApiError;
use crate::session::Session;

/// Which route is running code, whether it must produce a receipt, and whether it is paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteKind {
    /// The route path, bound into the receipt and shown to the policy.
    pub path: &'static str,
    /// Verifiable routes need a verifiable session and return a signed receipt.
    pub verifiable: bool,
    /// Paid routes need an x402 payment.
    pub paid: bool,
}

impl RouteKind {
    /// `/test/execute/wasm`.
    pub const TEST: Self = Self {
        path: "/test/execute/wasm",
        verifiable: false,
        paid: false,
    };
    /// `/verifiable/execute/wasm`.
    pub const VERIFIABLE: Self = Self {
        path: "/verifiable/execute/wasm",
        verifiable: true,
        paid: false,
    };
    /// `/test/policy/unsafe/python`.
    pub const PYTHON: Self = Self {
        path: "/test/policy/unsafe/python",
        verifiable: false,
        paid: false,
    };
    /// `/x402_execute/test/wasm`: `/test/execute/wasm`, paid.
    pub const PAID_TEST: Self = Self {
        path: "/x402_execute/test/wasm",
        verifiable: false,
        paid: true,
    };
    /// `/x402_execute/verifiable/wasm`: `/verifiable/execute/wasm`, paid.
    pub const PAID_VERIFIABLE: Self = Self {
        path: "/x402_execute/verifiable/wasm",
        verifiable: true,
        paid: true,
    };
    /// `/x402_policy/unsafe/python`: `/test/policy/unsafe/python`, paid.
    pub const PAID_PYTHON: Self = Self {
        path: "/x402_policy/unsafe/python",
        verifiable: false,
        paid: true,
    };
    /// `/test/policy/unsafe/python/attest`.
    pub const PYTHON_ATTEST: Self = Self {
        path: "/test/policy/unsafe/python/attest",
        verifiable: true,
        paid: false,
    };
}

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
        })
    }
}

/// The encrypted fields of a request, as they arrived.
pub(super) struct Sealed<'a> {
    /// Name of the program field, for error messages (`encrypted_wasm`, `encrypted_python`).
    pub program_field: &'static str,
    pub program: &'a str,
    pub arguments: &'a [String],
    pub stdin: Option<&'a str>,
    pub public_key: &'a str,
    pub session_id: Option<Uuid>,
    pub limits: Option<&'a Limits>,
}

impl<'a> Sealed<'a> {
    /// The fields of a component execution request.
    pub(super) fn wasm(req: &'a ExecuteRequest) -> Self {
        Self {
            program_field: "encrypted_wasm",
            program: &req.encrypted_wasm,
            arguments: &req.encrypted_arguments,
            stdin: req.encrypted_stdin.as_deref(),
            public_key: &req.public_key,
            session_id: req.session_id,
            limits: req.limits.as_ref(),
        }
    }

    /// The fields of a Python script request.
    pub(super) fn python(req: &'a PythonRequest) -> Self {
        Self {
            program_field: "encrypted_python",
            program: &req.encrypted_python,
            arguments: &req.encrypted_arguments,
            stdin: req.encrypted_stdin.as_deref(),
            public_key: &req.public_key,
            session_id: req.session_id,
            limits: req.limits.as_ref(),
        }
    }
}

/// A request after the session, open and limits steps.
pub(super) struct Opened {
    pub session: Arc<Session>,
    pub client_key: EncodedPublicKey,
    /// The plaintext program (shared with the compile cache without a copy).
    pub program: Arc<Vec<u8>>,
    /// Arguments, UTF-8 checked.
    pub args: Vec<String>,
    pub stdin: Bytes,
    pub digests: InputDigests,
    pub limits: RunLimits,
}

impl Opened {
    /// Total plaintext input size (arguments and stdin), bytes.
    pub fn input_size(&self) -> u64 {
        let args: usize = self.args.iter().map(String::len).sum();
        u64::try_from(args + self.stdin.len()).unwrap_or(u64::MAX)
    }
}

impl Pipeline {
    /// Steps 1–3: session, open, limits.
    pub(super) fn open(&self, req: Sealed<'_>, route: RouteKind) -> Result<Opened, ApiError> {
        // 1. session
        let client_key = EncodedPublicKey::from_hex("public_key", req.public_key)?;
        let session = self.sessions.lookup(req.session_id, &client_key)?;
        if route.verifiable && session.attested.is_none() {
            return Err(ApiError::SessionNotVerifiable(session.id));
        }

        // 2. open: decode everything first (cheap), then decrypt each field under its role.
        self.check_argument_count(req.arguments.len())?;
        let program_ct = decode_hex(req.program_field, req.program)?;
        let arg_cts = req
            .arguments
            .iter()
            .enumerate()
            .map(|(i, a)| decode_hex(&format!("encrypted_arguments[{i}]"), a))
            .collect::<Result<Vec<_>, _>>()?;
        let stdin_ct = req
            .stdin
            .map(|s| decode_hex("encrypted_stdin", s))
            .transpose()?;

        let envelope = Envelope::new(&session.key, session.id);
        let program = envelope.open(Role::Program, &program_ct)?;
        let mut raw_args = Vec::with_capacity(arg_cts.len());
        for (i, ct) in arg_cts.iter().enumerate() {
            let index = u32::try_from(i)
                .map_err(|_| ApiError::InvalidRequest("too many arguments".into()))?;
            raw_args.push(envelope.open(Role::Argument(index), ct)?);
        }
        let stdin = match &stdin_ct {
            Some(ct) => envelope.open(Role::Stdin, ct)?,
            None => Vec::new(),
        };
        let digests = InputDigests::compute(&program, &raw_args, &stdin);
        let args = raw_args
            .into_iter()
            .enumerate()
            .map(|(i, a)| {
                String::from_utf8(a).map_err(|_| {
                    ApiError::InvalidArgument(format!(
                        "argument {i} is not valid UTF-8 (arguments are strings)"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;

        // 3. limits
        let limits = resolve_limits(req.limits, &self.config.limits, self.engine.fuel_enabled())?;
        Ok(Opened {
            session,
            client_key,
            program: Arc::new(program),
            args,
            stdin: Bytes::from(stdin),
            digests,
            limits,
        })
    }

    /// Steps 7–8: encode and seal the result document, commit to it, and on verifiable routes
    /// sign and record the receipt (with the policy's record and the payment reference).
    pub(super) fn seal(
        &self,
        opened: &Opened,
        route: RouteKind,
        doc: &ExecutionResult,
        policy: Option<String>,
        payment: Option<String>,
    ) -> Result<ExecuteOutcome, ApiError> {
        let session = &opened.session;
        let plaintext = serde_json::to_vec(doc)
            .map_err(|e| ApiError::Internal(format!("cannot encode result: {e}")))?;
        let sealed = Envelope::new(&session.key, session.id).seal(Role::Result, &plaintext)?;
        let commitment = result_commitment(&session.id, &opened.digests, &plaintext);
        let result = EncryptedResult {
            session_id: session.id,
            result_nonce: hex::encode(nonce_of(&sealed).unwrap_or_default()),
            encrypted_result: hex::encode(&sealed),
            result_commitment: hex::encode(commitment),
        };
        let status = doc.status;
        tracing::info!(
            session = %session.id,
            route = route.path,
            status = ?status,
            duration_us = doc.duration_us,
            "execution finished"
        );
        let receipt = if route.verifiable {
            let r = self.receipt(opened, route, &commitment, doc, policy, payment)?;
            self.receipts.record(r.clone());
            Some(r)
        } else {
            None
        };
        Ok(ExecuteOutcome {
            result,
            receipt,
            settlement: None,
            status,
            execution_id: String::new(),
        })
    }

    /// Builds and signs the receipt of one execution with the session's attested key.
    fn receipt(
        &self,
        opened: &Opened,
        route: RouteKind,
        commitment: &[u8; 32],
        doc: &ExecutionResult,
        policy: Option<String>,
        payment: Option<String>,
    ) -> Result<Receipt, ApiError> {
        let session = &opened.session;
        let key = session
            .attested
            .as_ref()
            .ok_or(ApiError::SessionNotVerifiable(session.id))?;
        let digests = &opened.digests;
        let mut receipt = Receipt {
            version: 1,
            session_id: session.id,
            sequence: session.next_sequence(),
            route: route.path.to_string(),
            program_sha256: hex::encode(digests.program),
            argument_sha256: digests.arguments.iter().map(hex::encode).collect(),
            stdin_sha256: hex::encode(digests.stdin),
            result_commitment: hex::encode(commitment),
            status: doc.status,
            limits: doc.limits,
            issued_at: unix_now(),
            policy,
            payment,
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

/// The limits as recorded in results and receipts.
pub(super) fn limits_applied(l: &RunLimits) -> AppliedLimits {
    AppliedLimits {
        time_ms: u64::try_from(l.time.as_millis()).unwrap_or(u64::MAX),
        memory_bytes: l.memory_bytes,
        fuel: l.fuel,
    }
}

impl Pipeline {
    /// Refuses more arguments than `http.max_arguments`, on every route that takes them.
    pub(super) fn check_argument_count(&self, n: usize) -> Result<(), ApiError> {
        let max = self.config.http.max_arguments;
        if n > max {
            return Err(ApiError::InvalidRequest(format!(
                "{n} arguments exceed this host's maximum of {max}"
            )));
        }
        Ok(())
    }
}
