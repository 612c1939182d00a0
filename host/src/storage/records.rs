//! Execution records: one row per execution or invocation, written before its response is
//! sent. Never plaintext: ids, hashes, times, status, the result commitment and the payment
//! reference only.
//!
//! Writes go through one writer thread that commits whatever has queued up in one transaction
//! (group commit) with `synchronous = NORMAL`: a record is in the WAL (safe from a crash of this
//! process, `kill -9` included) when its request is answered, and on disk at the next
//! checkpoint or `FULL` commit. Many concurrent requests share one commit.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::StorageError;
use super::db::{Database, sql};

/// Most records committed in one transaction.
const BATCH: usize = 512;

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

type Job = (
    ExecutionRecord,
    tokio::sync::oneshot::Sender<Result<(), String>>,
);

/// The records store: reads on the shared connection, writes through the group-commit thread.
pub struct Records {
    db: Arc<Database>,
    writer: mpsc::SyncSender<Job>,
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
             PRAGMA busy_timeout = 5000;",
        )
        .map_err(sql("configure"))?;
        let (writer, jobs) = mpsc::sync_channel::<Job>(4096);
        std::thread::Builder::new()
            .name("records-writer".into())
            .spawn(move || write_loop(conn, &jobs))
            .map_err(|e| StorageError::Database {
                op: "start the records writer",
                detail: e.to_string(),
            })?;
        Ok(Self { db, writer })
    }

    /// Records an execution; returns once the record is committed.
    ///
    /// # Errors
    /// [`StorageError::Database`].
    pub async fn insert(&self, record: ExecutionRecord) -> Result<(), StorageError> {
        let (done, committed) = tokio::sync::oneshot::channel();
        let failed = |detail: String| StorageError::Database {
            op: "record an execution",
            detail,
        };
        // The queue is bounded: when it is full, wait for room off the async workers.
        match self.writer.try_send((record, done)) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(job)) => {
                let writer = self.writer.clone();
                tokio::task::spawn_blocking(move || writer.send(job).map_err(|_| ()))
                    .await
                    .map_err(|e| failed(e.to_string()))?
                    .map_err(|()| failed("the records writer stopped".into()))?;
            }
            Err(mpsc::TrySendError::Disconnected(_)) => {
                return Err(failed("the records writer stopped".into()));
            }
        }
        committed
            .await
            .map_err(|_| failed("the records writer stopped".into()))?
            .map_err(failed)
    }

    /// The record `id`, if any.
    ///
    /// # Errors
    /// [`StorageError::Database`].
    pub fn get(&self, id: &str) -> Result<Option<ExecutionRecord>, StorageError> {
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

    /// Records started at or after `since_ms`, oldest first, at most `limit`.
    ///
    /// # Errors
    /// [`StorageError::Database`].
    pub fn list(&self, since_ms: u64, limit: u32) -> Result<Vec<ExecutionRecord>, StorageError> {
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

fn write_loop(mut conn: Connection, jobs: &mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let result = commit(&mut conn, &batch).map_err(|e| e.to_string());
        if let Err(e) = &result {
            tracing::error!(error = %e, records = batch.len(), "recording executions failed");
        }
        for (_, done) in batch {
            let _ = done.send(result.clone());
        }
    }
}

fn commit(conn: &mut Connection, batch: &[Job]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT OR REPLACE INTO executions
               (id, route, agent, agent_version, code_hash, caller_hash, started_ms, duration_us,
                status, exit_code, commitment, payment)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?;
        for (r, _) in batch {
            stmt.execute(params![
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
        }
    }
    tx.commit()
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

    #[test]
    fn records_are_committed_read_back_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        {
            let db = Arc::new(Database::open(dir.path()).unwrap());
            let records = Records::open(db, dir.path()).unwrap();
            rt.block_on(async {
                let all = (0..50).map(|i| records.insert(record(&format!("r{i:02}"), 1000 + i)));
                for r in futures_join(all).await {
                    r.unwrap();
                }
            });
            assert_eq!(records.get("r07").unwrap(), Some(record("r07", 1007)));
        }
        let db = Arc::new(Database::open(dir.path()).unwrap());
        let records = Records::open(db, dir.path()).unwrap();
        let listed = records.list(1040, 100).unwrap();
        assert_eq!(listed.len(), 10);
        assert_eq!(listed[0].id, "r40");
        assert_eq!(records.get("nope").unwrap(), None);
    }

    async fn futures_join<F: std::future::Future>(fs: impl Iterator<Item = F>) -> Vec<F::Output> {
        let mut out = Vec::new();
        for f in fs {
            out.push(f.await);
        }
        out
    }
}
