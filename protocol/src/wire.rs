//! JSON messages of the HTTP API, and the plaintext execution result.
//!
//! Binary values travel as lowercase hex (uppercase is accepted on input). Requests reject
//! unknown fields, so a misspelt field is an error rather than silently ignored.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ProtocolError;
use crate::codes::{ErrorCode, UnknownErrorCode};

/// Decodes a hex field, naming the field in the error: hex digits only, in either case, an
/// even number of them (PROTOCOL §1). A `0x` prefix is refused, so that each value has one
/// accepted spelling up to case (the `hex` crate in use, const-hex, would accept it).
///
/// # Errors
/// [`ProtocolError::Hex`].
pub fn decode_hex(field: &str, value: &str) -> Result<Vec<u8>, ProtocolError> {
    let bad = |reason: String| ProtocolError::Hex {
        field: field.to_string(),
        reason,
    };
    if value.len() >= 2 && value.as_bytes()[..2].eq_ignore_ascii_case(b"0x") {
        return Err(bad(
            "a 0x prefix is not accepted: hex digits only (PROTOCOL §1)".to_string(),
        ));
    }
    // const-hex checks every digit itself (vectorised): a program's hex is hundreds of
    // kilobytes, and a byte-by-byte scan before it cost more than the rest of an execution.
    // Only a refused value is scanned, to name the offending offset.
    hex::decode(value).map_err(
        |e| match value.bytes().position(|b| !b.is_ascii_hexdigit()) {
            Some(at) => bad(format!("not a hex digit at offset {at}")),
            None => bad(e.to_string()),
        },
    )
}

/// Decodes a hex field that must hold exactly 32 bytes (a SHA-256 hash or a commitment).
///
/// # Errors
/// [`ProtocolError::Hex`] if it is not hex or not 32 bytes long.
pub fn decode_hash(field: &str, value: &str) -> Result<[u8; 32], ProtocolError> {
    let bytes = decode_hex(field, value)?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| ProtocolError::Hex {
        field: field.to_string(),
        reason: format!("expected 32 bytes (64 hex digits), got {}", bytes.len()),
    })
}

/// `POST /encrypt/create_keypair` (and the verifiable variant) request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKeypairRequest {
    /// The client's P-256 public key, SEC1 (compressed or uncompressed), hex.
    pub pubkey: String,
}

/// `POST /encrypt/create_keypair` response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateKeypairResponse {
    /// The server's session public key, SEC1 uncompressed, hex.
    pub session_pubkey: String,
    /// The session id (UUID v7).
    pub session_id: Uuid,
    /// Seconds until the session expires.
    pub expires_in_seconds: u64,
}

/// Resource limits a request may ask for. Each is capped by the operator's maximum; absent
/// means the operator's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Wall-clock limit in milliseconds (at least 1).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "positive"
    )]
    pub time_ms: Option<u64>,
    /// Linear-memory limit in bytes (at least 1).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "positive"
    )]
    pub memory_bytes: Option<u64>,
    /// Fuel budget (only when the host enables fuel metering; at least 1).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "positive"
    )]
    pub fuel: Option<u64>,
}

/// A limit is absent (the host's default) or at least 1: a zero is refused while the request is
/// parsed, before anything else (a payment, a session) is looked at.
fn positive<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Option::<u64>::deserialize(d)? {
        Some(0) => Err(serde::de::Error::custom(
            "a limit must be at least 1 (leave it out for the host's default)",
        )),
        other => Ok(other),
    }
}

pub use crate::program::ProgramKind;

/// `POST /test/execute/wasm` request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecuteRequest {
    /// Envelope (role program) of the program, hex: a WebAssembly component or a RISC-V ELF
    /// file. Required in a JSON body; left out (empty) when a multipart upload carries the
    /// envelope as its binary part of the same name (docs/PROTOCOL.md, "Binary uploads").
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub encrypted_wasm: String,
    /// The program's kind, if the client says (absent: recognised by its first bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program_kind: Option<ProgramKind>,
    /// Envelopes (role argument i) of the arguments, hex. `argv[0]` is supplied by the host.
    #[serde(
        default,
        deserialize_with = "crate::bounded::vec::<_, _, { crate::bounded::MAX_ARGUMENTS }>"
    )]
    pub encrypted_arguments: Vec<String>,
    /// Envelope (role stdin) of standard input, hex. Absent means empty stdin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted_stdin: Option<String>,
    /// The client's public key, as given to `create_keypair`, hex.
    pub public_key: String,
    /// The session to use. Absent: the newest live session of `public_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<Uuid>,
    /// Limits asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
}

/// `POST /test/policy/unsafe/python` (and `/attest`) request: a Python script and its
/// arguments, encrypted like an execution (the script under role program).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PythonRequest {
    /// Envelope (role program) of the script's UTF-8 source, hex. Required in a JSON body;
    /// left out (empty) when a multipart upload carries the envelope as its binary part of the
    /// same name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub encrypted_python: String,
    /// Envelopes (role argument i) of the arguments (`ARGS[i]`), hex.
    #[serde(
        default,
        deserialize_with = "crate::bounded::vec::<_, _, { crate::bounded::MAX_ARGUMENTS }>"
    )]
    pub encrypted_arguments: Vec<String>,
    /// Envelope (role stdin) of the script's standard input, hex. Absent means empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted_stdin: Option<String>,
    /// The client's public key, hex.
    pub public_key: String,
    /// The session to use. Absent: the newest live session of `public_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<Uuid>,
    /// Limits asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
}

/// The encrypted result of an execution, as returned by the execute routes (also embedded in
/// error bodies when a guest was stopped).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EncryptedResult {
    /// The session used.
    pub session_id: Uuid,
    /// Envelope (role result) of the [`ExecutionResult`] JSON, hex.
    pub encrypted_result: String,
    /// The envelope's nonce (its first 12 bytes), hex; repeated for clients of the original
    /// design.
    pub result_nonce: String,
    /// SHA-256 commitment (see [`crate::commitment`]), hex.
    pub result_commitment: String,
}

/// How an execution ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitStatus {
    /// The program returned; `exit_code` says how.
    Exited,
    /// Stopped at the time limit.
    TimeLimitExceeded,
    /// Trapped after its memory limit refused to grow.
    MemoryLimitExceeded,
    /// Ran out of fuel.
    FuelExhausted,
    /// Trapped (unreachable, out-of-bounds access, stack exhaustion, ...).
    Trapped,
}

impl ExitStatus {
    /// The status a process reports for this ending (the CLI's and `hypervisor run`'s): the
    /// program's own `exit_code` (clamped to 0–255) when it exited, else 124 time limit, 125
    /// trap, 137 memory limit, 152 fuel.
    pub fn process_code(self, exit_code: Option<i32>) -> u8 {
        match self {
            Self::Exited => u8::try_from(exit_code.unwrap_or(0).clamp(0, 255)).unwrap_or(1),
            Self::TimeLimitExceeded => 124,
            Self::Trapped => 125,
            Self::MemoryLimitExceeded => 137,
            Self::FuelExhausted => 152,
        }
    }
}

/// The plaintext of `encrypted_result`: UTF-8 JSON.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExecutionResult {
    /// Format version, 1.
    pub version: u32,
    /// How the execution ended.
    pub status: ExitStatus,
    /// Exit code when `status` is `exited`, absent otherwise. WASI 0.2 commands report only
    /// success (0) or failure (1); a host-side `exit(n)` through unstable interfaces may give
    /// other values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Captured standard output, standard base64.
    pub stdout: String,
    /// Captured standard error, standard base64.
    pub stderr: String,
    /// Whether stdout exceeded the capture limit and was cut.
    pub stdout_truncated: bool,
    /// Whether stderr exceeded the capture limit and was cut.
    pub stderr_truncated: bool,
    /// Wall-clock duration of the execution (instantiation and run), microseconds.
    pub duration_us: u64,
    /// For a trap: what happened (trap code and guest backtrace). Only ever sent encrypted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trap: Option<String>,
    /// The limits that were applied.
    pub limits: AppliedLimits,
    /// Fuel consumed, when fuel metering was on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel_consumed: Option<u64>,
    /// Python routes: the value `main(ARGS)` returned, when the script defines `main` and it
    /// returned something other than `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub returned: Option<serde_json::Value>,
    /// Python routes: the exception that escaped the script (then `exit_code` is 1, or the
    /// status is `memory_limit_exceeded` for a `MemoryError` at the memory limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception: Option<ScriptException>,
}

/// A result document holds a run's output in the clear (on the host before it is sealed, on
/// the client after it is opened): its texts are wiped when it is dropped.
impl Drop for ExecutionResult {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.stdout.zeroize();
        self.stderr.zeroize();
        if let Some(t) = &mut self.trap {
            t.zeroize();
        }
        if let Some(e) = &mut self.exception {
            e.kind.zeroize();
            e.message.zeroize();
            e.traceback.zeroize();
        }
    }
}

/// An exception that escaped a Python script.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ScriptException {
    /// The exception's type name, e.g. `ZeroDivisionError`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `str()` of the exception.
    pub message: String,
    /// The traceback as Python formats it.
    pub traceback: String,
}

/// Limits as applied to an execution.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct AppliedLimits {
    /// Wall-clock limit, milliseconds.
    pub time_ms: u64,
    /// Linear-memory limit, bytes.
    pub memory_bytes: u64,
    /// Fuel budget, if metering was on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
}

impl ExecutionResult {
    /// Decoded stdout bytes.
    ///
    /// # Errors
    /// If the field is not valid base64.
    pub fn stdout_bytes(&self) -> Result<Vec<u8>, base64::DecodeError> {
        base64::engine::general_purpose::STANDARD.decode(&self.stdout)
    }

    /// Decoded stderr bytes.
    ///
    /// # Errors
    /// If the field is not valid base64.
    pub fn stderr_bytes(&self) -> Result<Vec<u8>, base64::DecodeError> {
        base64::engine::general_purpose::STANDARD.decode(&self.stderr)
    }

    /// Encodes captured output for the `stdout`/`stderr` fields.
    pub fn encode_output(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }
}

/// The error body of every non-2xx response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// The error.
    pub error: ErrorDetail,
    /// When a guest was stopped (time, memory, trap), what it produced until then, encrypted
    /// like a normal result.
    #[serde(default, skip_serializing_if = "Option::is_none", flatten)]
    pub result: Option<EncryptedResult>,
    /// On verifiable routes, the signed receipt of the stopped execution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_quote: Option<Receipt>,
}

/// `{"code", "message"}` of an error.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable machine-readable code (see `docs/PROTOCOL.md`), typed by
    /// [`ErrorDetail::error_code`]. A string, so that a newer host's code still deserialises.
    pub code: String,
    /// Human explanation. Never contains plaintext of code, inputs or results.
    pub message: String,
}

impl ErrorDetail {
    /// [`ErrorDetail::code`] typed.
    ///
    /// # Errors
    /// [`UnknownErrorCode`] for a code this version does not know (a newer host's).
    pub fn error_code(&self) -> Result<ErrorCode, UnknownErrorCode> {
        self.code.parse()
    }
}

/// The host's attested signing key and the evidence binding it (`GET /attestation`, and the
/// core of every session quote).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Attestation {
    /// `tdx`, `sev-snp` or `simulated`.
    pub tee: String,
    /// True for simulated evidence, which proves nothing. Verifiers reject it by default.
    pub simulated: bool,
    /// Evidence encoding: `tdx-dcap-quote`, `sev-snp-report`, `simulated-not-for-production`.
    pub evidence_format: String,
    /// The evidence, hex.
    pub evidence: String,
    /// The 64 bytes of REPORTDATA the evidence carries, hex (see [`crate::attest`]).
    pub report_data: String,
    /// The attested P-256 signing key, SEC1 uncompressed, hex.
    pub signing_key: String,
    /// SHA-256 of the host binary, hex: the host's own **claim**, written by the host itself.
    /// It proves nothing alone; a verifier compares it with a reference value set
    /// ([`crate::reference`]), whose platform-measured values do the proving.
    pub host_measurement: String,
    /// When the signing key was created (Unix seconds); bound in REPORTDATA.
    pub key_created_at: u64,
    /// The measurement event log (TDX and simulated evidence): dstack's JSON form, a JSON array
    /// of `{imr, event_type, digest, event, event_payload}` (`docs/PROTOCOL.md` §12c). Not
    /// trusted: verifiers replay it and require the result to equal the evidence's RTMRs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_log: Option<String>,
}

/// The `quote` of a verifiable session: the attestation plus the key's signature over the
/// session statement.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SessionQuote {
    /// The attested key and its evidence.
    pub attestation: Attestation,
    /// Session creation time, Unix seconds.
    pub session_created_at: u64,
    /// Session expiry, Unix seconds.
    pub session_expires_at: u64,
    /// Signature (64 bytes `r || s`, hex) over the session statement.
    pub session_signature: String,
}

/// `GET /attestation/channel?nonce=HEX` response: the channel binding of [`crate::tls`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ChannelBinding {
    /// The attested key and its evidence.
    pub attestation: Attestation,
    /// The client's nonce, echoed (32 bytes, hex).
    pub nonce: String,
    /// SHA-256 of the DER certificate the host presented on this connection, hex.
    pub certificate_sha256: String,
    /// Whether the host generated that certificate itself (its private key never left the
    /// host's process) rather than loading it from files the operator provided.
    pub certificate_generated: bool,
    /// The host's audience (`GET /host`): the deployment the client reached, signed.
    pub audience: String,
    /// Signature (64 bytes `r || s`, hex) over the `TLS_CHANNEL` statement
    /// `[exporter, nonce, certificate_sha256, audience]`.
    pub signature: String,
}

/// `POST /verifiable/encrypt/create_keypair` response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerifiableKeypairResponse {
    /// The server's session public key, hex.
    pub session_pubkey: String,
    /// The session id.
    pub session_id: Uuid,
    /// Seconds until the session expires.
    pub expires_in_seconds: u64,
    /// The evidence chain for this session.
    pub quote: SessionQuote,
}

/// A signed execution receipt (`result_quote`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// Format version: [`RECEIPT_VERSION`] (3 signs `replica`; 2 signs `tee` and
    /// `evidence_sha256`; version 1 receipts signed neither and are no longer accepted).
    pub version: u32,
    /// The session.
    pub session_id: Uuid,
    /// Per-session sequence number, from 1.
    pub sequence: u64,
    /// The route that ran the program.
    pub route: String,
    /// SHA-256 of the plaintext program, hex.
    pub program_sha256: String,
    /// SHA-256 of each plaintext argument, hex.
    pub argument_sha256: Vec<String>,
    /// SHA-256 of stdin, hex.
    pub stdin_sha256: String,
    /// The result commitment, hex.
    pub result_commitment: String,
    /// How the execution ended.
    pub status: ExitStatus,
    /// Limits applied.
    pub limits: AppliedLimits,
    /// Issue time, Unix seconds.
    pub issued_at: u64,
    /// The policy decision (filled by the policy component; absent without one).
    #[serde(default)]
    pub policy: Option<String>,
    /// The payment reference (filled on paid routes).
    #[serde(default)]
    pub payment: Option<String>,
    /// The agent-to-agent calls the run made, in order (an agent's invocation that called
    /// other agents; absent otherwise, and then not in the signed fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls: Option<Vec<CallLink>>,
    /// The TEE whose evidence attests the signing key: `tdx`, `sev-snp` or `simulated`
    /// (signed from version 2).
    #[serde(default)]
    pub tee: String,
    /// SHA-256 of that evidence (the quote or report, the bytes of `evidence` in the
    /// attestation), hex (signed from version 2): which evidence the receipt stands on.
    #[serde(default)]
    pub evidence_sha256: String,
    /// The replica of a cluster that ran it (`cluster.replica_id`), empty for a host on its
    /// own (signed from version 3).
    #[serde(default)]
    pub replica: String,
    /// The attested key that signed, hex.
    pub signing_key: String,
    /// Signature over the receipt statement, hex.
    pub signature: String,
}

/// The receipt format this protocol issues.
pub const RECEIPT_VERSION: u32 = 3;

/// The oldest receipt format verifiers accept (version 2: without `replica`).
pub const OLDEST_RECEIPT_VERSION: u32 = 2;

impl Receipt {
    /// The fields the signature covers, in order (`docs/PROTOCOL.md` §14).
    ///
    /// The argument hashes are one field, concatenated without separators: that is unambiguous
    /// only because each is exactly 32 bytes, so any hash (argument, program, stdin) or
    /// commitment of another length is refused — by signers and verifiers alike.
    ///
    /// # Errors
    /// [`ProtocolError::Hex`] if a hash field is not hex, or not exactly 32 bytes
    /// (64 hex digits).
    pub fn signed_fields(&self) -> Result<Vec<Vec<u8>>, ProtocolError> {
        let mut args = Vec::with_capacity(32 * self.argument_sha256.len());
        for (i, a) in self.argument_sha256.iter().enumerate() {
            args.extend_from_slice(&decode_hash(&format!("argument_sha256[{i}]"), a)?);
        }
        let status = serde_json::to_value(self.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        Ok(vec![
            self.session_id.as_bytes().to_vec(),
            self.sequence.to_be_bytes().to_vec(),
            self.route.as_bytes().to_vec(),
            decode_hash("program_sha256", &self.program_sha256)?.to_vec(),
            args,
            decode_hash("stdin_sha256", &self.stdin_sha256)?.to_vec(),
            decode_hash("result_commitment", &self.result_commitment)?.to_vec(),
            status.into_bytes(),
            self.limits.time_ms.to_be_bytes().to_vec(),
            self.limits.memory_bytes.to_be_bytes().to_vec(),
            self.limits
                .fuel
                .map(|f| f.to_be_bytes().to_vec())
                .unwrap_or_default(),
            self.issued_at.to_be_bytes().to_vec(),
            self.policy.clone().unwrap_or_default().into_bytes(),
            self.payment.clone().unwrap_or_default().into_bytes(),
        ]
        .into_iter()
        // Version 2: the TEE and the evidence the signing key stands on.
        .chain(
            (self.version >= 2)
                .then(|| {
                    Ok::<_, ProtocolError>([
                        self.tee.as_bytes().to_vec(),
                        decode_hash("evidence_sha256", &self.evidence_sha256)?.to_vec(),
                    ])
                })
                .transpose()?
                .into_iter()
                .flatten(),
        )
        // Version 3: the replica that ran it.
        .chain((self.version >= 3).then(|| self.replica.as_bytes().to_vec()))
        // Only when present: a receipt without calls signs exactly the fields it always did.
        .chain(self.calls.as_deref().map(|c| calls_text(c).into_bytes()))
        .collect())
    }
}

/// One call an agent's run made to another agent (or a granted origin), as its receipt binds
/// it (`docs/PROTOCOL.md` §14, §18).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallLink {
    /// The callee: an agent's name, `hypervisor.internal`, or a remote origin.
    pub callee: String,
    /// The callee's execution id, when it ran.
    #[serde(default)]
    pub callee_execution: Option<String>,
    /// SHA-256 (hex) of the response body the caller received: for an invocation, the callee
    /// record's commitment.
    pub response_sha256: String,
    /// The settlement transaction of a paid call.
    #[serde(default)]
    pub transaction: Option<String>,
}

/// The signed text of a receipt's calls: per call, in order,
/// `callee "\n" (callee_execution | "-") "\n" response_sha256 "\n" (transaction | "-") "\n"`.
pub fn calls_text(calls: &[CallLink]) -> String {
    calls
        .iter()
        .map(|c| {
            format!(
                "{}\n{}\n{}\n{}\n",
                c.callee,
                c.callee_execution.as_deref().unwrap_or("-"),
                c.response_sha256,
                c.transaction.as_deref().unwrap_or("-"),
            )
        })
        .collect()
}

/// Response of the verifiable execution routes: the encrypted result plus its receipt.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerifiableResult {
    /// The encrypted result, as on the test routes.
    #[serde(flatten)]
    pub result: EncryptedResult,
    /// The signed receipt.
    pub result_quote: Receipt,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_limit_is_refused_while_parsing() {
        for field in ["time_ms", "memory_bytes", "fuel"] {
            let zero = format!(r#"{{"{field}": 0}}"#);
            let err = serde_json::from_str::<Limits>(&zero).unwrap_err();
            assert!(err.to_string().contains("at least 1"), "{field}: {err}");
            let one: Limits = serde_json::from_str(&format!(r#"{{"{field}": 1}}"#)).unwrap();
            assert_ne!(one, Limits::default());
        }
        assert_eq!(
            serde_json::from_str::<Limits>("{}").unwrap(),
            Limits::default()
        );
        assert_eq!(
            serde_json::from_str::<Limits>(r#"{"fuel": null}"#).unwrap(),
            Limits::default()
        );
    }

    fn receipt(arguments: Vec<String>) -> Receipt {
        Receipt {
            calls: None,
            tee: "simulated".into(),
            evidence_sha256: hex::encode([4u8; 32]),
            replica: String::new(),
            version: RECEIPT_VERSION,
            session_id: Uuid::nil(),
            sequence: 1,
            route: "/verifiable/execute/wasm".into(),
            program_sha256: hex::encode([1u8; 32]),
            argument_sha256: arguments,
            stdin_sha256: hex::encode([2u8; 32]),
            result_commitment: hex::encode([3u8; 32]),
            status: ExitStatus::Exited,
            limits: AppliedLimits {
                time_ms: 1,
                memory_bytes: 1,
                fuel: None,
            },
            issued_at: 1,
            policy: None,
            payment: None,
            signing_key: String::new(),
            signature: String::new(),
        }
    }

    #[test]
    fn receipt_hashes_must_be_exactly_32_bytes() {
        let two = vec![hex::encode([0xaa; 32]), hex::encode([0xbb; 32])];
        let fields = receipt(two.clone()).signed_fields().unwrap();
        assert_eq!(fields[4].len(), 64);
        // The same concatenation, split another way, or one hash too short or too long.
        let joined = two.concat();
        for arguments in [
            vec![joined[..48].to_string(), joined[48..].to_string()],
            vec![joined.clone()],
            vec![String::new(), joined.clone()],
            vec![hex::encode([0xaa; 31])],
            vec![hex::encode([0xaa; 33])],
        ] {
            let err = receipt(arguments.clone()).signed_fields().unwrap_err();
            assert!(
                matches!(&err, ProtocolError::Hex { field, reason }
                    if field.starts_with("argument_sha256[") && reason.contains("32 bytes")),
                "{arguments:?}: {err}"
            );
        }
        // No arguments at all is fine (an empty field).
        assert!(receipt(Vec::new()).signed_fields().unwrap()[4].is_empty());
        // The other hashes too.
        let mut r = receipt(two);
        r.program_sha256 = hex::encode([1u8; 16]);
        assert!(r.signed_fields().is_err());
    }

    #[test]
    fn decode_hash_takes_64_hex_digits_in_either_case() {
        assert_eq!(decode_hash("h", &"AB".repeat(32)).unwrap(), [0xab; 32]);
        assert!(decode_hash("h", &"ab".repeat(31)).is_err());
        assert!(decode_hash("h", &"ab".repeat(33)).is_err());
        assert!(decode_hash("h", "zz").is_err());
    }

    #[test]
    fn decode_hex_takes_digits_only_no_prefix_no_spaces() {
        assert_eq!(decode_hex("h", "00aBfF").unwrap(), [0x00, 0xab, 0xff]);
        assert_eq!(decode_hex("h", "").unwrap(), Vec::<u8>::new());
        for bad in [
            "0x00ab", "0X00ab", " 00ab", "00ab ", "00 ab", "0xx", "+0ab", "00a",
        ] {
            let err = decode_hex("h", bad).unwrap_err().to_string();
            assert!(err.contains("h"), "{bad:?}: {err}");
        }
        let err = decode_hex("pubkey", "0x02ab").unwrap_err().to_string();
        assert!(err.contains("0x prefix is not accepted"), "{err}");
        assert!(decode_hash("h", &format!("0x{}", "ab".repeat(31))).is_err());
    }
}
