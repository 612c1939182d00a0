//! Agent wallets and their spend ledger (tables `agent_wallets`, `agent_spends`).
//!
//! A wallet's key is stored sealed with the host's at-rest key (purpose
//! [`WALLET_KEY_PURPOSE`]) and opened only to sign. A spend is **reserved before anything is
//! signed**: [`Wallets::reserve`] checks the policy's per-day and total budgets and inserts
//! the spend in one transaction, so concurrent calls cannot both pass the same budget and a
//! crash after signing leaves the spend counted (a reservation never expires: an authorization
//! that left the host may still be settled by whoever holds it).

use std::sync::Arc;

use hypervisor_protocol::wallet::SpendingPolicy;
use rusqlite::{OptionalExtension, params};
use zeroize::Zeroizing;

use super::StorageError;
use super::agents::owner_order::{check_order, mark};
use super::agents::{OwnerOrder, RegistryError};
use super::db::{Database, sql};
use crate::crypto::at_rest::SealingKey;

/// Purpose label of wallet keys sealed at rest.
pub const WALLET_KEY_PURPOSE: &[u8] = b"wasm-hypervisor/v1/agent-wallet-key";

/// A wallet as stored (the key still sealed).
#[derive(Debug, Clone)]
pub struct StoredWallet {
    /// The address (`0x…`, lowercase).
    pub address: String,
    /// The policy.
    pub policy: SpendingPolicy,
    sealed_key: Vec<u8>,
}

/// Why a spend was not reserved.
#[derive(Debug, thiserror::Error)]
pub enum SpendError {
    /// The agent has no wallet.
    #[error("the agent has no wallet")]
    NoWallet,
    /// Over the rolling 24-hour budget.
    #[error("paying {amount} would bring the last 24 hours to {would_be}, above max_per_day {max}")]
    OverDay {
        /// Asked.
        amount: i64,
        /// The sum it would make.
        would_be: i128,
        /// The budget.
        max: i64,
    },
    /// Over the total budget.
    #[error("paying {amount} would bring the total to {would_be}, above max_total {max}")]
    OverTotal {
        /// Asked.
        amount: i64,
        /// The sum it would make.
        would_be: i128,
        /// The budget.
        max: i64,
    },
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// One spend to reserve.
#[derive(Debug, Clone)]
pub struct NewSpend<'a> {
    /// The paying agent.
    pub agent: &'a str,
    /// The run that paid.
    pub caller_execution: &'a str,
    /// What was paid (agent name or origin).
    pub callee: &'a str,
    /// Recipient (`0x…`).
    pub pay_to: &'a str,
    /// Token (`0x…`).
    pub asset: &'a str,
    /// Network.
    pub network: &'a str,
    /// Atomic units.
    pub amount: i64,
    /// Unix milliseconds.
    pub at_ms: u64,
}

/// Wallets and spends.
pub struct Wallets {
    db: Arc<Database>,
    key: Arc<SealingKey>,
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A policy amount (validated when the wallet was attached).
pub fn amount(text: &str) -> Option<i64> {
    text.parse::<i64>().ok().filter(|v| *v >= 0)
}

const DAY_MS: u64 = 24 * 3600 * 1000;

impl Wallets {
    /// The wallets in `db`, keys sealed with `key`.
    pub fn new(db: Arc<Database>, key: Arc<SealingKey>) -> Self {
        Self { db, key }
    }

    /// Attaches (or replaces) the wallet of `agent`. The secret is sealed here and dropped
    /// (zeroized) by the caller.
    ///
    /// # Errors
    /// [`StorageError`].
    pub fn attach(
        &self,
        agent: &str,
        address: &str,
        secret: &[u8],
        policy: &SpendingPolicy,
        order: Option<OwnerOrder>,
        now: u64,
    ) -> Result<(), RegistryError> {
        let sealed =
            self.key
                .seal(WALLET_KEY_PURPOSE, secret)
                .map_err(|e| StorageError::Database {
                    op: "seal wallet key",
                    detail: e.to_string(),
                })?;
        let policy = serde_json::to_string(policy).map_err(|e| StorageError::Database {
            op: "encode policy",
            detail: e.to_string(),
        })?;
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
            params![
                agent,
                address.to_ascii_lowercase(),
                sealed,
                policy,
                to_i64(now)
            ],
        )
        .map_err(sql("attach wallet"))?;
        if let Some(order) = order {
            mark(&tx, agent, order, now)?;
        }
        tx.commit().map_err(sql("commit wallet"))?;
        Ok(())
    }

    /// Removes the wallet of `agent` (when the agent is deleted); its spends stay.
    ///
    /// # Errors
    /// [`StorageError`].
    pub fn detach(&self, agent: &str) -> Result<(), StorageError> {
        self.db
            .lock()
            .execute("DELETE FROM agent_wallets WHERE agent = ?1", [agent])
            .map_err(sql("detach wallet"))?;
        Ok(())
    }

    /// The wallet of `agent`, if any.
    ///
    /// # Errors
    /// [`StorageError`] (a corrupt policy included).
    pub fn get(&self, agent: &str) -> Result<Option<StoredWallet>, StorageError> {
        let row: Option<(String, Vec<u8>, String)> = self
            .db
            .lock()
            .query_row(
                "SELECT address, sealed_key, policy FROM agent_wallets WHERE agent = ?1",
                [agent],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(sql("read wallet"))?;
        row.map(|(address, sealed_key, policy)| {
            Ok(StoredWallet {
                address,
                policy: serde_json::from_str(&policy).map_err(|e| StorageError::Database {
                    op: "decode policy",
                    detail: e.to_string(),
                })?,
                sealed_key,
            })
        })
        .transpose()
    }

    /// Opens a wallet's key, to sign with at once (zeroized on drop).
    ///
    /// # Errors
    /// [`StorageError`] if the sealed key does not open.
    pub fn open_key(&self, wallet: &StoredWallet) -> Result<Zeroizing<Vec<u8>>, StorageError> {
        self.key
            .open(WALLET_KEY_PURPOSE, &wallet.sealed_key)
            .map(Zeroizing::new)
            .map_err(|e| StorageError::Database {
                op: "open wallet key",
                detail: e.to_string(),
            })
    }

    /// Atomic units spent (reserved) by `agent` since `since_ms`.
    fn spent_on(
        conn: &rusqlite::Connection,
        agent: &str,
        since_ms: u64,
    ) -> Result<i128, StorageError> {
        let sum: Option<i64> = conn
            .query_row(
                "SELECT SUM(amount) FROM agent_spends WHERE agent = ?1 AND at_ms >= ?2",
                params![agent, to_i64(since_ms)],
                |r| r.get(0),
            )
            .map_err(sql("sum spends"))?;
        Ok(i128::from(sum.unwrap_or(0)))
    }

    /// Spent by `agent` in the 24 hours before `now_ms`, and in all.
    ///
    /// # Errors
    /// [`StorageError`].
    pub fn spent(&self, agent: &str, now_ms: u64) -> Result<(i128, i128), StorageError> {
        let conn = self.db.lock();
        Ok((
            Self::spent_on(&conn, agent, now_ms.saturating_sub(DAY_MS))?,
            Self::spent_on(&conn, agent, 0)?,
        ))
    }

    /// Reserves a spend within `policy`'s day and total budgets, durably, in one transaction;
    /// returns its id (to attach the nonce and the outcome to).
    ///
    /// # Errors
    /// [`SpendError::OverDay`], [`SpendError::OverTotal`], [`SpendError::Storage`].
    pub fn reserve(
        &self,
        policy: &SpendingPolicy,
        spend: &NewSpend<'_>,
    ) -> Result<i64, SpendError> {
        let max_day = amount(&policy.max_per_day).unwrap_or(0);
        let max_total = amount(&policy.max_total).unwrap_or(0);
        let mut conn = self.db.lock();
        let tx = conn.transaction().map_err(sql("begin spend"))?;
        let asked = i128::from(spend.amount);
        let day = Self::spent_on(&tx, spend.agent, spend.at_ms.saturating_sub(DAY_MS))? + asked;
        if day > i128::from(max_day) {
            return Err(SpendError::OverDay {
                amount: spend.amount,
                would_be: day,
                max: max_day,
            });
        }
        let total = Self::spent_on(&tx, spend.agent, 0)? + asked;
        if total > i128::from(max_total) {
            return Err(SpendError::OverTotal {
                amount: spend.amount,
                would_be: total,
                max: max_total,
            });
        }
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

    /// Records what became of spend `id`: `signed` with its nonce (before the authorization
    /// leaves the host), then `settled` with its transaction or `unsettled`.
    ///
    /// # Errors
    /// [`StorageError`].
    pub fn update(
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> SpendingPolicy {
        SpendingPolicy {
            networks: vec!["eip155:84532".into()],
            assets: vec!["0xa".into()],
            max_per_call: "10".into(),
            max_per_day: "25".into(),
            max_total: "35".into(),
            payees: None,
        }
    }

    #[test]
    fn spends_are_reserved_within_the_day_and_total_budgets() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Database::open(dir.path()).unwrap());
        let key = Arc::new(SealingKey::generate().unwrap());
        let wallets = Wallets::new(db, key);
        wallets
            .attach("buyer", "0xAB", &[7u8; 32], &policy(), None, 1)
            .unwrap();
        let stored = wallets.get("buyer").unwrap().unwrap();
        assert_eq!(stored.address, "0xab");
        assert_eq!(&*wallets.open_key(&stored).unwrap(), &[7u8; 32]);
        let spend = |amount, at_ms| NewSpend {
            agent: "buyer",
            caller_execution: "run",
            callee: "seller",
            pay_to: "0xP",
            asset: "0xa",
            network: "eip155:84532",
            amount,
            at_ms,
        };
        let day = DAY_MS;
        wallets.reserve(&policy(), &spend(10, day)).unwrap();
        wallets.reserve(&policy(), &spend(10, day + 1)).unwrap();
        assert!(matches!(
            wallets.reserve(&policy(), &spend(10, day + 2)),
            Err(SpendError::OverDay { would_be: 30, .. })
        ));
        // A day later the day's budget is free again, but not the total's.
        wallets.reserve(&policy(), &spend(10, 2 * day + 5)).unwrap();
        assert!(matches!(
            wallets.reserve(&policy(), &spend(10, 2 * day + 6)),
            Err(SpendError::OverTotal { would_be: 40, .. })
        ));
        assert_eq!(wallets.spent("buyer", 2 * day + 6).unwrap(), (10, 30));
    }
}
