//! A2A tasks on SQLite: the table `a2a_tasks` (with its usage counts `a2a_usage`, kept by
//! triggers), on the execution records' writer connection ([`Database::open_relaxed`]): a
//! write reaches the WAL without a flush to disk, safe from a crash of the process, not of the
//! machine. Rows are written here only by the journal's fold and replay
//! ([`super::task_journal`], the backend the host uses) and deleted by its reaper; this module
//! is its table.

use std::sync::Arc;

use hypervisor_protocol::a2a::TaskState;
use rusqlite::{Connection, OptionalExtension, params};

use super::rows::{to_i64, to_u64};
use super::{Database, sql};
use crate::storage::StorageError;
use crate::storage::tasks::{SealedTask, StoredTask, TaskFilter};

/// The SQLite task table.
pub struct SqliteTasks {
    db: Arc<Database>,
}

const COLUMNS: &str = "id, agent, caller, sealed_task, sealed_pending, created_ms, updated_ms";

/// Every column, as [`image`] reads them.
const IMAGE_COLUMNS: &str = "id, agent, caller, context_id, state, owner, sealed_task, \
                             sealed_pending, created_ms, updated_ms";

/// The `a2a_usage` key a task counts against: its caller's, or for an anonymous caller
/// (empty), its agent's anonymous tasks' (as the table's triggers make it).
pub fn usage_key(caller: &str, agent: &str) -> String {
    if caller.is_empty() {
        format!("anonymous:{agent}")
    } else {
        format!("caller:{caller}")
    }
}

fn stored(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredTask> {
    Ok(StoredTask {
        id: r.get(0)?,
        agent: r.get(1)?,
        caller: r.get(2)?,
        task: r.get(3)?,
        pending: r.get(4)?,
        created_ms: to_u64(r.get(5)?),
        updated_ms: to_u64(r.get(6)?),
    })
}

/// A row read with [`IMAGE_COLUMNS`]. A state this host does not name is refused.
fn image(r: &rusqlite::Row<'_>) -> rusqlite::Result<SealedTask> {
    let state: String = r.get(4)?;
    let state = TaskState::parse(&state)
        .map(TaskState::v1_name)
        .ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                4,
                rusqlite::types::Type::Text,
                format!("unknown task state {state:?}").into(),
            )
        })?;
    Ok(SealedTask {
        id: r.get(0)?,
        agent: r.get(1)?,
        caller: r.get(2)?,
        context_id: r.get(3)?,
        state,
        owner: r.get(5)?,
        task: r.get(6)?,
        pending: r.get(7)?,
        created_ms: to_u64(r.get(8)?),
        updated_ms: to_u64(r.get(9)?),
    })
}

/// Stores `row`'s image: inserted if its id is new; else the stored row's state, content,
/// time and owner replaced, if it is the same task (same agent, caller and creation time).
/// Whether it was stored (not: another task holds the id).
pub(super) fn upsert_on(conn: &Connection, row: &SealedTask) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "INSERT INTO a2a_tasks (id, agent, caller, context_id, state, sealed_task, \
             sealed_pending, created_ms, updated_ms, owner) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
             ON CONFLICT (id) DO UPDATE SET state = excluded.state, \
             sealed_task = excluded.sealed_task, sealed_pending = excluded.sealed_pending, \
             updated_ms = excluded.updated_ms, owner = excluded.owner \
             WHERE a2a_tasks.agent = excluded.agent AND a2a_tasks.caller = excluded.caller \
             AND a2a_tasks.created_ms = excluded.created_ms",
        )?
        .execute(params![
            row.id,
            row.agent,
            row.caller,
            row.context_id,
            row.state,
            row.task,
            row.pending,
            to_i64(row.created_ms),
            to_i64(row.updated_ms),
            row.owner,
        ])?;
    Ok(changed == 1)
}

/// The last journal record applied to the table (`a2a_journal`).
pub(super) fn applied_on(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT lsn FROM a2a_journal WHERE id = 1", [], |r| r.get(0))
        .map(to_u64)
}

/// Records that the journal's records up to `lsn` are applied (in the transaction that
/// applied them).
pub(super) fn set_applied_on(conn: &Connection, lsn: u64) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE a2a_journal SET lsn = ?1 WHERE id = 1")?
        .execute([to_i64(lsn)])?;
    Ok(())
}

impl SqliteTasks {
    /// The table in `db`.
    pub fn new(db: Arc<Database>) -> Self {
        Self { db }
    }

    /// The connection.
    pub(super) fn db(&self) -> &Database {
        &self.db
    }

    /// `(tasks, bytes)` counted against `key` ([`usage_key`]; `''`: all tasks).
    ///
    /// # Errors
    /// [`StorageError`].
    pub fn usage(&self, key: &str) -> Result<(u64, u64), StorageError> {
        self.db
            .lock()
            .prepare_cached("SELECT tasks, bytes FROM a2a_usage WHERE key = ?1")
            .and_then(|mut s| {
                s.query_row([key], |r| Ok((to_u64(r.get(0)?), to_u64(r.get(1)?))))
                    .optional()
            })
            .map(Option::unwrap_or_default)
            .map_err(sql("task usage"))
    }

    /// The task `id` with every column, if stored.
    ///
    /// # Errors
    /// [`StorageError`].
    pub fn image(&self, id: &str) -> Result<Option<SealedTask>, StorageError> {
        self.db
            .lock()
            .prepare_cached(&format!(
                "SELECT {IMAGE_COLUMNS} FROM a2a_tasks WHERE id = ?1"
            ))
            .and_then(|mut s| s.query_row([id], image).optional())
            .map_err(sql("get task"))
    }

    /// The task `id`, if stored.
    ///
    /// # Errors
    /// [`StorageError`].
    pub fn get(&self, id: &str) -> Result<Option<StoredTask>, StorageError> {
        self.db
            .lock()
            .prepare_cached(&format!("SELECT {COLUMNS} FROM a2a_tasks WHERE id = ?1"))
            .and_then(|mut s| s.query_row([id], stored).optional())
            .map_err(sql("get task"))
    }

    /// One page of the caller's tasks, newest change first, and how many match in all.
    ///
    /// # Errors
    /// [`StorageError`].
    pub fn list(
        &self,
        filter: &TaskFilter<'_>,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<StoredTask>, u64), StorageError> {
        let condition = "caller = ?1 AND (?2 IS NULL OR agent = ?2) \
             AND (?3 IS NULL OR context_id = ?3) AND (?4 IS NULL OR state = ?4) \
             AND (?5 IS NULL OR updated_ms >= ?5)";
        let state = filter.state.map(|s| s.v1_name());
        let since = filter.updated_since_ms.map(to_i64);
        let conn = self.db.lock();
        let total: i64 = conn
            .prepare_cached(&format!("SELECT count(*) FROM a2a_tasks WHERE {condition}"))
            .and_then(|mut s| {
                s.query_row(
                    params![filter.caller, filter.agent, filter.context_id, state, since],
                    |r| r.get(0),
                )
            })
            .map_err(sql("count tasks"))?;
        let rows = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM a2a_tasks WHERE {condition} \
                 ORDER BY updated_ms DESC, id LIMIT ?6 OFFSET ?7"
            ))
            .and_then(|mut s| {
                s.query_map(
                    params![
                        filter.caller,
                        filter.agent,
                        filter.context_id,
                        state,
                        since,
                        limit,
                        to_i64(offset)
                    ],
                    stored,
                )?
                .collect::<Result<Vec<_>, _>>()
            })
            .map_err(sql("list tasks"))?;
        Ok((rows, to_u64(total)))
    }

    /// The ids of tasks submitted or working that another run than `owner` wrote last (one
    /// process owns the data directory: every other run is dead).
    ///
    /// # Errors
    /// [`StorageError`].
    pub fn unfinished(&self, owner: &str) -> Result<Vec<String>, StorageError> {
        self.db
            .lock()
            .prepare_cached(
                "SELECT id FROM a2a_tasks WHERE state IN \
                 ('TASK_STATE_SUBMITTED', 'TASK_STATE_WORKING') AND owner <> ?1",
            )
            .and_then(|mut s| s.query_map([owner], |r| r.get(0))?.collect())
            .map_err(sql("unfinished tasks"))
    }

    /// Deletes the tasks that finished, or have waited for their payment, before `before_ms`.
    /// Returns their ids.
    ///
    /// # Errors
    /// [`StorageError`].
    pub fn reap(&self, before_ms: u64) -> Result<Vec<String>, StorageError> {
        self.db
            .lock()
            .prepare_cached(
                "DELETE FROM a2a_tasks WHERE updated_ms < ?1 AND state IN \
                 ('TASK_STATE_COMPLETED', 'TASK_STATE_FAILED', 'TASK_STATE_CANCELED', \
                 'TASK_STATE_REJECTED', 'TASK_STATE_INPUT_REQUIRED') RETURNING id",
            )
            .and_then(|mut s| s.query_map([to_i64(before_ms)], |r| r.get(0))?.collect())
            .map_err(sql("reap tasks"))
    }

    /// The ids of every stored task.
    ///
    /// # Errors
    /// [`StorageError`].
    pub fn ids(&self) -> Result<Vec<String>, StorageError> {
        self.db
            .lock()
            .prepare("SELECT id FROM a2a_tasks")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(sql("read the task ids"))
    }
}
