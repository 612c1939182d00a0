//! The agent catalog: deployed agents, their versions, what the search index is built from,
//! and each agent's recent logs (sealed). [`AgentCatalog`] is the interface a database backend
//! implements: [`crate::storage::sqlite::SqliteAgents`] and
//! [`crate::storage::postgres::PgAgents`]. [`crate::storage::agent_store::AgentStore`] puts a
//! catalog together with the execution records, the sealed components, the search index
//! ([`crate::storage::search`]) and a cache of hot records: what the pipeline works with.
//!
//! A deployment is one transaction: the agent row, its new version and the name's owner mark
//! change together, so a crash leaves the old version or the new one, never a mixture. (The
//! component itself is written, sealed, before the transaction.)
//!
//! Owner operations are ordered: each name keeps the sequence number of the last operation
//! that changed it (deployment, deletion, grants; kept after a deletion), and one whose
//! sequence is not greater is refused ([`RegistryError::Replayed`]) in the same transaction
//! that would apply it. A signed request
//! is valid for a window around the host's clock
//! ([`hypervisor_protocol::agents::OWNER_SIGNATURE_WINDOW_SECONDS`]); without the order, anyone
//! who saw one could replay it within the window, e.g. to roll an agent back to an older
//! version or to bring back an agent its owner deleted.

use hypervisor_protocol::agents::{AgentKind, ChargeRule};
use hypervisor_protocol::grants::Grants;
use hypervisor_protocol::wire::Limits;
use serde::{Serialize, Serializer};

use super::StorageError;

/// What the search index ([`crate::storage::search`]) holds of an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchDocument {
    /// The agent's name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// Its tags.
    pub tags: Vec<String>,
}

/// Logs kept per agent (older ones are dropped).
pub const LOGS_KEPT: u32 = 100;

/// A stored log entry (sealed stderr of one invocation).
#[derive(Debug, Clone)]
pub struct LogEntry {
    /// The invocation.
    pub execution_id: String,
    /// When, Unix milliseconds.
    pub at_ms: u64,
    /// Sealed bytes.
    pub sealed: Vec<u8>,
}

/// A search hit: what a caller needs to choose and invoke an agent (the full record follows
/// flattened).
#[derive(Debug, Clone, Serialize)]
pub struct SearchHit {
    /// What the latest version runs as.
    pub kind: AgentKind,
    /// The WIT world of the latest version.
    pub world: String,
    /// SHA-256 of the latest version's component (hex on the wire).
    #[serde(serialize_with = "hex_hash")]
    pub code_hash: CodeHash,
    /// Relevance (higher is better).
    pub score: f64,
    /// The agent.
    #[serde(flatten)]
    pub agent: AgentRecord,
}

impl SearchHit {
    /// The hit for `agent` at `score`.
    pub fn new(agent: AgentRecord, score: f64) -> Self {
        Self {
            kind: agent.latest.kind,
            world: agent.latest.world.clone(),
            code_hash: agent.latest.code_hash,
            score,
            agent,
        }
    }
}

/// Turns free text into search words: split at anything not alphanumeric, lower-cased, at most
/// 32 (no operator of any query language survives: backends quote or join them themselves).
pub fn search_words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(32)
        .map(str::to_lowercase)
        .collect()
}

/// Purpose label of deployed components sealed at rest.
pub const AGENT_COMPONENT_PURPOSE: &[u8] = b"wasm-hypervisor/v1/agent-component";

/// SHA-256 of a component.
pub type CodeHash = [u8; 32];

/// An agent, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentRecord {
    /// Unique name.
    pub name: String,
    /// The owner's P-256 public key (SEC1, hex).
    pub owner_key: String,
    /// What it does.
    pub description: String,
    /// Search tags.
    pub tags: Vec<String>,
    /// Whether it accepts clear (unencrypted) invocations.
    pub public: bool,
    /// Price per invocation in the payment asset's atomic units, when paid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<String>,
    /// Deployed first, Unix seconds.
    pub created_at: u64,
    /// Deployed last, Unix seconds.
    pub updated_at: u64,
    /// Removed by the reaper after this time (Unix seconds), if set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// When a paid run is charged.
    pub charge: ChargeRule,
    /// The media type an HTTP agent declared for its answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// The newest version.
    pub latest: VersionRecord,
    /// What it may reach and who may call it: read back by the owner only, never listed.
    #[serde(skip)]
    pub grants: Grants,
    /// A handler agent's event and result schemas (its MCP tool's), as deployed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schemas: Option<hypervisor_protocol::agents::ToolSchemas>,
    /// A metered agent's tariff (x402 `upto`; `price` is its maximum), as deployed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tariff: Option<hypervisor_protocol::tariff::Tariff>,
}

/// One deployed version of an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionRecord {
    /// 1, 2, …
    pub version: u32,
    /// SHA-256 of the component (hex on the wire).
    #[serde(serialize_with = "hex_hash")]
    pub code_hash: CodeHash,
    /// What it runs as.
    pub kind: AgentKind,
    /// The WIT world it was recognised by.
    pub world: String,
    /// Component size, bytes.
    pub size: u64,
    /// Default limits of its invocations (on the wire as a JSON text, as documented).
    #[serde(serialize_with = "json_text")]
    pub limits: Limits,
    /// Deployed, Unix seconds.
    pub created_at: u64,
}

fn hex_hash<S: Serializer>(hash: &CodeHash, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(hash))
}

fn json_text<S: Serializer>(limits: &Limits, s: S) -> Result<S::Ok, S::Error> {
    let text = serde_json::to_string(limits).map_err(serde::ser::Error::custom)?;
    s.serialize_str(&text)
}

/// What a deployment records.
#[derive(Debug, Clone)]
pub struct NewDeployment<'a> {
    /// Name.
    pub name: &'a str,
    /// The deployer's key (hex); must equal the existing owner's for a redeployment.
    pub owner_key: &'a str,
    /// Description.
    pub description: &'a str,
    /// Tags.
    pub tags: &'a [String],
    /// Clear invocations allowed.
    pub public: bool,
    /// Price, if paid.
    pub price: Option<&'a str>,
    /// Expiry, if any.
    pub expires_at: Option<u64>,
    /// When a paid run is charged.
    pub charge: ChargeRule,
    /// The media type an HTTP agent declares.
    pub content_type: Option<&'a str>,
    /// Its grants (replacing the previous version's).
    pub grants: &'a Grants,
    /// Its schemas as JSON (replacing the previous version's), if declared.
    pub schemas: Option<&'a str>,
    /// Its tariff as JSON (replacing the previous version's), if metered.
    pub tariff: Option<&'a str>,
    /// The version's component.
    pub code_hash: CodeHash,
    /// What it runs as.
    pub kind: AgentKind,
    /// The contract it was recognised by: its kind's WIT world for a component
    /// ([`AgentKind::world`]), [`hypervisor_protocol::agents::RISCV_WORLD`] for a RISC-V
    /// program.
    pub world: &'a str,
    /// Size in bytes.
    pub size: u64,
    /// Default limits of its invocations.
    pub limits: Limits,
    /// Where the owner's signature on this deployment stands in the name's order.
    pub order: OwnerOrder,
    /// Unix seconds.
    pub now: u64,
}

/// Where a signed owner operation stands: its sequence orders it after the last one accepted
/// for the name; its signing time says how long the name's mark must outlive a deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnerOrder {
    /// The signing time, Unix seconds.
    pub signed_at: u64,
    /// The sequence number (at most `i64::MAX`), greater than the last accepted for the name.
    pub sequence: u64,
}

/// Why a deployment or deletion was refused by the catalog.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The name belongs to another key.
    #[error("agent {0} belongs to another owner")]
    NotOwner(String),
    /// The operation's sequence is not greater than that of the last owner operation accepted
    /// for the name: a replayed (or reordered) request.
    #[error("the sequence is not greater than {last}, the last owner operation's on the agent")]
    Replayed {
        /// The last sequence accepted for the name.
        last: u64,
    },
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The interface of an agent catalog: what a database backend implements. Every call is
/// blocking (callers on the async runtime hop to a blocking thread or accept a short wait).
pub trait AgentCatalog: Send + Sync {
    /// Records a deployment: a new agent at version 1, or the next version of an agent the same
    /// owner deployed before, in one transaction with its search entry and the name's
    /// owner-operation mark. Returns the version.
    ///
    /// # Errors
    /// [`RegistryError::NotOwner`], [`RegistryError::Replayed`] (signed no later than the last
    /// deployment or deletion of the name), [`RegistryError::Storage`].
    fn deploy(&self, d: &NewDeployment<'_>) -> Result<u32, RegistryError>;

    /// The agent `name` with its latest version.
    ///
    /// # Errors
    /// [`StorageError`] (a corrupt row included).
    fn get(&self, name: &str) -> Result<Option<AgentRecord>, StorageError>;

    /// Every agent, by name.
    ///
    /// # Errors
    /// [`StorageError`].
    fn list(&self) -> Result<Vec<AgentRecord>, StorageError>;

    /// How many agents are deployed.
    ///
    /// # Errors
    /// [`StorageError`].
    fn count(&self) -> Result<u64, StorageError>;

    /// Every version of `name`, oldest first (empty for an unknown agent).
    ///
    /// # Errors
    /// [`StorageError`].
    fn versions(&self, name: &str) -> Result<Vec<VersionRecord>, StorageError>;

    /// Removes an agent with its versions, index entry and logs; returns the code hashes of
    /// its versions (to remove their components), or `None` if there was no such agent.
    /// `order` is that of the owner's deletion (`None` for an expiry), which must come after
    /// the last owner operation on the name; `now` is the host's clock (Unix seconds).
    ///
    /// # Errors
    /// [`RegistryError::Replayed`], [`RegistryError::Storage`].
    fn delete(
        &self,
        name: &str,
        order: Option<OwnerOrder>,
        now: u64,
    ) -> Result<Option<Vec<CodeHash>>, RegistryError>;

    /// Whether any agent still has a version with `code_hash`.
    ///
    /// # Errors
    /// [`StorageError`].
    fn code_in_use(&self, code_hash: &CodeHash) -> Result<bool, StorageError>;

    /// Names of agents whose expiry has passed at `now`.
    ///
    /// # Errors
    /// [`StorageError`].
    fn expired(&self, now: u64) -> Result<Vec<String>, StorageError>;

    /// What the search index ([`crate::storage::search`]) holds of agents: at most `limit`,
    /// by name, after `after` (`""` for the first page).
    ///
    /// # Errors
    /// [`StorageError`].
    fn documents(&self, after: &str, limit: u32) -> Result<Vec<SearchDocument>, StorageError>;

    /// The agents named in `names` that exist, with their latest versions (in no particular
    /// order).
    ///
    /// # Errors
    /// [`StorageError`].
    fn get_many(&self, names: &[String]) -> Result<Vec<AgentRecord>, StorageError>;

    /// One page of agents by name, after `after` (`""` for the first), at most `limit`.
    ///
    /// # Errors
    /// [`StorageError`].
    fn page(&self, after: &str, limit: u32) -> Result<Vec<AgentRecord>, StorageError>;

    /// Replaces the grants of `name`, signed by its owner at `order`, which must come after
    /// the last owner operation on the name. Returns `false` for an unknown agent.
    ///
    /// # Errors
    /// [`RegistryError::Replayed`], [`RegistryError::Storage`].
    fn set_grants(
        &self,
        name: &str,
        grants: &Grants,
        order: OwnerOrder,
        now: u64,
    ) -> Result<bool, RegistryError>;

    /// The newest `limit` log entries of `name`, oldest first.
    ///
    /// # Errors
    /// [`StorageError`].
    fn logs(&self, name: &str, limit: u32) -> Result<Vec<LogEntry>, StorageError>;
}
