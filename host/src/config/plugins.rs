//! Configuration of the plug-in components: the operator's policy and the Python runtime.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where `scripts/build-wasm.sh` puts the componentized CPython (policy and Python runtime).
pub const DEFAULT_POLICY_PYTHON: &str = "target/wasm/policy-python.wasm";

/// The operator's policy component.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Consult the policy before any code runs. When false every request is admitted (and
    /// receipts record that no policy was consulted). Default true.
    pub enabled: bool,
    /// The policy component: any component exporting `hypervisor:host/policy`. Default
    /// `target/wasm/policy-python.wasm` (relative to the working directory).
    pub component: PathBuf,
    /// The rules document given to the component's `configure`: a TOML or JSON file (by
    /// extension). Unset: an empty document (the component's own defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<PathBuf>,
    /// Live policy instances kept warm; requests beyond this wait for one. Default 4.
    pub instances: usize,
    /// Time allowed for one decision, milliseconds (wall clock: generous, since a decision
    /// takes microseconds and a loaded machine may deschedule it); a slower policy refuses the
    /// request (fail closed) and its instance is replaced. Default 1000.
    pub time_ms: u64,
    /// Linear memory allowed per policy instance, bytes. Default 256 MiB.
    pub memory_bytes: u64,
    /// Most decisions kept for reuse, when the policy marks them reusable
    /// (`verdict.reuse-ms`); 0 asks the policy on every request. Default 4096.
    pub reuse_entries: usize,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            component: PathBuf::from(DEFAULT_POLICY_PYTHON),
            rules: None,
            instances: 4,
            time_ms: 1000,
            memory_bytes: 256 << 20,
            reuse_entries: 4096,
        }
    }
}

/// The runtime of the Python routes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PythonConfig {
    /// Serve the Python routes. When false they answer 503 `python_unavailable`. Default true.
    pub enabled: bool,
    /// The runtime component: any component exporting `hypervisor:host/python`. Default
    /// `target/wasm/policy-python.wasm`.
    pub component: PathBuf,
}

impl Default for PythonConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            component: PathBuf::from(DEFAULT_POLICY_PYTHON),
        }
    }
}
