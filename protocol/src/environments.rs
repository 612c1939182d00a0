//! Assist TEE's environments API (`docs/PROTOCOL.md` §25): its request and response shapes,
//! field for field, so that its clients work unchanged against this host. An environment is a
//! JavaScript/TypeScript agent (§24) named `env-<id>`; these routes translate into the agent
//! routes' pipeline.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// The default lifetime of an environment, seconds (Assist's).
pub const DEFAULT_TTL_SECONDS: u64 = 3600;
/// The default time limit of an execution, milliseconds (Assist's).
pub const DEFAULT_TIMEOUT_MS: u64 = 5000;
/// The default memory limit of an execution, MiB (Assist's).
pub const DEFAULT_MEMORY_MB: u64 = 128;
/// The exit code of an execution stopped by its time limit (Assist's, as `timeout(1)`).
pub const EXIT_TIMEOUT: i32 = 124;
/// The exit code of an execution stopped by its memory limit (a killed process's, 128 + 9).
pub const EXIT_MEMORY: i32 = 137;
/// `stderr` of an execution stopped by its time limit (Assist's text).
pub const TIMEOUT_MESSAGE: &str = "Execution timeout exceeded";

/// The agent name of environment `id` (a lowercase hyphenated UUID).
pub fn agent_name(id: &uuid::Uuid) -> String {
    format!("env-{}", id.hyphenated())
}

/// `POST /environments/setup`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetupRequest {
    /// The module to evaluate first, a key of `modules`.
    #[serde(default)]
    pub main_module: String,
    /// Module path → source (JavaScript, or TypeScript for `.ts`/`.mts`).
    #[serde(default)]
    pub modules: BTreeMap<String, String>,
    /// Assist's runtime name (`deno`); recorded, this host runs its own JavaScript runtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// npm and deno.land dependencies: refused unless empty (nothing is downloaded inside the
    /// TEE; bundle dependencies into `modules`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependencies: Option<Value>,
    /// Deno-style permissions; only `allowNet` (a list of hosts, `host` or `host:port`, each
    /// granted as `https://host[:port]`) has an effect; `allowNet: true` is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Value>,
    /// Lifetime from creation, seconds (default 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
}

/// An environment, as setup and `GET /environments` answer it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Environment {
    /// Its id (a UUID).
    pub id: String,
    /// Assist's volume name: here the agent's name, `env-<id>`.
    pub volume_name: String,
    /// The main module.
    pub main_module: String,
    /// The runtime (`boa`: this host's JavaScript engine).
    pub runtime: String,
    /// Created, RFC 3339 (UTC).
    pub created_at: String,
    /// Last executed (RFC 3339), by this replica since it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_executed_at: Option<String>,
    /// Executions by this replica since it started.
    pub execution_count: u64,
    /// Always `ready` (an environment exists once set up).
    pub status: String,
    /// What it was set up with.
    pub metadata: EnvironmentMetadata,
    /// Its lifetime from creation, seconds.
    pub ttl_seconds: u64,
}

/// What an environment was set up with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentMetadata {
    /// The permissions as sent (`null` if none).
    pub permissions: Value,
    /// How many modules.
    pub module_count: usize,
    /// Always 0 (dependencies are refused).
    pub dependency_count: usize,
    /// Always false.
    pub has_dependencies: bool,
    /// The runtime.
    pub runtime: String,
}

/// Limits of one execution.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecuteLimits {
    /// Time limit, ms (default 5000; 0 means the default); at most the host's maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Memory limit, MiB (default 128; 0 means the default); at most the host's maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
}

/// `POST /environments/{id}/execute`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecuteRequest {
    /// `event.data`, as the client wrote it (passed on byte for byte: the handler's
    /// `JSON.parse` sees its keys in their order and its numbers as written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Box<RawValue>>,
    /// `event.env`, and `Deno.env`: a JSON object (passed on as written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Box<RawValue>>,
    /// The execution's limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ExecuteLimits>,
}

/// An execution's outcome (status 200 whatever the handler did).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecuteResponse {
    /// The execution id (`GET /executions/{id}` has its record).
    pub id: String,
    /// 0 when the handler returned, 1 when it failed, [`EXIT_TIMEOUT`] or [`EXIT_MEMORY`].
    pub exit_code: i32,
    /// The handler's result as JSON text (empty when it failed).
    pub stdout: String,
    /// Why it failed (empty when it returned).
    pub stderr: String,
    /// How long it ran, ms.
    pub duration_ms: u64,
}

/// The error body of these routes (Assist's shape, not the agent routes'
/// `{"error": {"code", "message"}}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentError {
    /// What went wrong.
    pub error: String,
    /// A stable code: `invalid_request`, `validation_error`, `setup_failed`, `invalid_id`,
    /// `environment_not_found`, `disabled`, or one of the host's error codes (`busy`,
    /// `internal_error`, …).
    pub code: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_assists() {
        let req: SetupRequest = serde_json::from_str(
            r#"{"mainModule":"main.ts","modules":{"main.ts":"x"},"ttlSeconds":60}"#,
        )
        .unwrap();
        assert_eq!(req.main_module, "main.ts");
        assert_eq!(req.ttl_seconds, Some(60));
        let out = ExecuteResponse {
            id: "i".into(),
            exit_code: 0,
            stdout: "{}".into(),
            stderr: String::new(),
            duration_ms: 1,
        };
        assert_eq!(
            serde_json::to_value(&out).unwrap(),
            serde_json::json!({"id": "i", "exitCode": 0, "stdout": "{}", "stderr": "", "durationMs": 1})
        );
        assert_eq!(
            agent_name(&uuid::Uuid::nil()),
            "env-00000000-0000-0000-0000-000000000000"
        );
    }
}
