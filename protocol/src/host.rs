//! What a host says about itself (`GET /host`): the audience every owner signature names, so
//! that an operation signed for one host (or cluster) is refused by every other
//! (`docs/PROTOCOL.md` §17).

use serde::{Deserialize, Serialize};

/// `GET /host`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInfo {
    /// The host's audience: 32 lowercase hex digits drawn when its database was created, the
    /// same for every host sharing that database. Owners sign it in every
    /// [`crate::agents::OwnerStatement`].
    pub audience: String,
    /// The attestation provider (`tdx`, `sev-snp`, `simulated` or `none`), as `GET
    /// /attestation` names it.
    pub provider: String,
    /// The host's version (its crate version).
    pub version: String,
    /// How the host runs RISC-V programs; absent when it does not (`riscv.enabled = false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub riscv: Option<RiscvInfo>,
}

/// How a host runs RISC-V programs (`GET /host`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiscvInfo {
    /// PolkaVM's backend: `recompiler` (each run in a sandboxed worker process) or
    /// `interpreter` (in the host's process).
    pub backend: String,
    /// Why the host runs the interpreter although the recompiler was preferred (its sandbox
    /// could not start), if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
}

/// The response header naming the replica of a cluster that answered (absent from a host on
/// its own). A request with a session of another replica is answered 421
/// `session_on_other_replica`.
pub const REPLICA_HEADER: &str = "x-hypervisor-replica";
