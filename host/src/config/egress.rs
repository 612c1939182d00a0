//! Agents' egress: how deep and how wide agent-to-agent calls may go, and whether grants may
//! name plain-`http` loopback origins (tests and local development only).

use serde::{Deserialize, Serialize};

/// Limits of agents' outgoing calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EgressConfig {
    /// The deepest chain of agent-to-agent calls: an agent invoked by a client is at depth 0,
    /// the agent it calls at 1, …; a call that would go deeper is refused
    /// (`call_depth_exceeded`). Default 4.
    pub max_depth: u32,
    /// The most outgoing requests one run may send (fan-out); past it each is refused
    /// (`call_fan_out_exceeded`). Default 32.
    pub max_calls_per_run: u32,
    /// Whether grants may name `http://` origins on loopback hosts (127.0.0.0/8, `::1`,
    /// `localhost`). Remote origins must be `https` regardless. Default false.
    pub allow_loopback_http: bool,
    /// Largest response body handed back to a calling agent from a local call, bytes (a
    /// larger one is cut off with an error on the guest's body stream). Default 4 MiB.
    pub max_response_bytes: usize,
    /// Names agents' grants use, pinned to addresses instead of asking DNS (as `/etc/hosts`;
    /// DNS is the untrusted host's in a confidential VM). A pinned address is checked like a
    /// resolved one: a private one is refused unless the grant names the address itself.
    /// Default empty.
    pub hosts: std::collections::BTreeMap<String, Vec<std::net::IpAddr>>,
    /// Where to fetch TDX collateral to verify remote hypervisors' quotes (a PCCS or Intel
    /// PCS base URL). Unset: remote TDX hosts cannot be verified (`remote_not_attested`).
    pub pccs_url: Option<String>,
    /// Where to fetch the VCEK to verify remote hypervisors' SEV-SNP reports (AMD KDS, or a
    /// cache of it). Unset: remote SNP hosts cannot be verified.
    pub snp_kds_url: Option<String>,
    /// How long an agent's idle connection to a remote origin is kept for its next request,
    /// milliseconds; 0 opens one per request. Default 4000: below the 5-s idle timeout of
    /// Node.js and Apache servers, so that a kept connection is rarely one the server is
    /// closing (as the plug-ins' pool, `engine/outgoing/pool.rs`).
    pub keep_alive_ms: u64,
    /// Idle connections kept at most, all agents together (the one idle longest is closed
    /// first). Default 64.
    pub max_idle_connections: usize,
}

impl Default for EgressConfig {
    fn default() -> Self {
        Self {
            max_depth: 4,
            max_calls_per_run: 32,
            allow_loopback_http: false,
            max_response_bytes: 4 << 20,
            hosts: std::collections::BTreeMap::new(),
            pccs_url: None,
            snp_kds_url: None,
            keep_alive_ms: 4_000,
            max_idle_connections: 64,
        }
    }
}

/// The A2A front.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct A2aConfig {
    /// How long a task is kept once it has finished (or has waited that long for its payment),
    /// seconds since its last change; then it is deleted. Default 604800 (7 days).
    pub task_ttl_seconds: u64,
    /// Tasks one caller (a bearer credential) may have stored, in any state: a new one beyond
    /// it is refused (-32090) until some expire. Default 1000.
    pub max_tasks_per_caller: u64,
    /// Anonymous tasks one agent may have stored (all anonymous callers share it). Default
    /// 10 000.
    pub max_anonymous_tasks_per_agent: u64,
    /// Bytes all stored tasks may take (sealed tasks and the messages waiting for payment): a
    /// new task beyond it is refused. Default 1 GiB.
    pub max_task_bytes: u64,
}

impl Default for A2aConfig {
    fn default() -> Self {
        Self {
            task_ttl_seconds: 7 * 24 * 3600,
            max_tasks_per_caller: 1000,
            max_anonymous_tasks_per_agent: 10_000,
            max_task_bytes: 1 << 30,
        }
    }
}
