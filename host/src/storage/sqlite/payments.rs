//! The payment ledger on SQLite: its own file, `<data_dir>/payments.sqlite` (WAL), so that its
//! fsyncs never wait behind the records' group commits; `synchronous = FULL`: an acknowledged
//! write survives power loss.
//!
//! One **writer thread** owns the connection. Callers queue their requests (reservations,
//! settling marks, outcomes, releases, reads) on a channel and await the answer; the writer
//! takes everything queued, writes the writes in arrival order in one transaction with one
//! fsync (a **group commit**, as databases do for their log), answers each caller, then serves
//! the reads. Each caller's future completes only once its own write is durable; under load one
//! transaction and one fsync serve many requests, and no async worker is ever parked on a
//! write: it goes on with other requests while the fsync runs.
//!
//! One process owns a data directory (the embedded backend's premise), so every run but the
//! adopting one is dead: [`PaymentLedger::adopt`] takes every unfinished payment of another
//! run (those left by the previous process, at start-up).

use std::path::Path;
use std::sync::{Mutex, mpsc};
use std::thread::JoinHandle;

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use super::sql;
use crate::storage::StorageError;
use crate::storage::payments::{
    Adopted, Identified, KeptAnswer, NewPayment, OwnedPayment, PaymentLedger,
};

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
    // 3: x402 payment identifiers (unique), the fingerprint of the payment each came with, and
    // the answer kept for a retry (sealed; empty once forgotten).
    "ALTER TABLE payments ADD COLUMN payment_id TEXT;
     ALTER TABLE payments ADD COLUMN payment_fingerprint BLOB;
     ALTER TABLE payments ADD COLUMN answer BLOB;
     ALTER TABLE payments ADD COLUMN answer_at INTEGER;
     CREATE UNIQUE INDEX payments_by_id ON payments(payment_id) WHERE payment_id IS NOT NULL;
     CREATE INDEX payments_answers ON payments(answer_at) WHERE answer_at IS NOT NULL;",
];

/// Inserts one payment, `reserved` (?11) or already `settled` with an empty transaction (a
/// verify-only payment recorded after its run); no row changes for a replay key or a payment
/// identifier already in the ledger (either uniqueness: the conflict target is left out).
const INSERT: &str = "INSERT INTO payments (replay_key, payer, amount, network, route, state,
       transaction_hash, owner, sealed, reserved_at, updated_at, payment_id, payment_fingerprint)
     VALUES (?1, ?2, ?3, ?4, ?5, ?11, ?12, ?6, ?7, ?8, ?8, ?9, ?10)
     ON CONFLICT DO NOTHING";

/// The most writes one group commit takes (the rest wait for the next one).
const MAX_BATCH: usize = 1024;

/// The ledger: the queue to its writer thread.
pub struct SqlitePayments {
    /// `None` only while dropping.
    jobs: Option<mpsc::Sender<Job>>,
    writer: Option<JoinHandle<()>>,
    /// A read-only connection for [`PaymentLedger::recorded`], which must not wait behind
    /// the writer's group commit (a WAL reader never waits for a writer). `None` only while
    /// dropping: closed before the writer, so that the writer's connection is the last and
    /// checkpoints the log into the file.
    reader: Option<Mutex<Connection>>,
}

/// Where a job's answer goes.
type Answer<T> = oneshot::Sender<Result<T, StorageError>>;

/// A request to the writer thread.
enum Job {
    /// A write, group-committed (answer: whether a row changed as asked).
    Write(Write, Answer<bool>),
    /// A read, or an adoption (its own transaction), served after the group commit.
    Read(Read),
}

/// A job that is not group-committed.
enum Read {
    /// The state of a payment.
    State(String, Answer<Option<String>>),
    /// A payment's amount.
    Amount(String, Answer<Option<String>>),
    /// The payment under a payment identifier.
    Identified(String, Answer<Option<Identified>>),
    /// [`PaymentLedger::forget_answers`] (its own transaction).
    Forget(u64, u64, Answer<u64>),
    /// [`PaymentLedger::adopt`].
    Adopt {
        owner: String,
        limit: u32,
        answer: Answer<Vec<Adopted>>,
    },
}

/// A write in the queue, owned (its caller waits for its answer).
enum Write {
    /// Insert a reservation (answer: inserted, i.e. not a replay).
    Reserve(OwnedPayment),
    /// Insert a payment `settled` at once (answer: inserted, i.e. not a replay).
    RecordSettled(OwnedPayment),
    /// Keep the answer of an identified payment (answer: kept).
    KeepAnswer {
        replay_key: String,
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
    /// A `reserved` metered payment's charge (answer: changed).
    Charged {
        replay_key: String,
        owner: String,
        amount: String,
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
            Self::Reserve(p) => insert(tx, p, false).map_err(sql("reserve"))?,
            Self::RecordSettled(p) => {
                insert(tx, p, true).map_err(sql("record a settled payment"))?
            }
            Self::KeepAnswer {
                replay_key,
                sealed,
                at,
            } => tx
                .prepare_cached(
                    "UPDATE payments SET answer = ?2, answer_at = ?3
                     WHERE replay_key = ?1 AND payment_id IS NOT NULL AND answer IS NULL",
                )
                .and_then(|mut s| s.execute(params![replay_key, sealed, to_i64(*at)]))
                .map_err(sql("keep an answer"))?,
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
            Self::Charged {
                replay_key,
                owner,
                amount,
            } => tx
                .prepare_cached(
                    "UPDATE payments SET amount = ?3
                     WHERE replay_key = ?1 AND owner = ?2 AND state = 'reserved'",
                )
                .and_then(|mut s| s.execute(params![replay_key, owner, amount]))
                .map_err(sql("record a charge"))?,
            Self::Finish {
                replay_key,
                state,
                transaction,
                reason,
                at,
            } => tx
                .prepare_cached(
                    // Only an unfinished payment, or a failed one settled after all (a run
                    // taken over as dead whose own settlement then went through): a failure
                    // never overwrites another outcome.
                    "UPDATE payments SET state = ?2, transaction_hash = ?3, reason = ?4,
                       updated_at = ?5, sealed = NULL
                     WHERE replay_key = ?1 AND (state IN ('reserved', 'settling')
                       OR (?2 = 'settled' AND state = 'settlement_failed'))",
                )
                .and_then(|mut s| {
                    s.execute(params![replay_key, state, transaction, reason, to_i64(*at)])
                })
                .map_err(sql("record an outcome"))?,
        };
        Ok(changed == 1)
    }
}

/// Inserts `p` in `tx`, reserved or already `settled` ([`INSERT`]): the rows changed.
fn insert(
    tx: &rusqlite::Transaction<'_>,
    p: &OwnedPayment,
    settled: bool,
) -> rusqlite::Result<usize> {
    let row = p.inserted(settled);
    tx.prepare_cached(INSERT)?.execute(params![
        p.replay_key,
        p.payer,
        p.amount,
        p.network,
        p.route,
        p.owner,
        row.sealed,
        to_i64(p.at),
        row.id,
        row.fingerprint,
        row.state,
        row.transaction
    ])
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The error of a ledger whose writer thread is gone (it never stops while the ledger lives,
/// unless a write panicked).
fn stopped() -> StorageError {
    StorageError::Database {
        op: "payment ledger",
        detail: "the ledger's writer thread stopped".into(),
    }
}

/// The writer thread: takes everything queued, commits its writes in one transaction, answers,
/// serves the reads, and waits for more; returns when the ledger is dropped.
fn write_loop(mut conn: Connection, jobs: &mpsc::Receiver<Job>) {
    let mut writes = Vec::new();
    let mut others = Vec::new();
    while let Ok(first) = jobs.recv() {
        let mut job = Some(first);
        while let Some(j) = job {
            match j {
                Job::Write(w, answer) => writes.push((w, answer)),
                Job::Read(read) => others.push(read),
            }
            job = if writes.len() < MAX_BATCH {
                jobs.try_recv().ok()
            } else {
                None
            };
        }
        if !writes.is_empty() {
            commit(&mut conn, &mut writes);
        }
        for job in others.drain(..) {
            serve(&mut conn, job);
        }
    }
}

/// Writes `batch` in arrival order in one transaction (one fsync) and answers each write (with
/// its own answer, or the transaction's error for all of them). A caller that went away is not
/// asked: its write is durable all the same.
fn commit(conn: &mut Connection, batch: &mut Vec<(Write, Answer<bool>)>) {
    let written = conn.transaction().and_then(|tx| {
        let mut answers = Vec::with_capacity(batch.len());
        for (write, _) in batch.iter() {
            // A write whose error made SQLite roll the transaction back itself (out of memory
            // or disk, an I/O error, an interrupt) leaves none: each later write would then
            // commit on its own while the batch is answered as failed. Stop: every write of
            // the batch fails, and none is kept.
            if tx.is_autocommit() {
                return Err(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
                    Some("the transaction was rolled back by a failed write".into()),
                ));
            }
            answers.push(write.apply(&tx));
        }
        tx.commit().map(|()| answers)
    });
    match written {
        Ok(answers) => {
            for ((_, answer), result) in batch.drain(..).zip(answers) {
                let _ = answer.send(result);
            }
        }
        Err(e) => {
            let detail = e.to_string();
            for (_, answer) in batch.drain(..) {
                let op = "commit payment writes";
                let _ = answer.send(Err(StorageError::Database {
                    op,
                    detail: detail.clone(),
                }));
            }
        }
    }
}

/// Answers a read or an adoption.
fn serve(conn: &mut Connection, read: Read) {
    match read {
        Read::Amount(key, answer) => {
            let amount = conn
                .prepare_cached("SELECT amount FROM payments WHERE replay_key = ?1")
                .and_then(|mut s| s.query_row(params![key], |r| r.get(0)).optional())
                .map_err(sql("query"));
            let _ = answer.send(amount);
        }
        Read::State(key, answer) => {
            let state = conn
                .prepare_cached("SELECT state FROM payments WHERE replay_key = ?1")
                .and_then(|mut s| s.query_row(params![key], |r| r.get(0)).optional())
                .map_err(sql("query"));
            let _ = answer.send(state);
        }
        Read::Identified(id, answer) => {
            let found = conn
                .prepare_cached(
                    "SELECT replay_key, payment_fingerprint, answer FROM payments
                     WHERE payment_id = ?1",
                )
                .and_then(|mut s| {
                    s.query_row(params![id], |r| {
                        Ok(Identified {
                            replay_key: r.get(0)?,
                            fingerprint: r.get::<_, Option<Vec<u8>>>(1)?.unwrap_or_default(),
                            answer: KeptAnswer::from_column(r.get(2)?),
                        })
                    })
                    .optional()
                })
                .map_err(sql("read a payment identifier"));
            let _ = answer.send(found);
        }
        Read::Forget(before, unanswered_before, answer) => {
            let forgotten = conn
                .execute(
                    "UPDATE payments SET answer = X'', answer_at = COALESCE(answer_at, updated_at)
                     WHERE payment_id IS NOT NULL AND (
                       (answer_at < ?1 AND length(answer) > 0)
                       OR (answer IS NULL AND state <> 'reserved' AND updated_at < ?2))",
                    params![to_i64(before), to_i64(unanswered_before)],
                )
                .map(|n| n as u64)
                .map_err(sql("forget answers"));
            let _ = answer.send(forgotten);
        }
        Read::Adopt {
            owner,
            limit,
            answer,
        } => {
            let _ = answer.send(adopt(conn, &owner, limit));
        }
    }
}

/// Takes every unfinished payment of another run (at most `limit`) for `owner`, in one
/// transaction.
fn adopt(conn: &mut Connection, owner: &str, limit: u32) -> Result<Vec<Adopted>, StorageError> {
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

impl SqlitePayments {
    /// Opens (creating) `<data_dir>/payments.sqlite`, applies pending migrations and starts the
    /// writer thread.
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
        let reader = Connection::open_with_flags(
            data_dir.join("payments.sqlite"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql("open a reader"))?;
        // A WAL reader is refused only while the log's index is rebuilt (after a crash).
        reader
            .busy_timeout(std::time::Duration::from_secs(1))
            .map_err(sql("configure a reader"))?;
        let (jobs, queue) = mpsc::channel();
        let writer = std::thread::Builder::new()
            .name("payment-ledger".into())
            .spawn(move || write_loop(conn, &queue))
            .map_err(|e| StorageError::Database {
                op: "start the payment ledger's writer",
                detail: e.to_string(),
            })?;
        Ok(Self {
            jobs: Some(jobs),
            writer: Some(writer),
            reader: Some(Mutex::new(reader)),
        })
    }

    /// Queues a job made with its answer's sender, and waits for the answer.
    async fn ask<T>(&self, job: impl FnOnce(Answer<T>) -> Job) -> Result<T, StorageError> {
        let (answer, answered) = oneshot::channel();
        self.jobs
            .as_ref()
            .ok_or_else(stopped)?
            .send(job(answer))
            .map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }

    /// Queues `write` for the next group commit and waits until it is durable.
    async fn write(&self, write: Write) -> Result<bool, StorageError> {
        self.ask(|answer| Job::Write(write, answer)).await
    }

    async fn finish(
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
        .await
        .map(|_| ())
    }
}

impl Drop for SqlitePayments {
    /// Closes the queue and waits for the writer to commit what it holds (milliseconds at
    /// most): every write a caller was answered for, and every queued one, is on disk after.
    fn drop(&mut self) {
        drop(self.reader.take());
        drop(self.jobs.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

#[async_trait::async_trait]
impl PaymentLedger for SqlitePayments {
    async fn reserve(&self, p: &NewPayment<'_>) -> Result<bool, StorageError> {
        self.write(Write::Reserve(p.to_owned_payment())).await
    }

    async fn record_settled(&self, p: &NewPayment<'_>) -> Result<bool, StorageError> {
        self.write(Write::RecordSettled(p.to_owned_payment())).await
    }

    async fn recorded(&self, replay_key: &str) -> Result<bool, StorageError> {
        // On the caller's thread: one lookup by primary key in a WAL snapshot (microseconds;
        // it never waits for the writer), cheaper than the hand-offs to and from a thread.
        // A panic while it was held left the connection usable (each lookup is one
        // statement, reset when it ends).
        let reader = self
            .reader
            .as_ref()
            .ok_or_else(stopped)?
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        reader
            .prepare_cached("SELECT 1 FROM payments WHERE replay_key = ?1")
            .and_then(|mut s| s.exists(params![replay_key]))
            .map_err(sql("look up a replay key"))
    }

    async fn release(&self, replay_key: &str) -> Result<bool, StorageError> {
        self.write(Write::Release {
            replay_key: replay_key.to_owned(),
        })
        .await
    }

    async fn settling(&self, replay_key: &str, owner: &str, at: u64) -> Result<bool, StorageError> {
        self.write(Write::Settling {
            replay_key: replay_key.to_owned(),
            owner: owner.to_owned(),
            at,
        })
        .await
    }

    async fn settled_at_once(
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
        .await
    }

    async fn settled(
        &self,
        replay_key: &str,
        transaction: &str,
        at: u64,
    ) -> Result<(), StorageError> {
        self.finish(replay_key, "settled", Some(transaction), None, at)
            .await
    }

    async fn settlement_failed(
        &self,
        replay_key: &str,
        reason: &str,
        at: u64,
    ) -> Result<(), StorageError> {
        self.finish(replay_key, "settlement_failed", None, Some(reason), at)
            .await
    }

    async fn state(&self, replay_key: &str) -> Result<Option<String>, StorageError> {
        let key = replay_key.to_owned();
        self.ask(|answer| Job::Read(Read::State(key, answer))).await
    }

    async fn charged(
        &self,
        replay_key: &str,
        owner: &str,
        amount: &str,
    ) -> Result<bool, StorageError> {
        self.write(Write::Charged {
            replay_key: replay_key.to_owned(),
            owner: owner.to_owned(),
            amount: amount.to_owned(),
        })
        .await
    }

    async fn amount(&self, replay_key: &str) -> Result<Option<String>, StorageError> {
        let key = replay_key.to_owned();
        self.ask(|answer| Job::Read(Read::Amount(key, answer)))
            .await
    }

    async fn adopt(
        &self,
        owner: &str,
        _alive_since_ms: u64,
        limit: u32,
    ) -> Result<Vec<Adopted>, StorageError> {
        let owner = owner.to_owned();
        self.ask(|answer| {
            Job::Read(Read::Adopt {
                owner,
                limit,
                answer,
            })
        })
        .await
    }

    async fn identified(&self, id: &str) -> Result<Option<Identified>, StorageError> {
        let id = id.to_owned();
        self.ask(|answer| Job::Read(Read::Identified(id, answer)))
            .await
    }

    async fn keep_answer(
        &self,
        replay_key: &str,
        sealed: &[u8],
        at: u64,
    ) -> Result<bool, StorageError> {
        self.write(Write::KeepAnswer {
            replay_key: replay_key.to_owned(),
            sealed: sealed.to_vec(),
            at,
        })
        .await
    }

    async fn forget_answers(
        &self,
        before: u64,
        unanswered_before: u64,
    ) -> Result<u64, StorageError> {
        self.ask(|answer| Job::Read(Read::Forget(before, unanswered_before, answer)))
            .await
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
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let adopted = rt.block_on(ledger.adopt("me", 0, 10)).unwrap();
        assert_eq!(adopted.len(), 1);
        assert_eq!(adopted[0].previous_owner, "");
        assert!(rt.block_on(ledger.release("k")).unwrap());
    }
}
