//! Agents' configuration on PostgreSQL (table `agent_config`): one sealed document per agent,
//! changed under the agent name's lock and in the owner's order (as the catalog), announced
//! on [`super::state::STATE_CHANNEL`] so other replicas drop their cached copy.

use std::sync::Arc;

use super::state::STATE_CHANNEL;
use super::{Pg, big, pg};
use crate::storage::StorageError;
use crate::storage::agent_config::{ConfigBackend, Rewrite};
use crate::storage::agents::{OwnerOrder, RegistryError};

/// The PostgreSQL configuration table.
pub struct PgConfig {
    pg: Arc<Pg>,
}

impl PgConfig {
    /// The table on `pg`.
    pub fn new(pg: Arc<Pg>) -> Self {
        Self { pg }
    }
}

impl ConfigBackend for PgConfig {
    fn get(&self, agent: &str) -> Result<Option<Vec<u8>>, StorageError> {
        self.pg.block(async {
            let client = self.pg.client("read configuration").await?;
            Ok(client
                .query_opt(
                    "SELECT sealed FROM agent_config WHERE agent = $1",
                    &[&agent],
                )
                .await
                .map_err(pg("read configuration"))?
                .map(|r| r.get(0)))
        })
    }

    fn update(
        &self,
        agent: &str,
        order: OwnerOrder,
        now: u64,
        change: &mut Rewrite<'_>,
    ) -> Result<(), RegistryError> {
        self.pg.block(async {
            let mut client = self.pg.client("change configuration").await?;
            let tx = client
                .transaction()
                .await
                .map_err(pg("begin configuration"))?;
            super::agents::check_order(&tx, agent, Some(order)).await?;
            let old: Option<Vec<u8>> = tx
                .query_opt(
                    "SELECT sealed FROM agent_config WHERE agent = $1",
                    &[&agent],
                )
                .await
                .map_err(pg("read configuration"))?
                .map(|r| r.get(0));
            let sealed = change(old.as_deref())?;
            tx.execute(
                "INSERT INTO agent_config (agent, sealed, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (agent) DO UPDATE SET sealed = EXCLUDED.sealed,
                   updated_at = EXCLUDED.updated_at",
                &[&agent, &sealed, &big(now)],
            )
            .await
            .map_err(pg("write configuration"))?;
            super::agents::mark(&tx, agent, Some(order), now).await?;
            tx.execute(
                "SELECT pg_notify($1, $2)",
                &[&STATE_CHANNEL, &format!("c {agent}")],
            )
            .await
            .map_err(pg("announce a configuration change"))?;
            tx.commit().await.map_err(pg("commit configuration"))?;
            Ok::<_, RegistryError>(())
        })
    }

    fn remove(&self, agent: &str) -> Result<(), StorageError> {
        self.pg.block(async {
            let mut client = self.pg.client("remove configuration").await?;
            let tx = client
                .transaction()
                .await
                .map_err(pg("begin configuration removal"))?;
            tx.execute("DELETE FROM agent_config WHERE agent = $1", &[&agent])
                .await
                .map_err(pg("remove configuration"))?;
            tx.execute(
                "SELECT pg_notify($1, $2)",
                &[&STATE_CHANNEL, &format!("c {agent}")],
            )
            .await
            .map_err(pg("announce a configuration removal"))?;
            tx.commit()
                .await
                .map_err(pg("commit configuration removal"))?;
            Ok(())
        })
    }
}
