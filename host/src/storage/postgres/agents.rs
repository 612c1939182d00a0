//! The agent catalog on PostgreSQL (tables `agents`, `agent_versions`, `agent_owner_ops`,
//! `agent_logs`). Owner operations on one name are serialised across replicas by a transaction
//! advisory lock on the name, and every change notifies the other replicas' caches
//! ([`super::notify`]).

use std::sync::Arc;

use tokio_postgres::Row;

use super::notify::AGENTS_CHANNEL;
use super::{Pg, big, pg, unsigned};
use crate::storage::StorageError;
use crate::storage::agents::{
    AgentCatalog, AgentRecord, CodeHash, LogEntry, NewDeployment, OwnerOrder, RegistryError,
    SearchDocument, VersionRecord,
};

/// How long the mark of a deleted agent is kept after its last signing time, seconds (as on
/// SQLite).
const DELETED_MARK_KEPT_SECONDS: u64 =
    2 * hypervisor_protocol::agents::OWNER_SIGNATURE_WINDOW_SECONDS;

/// The PostgreSQL catalog.
pub struct PgAgents {
    pg: Arc<Pg>,
}

impl PgAgents {
    /// The catalog on `pg`.
    pub fn new(pg: Arc<Pg>) -> Self {
        Self { pg }
    }
}

const AGENT_COLUMNS: &str = "a.name, a.owner_key, a.description, a.tags, a.public, \
     a.price_amount, a.created_at, a.updated_at, a.expires_at, v.version, v.code_hash, v.kind, \
     v.world, v.size, v.limits, v.created_at, a.charge, a.content_type, a.grants, a.schemas, a.tariff";

fn corrupt(what: &str, why: impl std::fmt::Display) -> StorageError {
    StorageError::Database {
        op: "read agent",
        detail: format!("corrupt {what}: {why}"),
    }
}

fn hash(text: &str) -> Result<CodeHash, StorageError> {
    hex::decode(text)
        .ok()
        .and_then(|b| CodeHash::try_from(b.as_slice()).ok())
        .ok_or_else(|| corrupt("code hash", format!("{text:?} is not a SHA-256 in hex")))
}

fn version_at(r: &Row, i: usize) -> Result<VersionRecord, StorageError> {
    let kind: String = r.get(i + 2);
    let limits: String = r.get(i + 5);
    Ok(VersionRecord {
        version: u32::try_from(r.get::<_, i64>(i)).map_err(|e| corrupt("version", e))?,
        code_hash: hash(r.get(i + 1))?,
        kind: kind.parse().map_err(|e: String| corrupt("kind", e))?,
        world: r.get(i + 3),
        size: unsigned(r.get(i + 4)),
        limits: serde_json::from_str(&limits).map_err(|e| corrupt("limits", e))?,
        created_at: unsigned(r.get(i + 6)),
    })
}

fn agent(r: &Row) -> Result<AgentRecord, StorageError> {
    let tags: String = r.get(3);
    let charge: String = r.get(16);
    let grants: String = r.get(18);
    Ok(AgentRecord {
        name: r.get(0),
        owner_key: r.get(1),
        description: r.get(2),
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        public: r.get(4),
        price: r.get(5),
        created_at: unsigned(r.get(6)),
        updated_at: unsigned(r.get(7)),
        expires_at: r.get::<_, Option<i64>>(8).map(unsigned),
        latest: version_at(r, 9)?,
        charge: charge.parse().map_err(|e: String| corrupt("charge", e))?,
        content_type: r.get(17),
        grants: serde_json::from_str(&grants).map_err(|e| corrupt("grants", e))?,
        schemas: r
            .get::<_, Option<String>>(19)
            .map(|s| serde_json::from_str(&s).map_err(|e| corrupt("schemas", e)))
            .transpose()?,
        tariff: r
            .get::<_, Option<String>>(20)
            .map(|s| serde_json::from_str(&s).map_err(|e| corrupt("tariff", e)))
            .transpose()?,
    })
}

fn encode<T: serde::Serialize + ?Sized>(what: &'static str, v: &T) -> Result<String, StorageError> {
    serde_json::to_string(v).map_err(|e| StorageError::Database {
        op: what,
        detail: e.to_string(),
    })
}

/// Takes the name's advisory lock for the transaction and refuses `order` unless it comes
/// after the last owner operation accepted on the name.
pub(super) async fn check_order(
    tx: &deadpool_postgres::Transaction<'_>,
    name: &str,
    order: Option<OwnerOrder>,
) -> Result<(), RegistryError> {
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 7))",
        &[&name],
    )
    .await
    .map_err(pg("lock the agent's name"))?;
    let Some(order) = order else { return Ok(()) };
    let last: Option<i64> = tx
        .query_opt(
            "SELECT last_sequence FROM agent_owner_ops WHERE name = $1",
            &[&name],
        )
        .await
        .map_err(pg("read owner mark"))?
        .map(|r| r.get(0));
    match last {
        Some(last) if big(order.sequence) <= last => Err(RegistryError::Replayed {
            last: unsigned(last),
        }),
        _ => Ok(()),
    }
}

/// Records `order` as the last owner operation on `name`, forgets old marks of deleted
/// agents, and tells the other replicas that `name` changed.
pub(super) async fn mark(
    tx: &deadpool_postgres::Transaction<'_>,
    name: &str,
    order: Option<OwnerOrder>,
    now: u64,
) -> Result<(), StorageError> {
    if let Some(order) = order {
        tx.execute(
            "INSERT INTO agent_owner_ops (name, last_signed_at, last_sequence) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET last_signed_at = EXCLUDED.last_signed_at,
               last_sequence = EXCLUDED.last_sequence",
            &[&name, &big(order.signed_at), &big(order.sequence)],
        )
        .await
        .map_err(pg("write owner mark"))?;
        tx.execute(
            "DELETE FROM agent_owner_ops o WHERE last_signed_at < $1
               AND NOT EXISTS (SELECT 1 FROM agents a WHERE a.name = o.name)",
            &[&big(now.saturating_sub(DELETED_MARK_KEPT_SECONDS))],
        )
        .await
        .map_err(pg("prune owner marks"))?;
    }
    tx.execute("SELECT pg_notify($1, $2)", &[&AGENTS_CHANNEL, &name])
        .await
        .map_err(pg("notify the replicas"))?;
    Ok(())
}

impl AgentCatalog for PgAgents {
    fn deploy(&self, d: &NewDeployment<'_>) -> Result<u32, RegistryError> {
        let tags = encode("encode tags", d.tags)?;
        let grants = encode("encode grants", d.grants)?;
        let limits = encode("encode limits", &d.limits)?;
        self.pg.block(async {
            let mut client = self.pg.client("deploy").await?;
            let tx = client.transaction().await.map_err(pg("begin deploy"))?;
            check_order(&tx, d.name, Some(d.order)).await?;
            let existing = tx
                .query_opt(
                    "SELECT owner_key, latest_version FROM agents WHERE name = $1 FOR UPDATE",
                    &[&d.name],
                )
                .await
                .map_err(pg("read agent"))?;
            if let Some(row) = &existing
                && row.get::<_, &str>(0) != d.owner_key
            {
                return Err(RegistryError::NotOwner(d.name.to_string()));
            }
            let now = big(d.now);
            let expires = d.expires_at.map(big);
            let version: i64 = existing.map_or(1, |r| r.get::<_, i64>(1).saturating_add(1));
            tx.execute(
                "INSERT INTO agents (name, owner_key, description, tags, public, latest_version,
                   price_amount, created_at, updated_at, expires_at, charge, content_type,
                   grants, schemas, tariff)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10, $11, $12, $13, $14)
                 ON CONFLICT (name) DO UPDATE SET description = EXCLUDED.description,
                   tags = EXCLUDED.tags, public = EXCLUDED.public,
                   latest_version = EXCLUDED.latest_version,
                   price_amount = EXCLUDED.price_amount, updated_at = EXCLUDED.updated_at,
                   expires_at = EXCLUDED.expires_at, charge = EXCLUDED.charge,
                   content_type = EXCLUDED.content_type, grants = EXCLUDED.grants,
                   schemas = EXCLUDED.schemas, tariff = EXCLUDED.tariff",
                &[
                    &d.name,
                    &d.owner_key,
                    &d.description,
                    &tags,
                    &d.public,
                    &version,
                    &d.price,
                    &now,
                    &expires,
                    &d.charge.as_str(),
                    &d.content_type,
                    &grants,
                    &d.schemas,
                    &d.tariff,
                ],
            )
            .await
            .map_err(pg("write agent"))?;
            tx.execute(
                "INSERT INTO agent_versions (name, version, code_hash, kind, world, size, limits,
                   created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &d.name,
                    &version,
                    &hex::encode(d.code_hash),
                    &d.kind.as_str(),
                    &d.world,
                    &big(d.size),
                    &limits,
                    &now,
                ],
            )
            .await
            .map_err(pg("insert version"))?;
            mark(&tx, d.name, Some(d.order), d.now).await?;
            tx.commit().await.map_err(pg("commit deploy"))?;
            Ok::<_, RegistryError>(u32::try_from(version).unwrap_or(u32::MAX))
        })
    }

    fn set_grants(
        &self,
        name: &str,
        grants: &hypervisor_protocol::grants::Grants,
        order: OwnerOrder,
        now: u64,
    ) -> Result<bool, RegistryError> {
        let grants = encode("encode grants", grants)?;
        self.pg.block(async {
            let mut client = self.pg.client("set grants").await?;
            let tx = client.transaction().await.map_err(pg("begin grants"))?;
            check_order(&tx, name, Some(order)).await?;
            let changed = tx
                .execute(
                    "UPDATE agents SET grants = $2 WHERE name = $1",
                    &[&name, &grants],
                )
                .await
                .map_err(pg("update grants"))?;
            if changed == 0 {
                return Ok(false);
            }
            mark(&tx, name, Some(order), now).await?;
            tx.commit().await.map_err(pg("commit grants"))?;
            Ok::<_, RegistryError>(true)
        })
    }

    fn get(&self, name: &str) -> Result<Option<AgentRecord>, StorageError> {
        self.pg.block(async {
            let client = self.pg.client("read agent").await?;
            let stmt = client
                .prepare_cached(&format!(
                    "SELECT {AGENT_COLUMNS} FROM agents a JOIN agent_versions v
                       ON v.name = a.name AND v.version = a.latest_version WHERE a.name = $1"
                ))
                .await
                .map_err(pg("read agent"))?;
            let row = client
                .query_opt(&stmt, &[&name])
                .await
                .map_err(pg("read agent"))?;
            row.as_ref().map(agent).transpose()
        })
    }

    fn list(&self) -> Result<Vec<AgentRecord>, StorageError> {
        self.pg.block(async {
            let client = self.pg.client("list agents").await?;
            let rows = client
                .query(
                    &format!(
                        "SELECT {AGENT_COLUMNS} FROM agents a JOIN agent_versions v
                           ON v.name = a.name AND v.version = a.latest_version ORDER BY a.name"
                    ),
                    &[],
                )
                .await
                .map_err(pg("list agents"))?;
            rows.iter().map(agent).collect()
        })
    }

    fn count(&self) -> Result<u64, StorageError> {
        self.pg.block(async {
            let client = self.pg.client("count agents").await?;
            let row = client
                .query_one("SELECT count(*) FROM agents", &[])
                .await
                .map_err(pg("count agents"))?;
            Ok(unsigned(row.get(0)))
        })
    }

    fn versions(&self, name: &str) -> Result<Vec<VersionRecord>, StorageError> {
        self.pg.block(async {
            let client = self.pg.client("list versions").await?;
            let rows = client
                .query(
                    "SELECT version, code_hash, kind, world, size, limits, created_at
                     FROM agent_versions WHERE name = $1 ORDER BY version",
                    &[&name],
                )
                .await
                .map_err(pg("list versions"))?;
            rows.iter().map(|r| version_at(r, 0)).collect()
        })
    }

    fn delete(
        &self,
        name: &str,
        order: Option<OwnerOrder>,
        now: u64,
    ) -> Result<Option<Vec<CodeHash>>, RegistryError> {
        self.pg.block(async {
            let mut client = self.pg.client("delete agent").await?;
            let tx = client.transaction().await.map_err(pg("begin delete"))?;
            check_order(&tx, name, order).await?;
            let hashes = tx
                .query(
                    "SELECT DISTINCT code_hash FROM agent_versions WHERE name = $1",
                    &[&name],
                )
                .await
                .map_err(pg("delete"))?
                .iter()
                .map(|r| hash(r.get(0)))
                .collect::<Result<Vec<_>, _>>()?;
            let removed = tx
                .execute("DELETE FROM agents WHERE name = $1", &[&name])
                .await
                .map_err(pg("delete"))?;
            if removed == 1 {
                mark(&tx, name, order, now).await?;
            }
            tx.commit().await.map_err(pg("commit delete"))?;
            Ok::<_, RegistryError>((removed == 1).then_some(hashes))
        })
    }

    fn code_in_use(&self, code_hash: &CodeHash) -> Result<bool, StorageError> {
        self.pg.block(async {
            let client = self.pg.client("read versions").await?;
            let row = client
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM agent_versions WHERE code_hash = $1)",
                    &[&hex::encode(code_hash)],
                )
                .await
                .map_err(pg("read versions"))?;
            Ok(row.get(0))
        })
    }

    fn expired(&self, now: u64) -> Result<Vec<String>, StorageError> {
        self.pg.block(async {
            let client = self.pg.client("find expired").await?;
            let rows = client
                .query(
                    "SELECT name FROM agents WHERE expires_at IS NOT NULL AND expires_at <= $1",
                    &[&big(now)],
                )
                .await
                .map_err(pg("find expired"))?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    fn documents(&self, after: &str, limit: u32) -> Result<Vec<SearchDocument>, StorageError> {
        self.pg.block(async {
            let client = self.pg.client("read search documents").await?;
            let rows = client
                .query(
                    "SELECT name, description, tags FROM agents WHERE name > $1
                     ORDER BY name LIMIT $2",
                    &[&after, &i64::from(limit)],
                )
                .await
                .map_err(pg("read search documents"))?;
            Ok(rows
                .iter()
                .map(|r| {
                    let tags: String = r.get(2);
                    SearchDocument {
                        name: r.get(0),
                        description: r.get(1),
                        tags: serde_json::from_str(&tags).unwrap_or_default(),
                    }
                })
                .collect())
        })
    }

    fn get_many(&self, names: &[String]) -> Result<Vec<AgentRecord>, StorageError> {
        self.pg.block(async {
            let client = self.pg.client("read agents").await?;
            let rows = client
                .query(
                    &format!(
                        "SELECT {AGENT_COLUMNS} FROM agents a JOIN agent_versions v
                           ON v.name = a.name AND v.version = a.latest_version
                         WHERE a.name = ANY($1)"
                    ),
                    &[&names],
                )
                .await
                .map_err(pg("read agents"))?;
            rows.iter().map(agent).collect()
        })
    }

    fn page(&self, after: &str, limit: u32) -> Result<Vec<AgentRecord>, StorageError> {
        self.pg.block(async {
            let client = self.pg.client("list agents").await?;
            let rows = client
                .query(
                    &format!(
                        // The page's names first (the primary key's order), then their
                        // versions: no join over the whole catalogue.
                        "SELECT {AGENT_COLUMNS} FROM (SELECT * FROM agents WHERE name > $1
                           ORDER BY name LIMIT $2) a
                         JOIN agent_versions v ON v.name = a.name AND v.version = a.latest_version
                         ORDER BY a.name"
                    ),
                    &[&after, &i64::from(limit)],
                )
                .await
                .map_err(pg("list agents"))?;
            rows.iter().map(agent).collect()
        })
    }

    fn logs(&self, name: &str, limit: u32) -> Result<Vec<LogEntry>, StorageError> {
        self.pg.block(async {
            let client = self.pg.client("read logs").await?;
            let rows = client
                .query(
                    "SELECT execution_id, at_ms, sealed FROM (
                       SELECT id, execution_id, at_ms, sealed FROM agent_logs WHERE name = $1
                       ORDER BY id DESC LIMIT $2) newest ORDER BY id",
                    &[&name, &i64::from(limit)],
                )
                .await
                .map_err(pg("read logs"))?;
            Ok(rows
                .iter()
                .map(|r| LogEntry {
                    execution_id: r.get(0),
                    at_ms: unsigned(r.get(1)),
                    sealed: r.get(2),
                })
                .collect())
        })
    }
}
