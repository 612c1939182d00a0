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
}
