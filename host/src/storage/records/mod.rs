//! Execution records and invocation logs: the writes every execution makes. Never plaintext in
//! a record: ids, hashes, times, status, the result commitment and the payment reference only;
//! logs are sealed by the caller.
//!
//! Writes go through one writer thread that commits whatever has queued up in one transaction
//! (group commit) with `synchronous = NORMAL`. Two kinds of write:
//! - **awaited** ([`Records::insert`]): the caller waits until its record is committed (in the
//!   WAL: safe from a crash of this process, `kill -9` included; on disk at the next
//!   checkpoint). Used where a record must exist before the response is sent.
//! - **deferred** ([`Records::insert_later`], [`Records::append_log_later`]): queued, and
//!   committed within [`LINGER`] together with whatever else queued meanwhile, so that a
//!   stream of small requests pays for one transaction per few hundred writes. Used for writes
//!   made after the response (HTTP agents) and for logs. A crash can lose the last
//!   [`LINGER`] of deferred writes, never an awaited one.
//!
//! Reads ([`Records::get`], [`Records::list`], logs) call [`Records::flush`] first, so whatever
//! was queued before the read is visible to it.
//!
//! Layout: `record` holds the record type and its SQL mapping, `writer` the group-commit
//! thread; this module is the store that puts them together.

mod record;
mod writer;

use std::path::Path;
use std::sync::Arc;

use rusqlite::{OptionalExtension, params};

pub use self::record::ExecutionRecord;
use self::record::{COLUMNS, row, to_i64};
pub use self::writer::LINGER;
use self::writer::{Write, Writer};
use super::StorageError;
use super::agents::LogEntry;
use super::db::{Database, sql};

/// The records store: reads on the shared connection, writes through the group-commit thread.
pub struct Records {
    db: Arc<Database>,
    writer: Writer,
}

/// Who reads execution records: they link callers to code, so each is shown only to the key
/// that ran it and to the owner of the agent that ran, and every record to the operator.
#[derive(Debug, Clone)]
pub enum Reader {
    /// The host's operator (`http.operator_token`): every record.
    Operator,
    /// A key that proved itself: the records whose `caller_hash` is its hash, and those of the
    /// agents it owns.
    Key {
        /// SHA-256 of the key's uncompressed SEC1 form, hex (as records hold it).
        caller_hash: String,
        /// The key, uncompressed SEC1 hex (as agents' `owner_key` holds it).
        owner_key: String,
    },
}

impl Reader {
    /// The SQL parameters of [`VISIBLE`]: `NULL`s for the operator.
    fn filter(&self) -> (Option<&str>, Option<&str>) {
        match self {
            Reader::Operator => (None, None),
            Reader::Key {
                caller_hash,
                owner_key,
            } => (Some(caller_hash), Some(owner_key)),
        }
    }
}

/// The records a [`Reader`] sees (parameters 2 and 3: its caller hash and owner key, or
/// `NULL`s for all). An anonymous record (`caller_hash` empty) is its agent's owner's only.
const VISIBLE: &str = "(?2 IS NULL
     OR (caller_hash <> '' AND caller_hash = ?2)
     OR agent IN (SELECT name FROM agents WHERE owner_key = ?3))";

impl Records {
    /// Starts the writer thread (its own connection to `<data_dir>/hypervisor.sqlite`).
    ///
    /// # Errors
    /// [`StorageError`] if the connection or the thread cannot be made.
    pub fn open(db: Arc<Database>, data_dir: &Path) -> Result<Self, StorageError> {
        let writer = Writer::start(data_dir)?;
        Ok(Self { db, writer })
    }

    /// Records an execution; returns once the record is committed.
    ///
    /// # Errors
    /// [`StorageError::Database`].
    pub async fn insert(&self, record: ExecutionRecord) -> Result<(), StorageError> {
        self.writer
            .submit_now(Some(Write::Record(record)), "record an execution")
            .await
    }

    /// Records an execution without waiting: committed within [`LINGER`].
    pub fn insert_later(&self, record: ExecutionRecord) {
        self.writer.submit_deferred(Write::Record(record));
    }

    /// Records an agent's outgoing call without waiting: committed within [`LINGER`], and no
    /// later than any awaited write submitted after it (the calling run's own record).
    pub fn insert_call_later(&self, call: hypervisor_protocol::grants::CallRecord) {
        self.writer.submit_deferred(Write::Call(call));
    }

    /// Appends an agent's log entry (keeping its newest [`super::agents::LOGS_KEPT`]) without
    /// waiting: committed within [`LINGER`].
    pub fn append_log_later(&self, agent: &str, entry: LogEntry) {
        self.writer.submit_deferred(Write::Log {
            agent: agent.to_string(),
            entry,
        });
    }

    /// Returns once every write queued before the call is committed.
    ///
    /// # Errors
    /// [`StorageError::Database`] if the writer stopped or the last commit failed.
    pub async fn flush(&self) -> Result<(), StorageError> {
        self.writer.submit_now(None, "flush the records").await
    }

    /// The record `id`, if any and visible to `reader` (after a [`Records::flush`]).
    ///
    /// # Errors
    /// [`StorageError::Database`].
    pub async fn get(
        &self,
        id: &str,
        reader: &Reader,
    ) -> Result<Option<ExecutionRecord>, StorageError> {
        self.flush().await?;
        let (caller_hash, owner_key) = reader.filter();
        self.db
            .lock()
            .query_row(
                &format!("SELECT {COLUMNS} FROM executions WHERE id = ?1 AND {VISIBLE}"),
                params![id, caller_hash, owner_key],
                row,
            )
            .optional()
            .map_err(sql("read an execution"))
    }

    /// Records started at or after `since_ms`, oldest first, at most `limit` (after a
    /// [`Records::flush`]).
    ///
    /// # Errors
    /// [`StorageError::Database`].
    pub async fn list(
        &self,
        since_ms: u64,
        limit: u32,
        reader: &Reader,
    ) -> Result<Vec<ExecutionRecord>, StorageError> {
        self.flush().await?;
        let (caller_hash, owner_key) = reader.filter();
        let conn = self.db.lock();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM executions WHERE started_ms >= ?1 AND {VISIBLE}
                 ORDER BY started_ms, id LIMIT ?4"
            ))
            .map_err(sql("list executions"))?;
        let rows = stmt
            .query_map(
                params![to_i64(since_ms), caller_hash, owner_key, limit],
                row,
            )
            .map_err(sql("list executions"))?;
        rows.collect::<Result<_, _>>()
            .map_err(sql("list executions"))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use rusqlite::Connection;

    use super::*;

    fn record(id: &str, started_ms: u64) -> ExecutionRecord {
        ExecutionRecord {
            id: id.into(),
            route: "/test/execute/wasm".into(),
            agent: None,
            agent_version: None,
            code_hash: "ab".repeat(32),
            caller_hash: "cd".repeat(32),
            started_ms,
            duration_us: 250,
            status: "exited".into(),
            exit_code: Some(0),
            commitment: Some("ef".repeat(32)),
            payment: None,
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn records_are_committed_read_back_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime();
        {
            let db = Arc::new(Database::open(dir.path()).unwrap());
            let records = Records::open(db, dir.path()).unwrap();
            rt.block_on(async {
                let all = (0..50).map(|i| records.insert(record(&format!("r{i:02}"), 1000 + i)));
                for r in futures_join(all).await {
                    r.unwrap();
                }
                assert_eq!(
                    records.get("r07", &Reader::Operator).await.unwrap(),
                    Some(record("r07", 1007))
                );
            });
        }
        let db = Arc::new(Database::open(dir.path()).unwrap());
        let records = Records::open(db, dir.path()).unwrap();
        rt.block_on(async {
            let listed = records.list(1040, 100, &Reader::Operator).await.unwrap();
            assert_eq!(listed.len(), 10);
            assert_eq!(listed[0].id, "r40");
            assert_eq!(records.get("nope", &Reader::Operator).await.unwrap(), None);
        });
    }

    #[test]
    fn deferred_writes_are_committed_within_the_linger_and_visible_to_reads() {
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime();
        let db = Arc::new(Database::open(dir.path()).unwrap());
        let records = Records::open(db.clone(), dir.path()).unwrap();
        // A read right after a deferred write sees it (the read flushes first).
        records.insert_later(record("d0", 1));
        let got = rt.block_on(records.get("d0", &Reader::Operator)).unwrap();
        assert_eq!(got, Some(record("d0", 1)));
        // Without any read, deferred writes reach the database on their own: another
        // connection sees them shortly after.
        for i in 1..=300 {
            records.insert_later(record(&format!("d{i}"), 1 + i));
        }
        let other = Connection::open(dir.path().join("hypervisor.sqlite")).unwrap();
        let count = || -> i64 {
            other
                .query_row("SELECT count(*) FROM executions", [], |r| r.get(0))
                .unwrap()
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while count() < 301 {
            assert!(Instant::now() < deadline, "deferred writes never committed");
            std::thread::sleep(LINGER);
        }
    }

    #[test]
    fn deferred_logs_are_kept_trimmed_and_skipped_for_unknown_agents() {
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime();
        let db = Arc::new(Database::open(dir.path()).unwrap());
        db.lock()
            .execute_batch(
                "INSERT INTO agents (name, owner_key, description, tags, public,
                                     latest_version, created_at, updated_at)
                 VALUES ('a', '', '', '[]', 1, 1, 0, 0)",
            )
            .unwrap();
        let records = Records::open(db.clone(), dir.path()).unwrap();
        let entry = |i: u32| LogEntry {
            execution_id: format!("e{i}"),
            at_ms: u64::from(i),
            sealed: vec![1, 2, 3],
        };
        for i in 0..(super::super::agents::LOGS_KEPT + 20) {
            records.append_log_later("a", entry(i));
        }
        // No agent "gone": its log is dropped, and the batch with it still commits.
        records.append_log_later("gone", entry(0));
        records.insert_later(record("after", 5));
        rt.block_on(records.flush()).unwrap();
        let conn = db.lock();
        let kept: i64 = conn
            .query_row(
                "SELECT count(*) FROM agent_logs WHERE name = 'a'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(kept, i64::from(super::super::agents::LOGS_KEPT));
        let gone: i64 = conn
            .query_row(
                "SELECT count(*) FROM agent_logs WHERE name = 'gone'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(gone, 0);
        drop(conn);
        assert!(
            rt.block_on(records.get("after", &Reader::Operator))
                .unwrap()
                .is_some()
        );
    }

    async fn futures_join<F: std::future::Future>(fs: impl Iterator<Item = F>) -> Vec<F::Output> {
        let mut out = Vec::new();
        for f in fs {
            out.push(f.await);
        }
        out
    }
}
