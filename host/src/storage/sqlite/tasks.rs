//! A2A tasks on SQLite (table `a2a_tasks`), on the execution records' writer connection
//! ([`Database::open_relaxed`], [`super::open`]): a write reaches the WAL without a flush to
//! disk, safe from a crash of the process, not of the machine.

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, params};

use super::{Database, sql};
use crate::storage::StorageError;
use crate::storage::tasks::{
    SealedTask, StoredTask, TaskBackend, TaskChange, TaskFilter, TaskQuota, TaskWrite,
};

/// The SQLite task table.
pub struct SqliteTasks {
    db: Arc<Database>,
}

impl SqliteTasks {
    /// The table in `db`.
    pub fn new(db: Arc<Database>) -> Self {
        Self { db }
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

const COLUMNS: &str = "id, agent, caller, sealed_task, sealed_pending, created_ms, updated_ms";

/// The tasks counted against a new task's caller `?3` on agent `?2`: the caller's, or for an
/// anonymous caller (empty), the agent's anonymous ones (`a2a_usage`, kept by triggers).
const COUNT_SQL: &str = "SELECT coalesce((SELECT tasks FROM a2a_usage WHERE key = \
     CASE WHEN ?3 <> '' THEN 'caller:' || ?3 ELSE 'anonymous:' || ?2 END), 0)";

/// The bytes all stored tasks take (sealed task and pending message).
const BYTES_SQL: &str = "SELECT coalesce((SELECT bytes FROM a2a_usage WHERE key = ''), 0)";

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

/// Inserts `row` if it stays within `quota`, in one statement (the bounds hold whatever else
/// writes: SQLite runs one statement at a time). Whether it was inserted.
pub(super) fn insert_on(
    conn: &Connection,
    row: &SealedTask,
    quota: &TaskQuota,
) -> rusqlite::Result<bool> {
    let size = TaskQuota::size_of(row);
    let bound = quota.tasks_bound(&row.caller);
    let inserted = conn
        .prepare_cached(&format!(
            "INSERT INTO a2a_tasks (id, agent, caller, context_id, state, sealed_task, \
             sealed_pending, created_ms, updated_ms, owner) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10 \
             WHERE ({COUNT_SQL}) < ?11 AND ({BYTES_SQL}) + ?12 <= ?13"
        ))?
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
            to_i64(bound),
            to_i64(size),
            to_i64(quota.total_bytes),
        ])?;
    Ok(inserted == 1)
}

/// Replaces `row` if the stored state is `expected` (any but a terminal one when `None`).
/// Whether it was replaced.
pub(super) fn replace_on(
    conn: &Connection,
    row: &SealedTask,
    expected: Option<&str>,
) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE a2a_tasks SET state = ?2, sealed_task = ?3, sealed_pending = ?4, \
             updated_ms = ?5, owner = ?7 WHERE id = ?1 AND CASE WHEN ?6 IS NULL THEN state NOT IN \
             ('TASK_STATE_COMPLETED', 'TASK_STATE_FAILED', 'TASK_STATE_CANCELED', \
             'TASK_STATE_REJECTED') ELSE state = ?6 END",
        )?
        .execute(params![
            row.id,
            row.state,
            row.task,
            row.pending,
            to_i64(row.updated_ms),
            expected,
            row.owner
        ])?;
    Ok(changed == 1)
}

/// Commits a task's write in the group-commit writer's transaction (`super::records`).
pub(super) fn write_on(conn: &Connection, write: &TaskWrite) -> rusqlite::Result<()> {
    let applied = match write.change {
        TaskChange::Insert(quota) => insert_on(conn, &write.row, &quota)?,
        TaskChange::Replace(expected) => replace_on(conn, &write.row, expected)?,
    };
    write.set_applied(applied);
    Ok(())
}

impl TaskBackend for SqliteTasks {
    fn insert(&self, row: &SealedTask, quota: &TaskQuota) -> Result<bool, StorageError> {
        insert_on(&self.db.lock(), row, quota).map_err(sql("insert task"))
    }

    fn usage(&self, caller: &str, agent: &str) -> Result<(u64, u64), StorageError> {
        self.db
            .lock()
            .prepare_cached(&format!(
                "SELECT ({}), ({BYTES_SQL})",
                COUNT_SQL.replace("?3", "?1")
            ))
            .and_then(|mut s| {
                s.query_row(params![caller, agent], |r| {
                    Ok((to_u64(r.get(0)?), to_u64(r.get(1)?)))
                })
            })
            .map_err(sql("task usage"))
    }

    fn get(&self, id: &str) -> Result<Option<StoredTask>, StorageError> {
        self.db
            .lock()
            .prepare_cached(&format!("SELECT {COLUMNS} FROM a2a_tasks WHERE id = ?1"))
            .and_then(|mut s| s.query_row([id], stored).optional())
            .map_err(sql("get task"))
    }

    fn replace(&self, row: &SealedTask, expected: Option<&str>) -> Result<bool, StorageError> {
        replace_on(&self.db.lock(), row, expected).map_err(sql("update task"))
    }

    fn list(
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

    fn unfinished(&self, owner: &str, _alive_since_ms: u64) -> Result<Vec<String>, StorageError> {
        // One process owns the data directory: every other run is dead.
        self.db
            .lock()
            .prepare_cached(
                "SELECT id FROM a2a_tasks WHERE state IN \
                 ('TASK_STATE_SUBMITTED', 'TASK_STATE_WORKING') AND owner <> ?1",
            )
            .and_then(|mut s| s.query_map([owner], |r| r.get(0))?.collect())
            .map_err(sql("unfinished tasks"))
    }

    fn reap(&self, before_ms: u64) -> Result<usize, StorageError> {
        self.db
            .lock()
            .execute(
                "DELETE FROM a2a_tasks WHERE updated_ms < ?1 AND state IN \
                 ('TASK_STATE_COMPLETED', 'TASK_STATE_FAILED', 'TASK_STATE_CANCELED', \
                 'TASK_STATE_REJECTED', 'TASK_STATE_INPUT_REQUIRED')",
                [to_i64(before_ms)],
            )
            .map_err(sql("reap tasks"))
    }
}
