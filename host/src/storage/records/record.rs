//! The execution record.

use serde::Serialize;

/// One execution or invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExecutionRecord {
    /// UUID v7.
    pub id: String,
    /// The route that ran it.
    pub route: String,
    /// The agent, for invocations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The agent's version, for invocations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_version: Option<u32>,
    /// SHA-256 of the component (or script) that ran, hex.
    pub code_hash: String,
    /// SHA-256 of the caller's public key (SEC1 bytes), hex; empty for anonymous calls.
    pub caller_hash: String,
    /// Start, Unix milliseconds.
    pub started_ms: u64,
    /// Duration, microseconds.
    pub duration_us: u64,
    /// How it ended (`exited`, `time_limit_exceeded`, …, or `error` for a handler error).
    pub status: String,
    /// The exit code, for commands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The result's SHA-256 commitment, hex, when there is a result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commitment: Option<String>,
    /// The payment reference (see the receipt's `payment`), for paid requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment: Option<String>,
}
