//! The payment ledger: every accepted x402 payment, keyed by its replay key, recorded durably
//! **before** the paid work runs, so a replayed payment is refused, also after a restart.
//!
//! SQLite in the data directory (`<data_dir>/payments.sqlite`, WAL, `synchronous = FULL`: an
//! acknowledged reservation survives power loss). States: `reserved` (verified and recorded,
//! work about to run) → `settled` (with the transaction, empty in verify-only mode) or
//! `settlement_failed`. The outcome is written after the response is on its way, so after a
//! crash a payment may stay `reserved`: it ran (or was about to), and its settlement, if any,
//! is on chain under its nonce; the replay key stays used either way.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

use super::StorageError;

/// A payment about to be recorded.
#[derive(Debug, Clone)]
pub struct NewPayment<'a> {
    /// The component's replay key.
    pub replay_key: &'a str,
    /// The payer's address.
    pub payer: &'a str,
    /// Amount, atomic units.
    pub amount: &'a str,
    /// Network, CAIP-2.
    pub network: &'a str,
    /// The paid route.
    pub route: &'a str,
    /// Unix seconds.
    pub at: u64,
}

/// The ledger.
pub struct PaymentLedger {
    conn: Mutex<Connection>,
}

fn sql(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StorageError {
    move |e| StorageError::Database {
        op,
        detail: e.to_string(),
    }
}

impl PaymentLedger {
    /// Opens (creating) `<data_dir>/payments.sqlite` and applies the schema.
    ///
    /// # Errors
    /// [`StorageError::Database`].
    pub fn open(data_dir: &Path) -> Result<Self, StorageError> {
        let conn = Connection::open(data_dir.join("payments.sqlite")).map_err(sql("open"))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS payments (
                 replay_key  TEXT PRIMARY KEY,
                 payer       TEXT NOT NULL,
                 amount      TEXT NOT NULL,
                 network     TEXT NOT NULL,
                 route       TEXT NOT NULL,
                 state       TEXT NOT NULL,
                 transaction_hash TEXT,
                 reason      TEXT,
                 reserved_at INTEGER NOT NULL,
                 updated_at  INTEGER NOT NULL
             );",
        )
        .map_err(sql("create schema"))?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a payment as `reserved`. Returns false, recording nothing, if its replay key is
    /// already in the ledger (a replay). Durable when it returns true.
    ///
    /// # Errors
    /// [`StorageError::Database`].
    pub fn reserve(&self, p: &NewPayment<'_>) -> Result<bool, StorageError> {
        let at = i64::try_from(p.at).unwrap_or(i64::MAX);
        let inserted = self
            .lock()
            .execute(
                "INSERT OR IGNORE INTO payments
                   (replay_key, payer, amount, network, route, state, reserved_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'reserved', ?6, ?6)",
                params![p.replay_key, p.payer, p.amount, p.network, p.route, at],
            )
            .map_err(sql("reserve"))?;
        Ok(inserted == 1)
    }

    /// Forgets a payment still `reserved`: the work it paid for failed before producing a
    /// result, so its authorization was never spent and may be presented again. Returns
    /// whether a reservation was removed (a settled or failed payment never is).
    ///
    /// # Errors
    /// [`StorageError::Database`].
    pub fn release(&self, replay_key: &str) -> Result<bool, StorageError> {
        let removed = self
            .lock()
            .execute(
                "DELETE FROM payments WHERE replay_key = ?1 AND state = 'reserved'",
                params![replay_key],
            )
            .map_err(sql("release"))?;
        Ok(removed == 1)
    }

    /// Records the settlement of a reserved payment.
    ///
    /// # Errors
    /// [`StorageError::Database`].
    pub fn settled(
        &self,
        replay_key: &str,
        transaction: &str,
        at: u64,
    ) -> Result<(), StorageError> {
        self.update(replay_key, "settled", Some(transaction), None, at)
    }

    /// Records a failed settlement.
    ///
    /// # Errors
    /// [`StorageError::Database`].
    pub fn settlement_failed(
        &self,
        replay_key: &str,
        reason: &str,
        at: u64,
    ) -> Result<(), StorageError> {
        self.update(replay_key, "settlement_failed", None, Some(reason), at)
    }

    fn update(
        &self,
        key: &str,
        state: &str,
        tx: Option<&str>,
        reason: Option<&str>,
        at: u64,
    ) -> Result<(), StorageError> {
        let at = i64::try_from(at).unwrap_or(i64::MAX);
        let conn = self.lock();
        // Outcomes do not wait for an fsync of their own (`synchronous = NORMAL` for this
        // commit): the next reservation's fsync makes them durable, and a crash before that
        // leaves the payment `reserved`, which refuses its replay all the same.
        conn.execute_batch("PRAGMA synchronous = NORMAL")
            .map_err(sql("relax sync"))?;
        let updated = conn
            .execute(
                "UPDATE payments SET state = ?2, transaction_hash = ?3, reason = ?4, updated_at = ?5
                 WHERE replay_key = ?1",
                params![key, state, tx, reason, at],
            )
            .map_err(sql("update"));
        conn.execute_batch("PRAGMA synchronous = FULL")
            .map_err(sql("restore sync"))?;
        updated.map(|_| ())
    }

    /// The state of a payment (`reserved`, `settled`, `settlement_failed`), if recorded.
    ///
    /// # Errors
    /// [`StorageError::Database`].
    pub fn state(&self, replay_key: &str) -> Result<Option<String>, StorageError> {
        self.lock()
            .query_row(
                "SELECT state FROM payments WHERE replay_key = ?1",
                params![replay_key],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql("query"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_key_is_accepted_once_even_across_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let p = NewPayment {
            replay_key: "eip3009:1:0xa:0xb:0xc",
            payer: "0xb",
            amount: "10",
            network: "eip155:1",
            route: "/x402_execute/test/wasm",
            at: 1,
        };
        let ledger = PaymentLedger::open(dir.path()).unwrap();
        assert!(ledger.reserve(&p).unwrap());
        assert!(!ledger.reserve(&p).unwrap());
        ledger.settled(p.replay_key, "", 2).unwrap();
        drop(ledger);
        let reopened = PaymentLedger::open(dir.path()).unwrap();
        assert!(!reopened.reserve(&p).unwrap());
        assert_eq!(
            reopened.state(p.replay_key).unwrap().as_deref(),
            Some("settled")
        );
        assert_eq!(reopened.state("other").unwrap(), None);
    }
}
