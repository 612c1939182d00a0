//! The embedded agent catalog: SQLite (tables `agents`, `agent_versions`, `agent_logs`,
//! `agent_owner_ops`; migrations in [`super`]).

use std::sync::Arc;

use rusqlite::{OptionalExtension, params};

use super::owner_order::{check_order, mark};
use super::rows::{AGENT_COLUMNS, agent_row, hash_at, to_i64, version_row_at};
use super::{Database, sql};
use crate::storage::StorageError;
use crate::storage::agents::{
    AgentCatalog, AgentRecord, CodeHash, LogEntry, NewDeployment, OwnerOrder, RegistryError,
    SearchDocument, VersionRecord,
};

/// The SQLite catalog.
pub struct SqliteAgents {
    pub(crate) db: Arc<Database>,
}

impl SqliteAgents {
    /// The registry in `db`.
    pub fn new(db: Arc<Database>) -> Self {
        Self { db }
    }
}

impl SqliteAgents {
    /// Appends a log entry, keeping the newest [`crate::storage::agents::LOGS_KEPT`] of the agent.
    /// (Invocations log through [`crate::storage::records::Records::append_log_later`]
    /// instead.)
    ///
    /// # Errors
    /// [`StorageError::Database`].
    pub fn append_log(&self, name: &str, entry: &LogEntry) -> Result<(), StorageError> {
        super::logs::append_log_on(&self.db.lock(), name, entry).map_err(sql("append log"))
    }
}

impl AgentCatalog for SqliteAgents {
    fn deploy(&self, d: &NewDeployment<'_>) -> Result<u32, RegistryError> {
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
        let grants = serde_json::to_string(d.grants).map_err(|e| StorageError::Database {
            op: "encode grants",
            detail: e.to_string(),
        })?;
        if existing
            .as_ref()
            .is_some_and(|(owner, _)| owner != d.owner_key)
        {
            return Err(RegistryError::NotOwner(d.name.to_string()));
        }
        check_order(&tx, d.name, d.order)?;
        let version = match existing {
            Some((_, latest)) => {
                let next = latest.saturating_add(1);
                tx.execute(
                    "UPDATE agents SET description = ?2, tags = ?3, public = ?4, latest_version = ?5,
                       price_amount = ?6, updated_at = ?7, expires_at = ?8, charge = ?9,
                       content_type = ?10, grants = ?11, schemas = ?12, tariff = ?13
                     WHERE name = ?1",
                    params![
                        d.name,
                        d.description,
                        tags,
                        d.public,
                        next,
                        d.price,
                        to_i64(d.now),
                        d.expires_at.map(to_i64),
                        d.charge.as_str(),
                        d.content_type,
                        grants,
                        d.schemas,
                        d.tariff
                    ],
                )
                .map_err(sql("update agent"))?;
                next
            }
            None => {
                tx.execute(
                    "INSERT INTO agents (name, owner_key, description, tags, public, latest_version,
                       price_amount, created_at, updated_at, expires_at, charge, content_type,
                       grants, schemas, tariff)
                     VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                    params![
                        d.name,
                        d.owner_key,
                        d.description,
                        tags,
                        d.public,
                        d.price,
                        to_i64(d.now),
                        d.expires_at.map(to_i64),
                        d.charge.as_str(),
                        d.content_type,
                        grants,
                        d.schemas,
                        d.tariff
                    ],
                )
                .map_err(sql("insert agent"))?;
                1
            }
        };
        let limits = serde_json::to_string(&d.limits).map_err(|e| StorageError::Database {
            op: "encode limits",
            detail: e.to_string(),
        })?;
        tx.execute(
            "INSERT INTO agent_versions (name, version, code_hash, kind, world, size, limits, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                d.name,
                version,
                hex::encode(d.code_hash),
                d.kind.as_str(),
                d.world,
                to_i64(d.size),
                limits,
                to_i64(d.now)
            ],
        )
        .map_err(sql("insert version"))?;
        mark(&tx, d.name, d.order, d.now)?;
        tx.commit().map_err(sql("commit deploy"))?;
        Ok(version)
    }

    fn set_grants(
        &self,
        name: &str,
        grants: &hypervisor_protocol::grants::Grants,
        order: OwnerOrder,
        now: u64,
    ) -> Result<bool, RegistryError> {
        let grants = serde_json::to_string(grants).map_err(|e| StorageError::Database {
            op: "encode grants",
            detail: e.to_string(),
        })?;
        let mut conn = self.db.lock();
        let tx = conn.transaction().map_err(sql("begin grants"))?;
        check_order(&tx, name, order)?;
        let changed = tx
            .execute(
                "UPDATE agents SET grants = ?2 WHERE name = ?1",
                params![name, grants],
            )
            .map_err(sql("update grants"))?;
        if changed == 0 {
            return Ok(false);
        }
        mark(&tx, name, order, now)?;
        tx.commit().map_err(sql("commit grants"))?;
        Ok(true)
    }

    fn get(&self, name: &str) -> Result<Option<AgentRecord>, StorageError> {
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

    fn list(&self) -> Result<Vec<AgentRecord>, StorageError> {
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

    fn count(&self) -> Result<u64, StorageError> {
        self.db
            .lock()
            .query_row("SELECT count(*) FROM agents", [], |r| r.get::<_, i64>(0))
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(sql("count agents"))
    }

    fn versions(&self, name: &str) -> Result<Vec<VersionRecord>, StorageError> {
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
    fn delete(
        &self,
        name: &str,
        order: Option<OwnerOrder>,
        now: u64,
    ) -> Result<Option<Vec<CodeHash>>, RegistryError> {
        let mut conn = self.db.lock();
        let tx = conn.transaction().map_err(sql("begin delete"))?;
        if let Some(order) = order {
            check_order(&tx, name, order)?;
        }
        let hashes: Vec<CodeHash> = {
            let mut stmt = tx
                .prepare("SELECT DISTINCT code_hash FROM agent_versions WHERE name = ?1")
                .map_err(sql("delete"))?;
            let rows = stmt
                .query_map([name], |r| hash_at(r, 0))
                .map_err(sql("delete"))?;
            rows.collect::<Result<_, _>>().map_err(sql("delete"))?
        };
        let removed = tx
            .execute("DELETE FROM agents WHERE name = ?1", [name])
            .map_err(sql("delete"))?;
        if let Some(order) = order
            && removed == 1
        {
            mark(&tx, name, order, now)?;
        }
        tx.commit().map_err(sql("commit delete"))?;
        Ok((removed == 1).then_some(hashes))
    }

    fn code_in_use(&self, code_hash: &CodeHash) -> Result<bool, StorageError> {
        self.db
            .lock()
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM agent_versions WHERE code_hash = ?1)",
                [hex::encode(code_hash)],
                |r| r.get(0),
            )
            .map_err(sql("read versions"))
    }

    fn expired(&self, now: u64) -> Result<Vec<String>, StorageError> {
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

    fn documents(&self, after: &str, limit: u32) -> Result<Vec<SearchDocument>, StorageError> {
        let conn = self.db.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT name, description, tags FROM agents WHERE name > ?1 ORDER BY name LIMIT ?2",
            )
            .map_err(sql("read search documents"))?;
        let rows = stmt
            .query_map(params![after, limit], |r| {
                let tags: String = r.get(2)?;
                Ok(SearchDocument {
                    name: r.get(0)?,
                    description: r.get(1)?,
                    tags: serde_json::from_str(&tags).unwrap_or_default(),
                })
            })
            .map_err(sql("read search documents"))?;
        rows.collect::<Result<_, _>>()
            .map_err(sql("read search documents"))
    }

    fn get_many(&self, names: &[String]) -> Result<Vec<AgentRecord>, StorageError> {
        let conn = self.db.lock();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {AGENT_COLUMNS} FROM agents a JOIN agent_versions v
                   ON v.name = a.name AND v.version = a.latest_version WHERE a.name = ?1"
            ))
            .map_err(sql("read agents"))?;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            if let Some(agent) = stmt
                .query_row([name], agent_row)
                .optional()
                .map_err(sql("read agents"))?
            {
                out.push(agent);
            }
        }
        Ok(out)
    }

    fn page(&self, after: &str, limit: u32) -> Result<Vec<AgentRecord>, StorageError> {
        let conn = self.db.lock();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {AGENT_COLUMNS} FROM agents a JOIN agent_versions v
                   ON v.name = a.name AND v.version = a.latest_version
                 WHERE a.name > ?1 ORDER BY a.name LIMIT ?2"
            ))
            .map_err(sql("list agents"))?;
        let rows = stmt
            .query_map(params![after, limit], agent_row)
            .map_err(sql("list agents"))?;
        rows.collect::<Result<_, _>>().map_err(sql("list agents"))
    }

    fn logs(&self, name: &str, limit: u32) -> Result<Vec<LogEntry>, StorageError> {
        super::logs::read(&self.db.lock(), name, limit)
    }
}
