//! The payment ledger on SQLite: its own file, `<data_dir>/payments.sqlite` (WAL), so that its
//! fsyncs never wait behind the records' group commits; `synchronous = FULL`: an acknowledged
//! write survives power loss.
//!
//! Writes are **group-committed**: concurrent callers queue theirs (reservations, settling
//! marks, outcomes, releases), and whichever finds no commit under way writes every queued one,
//! in arrival order, in one transaction with one fsync, then wakes the others with their
//! answers (leader and followers, as databases do for their log). Each caller still returns
//! only once its own write is durable; under load one transaction and one fsync serve many
//! requests, and the pages they touch are written once.
//!
//! One process owns a data directory (the embedded backend's premise), so every run but the
//! adopting one is dead: [`PaymentLedger::adopt`] takes every unfinished payment of another
//! run (those left by the previous process, at start-up).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Condvar, Mutex, MutexGuard};

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

/// Inserts one reservation; no row changes for a replay key already in the ledger.
const RESERVE: &str = "INSERT INTO payments (replay_key, payer, amount, network, route, state,
       owner, sealed, reserved_at, updated_at)
     VALUES (?1, ?2, ?3, ?4, ?5, 'reserved', ?6, ?7, ?8, ?8)
     ON CONFLICT (replay_key) DO NOTHING";

/// The ledger.
pub struct SqlitePayments {
    conn: Mutex<Connection>,
    group: Mutex<Group>,
    /// Signalled after every group commit.
    committed: Condvar,
}

/// Writes waiting for a commit, and the answers of committed ones not yet collected.
#[derive(Default)]
struct Group {
    waiting: Vec<(u64, Write)>,
    /// A caller is committing a batch right now.
    committing: bool,
    answers: HashMap<u64, Result<bool, StorageError>>,
    next_ticket: u64,
}

/// A write in the queue, owned (its caller waits for its answer).
enum Write {
    /// Insert a reservation (answer: inserted, i.e. not a replay).
    Reserve {
        replay_key: String,
        payer: String,
        amount: String,
        network: String,
        route: String,
        owner: String,
        sealed: Vec<u8>,
        at: u64,
    },
    /// Delete a reservation still `reserved` (answer: deleted).
    Release { replay_key: String },
    /// `reserved` by `owner` → `settling` (answer: changed).
    Settling {
        replay_key: String,
        owner: String,
        at: u64,
    },
    /// `reserved` by `owner` → `settled` with no transaction (answer: changed).
    SettledAtOnce {
        replay_key: String,
        owner: String,
        at: u64,
    },
    /// Record an outcome (answer: changed).
    Finish {
        replay_key: String,
        state: &'static str,
        transaction: Option<String>,
        reason: Option<String>,
        at: u64,
    },
}

impl Write {
    /// Runs the write in `tx`: whether a row changed as asked.
    fn apply(&self, tx: &rusqlite::Transaction<'_>) -> Result<bool, StorageError> {
        let changed = match self {
            Self::Reserve {
                replay_key,
                payer,
                amount,
                network,
                route,
                owner,
                sealed,
                at,
            } => tx
                .prepare_cached(RESERVE)
                .and_then(|mut s| {
                    s.execute(params![
                        replay_key,
                        payer,
                        amount,
                        network,
                        route,
                        owner,
                        sealed,
                        to_i64(*at)
                    ])
                })
                .map_err(sql("reserve"))?,
            Self::Release { replay_key } => tx
                .prepare_cached("DELETE FROM payments WHERE replay_key = ?1 AND state = 'reserved'")
                .and_then(|mut s| s.execute(params![replay_key]))
                .map_err(sql("release"))?,
            Self::Settling {
                replay_key,
                owner,
                at,
            } => tx
                .prepare_cached(
                    "UPDATE payments SET state = 'settling', updated_at = ?3
                     WHERE replay_key = ?1 AND owner = ?2 AND state = 'reserved'",
                )
                .and_then(|mut s| s.execute(params![replay_key, owner, to_i64(*at)]))
                .map_err(sql("mark settling"))?,
            Self::SettledAtOnce {
                replay_key,
                owner,
                at,
            } => tx
                .prepare_cached(
                    "UPDATE payments SET state = 'settled', transaction_hash = '', updated_at = ?3,
                       sealed = NULL WHERE replay_key = ?1 AND owner = ?2 AND state = 'reserved'",
                )
                .and_then(|mut s| s.execute(params![replay_key, owner, to_i64(*at)]))
                .map_err(sql("record a settlement"))?,
            Self::Finish {
                replay_key,
                state,
                transaction,
                reason,
                at,
            } => tx
                .prepare_cached(
                    "UPDATE payments SET state = ?2, transaction_hash = ?3, reason = ?4,
                       updated_at = ?5, sealed = NULL WHERE replay_key = ?1",
                )
                .and_then(|mut s| {
                    s.execute(params![replay_key, state, transaction, reason, to_i64(*at)])
                })
                .map_err(sql("record an outcome"))?,
        };
        Ok(changed == 1)
    }
}

/// Clears `committing` and wakes the waiters when the committing caller is done, also if it
/// unwinds (a follower then becomes the next leader instead of waiting forever).
struct Leading<'a>(&'a SqlitePayments);

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        self.0.group_lock().committing = false;
        self.0.committed.notify_all();
    }
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
            group: Mutex::new(Group::default()),
            committed: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn group_lock(&self) -> MutexGuard<'_, Group> {
        self.group.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `write`, waits until a group commit (this caller's or another's) made it
    /// durable, and gives its answer.
    fn write(&self, write: Write) -> Result<bool, StorageError> {
        let mut group = self.group_lock();
        let ticket = group.next_ticket;
        group.next_ticket += 1;
        group.waiting.push((ticket, write));
        loop {
            if let Some(answer) = group.answers.remove(&ticket) {
                return answer;
            }
            if group.committing {
                group = self
                    .committed
                    .wait(group)
                    .unwrap_or_else(|p| p.into_inner());
                continue;
            }
            // Lead: commit everything queued so far (this caller's among it).
            group.committing = true;
            let batch = std::mem::take(&mut group.waiting);
            drop(group);
            let leading = Leading(self);
            let answers = self.commit(&batch);
            self.group_lock().answers.extend(answers);
            drop(leading);
            group = self.group_lock();
        }
    }

    /// Writes `batch` in arrival order in one transaction (one fsync): each write's answer, or
    /// the transaction's error for all of them.
    fn commit(&self, batch: &[(u64, Write)]) -> Vec<(u64, Result<bool, StorageError>)> {
        let mut conn = self.lock();
        let written = conn.transaction().and_then(|tx| {
            let answers: Vec<_> = batch
                .iter()
                .map(|(ticket, write)| (*ticket, write.apply(&tx)))
                .collect();
            tx.commit().map(|()| answers)
        });
        written.unwrap_or_else(|e| {
            batch
                .iter()
                .map(|(ticket, _)| {
                    let detail = e.to_string();
                    let op = "commit payment writes";
                    (*ticket, Err(StorageError::Database { op, detail }))
                })
                .collect()
        })
    }

    fn finish(
        &self,
        key: &str,
        state: &'static str,
        transaction: Option<&str>,
        reason: Option<&str>,
        at: u64,
    ) -> Result<(), StorageError> {
        self.write(Write::Finish {
            replay_key: key.to_owned(),
            state,
            transaction: transaction.map(str::to_owned),
            reason: reason.map(str::to_owned),
            at,
        })
        .map(|_| ())
    }
}

impl PaymentLedger for SqlitePayments {
    fn reserve(&self, p: &NewPayment<'_>) -> Result<bool, StorageError> {
        self.write(Write::Reserve {
            replay_key: p.replay_key.to_owned(),
            payer: p.payer.to_owned(),
            amount: p.amount.to_owned(),
            network: p.network.to_owned(),
            route: p.route.to_owned(),
            owner: p.owner.to_owned(),
            sealed: p.sealed.to_owned(),
            at: p.at,
        })
    }

    fn release(&self, replay_key: &str) -> Result<bool, StorageError> {
        self.write(Write::Release {
            replay_key: replay_key.to_owned(),
        })
    }

    fn settling(&self, replay_key: &str, owner: &str, at: u64) -> Result<bool, StorageError> {
        self.write(Write::Settling {
            replay_key: replay_key.to_owned(),
            owner: owner.to_owned(),
            at,
        })
    }

    fn settled_at_once(
        &self,
        replay_key: &str,
        owner: &str,
        at: u64,
    ) -> Result<bool, StorageError> {
        self.write(Write::SettledAtOnce {
            replay_key: replay_key.to_owned(),
            owner: owner.to_owned(),
            at,
        })
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
