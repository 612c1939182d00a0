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

use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::StorageError;
use super::agents::LogEntry;
use super::db::{Database, sql};

/// Most writes committed in one transaction.
const BATCH: usize = 512;

/// Longest a deferred write waits for company before it is committed.
pub const LINGER: Duration = Duration::from_millis(10);

/// One execution or invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExecutionRecord {
    /// UUID v7.
    pub id: String,
    /// The route that ran it.
    pub route: String,
    /// The agent, for invocations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The agent's version, for invocations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_version: Option<u32>,
    /// SHA-256 of the component (or script) that ran, hex.
    pub code_hash: String,
    /// SHA-256 of the caller's public key (SEC1 bytes), hex; empty for anonymous calls.
    pub caller_hash: String,
    /// Start, Unix milliseconds.
    pub started_ms: u64,
    /// Duration, microseconds.
    pub duration_us: u64,
    /// How it ended (`exited`, `time_limit_exceeded`, …, or `error` for a handler error).
    pub status: String,
    /// The exit code, for commands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The result's SHA-256 commitment, hex, when there is a result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commitment: Option<String>,
    /// The payment reference (see the receipt's `payment`), for paid requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment: Option<String>,
}

/// A write for the writer thread.
enum Write {
    /// An execution record.
    Record(ExecutionRecord),
    /// An agent's log entry.
    Log { agent: String, entry: LogEntry },
}

type Done = tokio::sync::oneshot::Sender<Result<(), String>>;

/// What the writer thread is told.
enum Msg {
    /// Commit this write now (`None`: nothing, just what queued before it) and say when done.
    Now(Option<Box<Write>>, Done),
    /// Deferred writes are waiting: commit them within [`LINGER`].
    Deferred,
    /// So many deferred writes are waiting that they should be committed now.
    Full,
}

/// Deferred writes: pushed under a lock without waking the writer, taken by the writer at
/// each commit.
type Pending = Arc<Mutex<Vec<Write>>>;

/// Deferred writes kept waiting at most; beyond that (the disk has stalled for a long time),
/// further deferred writes are dropped with an error in the log.
const MAX_PENDING: usize = 100_000;

/// The records store: reads on the shared connection, writes through the group-commit thread.
pub struct Records {
    db: Arc<Database>,
    writer: mpsc::SyncSender<Msg>,
    pending: Pending,
}

fn failed(op: &'static str) -> impl Fn(String) -> StorageError {
    move |detail| StorageError::Database { op, detail }
}

impl Records {
    /// Starts the writer thread (its own connection to `<data_dir>/hypervisor.sqlite`).
    ///
    /// # Errors
    /// [`StorageError`] if the connection or the thread cannot be made.
    pub fn open(db: Arc<Database>, data_dir: &Path) -> Result<Self, StorageError> {
        let conn = Connection::open(data_dir.join("hypervisor.sqlite")).map_err(sql("open"))?;
        conn.execute_batch(
            "PRAGMA synchronous = NORMAL;
             PRAGMA foreign_keys = ON;
             PRAGMA busy_timeout = 5000;",
        )
        .map_err(sql("configure"))?;
        let (writer, messages) = mpsc::sync_channel::<Msg>(4096);
        let pending = Pending::default();
        let taken = pending.clone();
        std::thread::Builder::new()
            .name("records-writer".into())
            .spawn(move || write_loop(conn, &messages, &taken))
            .map_err(|e| StorageError::Database {
                op: "start the records writer",
                detail: e.to_string(),
            })?;
        Ok(Self {
            db,
            writer,
            pending,
        })
    }

    /// Records an execution; returns once the record is committed.
    ///
    /// # Errors
    /// [`StorageError::Database`].
    pub async fn insert(&self, record: ExecutionRecord) -> Result<(), StorageError> {
        self.submit_now(Some(Write::Record(record)), "record an execution")
            .await
    }

    /// Records an execution without waiting: committed within [`LINGER`].
    pub fn insert_later(&self, record: ExecutionRecord) {
        self.submit_deferred(Write::Record(record));
    }

    /// Appends an agent's log entry (keeping its newest [`super::agents::LOGS_KEPT`]) without
    /// waiting: committed within [`LINGER`].
    pub fn append_log_later(&self, agent: &str, entry: LogEntry) {
        self.submit_deferred(Write::Log {
            agent: agent.to_string(),
            entry,
        });
    }

    /// Returns once every write queued before the call is committed.
    ///
    /// # Errors
    /// [`StorageError::Database`] if the writer stopped or the last commit failed.
    pub async fn flush(&self) -> Result<(), StorageError> {
        self.submit_now(None, "flush the records").await
    }

    async fn submit_now(&self, write: Option<Write>, op: &'static str) -> Result<(), StorageError> {
        let (done, committed) = tokio::sync::oneshot::channel();
        let message = Msg::Now(write.map(Box::new), done);
        // The queue is bounded: when it is full, wait for room off the async workers.
        match self.writer.try_send(message) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(message)) => {
                let writer = self.writer.clone();
                tokio::task::spawn_blocking(move || writer.send(message).map_err(|_| ()))
                    .await
                    .map_err(|e| failed(op)(e.to_string()))?
                    .map_err(|()| failed(op)("the records writer stopped".into()))?;
            }
            Err(mpsc::TrySendError::Disconnected(_)) => {
                return Err(failed(op)("the records writer stopped".into()));
            }
        }
        committed
            .await
            .map_err(|_| failed(op)("the records writer stopped".into()))?
            .map_err(failed(op))
    }

    fn submit_deferred(&self, write: Write) {
        let waiting = {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            if pending.len() >= MAX_PENDING {
                drop(pending);
                tracing::error!("the records writer is far behind: a deferred write is dropped");
                return;
            }
            pending.push(write);
            pending.len()
        };
        // Wake the writer only when the first write starts waiting (it then lingers) or when
        // a batch is full. A full channel needs no nudge: the writer takes every pending
        // write at its next commit.
        let nudge = match waiting {
            1 => Msg::Deferred,
            n if n == BATCH => Msg::Full,
            _ => return,
        };
        if let Err(mpsc::TrySendError::Disconnected(_)) = self.writer.try_send(nudge) {
            tracing::error!("the records writer stopped: deferred writes are lost");
        }
    }

    /// The record `id`, if any (after a [`Records::flush`]).
    ///
    /// # Errors
    /// [`StorageError::Database`].
    pub async fn get(&self, id: &str) -> Result<Option<ExecutionRecord>, StorageError> {
        self.flush().await?;
        self.db
            .lock()
            .query_row(
                &format!("SELECT {COLUMNS} FROM executions WHERE id = ?1"),
                [id],
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
    ) -> Result<Vec<ExecutionRecord>, StorageError> {
        self.flush().await?;
        let conn = self.db.lock();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM executions WHERE started_ms >= ?1
                 ORDER BY started_ms, id LIMIT ?2"
            ))
            .map_err(sql("list executions"))?;
        let rows = stmt
            .query_map(params![to_i64(since_ms), limit], row)
            .map_err(sql("list executions"))?;
        rows.collect::<Result<_, _>>()
            .map_err(sql("list executions"))
    }
}

const COLUMNS: &str = "id, route, agent, agent_version, code_hash, caller_hash, started_ms, \
                       duration_us, status, exit_code, commitment, payment";

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ExecutionRecord> {
    let u =
        |i: usize| -> rusqlite::Result<u64> { Ok(u64::try_from(r.get::<_, i64>(i)?).unwrap_or(0)) };
    Ok(ExecutionRecord {
        id: r.get(0)?,
        route: r.get(1)?,
        agent: r.get(2)?,
        agent_version: r.get(3)?,
        code_hash: r.get(4)?,
        caller_hash: r.get(5)?,
        started_ms: u(6)?,
        duration_us: u(7)?,
        status: r.get(8)?,
        exit_code: r.get(9)?,
        commitment: r.get(10)?,
        payment: r.get(11)?,
    })
}

fn write_loop(mut conn: Connection, messages: &mpsc::Receiver<Msg>, pending: &Pending) {
    let mut open = true;
    while open {
        let Ok(first) = messages.recv() else { break };
        let mut writes = Vec::new();
        let mut waiters = Vec::new();
        let linger = matches!(first, Msg::Deferred);
        take(first, &mut writes, &mut waiters);
        if linger {
            // Only deferred writes so far: wait up to LINGER for company, unless someone
            // waits for a commit or the batch fills up.
            let until = Instant::now() + LINGER;
            loop {
                match messages.recv_timeout(until.saturating_duration_since(Instant::now())) {
                    Ok(Msg::Deferred) => {}
                    Ok(message) => {
                        take(message, &mut writes, &mut waiters);
                        break;
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => break,
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        open = false;
                        break;
                    }
                }
            }
        }
        // Whatever else is already queued joins this commit.
        while writes.len() < BATCH {
            match messages.try_recv() {
                Ok(message) => take(message, &mut writes, &mut waiters),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        // Deferred writes queued before any barrier just taken are in `pending` by now.
        writes.append(&mut pending.lock().unwrap_or_else(PoisonError::into_inner));
        let result = if writes.is_empty() {
            Ok(())
        } else {
            commit(&mut conn, &writes).map_err(|e| e.to_string())
        };
        if let Err(e) = &result {
            tracing::error!(error = %e, writes = writes.len(), "recording executions failed");
        }
        for done in waiters {
            let _ = done.send(result.clone());
        }
    }
    // The last deferred writes, when the store is dropped.
    let writes = std::mem::take(&mut *pending.lock().unwrap_or_else(PoisonError::into_inner));
    if !writes.is_empty()
        && let Err(e) = commit(&mut conn, &writes)
    {
        tracing::error!(error = %e, writes = writes.len(), "recording executions failed");
    }
}

/// Adds an awaited write (and its waiter) from `message` to the batch; nudges add nothing.
fn take(message: Msg, writes: &mut Vec<Write>, waiters: &mut Vec<Done>) {
    if let Msg::Now(write, done) = message {
        writes.extend(write.map(|w| *w));
        waiters.push(done);
    }
}

fn commit(conn: &mut Connection, writes: &[Write]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    for write in writes {
        match write {
            Write::Record(r) => insert_record(&tx, r)?,
            Write::Log { agent, entry } => super::agents::append_log_on(&tx, agent, entry)?,
        }
    }
    tx.commit()
}

fn insert_record(conn: &Connection, r: &ExecutionRecord) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO executions
           (id, route, agent, agent_version, code_hash, caller_hash, started_ms, duration_us,
            status, exit_code, commitment, payment)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        r.id,
        r.route,
        r.agent,
        r.agent_version,
        r.code_hash,
        r.caller_hash,
        to_i64(r.started_ms),
        to_i64(r.duration_us),
        r.status,
        r.exit_code,
        r.commitment,
        r.payment,
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
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
                assert_eq!(records.get("r07").await.unwrap(), Some(record("r07", 1007)));
            });
        }
        let db = Arc::new(Database::open(dir.path()).unwrap());
        let records = Records::open(db, dir.path()).unwrap();
        rt.block_on(async {
            let listed = records.list(1040, 100).await.unwrap();
            assert_eq!(listed.len(), 10);
            assert_eq!(listed[0].id, "r40");
            assert_eq!(records.get("nope").await.unwrap(), None);
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
        let got = rt.block_on(records.get("d0")).unwrap();
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
        assert!(rt.block_on(records.get("after")).unwrap().is_some());
    }

    async fn futures_join<F: std::future::Future>(fs: impl Iterator<Item = F>) -> Vec<F::Output> {
        let mut out = Vec::new();
        for f in fs {
            out.push(f.await);
        }
        out
    }
}
