//! Agents' key-value state on PostgreSQL (tables `agent_state`, `agent_state_usage`). A write
//! locks the agent's usage row first (an upsert that creates it if missing), so the writes of
//! one agent, on every replica, run one after the other: counters and compare-and-swap are
//! atomic, and the quota check is exact. Statements that do not depend on each other's answers
//! are pipelined: a write costs four round trips (begin, lock and read, write, commit) once its
//! connection has prepared the statements. Each write announces the entry on
//! [`STATE_CHANNEL`] (delivered at commit), so other replicas drop it from their read caches.

use std::sync::Arc;

use deadpool_postgres::GenericClient;

use super::{Pg, big, pg, unsigned};
use crate::storage::StorageError;
use crate::storage::agents::{OwnerOrder, RegistryError};
use crate::storage::state::{
    Applied, Change, EntryId, NamedRow, Place, Quota, StateBackend, Stored, Usage, plan,
};

/// The channel of state and configuration changes. Payloads: `e <agent> <entry id hex>` (an
/// entry written or removed), `w <agent>` (all of an agent's state wiped), `c <agent>` (its
/// configuration changed or removed).
pub const STATE_CHANNEL: &str = "hypervisor_state";

const LOCK_USAGE: &str = "INSERT INTO agent_state_usage (agent, keys, bytes) VALUES ($1, 0, 0)
     ON CONFLICT (agent) DO UPDATE SET agent = EXCLUDED.agent RETURNING keys, bytes";
const READ_ENTRY: &str =
    "SELECT version, size, sealed_value FROM agent_state WHERE agent = $1 AND id = $2";
const PUT_ENTRY: &str = "INSERT INTO agent_state (agent, id, bucket, version, size, sealed_name,
       sealed_value) VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (agent, id) DO UPDATE SET version = $4, size = $5, sealed_name = $6,
       sealed_value = $7";
const DELETE_ENTRY: &str = "DELETE FROM agent_state WHERE agent = $1 AND id = $2";
const WRITE_USAGE: &str = "UPDATE agent_state_usage SET keys = $2, bytes = $3 WHERE agent = $1";
const NOTIFY: &str = "SELECT pg_notify($1, $2)";

/// The PostgreSQL state tables.
pub struct PgState {
    pg: Arc<Pg>,
}

impl PgState {
    /// The tables on `pg`.
    pub fn new(pg: Arc<Pg>) -> Self {
        Self { pg }
    }
}

fn id_of(bytes: Vec<u8>) -> Result<EntryId, StorageError> {
    bytes.try_into().map_err(|_| StorageError::Database {
        op: "read state",
        detail: "an entry id is not 32 bytes".into(),
    })
}

async fn usage_of(client: &impl GenericClient, agent: &str) -> Result<Usage, StorageError> {
    Ok(client
        .query_opt(
            "SELECT keys, bytes FROM agent_state_usage WHERE agent = $1",
            &[&agent],
        )
        .await
        .map_err(pg("read state usage"))?
        .map(|r| Usage {
            keys: unsigned(r.get(0)),
            bytes: unsigned(r.get(1)),
        })
        .unwrap_or_default())
}

impl StateBackend for PgState {
    fn get(&self, agent: &str, id: &EntryId) -> Result<Option<Stored>, StorageError> {
        self.pg.block(async {
            let client = self.pg.client("read state").await?;
            let read = client
                .prepare_cached(READ_ENTRY)
                .await
                .map_err(pg("prepare"))?;
            let row = client
                .query_opt(&read, &[&agent, &id.as_slice()])
                .await
                .map_err(pg("read state"))?;
            Ok(row.map(|r| Stored {
                version: r.get(0),
                size: unsigned(r.get(1)),
                sealed_value: r.get(2),
            }))
        })
    }

    fn update(
        &self,
        place: Place<'_>,
        quota: Quota,
        change: &mut (dyn FnMut(Option<&Stored>) -> Change + Send),
    ) -> Result<Applied, StorageError> {
        self.pg.block(async {
            let mut client = self.pg.client("write state").await?;
            // Prepared (once per connection) before anything is pipelined: a prepared
            // statement is sent when its future is first polled, so pipelined statements reach
            // the server in the order written, and it runs them in that order.
            let prepare = |sql| client.prepare_cached(sql);
            let lock = prepare(LOCK_USAGE).await.map_err(pg("prepare"))?;
            let read = prepare(READ_ENTRY).await.map_err(pg("prepare"))?;
            let put = prepare(PUT_ENTRY).await.map_err(pg("prepare"))?;
            let delete = prepare(DELETE_ENTRY).await.map_err(pg("prepare"))?;
            let account = prepare(WRITE_USAGE).await.map_err(pg("prepare"))?;
            let notify = prepare(NOTIFY).await.map_err(pg("prepare"))?;
            let tx = client
                .transaction()
                .await
                .map_err(pg("begin state write"))?;
            // One round trip: the agent's usage row, created if missing and locked (every
            // write of the agent waits here), then the entry, read under that lock.
            let (usage, old) = tokio::try_join!(
                async {
                    tx.query_one(&lock, &[&place.agent])
                        .await
                        .map_err(pg("lock state usage"))
                },
                async {
                    tx.query_opt(&read, &[&place.agent, &place.id.as_slice()])
                        .await
                        .map_err(pg("read state"))
                },
            )?;
            let usage = Usage {
                keys: unsigned(usage.get(0)),
                bytes: unsigned(usage.get(1)),
            };
            let old = old.map(|r| Stored {
                version: r.get(0),
                size: unsigned(r.get(1)),
                sealed_value: r.get(2),
            });
            let decided = change(old.as_ref());
            let usage = match plan(usage, old.as_ref(), &decided, quota) {
                Ok(u) => u,
                Err(refused) => return Ok(refused),
            };
            let write = async {
                match &decided {
                    Change::Keep => Ok(0),
                    Change::Put {
                        sealed_name,
                        sealed_value,
                        size,
                        version,
                    } => tx
                        .execute(
                            &put,
                            &[
                                &place.agent,
                                &place.id.as_slice(),
                                &place.bucket.as_slice(),
                                version,
                                &big(*size),
                                sealed_name,
                                sealed_value,
                            ],
                        )
                        .await
                        .map_err(pg("write state")),
                    Change::Delete => tx
                        .execute(&delete, &[&place.agent, &place.id.as_slice()])
                        .await
                        .map_err(pg("delete state")),
                }
            };
            if matches!(decided, Change::Keep) {
                return Ok(Applied::Done);
            }
            // One round trip: the entry, the usage and the change's announcement.
            let payload = format!("e {} {}", place.agent, hex::encode(place.id));
            tokio::try_join!(
                write,
                async {
                    tx.execute(
                        &account,
                        &[&place.agent, &big(usage.keys), &big(usage.bytes)],
                    )
                    .await
                    .map_err(pg("write state usage"))
                },
                async {
                    tx.execute(&notify, &[&STATE_CHANNEL, &payload])
                        .await
                        .map_err(pg("announce a state change"))
                },
            )?;
            tx.commit().await.map_err(pg("commit state write"))?;
            Ok(Applied::Done)
        })
    }

    fn names(
        &self,
        agent: &str,
        bucket: &EntryId,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<NamedRow>, StorageError> {
        self.pg.block(async {
            let client = self.pg.client("list state").await?;
            let rows = client
                .query(
                    "SELECT id, sealed_name FROM agent_state WHERE agent = $1 AND bucket = $2
                     ORDER BY id LIMIT $3 OFFSET $4",
                    &[&agent, &bucket.as_slice(), &i64::from(limit), &big(offset)],
                )
                .await
                .map_err(pg("list state"))?;
            rows.into_iter()
                .map(|r| {
                    Ok(NamedRow {
                        id: id_of(r.get(0))?,
                        sealed_name: r.get(1),
                        sealed_value: Vec::new(),
                    })
                })
                .collect()
        })
    }

    fn export(&self, agent: &str, after: &[u8], limit: u32) -> Result<Vec<NamedRow>, StorageError> {
        self.pg.block(async {
            let client = self.pg.client("export state").await?;
            let rows = client
                .query(
                    "SELECT id, sealed_name, sealed_value FROM agent_state
                     WHERE agent = $1 AND id > $2 ORDER BY id LIMIT $3",
                    &[&agent, &after, &i64::from(limit)],
                )
                .await
                .map_err(pg("export state"))?;
            rows.into_iter()
                .map(|r| {
                    Ok(NamedRow {
                        id: id_of(r.get(0))?,
                        sealed_name: r.get(1),
                        sealed_value: r.get(2),
                    })
                })
                .collect()
        })
    }

    fn usage(&self, agent: &str) -> Result<Usage, StorageError> {
        self.pg.block(async {
            let client = self.pg.client("read state usage").await?;
            usage_of(&client, agent).await
        })
    }

    fn wipe(&self, agent: &str, order: Option<OwnerOrder>, now: u64) -> Result<u64, RegistryError> {
        self.pg.block(async {
            let mut client = self.pg.client("wipe state").await?;
            let tx = client.transaction().await.map_err(pg("begin state wipe"))?;
            if order.is_some() {
                super::agents::check_order(&tx, agent, order).await?;
                super::agents::mark(&tx, agent, order, now).await?;
            }
            // Locked like a write, so no write of the agent interleaves.
            tx.execute(
                "SELECT 1 FROM agent_state_usage WHERE agent = $1 FOR UPDATE",
                &[&agent],
            )
            .await
            .map_err(pg("lock state usage"))?;
            let removed = tx
                .execute("DELETE FROM agent_state WHERE agent = $1", &[&agent])
                .await
                .map_err(pg("wipe state"))?;
            tx.execute("DELETE FROM agent_state_usage WHERE agent = $1", &[&agent])
                .await
                .map_err(pg("wipe state usage"))?;
            tx.execute(
                "SELECT pg_notify($1, $2)",
                &[&STATE_CHANNEL, &format!("w {agent}")],
            )
            .await
            .map_err(pg("announce a state wipe"))?;
            tx.commit().await.map_err(pg("commit state wipe"))?;
            Ok::<_, RegistryError>(removed)
        })
    }

    fn mark_order(&self, agent: &str, order: OwnerOrder, now: u64) -> Result<(), RegistryError> {
        self.pg.block(async {
            let mut client = self.pg.client("an owner's state operation").await?;
            let tx = client
                .transaction()
                .await
                .map_err(pg("begin an owner's state operation"))?;
            super::agents::check_order(&tx, agent, Some(order)).await?;
            super::agents::mark(&tx, agent, Some(order), now).await?;
            tx.commit()
                .await
                .map_err(pg("commit an owner's state operation"))?;
            Ok::<_, RegistryError>(())
        })
    }
}
