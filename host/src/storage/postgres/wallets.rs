//! Wallets and spends on PostgreSQL (tables `agent_wallets`, `agent_spends`). A reservation
//! takes a transaction advisory lock on the agent first, so reservations against one agent's
//! budget, on any replica, run one after the other.

use std::sync::Arc;

use deadpool_postgres::GenericClient;

use super::{Pg, big, pg};
use crate::storage::StorageError;
use crate::storage::agents::{OwnerOrder, RegistryError};
use crate::storage::wallets::{NewSpend, SpendError, WalletBackend, WalletRow, check_budget};

/// The PostgreSQL wallet tables.
pub struct PgWallets {
    pg: Arc<Pg>,
}

impl PgWallets {
    /// The tables on `pg`.
    pub fn new(pg: Arc<Pg>) -> Self {
        Self { pg }
    }
}

async fn spent_on(
    client: &impl GenericClient,
    agent: &str,
    since_ms: u64,
) -> Result<i128, StorageError> {
    let row = client
        .query_one(
            "SELECT COALESCE(SUM(amount), 0)::BIGINT FROM agent_spends
             WHERE agent = $1 AND at_ms >= $2",
            &[&agent, &big(since_ms)],
        )
        .await
        .map_err(pg("sum spends"))?;
    Ok(i128::from(row.get::<_, i64>(0)))
}

impl WalletBackend for PgWallets {
    fn attach(
        &self,
        agent: &str,
        row: &WalletRow,
        order: Option<OwnerOrder>,
        now: u64,
    ) -> Result<(), RegistryError> {
        self.pg.block(async {
            let mut client = self.pg.client("attach wallet").await?;
            let tx = client.transaction().await.map_err(pg("begin wallet"))?;
            super::agents::check_order(&tx, agent, order).await?;
            tx.execute(
                "INSERT INTO agent_wallets (agent, address, sealed_key, policy, created_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (agent) DO UPDATE SET address = EXCLUDED.address,
                   sealed_key = EXCLUDED.sealed_key, policy = EXCLUDED.policy,
                   created_at = EXCLUDED.created_at",
                &[
                    &agent,
                    &row.address,
                    &row.sealed_key,
                    &row.policy,
                    &big(now),
                ],
            )
            .await
            .map_err(pg("attach wallet"))?;
            if order.is_some() {
                super::agents::mark(&tx, agent, order, now).await?;
            }
            tx.commit().await.map_err(pg("commit wallet"))?;
            Ok::<_, RegistryError>(())
        })
    }

    fn detach(&self, agent: &str) -> Result<(), StorageError> {
        self.pg.block(async {
            let client = self.pg.client("detach wallet").await?;
            client
                .execute("DELETE FROM agent_wallets WHERE agent = $1", &[&agent])
                .await
                .map_err(pg("detach wallet"))?;
            Ok(())
        })
    }

    fn get(&self, agent: &str) -> Result<Option<WalletRow>, StorageError> {
        self.pg.block(async {
            let client = self.pg.client("read wallet").await?;
            let row = client
                .query_opt(
                    "SELECT address, sealed_key, policy FROM agent_wallets WHERE agent = $1",
                    &[&agent],
                )
                .await
                .map_err(pg("read wallet"))?;
            Ok(row.map(|r| WalletRow {
                address: r.get(0),
                sealed_key: r.get(1),
                policy: r.get(2),
            }))
        })
    }

    fn spent_since(&self, agent: &str, since_ms: u64) -> Result<i128, StorageError> {
        self.pg.block(async {
            let client = self.pg.client("sum spends").await?;
            spent_on(&client, agent, since_ms).await
        })
    }

    fn reserve(
        &self,
        spend: &NewSpend<'_>,
        day_start_ms: u64,
        max_day: i64,
        max_total: i64,
    ) -> Result<i64, SpendError> {
        self.pg.block(async {
            let mut client = self.pg.client("reserve spend").await?;
            let tx = client.transaction().await.map_err(pg("begin spend"))?;
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 11))",
                &[&spend.agent],
            )
            .await
            .map_err(pg("lock the agent's budget"))?;
            let day = spent_on(&tx, spend.agent, day_start_ms).await?;
            let total = spent_on(&tx, spend.agent, 0).await?;
            check_budget(spend, day, total, max_day, max_total)?;
            let id: i64 = tx
                .query_one(
                    "INSERT INTO agent_spends (agent, caller_execution, callee, pay_to, asset,
                       network, amount, state, at_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 'reserved', $8) RETURNING id",
                    &[
                        &spend.agent,
                        &spend.caller_execution,
                        &spend.callee,
                        &spend.pay_to.to_ascii_lowercase(),
                        &spend.asset.to_ascii_lowercase(),
                        &spend.network,
                        &spend.amount,
                        &big(spend.at_ms),
                    ],
                )
                .await
                .map_err(pg("reserve spend"))?
                .get(0);
            tx.commit().await.map_err(pg("commit spend"))?;
            Ok::<_, SpendError>(id)
        })
    }

    fn update(
        &self,
        id: i64,
        state: &str,
        nonce: Option<&str>,
        tx: Option<&str>,
    ) -> Result<(), StorageError> {
        self.pg.block(async {
            let client = self.pg.client("update spend").await?;
            client
                .execute(
                    "UPDATE agent_spends SET state = $2, nonce = COALESCE($3, nonce),
                       tx = COALESCE($4, tx) WHERE id = $1",
                    &[&id, &state, &nonce, &tx],
                )
                .await
                .map_err(pg("update spend"))?;
            Ok(())
        })
    }

    fn settled_amount(&self, id: i64, amount: i64) -> Result<(), StorageError> {
        self.pg.block(async {
            let client = self.pg.client("correct a spend").await?;
            client
                .execute(
                    "UPDATE agent_spends SET amount = $2 WHERE id = $1 AND amount > $2 AND $2 >= 0",
                    &[&id, &amount],
                )
                .await
                .map_err(pg("correct a spend"))?;
            Ok(())
        })
    }
}
