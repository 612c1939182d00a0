//! Agent wallets and their spend ledger (tables `agent_wallets`, `agent_spends`):
//! [`Wallets`] seals keys and reads policies over a backend's [`WalletBackend`].
//!
//! A wallet's key is stored sealed with the host's at-rest key (purpose
//! [`WALLET_KEY_PURPOSE`]) and opened only to sign. A spend is **reserved before anything is
//! signed**: [`Wallets::reserve`] checks the policy's per-day and total budgets and inserts
//! the spend in one transaction, so concurrent calls (on any replica) cannot both pass the same budget and a
//! crash after signing leaves the spend counted (a reservation never expires: an authorization
//! that left the host may still be settled by whoever holds it).

use std::sync::Arc;

use hypervisor_protocol::wallet::SpendingPolicy;
use zeroize::Zeroizing;

use super::StorageError;
use super::agents::{OwnerOrder, RegistryError};
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

/// A wallet row as a backend stores it.
#[derive(Debug, Clone)]
pub struct WalletRow {
    /// The address, lowercase.
    pub address: String,
    /// The key, sealed.
    pub sealed_key: Vec<u8>,
    /// The policy, JSON.
    pub policy: String,
}

/// The interface of the wallet tables: what a database backend implements (blocking calls).
pub trait WalletBackend: Send + Sync {
    /// Inserts or replaces the wallet of `agent`, after checking `order` against the name's
    /// last owner operation and recording it, in one transaction.
    ///
    /// # Errors
    /// [`RegistryError::Replayed`], [`RegistryError::Storage`].
    fn attach(
        &self,
        agent: &str,
        row: &WalletRow,
        order: Option<OwnerOrder>,
        now: u64,
    ) -> Result<(), RegistryError>;

    /// Removes the wallet of `agent`; its spends stay.
    ///
    /// # Errors
    /// [`StorageError`].
    fn detach(&self, agent: &str) -> Result<(), StorageError>;

    /// The wallet of `agent`, if any.
    ///
    /// # Errors
    /// [`StorageError`].
    fn get(&self, agent: &str) -> Result<Option<WalletRow>, StorageError>;

    /// Atomic units reserved by `agent` since `since_ms`.
    ///
    /// # Errors
    /// [`StorageError`].
    fn spent_since(&self, agent: &str, since_ms: u64) -> Result<i128, StorageError>;

    /// In one transaction that no other reservation of the same agent interleaves with: sums
    /// the agent's spends since `day_start_ms` and in all, refuses the spend if either sum
    /// with it passes `max_day` or `max_total`, else inserts it as `reserved`. Returns its id.
    ///
    /// # Errors
    /// [`SpendError`].
    fn reserve(
        &self,
        spend: &NewSpend<'_>,
        day_start_ms: u64,
        max_day: i64,
        max_total: i64,
    ) -> Result<i64, SpendError>;

    /// Sets the state of spend `id`, and its nonce and transaction when given.
    ///
    /// # Errors
    /// [`StorageError`].
    fn update(
        &self,
        id: i64,
        state: &str,
        nonce: Option<&str>,
        tx: Option<&str>,
    ) -> Result<(), StorageError>;

    /// Lowers a spend's amount to what was settled (a metered callee charges at most the
    /// maximum reserved): never raises it.
    fn settled_amount(&self, id: i64, amount: i64) -> Result<(), StorageError>;
}

/// Wallets and spends.
pub struct Wallets {
    backend: Arc<dyn WalletBackend>,
    key: Arc<SealingKey>,
}

/// A policy amount (validated when the wallet was attached).
pub fn amount(text: &str) -> Option<i64> {
    text.parse::<i64>().ok().filter(|v| *v >= 0)
}

const DAY_MS: u64 = 24 * 3600 * 1000;

impl Wallets {
    /// The wallets in `backend`, keys sealed with `key`.
    pub fn new(backend: Arc<dyn WalletBackend>, key: Arc<SealingKey>) -> Self {
        Self { backend, key }
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
        let sealed_key =
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
        let row = WalletRow {
            address: address.to_ascii_lowercase(),
            sealed_key,
            policy,
        };
        self.backend.attach(agent, &row, order, now)
    }

    /// Removes the wallet of `agent` (when the agent is deleted); its spends stay.
    ///
    /// # Errors
    /// [`StorageError`].
    pub fn detach(&self, agent: &str) -> Result<(), StorageError> {
        self.backend.detach(agent)
    }

    /// The wallet of `agent`, if any.
    ///
    /// # Errors
    /// [`StorageError`] (a corrupt policy included).
    pub fn get(&self, agent: &str) -> Result<Option<StoredWallet>, StorageError> {
        self.backend
            .get(agent)?
            .map(|row| {
                Ok(StoredWallet {
                    address: row.address,
                    policy: serde_json::from_str(&row.policy).map_err(|e| {
                        StorageError::Database {
                            op: "decode policy",
                            detail: e.to_string(),
                        }
                    })?,
                    sealed_key: row.sealed_key,
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

    /// Spent by `agent` in the 24 hours before `now_ms`, and in all.
    ///
    /// # Errors
    /// [`StorageError`].
    pub fn spent(&self, agent: &str, now_ms: u64) -> Result<(i128, i128), StorageError> {
        Ok((
            self.backend
                .spent_since(agent, now_ms.saturating_sub(DAY_MS))?,
            self.backend.spent_since(agent, 0)?,
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
        self.backend.reserve(
            spend,
            spend.at_ms.saturating_sub(DAY_MS),
            max_day,
            max_total,
        )
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
        self.backend.update(id, state, nonce, tx)
    }

    /// Lowers spend `id` to the `amount` a metered callee settled (at most what was reserved:
    /// the budgets then count what was paid). Never raises it.
    ///
    /// # Errors
    /// [`StorageError`].
    pub fn settled_amount(&self, id: i64, amount: i64) -> Result<(), StorageError> {
        self.backend.settled_amount(id, amount)
    }
}

/// The budget check of [`WalletBackend::reserve`], on the sums a backend read in its
/// transaction (`day` and `total` before the spend).
///
/// # Errors
/// [`SpendError::OverDay`], [`SpendError::OverTotal`].
pub fn check_budget(
    spend: &NewSpend<'_>,
    day: i128,
    total: i128,
    max_day: i64,
    max_total: i64,
) -> Result<(), SpendError> {
    let asked = i128::from(spend.amount);
    if day + asked > i128::from(max_day) {
        return Err(SpendError::OverDay {
            amount: spend.amount,
            would_be: day + asked,
            max: max_day,
        });
    }
    if total + asked > i128::from(max_total) {
        return Err(SpendError::OverTotal {
            amount: spend.amount,
            would_be: total + asked,
            max: max_total,
        });
    }
    Ok(())
}
