//! Where durable state lives ([`StorageConfig`]) and how replicas sharing it find each other
//! and the cluster key ([`ClusterConfig`]).

use serde::{Deserialize, Serialize};

/// The storage backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// A PostgreSQL connection URL (`postgres://user:password@host:port/db`); absent (the
    /// default) = SQLite in the data directory. Its password is never logged nor printed.
    #[serde(serialize_with = "redacted_url")]
    pub database: Option<String>,
    /// Connections to PostgreSQL at most, per replica. Default 16.
    pub pool_size: usize,
    /// How long a request waits for a connection (pool exhausted, or PostgreSQL unreachable)
    /// before it is answered 503 `storage_unavailable`, milliseconds. Default 2000.
    pub connect_timeout_ms: u64,
    /// Longest a statement may run on PostgreSQL, milliseconds (`statement_timeout`).
    /// Default 10000.
    pub statement_timeout_ms: u64,
    /// Bytes of recently used agents' records kept in memory, so that an invocation does not
    /// read its agent from the database (weighed by their JSON size, times 4). Default 16 MiB;
    /// 0 turns it off.
    pub agent_cache_bytes: usize,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            database: None,
            pool_size: 16,
            connect_timeout_ms: 2_000,
            statement_timeout_ms: 10_000,
            agent_cache_bytes: 16 << 20,
        }
    }
}

/// The URL with its password replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((credentials, host)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

fn redacted_url<S: serde::Serializer>(url: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match url {
        Some(url) => s.serialize_some(&redact(url)),
        None => s.serialize_none(),
    }
}

/// Replicas on a shared database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// This replica's name: answered in the `x-hypervisor-replica` header, signed in receipts,
    /// and the owner of its session ids. Default: the machine's host name.
    pub replica_id: Option<String>,
    /// Reference value sets (docs/PROTOCOL.md §12b) whose replicas may receive the cluster key
    /// besides those whose platform measurements equal this replica's own: the next release
    /// during a rolling upgrade, or another VM shape.
    pub allowed_reference_values: Vec<hypervisor_protocol::reference::ReferenceValues>,
    /// Removed (a host binary's SHA-256 proves nothing on its own): present, start-up fails
    /// and says what replaces it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_measurements: Option<Vec<String>>,
    /// How long a joining replica waits for a running one to answer, seconds. Default 60.
    pub join_timeout_seconds: u64,
    /// Accept joining replicas whose evidence is simulated (development only; only when this
    /// replica's own attestation is simulated too). Default false.
    pub allow_simulated: bool,
    /// Where to fetch TDX collateral to verify a joining replica's quote (a PCCS or Intel
    /// PCS base URL).
    pub pccs_url: Option<String>,
    /// TDX TCB statuses a joining replica may have (a reference set's own list, where it has
    /// one, applies to it instead). Default `["UpToDate"]`; after an Intel TCB recovery, add
    /// the status replicas report until their platforms are updated.
    pub tdx_tcb_statuses: Vec<String>,
    /// Where to fetch the VCEK to verify a joining replica's SEV-SNP report (AMD KDS, or a
    /// cache of it).
    pub snp_kds_url: Option<String>,
    /// How often a replica says it is alive, milliseconds. Default 2000.
    pub heartbeat_ms: u64,
    /// A replica silent this long is dead: its unfinished payments are taken over by the
    /// others, milliseconds. Default 15000.
    pub dead_after_ms: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            replica_id: None,
            allowed_reference_values: Vec::new(),
            allowed_measurements: None,
            join_timeout_seconds: 60,
            allow_simulated: false,
            pccs_url: None,
            tdx_tcb_statuses: vec!["UpToDate".into()],
            snp_kds_url: None,
            heartbeat_ms: 2_000,
            dead_after_ms: 15_000,
        }
    }
}

impl ClusterConfig {
    /// The replica's name.
    pub fn replica(&self) -> String {
        self.replica_id.clone().unwrap_or_else(default_replica_id)
    }
}

/// The default replica name: the machine's host name, else `replica`.
fn default_replica_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 63
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        })
        .unwrap_or_else(|| "replica".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/h"),
            "postgres://app:***@db:5432/h"
        );
        assert_eq!(redact("postgres://db/h"), "postgres://db/h");
        assert_eq!(redact("postgres://app@db/h"), "postgres://app@db/h");
    }
}
