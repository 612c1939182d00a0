//! Wallets and spends on SQLite (tables `agent_wallets`, `agent_spends`). A reservation's
//! transaction is `IMMEDIATE`: it takes the write lock before summing, so no other reservation
//! interleaves.

use std::sync::Arc;

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::owner_order::{check_order, mark};
use super::{Database, sql};
use crate::storage::StorageError;
use crate::storage::agents::{OwnerOrder, RegistryError};
use crate::storage::wallets::{NewSpend, SpendError, WalletBackend, WalletRow, check_budget};

/// The SQLite wallet tables.
pub struct SqliteWallets {
    db: Arc<Database>,
}

impl SqliteWallets {
    /// The tables in `db`.
    pub fn new(db: Arc<Database>) -> Self {
        Self { db }
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn spent_on(conn: &rusqlite::Connection, agent: &str, since_ms: u64) -> Result<i128, StorageError> {
    let sum: Option<i64> = conn
        .query_row(
            "SELECT SUM(amount) FROM agent_spends WHERE agent = ?1 AND at_ms >= ?2",
            params![agent, to_i64(since_ms)],
            |r| r.get(0),
        )
        .map_err(sql("sum spends"))?;
    Ok(i128::from(sum.unwrap_or(0)))
}

impl WalletBackend for SqliteWallets {
    fn attach(
        &self,
        agent: &str,
        row: &WalletRow,
        order: Option<OwnerOrder>,
        now: u64,
    ) -> Result<(), RegistryError> {
        let mut conn = self.db.lock();
        let tx = conn.transaction().map_err(sql("begin wallet"))?;
        if let Some(order) = order {
            check_order(&tx, agent, order)?;
        }
        tx.execute(
            "INSERT INTO agent_wallets (agent, address, sealed_key, policy, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(agent) DO UPDATE SET address = ?2, sealed_key = ?3, policy = ?4,
                   created_at = ?5",
            params![agent, row.address, row.sealed_key, row.policy, to_i64(now)],
        )
        .map_err(sql("attach wallet"))?;
        if let Some(order) = order {
            mark(&tx, agent, order, now)?;
        }
        tx.commit().map_err(sql("commit wallet"))?;
        Ok(())
    }

    fn detach(&self, agent: &str) -> Result<(), StorageError> {
        self.db
            .lock()
            .execute("DELETE FROM agent_wallets WHERE agent = ?1", [agent])
            .map_err(sql("detach wallet"))?;
        Ok(())
    }

    fn get(&self, agent: &str) -> Result<Option<WalletRow>, StorageError> {
        self.db
            .lock()
            .query_row(
                "SELECT address, sealed_key, policy FROM agent_wallets WHERE agent = ?1",
                [agent],
                |r| {
                    Ok(WalletRow {
                        address: r.get(0)?,
                        sealed_key: r.get(1)?,
                        policy: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(sql("read wallet"))
    }

    fn spent_since(&self, agent: &str, since_ms: u64) -> Result<i128, StorageError> {
        spent_on(&self.db.lock(), agent, since_ms)
    }

    fn reserve(
        &self,
        spend: &NewSpend<'_>,
        day_start_ms: u64,
        max_day: i64,
        max_total: i64,
    ) -> Result<i64, SpendError> {
        let mut conn = self.db.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("begin spend"))?;
        let day = spent_on(&tx, spend.agent, day_start_ms)?;
        let total = spent_on(&tx, spend.agent, 0)?;
        check_budget(spend, day, total, max_day, max_total)?;
        tx.execute(
            "INSERT INTO agent_spends (agent, caller_execution, callee, pay_to, asset, network,
               amount, state, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'reserved', ?8)",
            params![
                spend.agent,
                spend.caller_execution,
                spend.callee,
                spend.pay_to.to_ascii_lowercase(),
                spend.asset.to_ascii_lowercase(),
                spend.network,
                spend.amount,
                to_i64(spend.at_ms)
            ],
        )
        .map_err(sql("reserve spend"))?;
        let id = tx.last_insert_rowid();
        tx.commit().map_err(sql("commit spend"))?;
        Ok(id)
    }

    fn update(
        &self,
        id: i64,
        state: &str,
        nonce: Option<&str>,
        tx: Option<&str>,
    ) -> Result<(), StorageError> {
        self.db
            .lock()
            .execute(
                "UPDATE agent_spends SET state = ?2, nonce = COALESCE(?3, nonce),
                   tx = COALESCE(?4, tx) WHERE id = ?1",
                params![id, state, nonce, tx],
            )
            .map_err(sql("update spend"))?;
        Ok(())
    }

    fn settled_amount(&self, id: i64, amount: i64) -> Result<(), StorageError> {
        self.db
            .lock()
            .execute(
                "UPDATE agent_spends SET amount = ?2 WHERE id = ?1 AND amount > ?2 AND ?2 >= 0",
                params![id, amount],
            )
            .map_err(sql("correct a spend"))?;
        Ok(())
    }
}
