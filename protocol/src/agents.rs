//! Agents on the wire: deployment, search, invocation, and the owner's signatures
//! (`docs/PROTOCOL.md` §17).
//!
//! **Owner signatures.** Deploying in the clear, deleting an agent and reading its logs are
//! proven by an ECDSA P-256 / SHA-256 signature (64 bytes `r || s`, hex) made with the owner's
//! key over [`owner_message`]: the ASCII lines
//! `wasm-hypervisor/v1/agent-owner`, the action (`deploy`, `delete`, `logs`), the agent name,
//! the detail (the component's SHA-256 in hex for `deploy`, empty otherwise) and the signing
//! time in Unix seconds, joined by `\n`. The host accepts signing times within
//! [`OWNER_SIGNATURE_WINDOW_SECONDS`] of its clock. An encrypted deployment needs no signature:
//! only the holder of the key could have sealed the component to its session.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::wire::Limits;

/// How far a signing time may be from the host's clock, seconds.
pub const OWNER_SIGNATURE_WINDOW_SECONDS: u64 = 300;

/// Header carrying an owner signature (hex) on `DELETE /agents/{name}` and
/// `GET /agents/{name}/logs`.
pub const OWNER_SIGNATURE_HEADER: &str = "x-agent-signature";
/// Header carrying the signing time (Unix seconds) with [`OWNER_SIGNATURE_HEADER`].
pub const OWNER_SIGNED_AT_HEADER: &str = "x-agent-signed-at";
/// Header carrying the owner's public key (hex SEC1) with [`OWNER_SIGNATURE_HEADER`].
pub const OWNER_KEY_HEADER: &str = "x-agent-owner";

/// What an owner signature authorises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerAction {
    /// Deploy (or redeploy) in the clear.
    Deploy,
    /// Delete the agent.
    Delete,
    /// Read the agent's logs.
    Logs,
}

impl OwnerAction {
    /// The action's word in the signed message.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deploy => "deploy",
            Self::Delete => "delete",
            Self::Logs => "logs",
        }
    }
}

/// The bytes an owner signs.
pub fn owner_message(action: OwnerAction, name: &str, detail: &str, signed_at: u64) -> Vec<u8> {
    format!(
        "wasm-hypervisor/v1/agent-owner\n{}\n{name}\n{detail}\n{signed_at}",
        action.as_str()
    )
    .into_bytes()
}

/// Whether `name` is a valid agent name: 1–64 characters of `a-z`, `0-9` and `-`, starting
/// with a letter or digit.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
}

/// `POST /agent/deploy`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    /// Agent name (see [`valid_name`]); redeploying a name makes a new version.
    pub name: String,
    /// What it does (searched).
    #[serde(default)]
    pub description: String,
    /// Tags (searched).
    #[serde(default)]
    pub tags: Vec<String>,
    /// The owner's P-256 public key (SEC1, hex). For an encrypted deployment, also the key of
    /// the session the component is sealed to.
    pub public_key: String,
    /// The component in the clear, standard base64 (public agents). Exactly one of this and
    /// `encrypted_component` is present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// The component sealed to a session (envelope, role program, hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted_component: Option<String>,
    /// The session of `encrypted_component` (default: the newest of `public_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<Uuid>,
    /// Whether anyone may invoke it in the clear. Default: true for a clear deployment, false
    /// for an encrypted one (then invocations must be encrypted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public: Option<bool>,
    /// Default limits of its invocations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    /// Price per invocation in the payment asset's atomic units (x402), if paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<String>,
    /// Remove the agent this long after this deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
    /// Owner signature over `(deploy, name, sha256(component))` (clear deployments).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// Its signing time, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_at: Option<u64>,
}

/// `POST /search`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// Free text; words are matched against name, description and tags.
    pub query: String,
    /// Most results (default 10, at most 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// `POST /agents/{name}/invoke` (handler and CLI agents).
///
/// Clear (public agents): `event` for handlers, `args` / `stdin` for CLI agents. Encrypted:
/// `encrypted_event` (handler; envelope role stdin) or `encrypted_arguments` /
/// `encrypted_stdin` (CLI), with `public_key` and optionally `session_id`; the answer is then an
/// encrypted result as for executions, its commitment binding the agent's code hash as the
/// program.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvokeRequest {
    /// Handler event in the clear (any JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<serde_json::Value>,
    /// CLI arguments in the clear (`argv[0]` is the agent's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// CLI standard input in the clear (UTF-8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    /// Handler event sealed to a session (role stdin, hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted_event: Option<String>,
    /// CLI arguments sealed to a session (role argument i, hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted_arguments: Option<Vec<String>>,
    /// CLI standard input sealed to a session (role stdin, hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted_stdin: Option<String>,
    /// The caller's key (hex): required for encrypted invocations, optional otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// The session (default: the newest of `public_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<Uuid>,
    /// Limits asked for (default: the agent's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
}

/// The answer to a clear invocation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InvokeResponse {
    /// The execution's id (`GET /executions/{id}`).
    pub execution_id: String,
    /// Agent name.
    pub agent: String,
    /// Agent version that ran.
    pub version: u32,
    /// How it ended (`exited`, `time_limit_exceeded`, …).
    pub status: crate::wire::ExitStatus,
    /// Whether the handler returned a result (not an error) or the command exited 0.
    pub ok: bool,
    /// Handler: the result, as JSON when it parses as JSON, else as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// Handler: the error it returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<HandlerFailure>,
    /// CLI: the exit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// CLI: standard output (UTF-8, lossy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    /// Standard error (UTF-8, lossy).
    pub stderr: String,
    /// Instantiation plus run, microseconds.
    pub duration_us: u64,
}

/// A handler's error.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HandlerFailure {
    /// The handler's code.
    pub code: String,
    /// Its message.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_messages() {
        assert!(valid_name("arxiv") && valid_name("text-stats-2") && valid_name("0x"));
        assert!(!valid_name("") && !valid_name("-x") && !valid_name("Upper") && !valid_name("a/b"));
        assert!(!valid_name(&"a".repeat(65)));
        assert_eq!(
            owner_message(OwnerAction::Delete, "arxiv", "", 1_700_000_000),
            b"wasm-hypervisor/v1/agent-owner\ndelete\narxiv\n\n1700000000".to_vec()
        );
    }
}
