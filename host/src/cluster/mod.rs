//! Replicas: several host processes behind a load balancer, sharing one PostgreSQL database.
//!
//! - [`Identity`]: which replica this process is (`cluster.replica_id`), the run (a random id
//!   per start: what owns payment reservations, [`crate::storage::members`]), and the 16-bit
//!   tag its session ids carry, so that a request with another replica's session is answered
//!   421 naming that replica instead of a bare `session_not_found`.
//! - [`key`]: the cluster key, shared by every replica and by nothing outside their TEEs: the
//!   first replica draws it; a joining replica proves its attestation to a running one through
//!   the database and receives the key sealed to it.
//!
//! On the embedded backend the host is a cluster of one: same identity, no key exchange.

pub mod key;

use sha2::Digest;

/// Who this process is among the replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The replica's name (`cluster.replica_id`; the host name by default).
    pub replica: String,
    /// This run's id: 16 random bytes, hex, drawn at start-up.
    pub run: String,
    /// The tag of this replica's session ids ([`session_tag`]).
    pub tag: u16,
    /// Whether this process is a replica of a cluster (a shared database): then it names
    /// itself in responses (`x-hypervisor-replica`) and receipts, and tags its session ids.
    pub clustered: bool,
}

/// The 16-bit tag of `replica`'s session ids: the first two bytes of SHA-256 of its name.
pub fn session_tag(replica: &str) -> u16 {
    let digest = sha2::Sha256::digest(replica.as_bytes());
    u16::from_be_bytes([digest[0], digest[1]])
}

impl Identity {
    /// The replica's name when it is one of a cluster's (what responses and receipts say).
    pub fn label(&self) -> Option<&str> {
        self.clustered.then_some(self.replica.as_str())
    }

    /// The identity of a new run of `replica` (`clustered`: on a shared database).
    ///
    /// # Errors
    /// Only if the OS random number generator fails.
    pub fn new(replica: &str, clustered: bool) -> Result<Self, getrandom::Error> {
        let mut run = [0u8; 16];
        getrandom::fill(&mut run)?;
        Ok(Self {
            replica: replica.to_string(),
            run: hex::encode(run),
            tag: session_tag(replica),
            clustered,
        })
    }
}
