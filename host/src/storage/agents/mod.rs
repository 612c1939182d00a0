//! The agent registry: deployed agents, their versions, the full-text search index over name,
//! description and tags (SQLite FTS5, ranked by BM25), and each agent's recent logs (sealed).
//!
//! A deployment is one transaction: the agent row, its new version and its search entry change
//! together, so a crash leaves the old version or the new one, never a mixture. (The component
//! itself is written, sealed, before the transaction; see `agents::store`.)
//!
//! Owner operations are ordered: each name keeps the signing time of the last deployment or
//! deletion accepted (`agent_owner_ops`, kept after a deletion), and one signed no later is
//! refused ([`RegistryError::Replayed`]) in the same transaction that would apply it. A signed
//! request is valid for a window around the host's clock
//! ([`hypervisor_protocol::agents::OWNER_SIGNATURE_WINDOW_SECONDS`]); without the order, anyone
//! who saw one could replay it within the window, e.g. to roll an agent back to an older
//! version or to bring back an agent its owner deleted.

use std::sync::Arc;

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

mod logs;
mod owner_order;
mod search;

pub(crate) use logs::append_log_on;
pub use logs::{LOGS_KEPT, LogEntry};
pub use search::SearchHit;

use super::StorageError;
use super::db::{Database, sql};
use owner_order::{check_order, mark};

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
    /// The newest version.
    pub latest: VersionRecord,
}

/// One deployed version of an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionRecord {
    /// 1, 2, …
    pub version: u32,
    /// SHA-256 of the component, hex.
    pub code_hash: String,
    /// `cli`, `http` or `handler`.
    pub kind: String,
    /// The WIT world it was recognised by.
    pub world: String,
    /// Component size, bytes.
    pub size: u64,
    /// Default limits of its invocations (JSON).
    pub limits: String,
    /// Deployed, Unix seconds.
    pub created_at: u64,
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
    /// The version's component and kind.
    pub code_hash: &'a str,
    /// `cli`, `http` or `handler`.
    pub kind: &'a str,
    /// WIT world.
    pub world: &'a str,
    /// Size in bytes.
    pub size: u64,
    /// Limits JSON.
    pub limits: &'a str,
    /// The signing time of the owner's signature on this deployment (Unix seconds); must be
    /// later than that of the last deployment or deletion of the name.
    pub signed_at: u64,
    /// Unix seconds.
    pub now: u64,
}
/// Why a deployment was refused by the registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The name belongs to another key.
    #[error("agent {0} belongs to another owner")]
    NotOwner(String),
    /// The owner's signing time is not later than that of the last deployment or deletion
    /// accepted for the name: a replayed (or reordered) request.
    #[error("the signing time is not later than the last owner operation on the agent")]
    Replayed,
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The registry.
pub struct AgentRegistry {
    db: Arc<Database>,
}

pub(super) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(super) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(super) const AGENT_COLUMNS: &str = "a.name, a.owner_key, a.description, a.tags, a.public, a.price_amount, \
     a.created_at, a.updated_at, a.expires_at, v.version, v.code_hash, v.kind, v.world, v.size, \
     v.limits, v.created_at";

pub(super) fn agent_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AgentRecord> {
    let tags: String = r.get(3)?;
    Ok(AgentRecord {
        name: r.get(0)?,
        owner_key: r.get(1)?,
        description: r.get(2)?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        public: r.get(4)?,
        price: r.get(5)?,
        created_at: to_u64(r.get(6)?),
        updated_at: to_u64(r.get(7)?),
        expires_at: r.get::<_, Option<i64>>(8)?.map(to_u64),
        latest: version_row_at(r, 9)?,
    })
}

fn version_row_at(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<VersionRecord> {
    Ok(VersionRecord {
        version: r.get(i)?,
        code_hash: r.get(i + 1)?,
        kind: r.get(i + 2)?,
        world: r.get(i + 3)?,
        size: to_u64(r.get(i + 4)?),
        limits: r.get(i + 5)?,
        created_at: to_u64(r.get(i + 6)?),
    })
}
impl AgentRegistry {
    /// The registry in `db`.
    pub fn new(db: Arc<Database>) -> Self {
        Self { db }
    }

    /// Records a deployment: a new agent at version 1, or the next version of an agent the same
    /// owner deployed before. Returns the version.
    ///
    /// # Errors
    /// [`RegistryError::NotOwner`], [`RegistryError::Replayed`] (signed no later than the last
    /// deployment or deletion of the name), [`RegistryError::Storage`].
    pub fn deploy(&self, d: &NewDeployment<'_>) -> Result<u32, RegistryError> {
        let mut conn = self.db.lock();
        let tx = conn.transaction().map_err(sql("begin deploy"))?;
        let existing: Option<(String, u32)> = tx
            .query_row(
                "SELECT owner_key, latest_version FROM agents WHERE name = ?1",
                [d.name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(sql("read agent"))?;
        let tags = serde_json::to_string(d.tags).unwrap_or_else(|_| "[]".into());
        if existing
            .as_ref()
            .is_some_and(|(owner, _)| owner != d.owner_key)
        {
            return Err(RegistryError::NotOwner(d.name.to_string()));
        }
        check_order(&tx, d.name, d.signed_at)?;
        let version = match existing {
            Some((_, latest)) => {
                let next = latest.saturating_add(1);
                tx.execute(
                    "UPDATE agents SET description = ?2, tags = ?3, public = ?4, latest_version = ?5,
                       price_amount = ?6, updated_at = ?7, expires_at = ?8 WHERE name = ?1",
                    params![
                        d.name,
                        d.description,
                        tags,
                        d.public,
                        next,
                        d.price,
                        to_i64(d.now),
                        d.expires_at.map(to_i64)
                    ],
                )
                .map_err(sql("update agent"))?;
                next
            }
            None => {
                tx.execute(
                    "INSERT INTO agents (name, owner_key, description, tags, public, latest_version,
                       price_amount, created_at, updated_at, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7, ?7, ?8)",
                    params![
                        d.name,
                        d.owner_key,
                        d.description,
                        tags,
                        d.public,
                        d.price,
                        to_i64(d.now),
                        d.expires_at.map(to_i64)
                    ],
                )
                .map_err(sql("insert agent"))?;
                1
            }
        };
        tx.execute(
            "INSERT INTO agent_versions (name, version, code_hash, kind, world, size, limits, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                d.name,
                version,
                d.code_hash,
                d.kind,
                d.world,
                to_i64(d.size),
                d.limits,
                to_i64(d.now)
            ],
        )
        .map_err(sql("insert version"))?;
        search::index(&tx, d.name, d.description, &d.tags.join(" "))?;
        mark(&tx, d.name, d.signed_at, d.now)?;
        tx.commit().map_err(sql("commit deploy"))?;
        Ok(version)
    }

    /// The agent `name` with its latest version.
    ///
    /// # Errors
    /// [`StorageError::Database`].
    pub fn get(&self, name: &str) -> Result<Option<AgentRecord>, StorageError> {
        self.db
            .lock()
            .query_row(
                &format!(
                    "SELECT {AGENT_COLUMNS} FROM agents a JOIN agent_versions v
                       ON v.name = a.name AND v.version = a.latest_version WHERE a.name = ?1"
                ),
                [name],
                agent_row,
            )
            .optional()
            .map_err(sql("read agent"))
    }

    /// Every agent, by name.
    ///
    /// # Errors
    /// [`StorageError::Database`].
    pub fn list(&self) -> Result<Vec<AgentRecord>, StorageError> {
        let conn = self.db.lock();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {AGENT_COLUMNS} FROM agents a JOIN agent_versions v
                   ON v.name = a.name AND v.version = a.latest_version ORDER BY a.name"
            ))
            .map_err(sql("list agents"))?;
        let rows = stmt.query_map([], agent_row).map_err(sql("list agents"))?;
        rows.collect::<Result<_, _>>().map_err(sql("list agents"))
    }

    /// How many agents are deployed.
    ///
    /// # Errors
    /// [`StorageError::Database`].
    pub fn count(&self) -> Result<u64, StorageError> {
        self.db
            .lock()
            .query_row("SELECT count(*) FROM agents", [], |r| r.get::<_, i64>(0))
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(sql("count agents"))
    }

    /// Every version of `name`, oldest first (empty for an unknown agent).
    ///
    /// # Errors
    /// [`StorageError::Database`].
    pub fn versions(&self, name: &str) -> Result<Vec<VersionRecord>, StorageError> {
        let conn = self.db.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT version, code_hash, kind, world, size, limits, created_at
                 FROM agent_versions WHERE name = ?1 ORDER BY version",
            )
            .map_err(sql("list versions"))?;
        let rows = stmt
            .query_map([name], |r| version_row_at(r, 0))
            .map_err(sql("list versions"))?;
        rows.collect::<Result<_, _>>().map_err(sql("list versions"))
    }
    /// Removes an agent with its versions, index entry and logs; returns the code hashes of
    /// its versions (to remove their components), or `None` if there was no such agent.
    /// `signed_at` is the signing time of the owner's deletion (`None` for an expiry), which
    /// must be later than the last deployment or deletion of the name; `now` is the host's
    /// clock (Unix seconds).
    ///
    /// # Errors
    /// [`RegistryError::Replayed`], [`RegistryError::Storage`].
    pub fn delete(
        &self,
        name: &str,
        signed_at: Option<u64>,
        now: u64,
    ) -> Result<Option<Vec<String>>, RegistryError> {
        let mut conn = self.db.lock();
        let tx = conn.transaction().map_err(sql("begin delete"))?;
        if let Some(signed_at) = signed_at {
            check_order(&tx, name, signed_at)?;
        }
        let hashes: Vec<String> = {
            let mut stmt = tx
                .prepare("SELECT DISTINCT code_hash FROM agent_versions WHERE name = ?1")
                .map_err(sql("delete"))?;
            let rows = stmt
                .query_map([name], |r| r.get(0))
                .map_err(sql("delete"))?;
            rows.collect::<Result<_, _>>().map_err(sql("delete"))?
        };
        let removed = tx
            .execute("DELETE FROM agents WHERE name = ?1", [name])
            .map_err(sql("delete"))?;
        tx.execute("DELETE FROM agents_fts WHERE name = ?1", [name])
            .map_err(sql("delete"))?;
        if let Some(signed_at) = signed_at
            && removed == 1
        {
            mark(&tx, name, signed_at, now)?;
        }
        tx.commit().map_err(sql("commit delete"))?;
        Ok((removed == 1).then_some(hashes))
    }

    /// Whether any agent still has a version with `code_hash`.
    ///
    /// # Errors
    /// [`StorageError::Database`].
    pub fn code_in_use(&self, code_hash: &str) -> Result<bool, StorageError> {
        self.db
            .lock()
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM agent_versions WHERE code_hash = ?1)",
                [code_hash],
                |r| r.get(0),
            )
            .map_err(sql("read versions"))
    }

    /// Names of agents whose expiry has passed at `now`.
    ///
    /// # Errors
    /// [`StorageError::Database`].
    pub fn expired(&self, now: u64) -> Result<Vec<String>, StorageError> {
        let conn = self.db.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT name FROM agents WHERE expires_at IS NOT NULL AND expires_at <= ?1",
            )
            .map_err(sql("find expired"))?;
        let rows = stmt
            .query_map([to_i64(now)], |r| r.get(0))
            .map_err(sql("find expired"))?;
        rows.collect::<Result<_, _>>().map_err(sql("find expired"))
    }
}

#[cfg(test)]
mod tests;
