//! JSON messages of the HTTP API, and the plaintext execution result.
//!
//! Binary values travel as lowercase hex (uppercase is accepted on input). Requests reject
//! unknown fields, so a misspelt field is an error rather than silently ignored.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ProtocolError;

/// Decodes a hex field, naming the field in the error.
///
/// # Errors
/// [`ProtocolError::Hex`].
pub fn decode_hex(field: &str, value: &str) -> Result<Vec<u8>, ProtocolError> {
    hex::decode(value).map_err(|e| ProtocolError::Hex {
        field: field.to_string(),
        reason: e.to_string(),
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
    /// Wall-clock limit in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_ms: Option<u64>,
    /// Linear-memory limit in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// Fuel budget (only when the host enables fuel metering).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
}

/// `POST /test/execute/wasm` request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecuteRequest {
    /// Envelope (role program) of the WebAssembly component, hex.
    pub encrypted_wasm: String,
    /// Envelopes (role argument i) of the arguments, hex. `argv[0]` is supplied by the host.
    #[serde(default)]
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
}

/// `{"code", "message"}` of an error.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable machine-readable code (see `docs/PROTOCOL.md`).
    pub code: String,
    /// Human explanation. Never contains plaintext of code, inputs or results.
    pub message: String,
}
