//! Agents' state and configuration (`[state]`): quotas on what an agent keeps through
//! `wasi:keyvalue`, and the read cache.

use serde::{Deserialize, Serialize};

/// Agents' key-value state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StateConfig {
    /// Keys an agent may keep, all its buckets together. Default 10000.
    pub max_keys: u64,
    /// Bytes (keys and values) an agent may keep. Default 64 MiB.
    pub max_bytes: u64,
    /// The largest value, bytes. Default 1 MiB.
    pub max_value_bytes: u64,
    /// The longest key or bucket name, bytes. Default 1024.
    pub max_key_bytes: usize,
    /// Bytes of values the read cache keeps (per host). Default 32 MiB; 0 turns it off.
    pub cache_bytes: usize,
    /// Bytes of agents' opened configurations kept (per host, weighed by their sealed size).
    /// Default 8 MiB; 0 turns it off.
    pub config_cache_bytes: usize,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            max_keys: 10_000,
            max_bytes: 64 << 20,
            max_value_bytes: 1 << 20,
            max_key_bytes: 1024,
            cache_bytes: 32 << 20,
            config_cache_bytes: 8 << 20,
        }
    }
}
