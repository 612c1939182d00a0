//! Execution records, logs and calls on SQLite: the `executions` table read back, and the
//! group-commit writer's connection (`synchronous = NORMAL`: a commit reaches the WAL without
//! waiting for the disk), which the A2A tasks share ([`super::open`]).

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, params};

use super::task_journal::JournaledTasks;
use super::{Database, sql};
use crate::storage::StorageError;
use crate::storage::records::{ExecutionRecord, Reader, RecordSink, RecordStore, Write};

/// The records' tables in `hypervisor.sqlite`.
pub struct SqliteRecords {
    db: Arc<Database>,
    writer: Arc<Database>,
    tasks: Option<Arc<JournaledTasks>>,
}

impl SqliteRecords {
    /// The tables in `db`, read there; written through `writer`, a connection to the same
    /// database opened with [`Database::open_relaxed`].
    pub fn new(db: Arc<Database>, writer: Arc<Database>) -> Self {
        Self {
            db,
            writer,
            tasks: None,
        }
    }

    /// The same tables, with A2A tasks written through the writer going to `tasks`' journal
    /// (without, such a write is an error).
    #[must_use]
    pub fn with_tasks(mut self, tasks: Arc<JournaledTasks>) -> Self {
        self.tasks = Some(tasks);
        self
    }
}

const COLUMNS: &str = "id, route, agent, agent_version, code_hash, caller_hash, started_ms, \
                       duration_us, status, exit_code, commitment, payment";

/// The records a [`Reader`] sees (parameters 2 and 3: its caller hash and owner key, or
/// `NULL`s for all). An anonymous record (`caller_hash` empty) is its agent's owner's only.
const VISIBLE: &str = "(?2 IS NULL
     OR (caller_hash <> '' AND caller_hash = ?2)
     OR agent IN (SELECT name FROM agents WHERE owner_key = ?3))";

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

/// The writer thread's connection, and the task journal.
struct Sink(Arc<Database>, Option<Arc<JournaledTasks>>);

impl RecordSink for Sink {
    fn commit(&mut self, writes: &[Write]) -> Result<(), StorageError> {
        // Tasks first, to their journal (a task's write is not in the records' transaction:
        // the journal is as durable as it, and decides the write itself). A task write that
        // fails fails the group; the task writes before it in the group are stored all the
        // same (reported as failed, as the journal reports a failed append: fate unknown).
        // Only a store given this writer as its committer comes here: the host's SQLite
        // store writes its tasks to the journal directly (`joins_group_commit`).
        for write in writes {
            if let Write::Task(task) = write {
                let Some(tasks) = &self.1 else {
                    return Err(StorageError::Database {
                        op: "store an A2A task",
                        detail: "these records were opened without the task journal".into(),
                    });
                };
                tasks.write(task)?;
            }
        }
        let mut conn = self.0.lock();
        let mut commit = || -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            for write in writes {
                match write {
                    Write::Record(r) => insert_record(&tx, r)?,
                    Write::Log { agent, entry } => super::logs::append_log_on(&tx, agent, entry)?,
                    Write::Call(call) => super::calls::insert_on(&tx, call)?,
                    Write::Task(_) => {}
                }
            }
            tx.commit()
        };
        commit().map_err(sql("record executions"))
    }

    fn local(&self) -> bool {
        true
    }
}

impl RecordStore for SqliteRecords {
    fn sink(&self) -> Result<Box<dyn RecordSink>, StorageError> {
        Ok(Box::new(Sink(self.writer.clone(), self.tasks.clone())))
    }

    fn get(&self, id: &str, reader: &Reader) -> Result<Option<ExecutionRecord>, StorageError> {
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

    fn list(
        &self,
        since_ms: u64,
        after_id: &str,
        limit: u32,
        reader: &Reader,
    ) -> Result<Vec<ExecutionRecord>, StorageError> {
        let (caller_hash, owner_key) = reader.filter();
        let conn = self.db.lock();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM executions
                 WHERE (started_ms > ?1 OR (started_ms = ?1 AND id > ?5)) AND {VISIBLE}
                 ORDER BY started_ms, id LIMIT ?4"
            ))
            .map_err(sql("list executions"))?;
        let rows = stmt
            .query_map(
                params![to_i64(since_ms), caller_hash, owner_key, limit, after_id],
                row,
            )
            .map_err(sql("list executions"))?;
        rows.collect::<Result<_, _>>()
            .map_err(sql("list executions"))
    }
}
