//! The payment ledger on SQLite: its own file, `<data_dir>/payments.sqlite` (WAL,
//! `synchronous = FULL`: an acknowledged reservation survives power loss), so that its fsyncs
//! never wait behind the records' group commits.
//!
//! One process owns a data directory (the embedded backend's premise), so every run but the
//! adopting one is dead: [`PaymentLedger::adopt`] takes every unfinished payment of another
//! run (those left by the previous process, at start-up).

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

use super::sql;
use crate::storage::StorageError;
use crate::storage::payments::{Adopted, NewPayment, PaymentLedger};

/// The schema of `payments.sqlite`, one entry per version (`PRAGMA user_version`).
const MIGRATIONS: &[&str] = &[
    // 1: the ledger (created as `IF NOT EXISTS`: hosts before versioning made it so).
    "CREATE TABLE IF NOT EXISTS payments (
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
    // 2: the run that owns an unfinished payment, and what settling it takes (sealed), so
    // that another run finishes it when the owner dies.
    "ALTER TABLE payments ADD COLUMN owner TEXT NOT NULL DEFAULT '';
     ALTER TABLE payments ADD COLUMN sealed BLOB;
     CREATE INDEX payments_unfinished ON payments(state) WHERE state IN ('reserved', 'settling');",
];

/// The ledger.
pub struct SqlitePayments {
    conn: Mutex<Connection>,
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl SqlitePayments {
    /// Opens (creating) `<data_dir>/payments.sqlite` and applies pending migrations.
    ///
    /// # Errors
    /// [`StorageError::Database`], also for a ledger written by a newer host.
    pub fn open(data_dir: &Path) -> Result<Self, StorageError> {
        let mut conn = Connection::open(data_dir.join("payments.sqlite")).map_err(sql("open"))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA busy_timeout = 5000;",
        )
        .map_err(sql("configure"))?;
        super::migrate(&mut conn, MIGRATIONS, "payment ledger")?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `statement` with `synchronous = NORMAL`: outcomes do not wait for an fsync of
    /// their own (the next reservation's fsync makes them durable; a crash before that leaves
    /// the payment unfinished, which refuses its replay all the same and is adopted at the
    /// next start).
    fn relaxed(
        &self,
        op: &'static str,
        statement: impl FnOnce(&Connection) -> rusqlite::Result<usize>,
    ) -> Result<usize, StorageError> {
        let conn = self.lock();
        conn.execute_batch("PRAGMA synchronous = NORMAL")
            .map_err(sql("relax sync"))?;
        let done = statement(&conn).map_err(sql(op));
        conn.execute_batch("PRAGMA synchronous = FULL")
            .map_err(sql("restore sync"))?;
        done
    }

    fn finish(
        &self,
        key: &str,
        state: &str,
        tx: Option<&str>,
        reason: Option<&str>,
        at: u64,
    ) -> Result<(), StorageError> {
        self.relaxed("update", |c| {
            c.execute(
                "UPDATE payments SET state = ?2, transaction_hash = ?3, reason = ?4,
                   updated_at = ?5, sealed = NULL WHERE replay_key = ?1",
                params![key, state, tx, reason, to_i64(at)],
            )
        })
        .map(|_| ())
    }
}

impl PaymentLedger for SqlitePayments {
    fn reserve(&self, p: &NewPayment<'_>) -> Result<bool, StorageError> {
        let inserted = self
            .lock()
            .prepare_cached(
                "INSERT INTO payments (replay_key, payer, amount, network, route, state, owner,
                   sealed, reserved_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'reserved', ?6, ?7, ?8, ?8)
                 ON CONFLICT (replay_key) DO NOTHING",
            )
            .and_then(|mut s| {
                s.execute(params![
                    p.replay_key,
                    p.payer,
                    p.amount,
                    p.network,
                    p.route,
                    p.owner,
                    p.sealed,
                    to_i64(p.at)
                ])
            })
            .map_err(sql("reserve"))?;
        Ok(inserted == 1)
    }

    fn release(&self, replay_key: &str) -> Result<bool, StorageError> {
        let removed = self
            .lock()
            .execute(
                "DELETE FROM payments WHERE replay_key = ?1 AND state = 'reserved'",
                params![replay_key],
            )
            .map_err(sql("release"))?;
        Ok(removed == 1)
    }

    fn settling(&self, replay_key: &str, owner: &str, at: u64) -> Result<bool, StorageError> {
        let changed = self.relaxed("mark settling", |c| {
            c.prepare_cached(
                "UPDATE payments SET state = 'settling', updated_at = ?3
                 WHERE replay_key = ?1 AND owner = ?2 AND state = 'reserved'",
            )
            .and_then(|mut s| s.execute(params![replay_key, owner, to_i64(at)]))
        })?;
        Ok(changed == 1)
    }

    fn settled(&self, replay_key: &str, transaction: &str, at: u64) -> Result<(), StorageError> {
        self.finish(replay_key, "settled", Some(transaction), None, at)
    }

    fn settlement_failed(
        &self,
        replay_key: &str,
        reason: &str,
        at: u64,
    ) -> Result<(), StorageError> {
        self.finish(replay_key, "settlement_failed", None, Some(reason), at)
    }

    fn state(&self, replay_key: &str) -> Result<Option<String>, StorageError> {
        self.lock()
            .query_row(
                "SELECT state FROM payments WHERE replay_key = ?1",
                params![replay_key],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql("query"))
    }

    fn adopt(
        &self,
        owner: &str,
        _alive_since_ms: u64,
        limit: u32,
    ) -> Result<Vec<Adopted>, StorageError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(sql("begin adopt"))?;
        let adopted: Vec<Adopted> = {
            let mut stmt = tx
                .prepare(
                    "SELECT replay_key, state, owner, sealed FROM payments
                     WHERE state IN ('reserved', 'settling') AND owner <> ?1 LIMIT ?2",
                )
                .map_err(sql("adopt"))?;
            let rows = stmt
                .query_map(params![owner, limit], |r| {
                    Ok(Adopted {
                        replay_key: r.get(0)?,
                        state: r.get(1)?,
                        previous_owner: r.get(2)?,
                        sealed: r.get::<_, Option<Vec<u8>>>(3)?.unwrap_or_default(),
                    })
                })
                .map_err(sql("adopt"))?;
            rows.collect::<Result<_, _>>().map_err(sql("adopt"))?
        };
        for a in &adopted {
            tx.execute(
                "UPDATE payments SET owner = ?2 WHERE replay_key = ?1",
                params![a.replay_key, owner],
            )
            .map_err(sql("adopt"))?;
        }
        tx.commit().map_err(sql("commit adopt"))?;
        Ok(adopted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ledger_of_version_1_gains_owners() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(dir.path().join("payments.sqlite")).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.execute_batch(
                "INSERT INTO payments VALUES ('k', 'p', '1', 'n', '/r', 'reserved', NULL, NULL, 1, 1)",
            )
            .unwrap();
        }
        let ledger = SqlitePayments::open(dir.path()).unwrap();
        let adopted = ledger.adopt("me", 0, 10).unwrap();
        assert_eq!(adopted.len(), 1);
        assert_eq!(adopted[0].previous_owner, "");
        assert!(ledger.release("k").unwrap());
    }
}
