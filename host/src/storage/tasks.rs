//! A2A tasks (table `a2a_tasks`), durable across restarts: each row is one task of one agent,
//! created by one caller (the SHA-256 of its bearer credential, or empty for an anonymous
//! caller), with the task itself and, while it waits for a payment, the client's message to
//! run once paid. Both are sealed with the host's at-rest key, bound to the task's id; the
//! state, context and times stay clear for filtering.
//!
//! The store has its own connection (`Database::open_relaxed`): a write reaches the WAL without
//! a flush to disk, safe from a crash of the process, not of the machine.
//!
//! A state change is conditional: a task that reached a terminal state never changes again,
//! so a run finishing after a cancellation (or the reverse) loses cleanly.

use std::sync::Arc;

use hypervisor_protocol::a2a::TaskState;
use hypervisor_protocol::a2a::model::{Message, Task};
use rusqlite::{OptionalExtension, params};

use super::StorageError;
use super::db::{Database, sql};
use crate::crypto::at_rest::SealingKey;

/// Sealing purpose of a task's content (the task id follows it).
const PURPOSE: &[u8] = b"wasm-hypervisor/v1/a2a-task";

/// One stored task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRow {
    /// The task.
    pub task: Task,
    /// The agent it runs.
    pub agent: String,
    /// Who created it: SHA-256 hex of the caller's credential, empty when anonymous.
    pub caller: String,
    /// The message to run once paid (a task in input-required for a payment).
    pub pending: Option<Message>,
    /// Created, Unix milliseconds.
    pub created_ms: u64,
    /// Last changed, Unix milliseconds.
    pub updated_ms: u64,
}

/// What a list asks for.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter<'a> {
    /// The caller (exactly).
    pub caller: &'a str,
    /// Only this agent's tasks.
    pub agent: Option<&'a str>,
    /// Only this conversation.
    pub context_id: Option<&'a str>,
    /// Only tasks in this state.
    pub state: Option<TaskState>,
    /// Only tasks changed at or after this time (Unix milliseconds).
    pub updated_since_ms: Option<u64>,
}

/// The task store.
#[derive(Clone)]
pub struct TaskStore {
    db: Arc<Database>,
    key: Arc<SealingKey>,
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn purpose(id: &str) -> Vec<u8> {
    let mut p = PURPOSE.to_vec();
    p.push(0);
    p.extend_from_slice(id.as_bytes());
    p
}

const COLUMNS: &str = "id, agent, caller, sealed_task, sealed_pending, created_ms, updated_ms";

/// A row as read, before its content is opened.
struct Sealed {
    id: String,
    agent: String,
    caller: String,
    task: Vec<u8>,
    pending: Option<Vec<u8>>,
    created_ms: i64,
    updated_ms: i64,
}

fn sealed(r: &rusqlite::Row<'_>) -> rusqlite::Result<Sealed> {
    Ok(Sealed {
        id: r.get(0)?,
        agent: r.get(1)?,
        caller: r.get(2)?,
        task: r.get(3)?,
        pending: r.get(4)?,
        created_ms: r.get(5)?,
        updated_ms: r.get(6)?,
    })
}

impl TaskStore {
    /// The store in `db`, sealing with `key`.
    pub fn new(db: Arc<Database>, key: Arc<SealingKey>) -> Self {
        Self { db, key }
    }

    fn seal<T: serde::Serialize>(&self, id: &str, value: &T) -> Result<Vec<u8>, StorageError> {
        let json = serde_json::to_vec(value).map_err(|e| StorageError::Database {
            op: "encode task",
            detail: e.to_string(),
        })?;
        self.key
            .seal(&purpose(id), &json)
            .map_err(|e| StorageError::Database {
                op: "seal task",
                detail: e.to_string(),
            })
    }

    fn unseal<T: serde::de::DeserializeOwned>(
        &self,
        id: &str,
        sealed: &[u8],
    ) -> Result<T, StorageError> {
        let json = self
            .key
            .open(&purpose(id), sealed)
            .map_err(|_| StorageError::Tampered("A2A task"))?;
        serde_json::from_slice(&json).map_err(|_| StorageError::Tampered("A2A task"))
    }

    fn open_row(&self, s: Sealed) -> Result<TaskRow, StorageError> {
        Ok(TaskRow {
            task: self.unseal(&s.id, &s.task)?,
            pending: s
                .pending
                .as_deref()
                .map(|p| self.unseal(&s.id, p))
                .transpose()?,
            agent: s.agent,
            caller: s.caller,
            created_ms: u64::try_from(s.created_ms).unwrap_or(0),
            updated_ms: u64::try_from(s.updated_ms).unwrap_or(0),
        })
    }

    /// Stores a new task.
    ///
    /// # Errors
    /// [`StorageError::Database`] (including a duplicate id).
    pub fn insert(&self, row: &TaskRow) -> Result<(), StorageError> {
        let id = &row.task.id;
        let task = self.seal(id, &row.task)?;
        let pending = row.pending.as_ref().map(|p| self.seal(id, p)).transpose()?;
        self.db
            .lock()
            .prepare_cached(
                "INSERT INTO a2a_tasks (id, agent, caller, context_id, state, sealed_task, \
                 sealed_pending, created_ms, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    id,
                    row.agent,
                    row.caller,
                    row.task.context_id,
                    row.task.status.state.v1_name(),
                    task,
                    pending,
                    to_i64(row.created_ms),
                    to_i64(row.updated_ms)
                ])
            })
            .map_err(sql("insert task"))?;
        Ok(())
    }

    /// The task `id`, if stored.
    ///
    /// # Errors
    /// [`StorageError::Database`], [`StorageError::Tampered`].
    pub fn get(&self, id: &str) -> Result<Option<TaskRow>, StorageError> {
        let found = self
            .db
            .lock()
            .prepare_cached(&format!("SELECT {COLUMNS} FROM a2a_tasks WHERE id = ?1"))
            .and_then(|mut s| s.query_row([id], sealed).optional())
            .map_err(sql("get task"))?;
        found.map(|s| self.open_row(s)).transpose()
    }

    /// Replaces the task and its pending message, unless the stored task is already in a
    /// terminal state. Returns whether it was replaced.
    ///
    /// # Errors
    /// [`StorageError::Database`].
    pub fn update(&self, row: &TaskRow) -> Result<bool, StorageError> {
        self.replace(row, None)
    }

    /// Replaces the task and its pending message only if the stored task is still in state
    /// `expected` (compare and set): of two messages continuing the same waiting task at
    /// once, one wins. Returns whether it was replaced.
    ///
    /// # Errors
    /// [`StorageError::Database`].
    pub fn update_from(&self, row: &TaskRow, expected: TaskState) -> Result<bool, StorageError> {
        self.replace(row, Some(expected))
    }

    /// The conditional replacement of [`Self::update`] (`expected` absent: any state but a
    /// terminal one) and [`Self::update_from`] (exactly `expected`).
    fn replace(&self, row: &TaskRow, expected: Option<TaskState>) -> Result<bool, StorageError> {
        let id = &row.task.id;
        let task = self.seal(id, &row.task)?;
        let pending = row.pending.as_ref().map(|p| self.seal(id, p)).transpose()?;
        let changed = self
            .db
            .lock()
            .prepare_cached(
                "UPDATE a2a_tasks SET state = ?2, sealed_task = ?3, sealed_pending = ?4, \
                 updated_ms = ?5 WHERE id = ?1 AND CASE WHEN ?6 IS NULL THEN state NOT IN \
                 ('TASK_STATE_COMPLETED', 'TASK_STATE_FAILED', 'TASK_STATE_CANCELED', \
                 'TASK_STATE_REJECTED') ELSE state = ?6 END",
            )
            .and_then(|mut s| {
                s.execute(params![
                    id,
                    row.task.status.state.v1_name(),
                    task,
                    pending,
                    to_i64(row.updated_ms),
                    expected.map(TaskState::v1_name)
                ])
            })
            .map_err(sql("update task"))?;
        Ok(changed == 1)
    }

    /// One page of the caller's tasks, newest change first: `(tasks, total matching)`.
    ///
    /// # Errors
    /// [`StorageError::Database`], [`StorageError::Tampered`].
    pub fn list(
        &self,
        filter: &TaskFilter<'_>,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<TaskRow>, u64), StorageError> {
        let condition = "caller = ?1 AND (?2 IS NULL OR agent = ?2) \
             AND (?3 IS NULL OR context_id = ?3) AND (?4 IS NULL OR state = ?4) \
             AND (?5 IS NULL OR updated_ms >= ?5)";
        let state = filter.state.map(TaskState::v1_name);
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
                    sealed,
                )?
                .collect::<Result<Vec<_>, _>>()
            })
            .map_err(sql("list tasks"))?;
        drop(conn);
        let tasks = rows
            .into_iter()
            .map(|s| self.open_row(s))
            .collect::<Result<_, _>>()?;
        Ok((tasks, u64::try_from(total).unwrap_or(0)))
    }

    /// The ids of tasks left submitted or working (by a host that stopped while they ran).
    ///
    /// # Errors
    /// [`StorageError::Database`].
    pub fn unfinished(&self) -> Result<Vec<String>, StorageError> {
        self.db
            .lock()
            .prepare_cached(
                "SELECT id FROM a2a_tasks WHERE state IN \
                 ('TASK_STATE_SUBMITTED', 'TASK_STATE_WORKING')",
            )
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(sql("unfinished tasks"))
    }

    /// Deletes the tasks that finished, or have waited for their payment, before `before_ms`
    /// (Unix milliseconds). Returns how many.
    ///
    /// # Errors
    /// [`StorageError::Database`].
    pub fn reap(&self, before_ms: u64) -> Result<usize, StorageError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use hypervisor_protocol::a2a::model::{TaskStatus, timestamp};
    use zeroize::Zeroizing;

    fn store() -> (tempfile::TempDir, TaskStore) {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Database::open(dir.path()).unwrap());
        let key = Arc::new(SealingKey::from_bytes(Zeroizing::new([9u8; 32])));
        (dir, TaskStore::new(db, key))
    }

    fn row(id: &str, caller: &str, state: TaskState, at: u64) -> TaskRow {
        TaskRow {
            task: Task {
                id: id.into(),
                context_id: "ctx".into(),
                status: TaskStatus {
                    state,
                    message: None,
                    timestamp: timestamp(at),
                },
                artifacts: Vec::new(),
                history: Vec::new(),
                metadata: None,
            },
            agent: "echo".into(),
            caller: caller.into(),
            pending: None,
            created_ms: at,
            updated_ms: at,
        }
    }

    #[test]
    fn tasks_round_trip_sealed_and_listed_per_caller() {
        let (_dir, store) = store();
        store
            .insert(&row("a", "alice", TaskState::Working, 1))
            .unwrap();
        store
            .insert(&row("b", "alice", TaskState::Completed, 2))
            .unwrap();
        store
            .insert(&row("c", "bob", TaskState::Working, 3))
            .unwrap();
        assert_eq!(
            store.get("a").unwrap().unwrap(),
            row("a", "alice", TaskState::Working, 1)
        );
        let filter = TaskFilter {
            caller: "alice",
            ..TaskFilter::default()
        };
        let (tasks, total) = store.list(&filter, 0, 10).unwrap();
        assert_eq!(total, 2);
        assert_eq!(tasks[0].task.id, "b");
        let working = TaskFilter {
            state: Some(TaskState::Working),
            ..filter
        };
        assert_eq!(store.list(&working, 0, 10).unwrap().1, 1);
        let mut ids = store.unfinished().unwrap();
        ids.sort();
        assert_eq!(ids, ["a", "c"]);
        // Only finished tasks older than the cut go.
        assert_eq!(store.reap(3).unwrap(), 1);
        assert!(store.get("b").unwrap().is_none());
        assert!(store.get("a").unwrap().is_some());
    }

    #[test]
    fn a_terminal_task_never_changes() {
        let (_dir, store) = store();
        store.insert(&row("a", "", TaskState::Working, 1)).unwrap();
        let waiting = row("a", "", TaskState::InputRequired, 2);
        assert!(store.update(&waiting).unwrap());
        // Two continuations of the waiting task: one wins.
        let working = row("a", "", TaskState::Working, 3);
        assert!(
            store
                .update_from(&working, TaskState::InputRequired)
                .unwrap()
        );
        assert!(
            !store
                .update_from(&working, TaskState::InputRequired)
                .unwrap()
        );
        assert!(store.update(&row("a", "", TaskState::Canceled, 2)).unwrap());
        assert!(
            !store
                .update(&row("a", "", TaskState::Completed, 3))
                .unwrap()
        );
        let state = store.get("a").unwrap().unwrap().task.status.state;
        assert_eq!(state, TaskState::Canceled);
    }
}
