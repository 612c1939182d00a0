//! Agents' configuration on SQLite (table `agent_config`): one sealed document per agent,
//! changed in the owner's order (`agent_owner_ops`, as the catalog).

use std::sync::Arc;

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::owner_order::{check_order, mark};
use super::rows::to_i64;
use super::{Database, sql};
use crate::storage::StorageError;
use crate::storage::agent_config::{ConfigBackend, Rewrite};
use crate::storage::agents::{OwnerOrder, RegistryError};

/// The SQLite configuration table.
pub struct SqliteConfig {
    db: Arc<Database>,
}

impl SqliteConfig {
    /// The table in `db`.
    pub fn new(db: Arc<Database>) -> Self {
        Self { db }
    }
}

impl ConfigBackend for SqliteConfig {
    fn get(&self, agent: &str) -> Result<Option<Vec<u8>>, StorageError> {
        self.db
            .lock()
            .query_row(
                "SELECT sealed FROM agent_config WHERE agent = ?1",
                [agent],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql("read configuration"))
    }

    fn update(
        &self,
        agent: &str,
        order: OwnerOrder,
        now: u64,
        change: &mut Rewrite<'_>,
    ) -> Result<(), RegistryError> {
        let mut conn = self.db.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("begin configuration"))?;
        check_order(&tx, agent, order)?;
        let old: Option<Vec<u8>> = tx
            .query_row(
                "SELECT sealed FROM agent_config WHERE agent = ?1",
                [agent],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql("read configuration"))?;
        let sealed = change(old.as_deref())?;
        tx.execute(
            "INSERT INTO agent_config (agent, sealed, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (agent) DO UPDATE SET sealed = ?2, updated_at = ?3",
            params![agent, sealed, to_i64(now)],
        )
        .map_err(sql("write configuration"))?;
        mark(&tx, agent, order, now)?;
        tx.commit().map_err(sql("commit configuration"))?;
        Ok(())
    }

    fn remove(&self, agent: &str) -> Result<(), StorageError> {
        self.db
            .lock()
            .execute("DELETE FROM agent_config WHERE agent = ?1", [agent])
            .map_err(sql("remove configuration"))?;
        Ok(())
    }
}
