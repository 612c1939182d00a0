//! Agents' key-value state on SQLite (tables `agent_state`, `agent_state_usage`). A write is
//! one `IMMEDIATE` transaction (the write lock taken before the usage row is read), so the
//! writes of every agent are serialised and the quota check is exact.

use std::sync::Arc;

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::owner_order::{check_order, mark};
use super::rows::to_i64;
use super::{Database, sql};
use crate::storage::StorageError;
use crate::storage::agents::{OwnerOrder, RegistryError};
use crate::storage::state::{
    Applied, Change, EntryId, NamedRow, Place, Quota, StateBackend, Stored, Usage, plan,
};

/// The SQLite state tables.
pub struct SqliteState {
    db: Arc<Database>,
}

impl SqliteState {
    /// The tables in `db`.
    pub fn new(db: Arc<Database>) -> Self {
        Self { db }
    }
}

fn unsigned(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn id_of(bytes: Vec<u8>) -> Result<EntryId, rusqlite::Error> {
    bytes
        .try_into()
        .map_err(|_| rusqlite::Error::IntegralValueOutOfRange(1, 0))
}

impl StateBackend for SqliteState {
    fn get(&self, agent: &str, id: &EntryId) -> Result<Option<Stored>, StorageError> {
        self.db
            .lock()
            .prepare_cached(
                "SELECT version, size, sealed_value FROM agent_state WHERE agent = ?1 AND id = ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![agent, id.as_slice()], |r| {
                    Ok(Stored {
                        version: r.get(0)?,
                        size: unsigned(r.get(1)?),
                        sealed_value: r.get(2)?,
                    })
                })
                .optional()
            })
            .map_err(sql("read state"))
    }

    fn update(
        &self,
        place: Place<'_>,
        quota: Quota,
        change: &mut (dyn FnMut(Option<&Stored>) -> Change + Send),
    ) -> Result<Applied, StorageError> {
        let mut conn = self.db.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("begin state write"))?;
        let usage = tx
            .query_row(
                "SELECT keys, bytes FROM agent_state_usage WHERE agent = ?1",
                [place.agent],
                |r| {
                    Ok(Usage {
                        keys: unsigned(r.get(0)?),
                        bytes: unsigned(r.get(1)?),
                    })
                },
            )
            .optional()
            .map_err(sql("read state usage"))?
            .unwrap_or_default();
        let old = tx
            .query_row(
                "SELECT version, size, sealed_value FROM agent_state WHERE agent = ?1 AND id = ?2",
                params![place.agent, place.id.as_slice()],
                |r| {
                    Ok(Stored {
                        version: r.get(0)?,
                        size: unsigned(r.get(1)?),
                        sealed_value: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(sql("read state"))?;
        let decided = change(old.as_ref());
        let usage = match plan(usage, old.as_ref(), &decided, quota) {
            Ok(u) => u,
            Err(refused) => return Ok(refused),
        };
        match decided {
            Change::Keep => return Ok(Applied::Done),
            Change::Put {
                sealed_name,
                sealed_value,
                size,
                version,
            } => {
                tx.execute(
                    "INSERT INTO agent_state (agent, id, bucket, version, size, sealed_name,
                       sealed_value) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (agent, id) DO UPDATE SET version = ?4, size = ?5,
                       sealed_name = ?6, sealed_value = ?7",
                    params![
                        place.agent,
                        place.id.as_slice(),
                        place.bucket.as_slice(),
                        version,
                        to_i64(size),
                        sealed_name,
                        sealed_value
                    ],
                )
                .map_err(sql("write state"))?;
            }
            Change::Delete => {
                tx.execute(
                    "DELETE FROM agent_state WHERE agent = ?1 AND id = ?2",
                    params![place.agent, place.id.as_slice()],
                )
                .map_err(sql("delete state"))?;
            }
        }
        tx.execute(
            "INSERT INTO agent_state_usage (agent, keys, bytes) VALUES (?1, ?2, ?3)
             ON CONFLICT (agent) DO UPDATE SET keys = ?2, bytes = ?3",
            params![place.agent, to_i64(usage.keys), to_i64(usage.bytes)],
        )
        .map_err(sql("write state usage"))?;
        tx.commit().map_err(sql("commit state write"))?;
        Ok(Applied::Done)
    }

    fn names(
        &self,
        agent: &str,
        bucket: &EntryId,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<NamedRow>, StorageError> {
        let conn = self.db.lock();
        let mut s = conn
            .prepare_cached(
                "SELECT id, sealed_name FROM agent_state WHERE agent = ?1 AND bucket = ?2
                 ORDER BY id LIMIT ?3 OFFSET ?4",
            )
            .map_err(sql("list state"))?;
        s.query_map(
            params![agent, bucket.as_slice(), limit, to_i64(offset)],
            |r| {
                Ok(NamedRow {
                    id: id_of(r.get(0)?)?,
                    sealed_name: r.get(1)?,
                    sealed_value: Vec::new(),
                })
            },
        )
        .and_then(Iterator::collect)
        .map_err(sql("list state"))
    }

    fn export(&self, agent: &str, after: &[u8], limit: u32) -> Result<Vec<NamedRow>, StorageError> {
        let conn = self.db.lock();
        let mut s = conn
            .prepare_cached(
                "SELECT id, sealed_name, sealed_value FROM agent_state
                 WHERE agent = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
            )
            .map_err(sql("export state"))?;
        s.query_map(params![agent, after, limit], |r| {
            Ok(NamedRow {
                id: id_of(r.get(0)?)?,
                sealed_name: r.get(1)?,
                sealed_value: r.get(2)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(sql("export state"))
    }

    fn usage(&self, agent: &str) -> Result<Usage, StorageError> {
        self.db
            .lock()
            .query_row(
                "SELECT keys, bytes FROM agent_state_usage WHERE agent = ?1",
                [agent],
                |r| {
                    Ok(Usage {
                        keys: unsigned(r.get(0)?),
                        bytes: unsigned(r.get(1)?),
                    })
                },
            )
            .optional()
            .map(Option::unwrap_or_default)
            .map_err(sql("read state usage"))
    }

    fn wipe(&self, agent: &str, order: Option<OwnerOrder>, now: u64) -> Result<u64, RegistryError> {
        let mut conn = self.db.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("begin state wipe"))?;
        if let Some(order) = order {
            check_order(&tx, agent, order)?;
            mark(&tx, agent, order, now)?;
        }
        let removed = tx
            .execute("DELETE FROM agent_state WHERE agent = ?1", [agent])
            .map_err(sql("wipe state"))?;
        tx.execute("DELETE FROM agent_state_usage WHERE agent = ?1", [agent])
            .map_err(sql("wipe state usage"))?;
        tx.commit().map_err(sql("commit state wipe"))?;
        Ok(removed as u64)
    }

    fn mark_order(&self, agent: &str, order: OwnerOrder, now: u64) -> Result<(), RegistryError> {
        let mut conn = self.db.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("begin an owner's state operation"))?;
        check_order(&tx, agent, order)?;
        mark(&tx, agent, order, now)?;
        tx.commit()
            .map_err(sql("commit an owner's state operation"))?;
        Ok(())
    }
}
