//! A2A tasks, durable across restarts and shared by the replicas of a cluster: each row is one
//! task of one agent, created by one caller (the SHA-256 of its bearer credential, or empty
//! for an anonymous caller), with the task itself and, while it waits for a payment, the
//! client's message to run once paid. [`TaskStore`] seals both with the at-rest key, bound to
//! the task's id, and hands the backend ([`TaskBackend`]) sealed rows: the state, context and
//! times stay clear for filtering.
//!
//! A state change is conditional: a task that reached a terminal state never changes again,
//! so a run finishing after a cancellation (or the reverse) loses cleanly; and a message
//! continuing a task that waits takes it by compare-and-set ([`TaskStore::update_from`]), in
//! the database, so that of two replicas receiving it at once one wins.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::future::BoxFuture;
use hypervisor_protocol::a2a::TaskState;
use hypervisor_protocol::a2a::model::{Message, Task};

use super::StorageError;
use crate::crypto::at_rest::SealingKey;

/// Sealing purpose of a task's content (the task id follows it).
const PURPOSE: &[u8] = b"wasm-hypervisor/v1/a2a-task";

/// The terminal states' wire names (a task in one never changes).
pub const TERMINAL: [&str; 4] = [
    "TASK_STATE_COMPLETED",
    "TASK_STATE_FAILED",
    "TASK_STATE_CANCELED",
    "TASK_STATE_REJECTED",
];

/// How many tasks, and how many bytes of them, may be stored (`[a2a]`): checked when a task
/// is created, in the same step that stores it (one statement on PostgreSQL; under the
/// journal's lock on SQLite).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskQuota {
    /// Tasks one caller (a bearer credential's hash) may have stored.
    pub per_caller: u64,
    /// Anonymous tasks one agent may have stored (anonymous callers share it).
    pub anonymous_per_agent: u64,
    /// Bytes all stored tasks may take (sealed task and pending message).
    pub total_bytes: u64,
}

impl TaskQuota {
    /// No bound.
    pub const UNBOUNDED: Self = Self {
        per_caller: u64::MAX,
        anonymous_per_agent: u64::MAX,
        total_bytes: u64::MAX,
    };

    /// How many stored tasks count against a new one of `caller`: the caller's own bound, or
    /// for an anonymous caller (empty), the agent's anonymous bound.
    pub fn tasks_bound(&self, caller: &str) -> u64 {
        if caller.is_empty() {
            self.anonymous_per_agent
        } else {
            self.per_caller
        }
    }

    /// The bytes a sealed task takes against [`Self::total_bytes`].
    pub fn size_of(row: &SealedTask) -> u64 {
        (row.task.len() + row.pending.as_ref().map_or(0, Vec::len)) as u64
    }
}

/// The bound a new task would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaExceeded {
    /// The caller has [`TaskQuota::per_caller`] tasks stored.
    Caller(u64),
    /// The agent has [`TaskQuota::anonymous_per_agent`] anonymous tasks stored.
    Anonymous(u64),
    /// The stored tasks take [`TaskQuota::total_bytes`] (or would, with this one).
    Bytes(u64),
    /// A bound refused the task when it was stored, and tasks were freed before the usage
    /// that names the bound was read (the reaper ran in between): which bound is not known.
    Freed,
}

impl std::fmt::Display for QuotaExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Caller(n) => write!(
                f,
                "this caller has {n} tasks stored (a2a.max_tasks_per_caller): wait until some \
                 finish and expire (a2a.task_ttl_seconds)"
            ),
            Self::Anonymous(n) => write!(
                f,
                "this agent has {n} anonymous tasks stored (a2a.max_anonymous_tasks_per_agent): \
                 send a bearer credential (Authorization: Bearer …), or retry later"
            ),
            Self::Bytes(n) => write!(
                f,
                "the host's stored tasks have reached {n} bytes (a2a.max_task_bytes): retry later"
            ),
            Self::Freed => write!(
                f,
                "a bound on stored tasks (a2a.max_tasks_per_caller, \
                 a2a.max_anonymous_tasks_per_agent or a2a.max_task_bytes) refused this task, and \
                 room was freed just after (expired tasks deleted): retry"
            ),
        }
    }
}

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

/// A task as a backend stores it: content sealed, the filtered columns clear.
#[derive(Debug, Clone)]
pub struct SealedTask {
    /// The task's id.
    pub id: String,
    /// The agent.
    pub agent: String,
    /// The caller's hash (empty: anonymous).
    pub caller: String,
    /// The conversation.
    pub context_id: String,
    /// The state's v1 wire name (`TASK_STATE_…`).
    pub state: &'static str,
    /// The run that wrote it last (and runs it, while it is submitted or working).
    pub owner: String,
    /// The task, sealed.
    pub task: Vec<u8>,
    /// The pending message, sealed.
    pub pending: Option<Vec<u8>>,
    /// Created, Unix milliseconds.
    pub created_ms: u64,
    /// Last changed, Unix milliseconds.
    pub updated_ms: u64,
}

/// A sealed task as read back (its state is not needed: it is inside the task).
#[derive(Debug, Clone)]
pub struct StoredTask {
    /// The task's id.
    pub id: String,
    /// The agent.
    pub agent: String,
    /// The caller's hash.
    pub caller: String,
    /// The task, sealed.
    pub task: Vec<u8>,
    /// The pending message, sealed.
    pub pending: Option<Vec<u8>>,
    /// Created, Unix milliseconds.
    pub created_ms: u64,
    /// Last changed, Unix milliseconds.
    pub updated_ms: u64,
}

/// The interface of a task table: what a database backend implements (blocking calls).
pub trait TaskBackend: Send + Sync {
    /// Stores a new task if it stays within `quota`, in one step: the caller's tasks (an
    /// anonymous caller's: the agent's anonymous tasks) fewer than its bound, and all stored
    /// tasks' bytes plus this one's within the budget. Returns whether it was stored. (On a
    /// shared database, inserts racing on two replicas may pass a bound by one each.)
    ///
    /// # Errors
    /// [`StorageError`] (a duplicate id included).
    fn insert(&self, row: &SealedTask, quota: &TaskQuota) -> Result<bool, StorageError>;

    /// `(tasks of caller — of an anonymous caller: the agent's anonymous tasks —, bytes of all
    /// stored tasks)`.
    ///
    /// # Errors
    /// [`StorageError`].
    fn usage(&self, caller: &str, agent: &str) -> Result<(u64, u64), StorageError>;

    /// The task `id`, if stored.
    ///
    /// # Errors
    /// [`StorageError`].
    fn get(&self, id: &str) -> Result<Option<StoredTask>, StorageError>;

    /// Replaces the task's state, content and pending message if the stored state is
    /// `expected` (any state but a terminal one when `None`). Returns whether it was replaced.
    ///
    /// # Errors
    /// [`StorageError`].
    fn replace(&self, row: &SealedTask, expected: Option<&str>) -> Result<bool, StorageError>;

    /// One page of the caller's tasks, newest change first, and how many match in all.
    ///
    /// # Errors
    /// [`StorageError`].
    fn list(
        &self,
        filter: &TaskFilter<'_>,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<StoredTask>, u64), StorageError>;

    /// The ids of tasks in state submitted or working whose owner is not `owner` and is no
    /// longer alive (no heartbeat at or after `alive_since_ms`; on the embedded backend, every
    /// other run is dead).
    ///
    /// # Errors
    /// [`StorageError`].
    fn unfinished(&self, owner: &str, alive_since_ms: u64) -> Result<Vec<String>, StorageError>;

    /// Deletes the tasks that finished, or have waited for their payment, before `before_ms`.
    /// Returns how many.
    ///
    /// # Errors
    /// [`StorageError`].
    fn reap(&self, before_ms: u64) -> Result<usize, StorageError>;

    /// Holds room, within `quota`, for a new task of `caller` on `agent` taking about
    /// `bytes`, storing nothing: the task is stored later by [`Self::insert_held`] (no bound
    /// refuses it then), or the room given back by [`Self::unhold`]. Every bound counts the
    /// room meanwhile. `Some(false)`: a bound refuses it; `None`: the backend holds no room (a
    /// task is inserted before it runs).
    ///
    /// # Errors
    /// [`StorageError`].
    fn hold(
        &self,
        _caller: &str,
        _agent: &str,
        _bytes: u64,
        _quota: &TaskQuota,
    ) -> Result<Option<bool>, StorageError> {
        Ok(None)
    }

    /// Gives back room held by [`Self::hold`].
    fn unhold(&self, _caller: &str, _agent: &str, _bytes: u64) {}

    /// Stores a new task whose room [`Self::hold`] held (`bytes` of it), and gives the room
    /// back in the same step, stored or not.
    ///
    /// # Errors
    /// [`StorageError`] (a duplicate id included).
    fn insert_held(&self, row: &SealedTask, bytes: u64) -> Result<(), StorageError> {
        // (Only a backend that holds room gets here.)
        self.unhold(&row.caller, &row.agent, bytes);
        match self.insert(row, &TaskQuota::UNBOUNDED)? {
            true => Ok(()),
            false => Err(StorageError::Database {
                op: "insert task",
                detail: "refused with no bound".into(),
            }),
        }
    }

    /// Whether [`TaskStore::create`] and [`TaskStore::change`] should commit through the
    /// execution records' group-commit writer ([`TaskStore::with_committer`]): yes for a
    /// backend whose writes are transactions of a database; no for one with a cheaper way of
    /// its own (SQLite's journal, `storage::sqlite::task_journal`).
    fn joins_group_commit(&self) -> bool {
        true
    }
}

/// A task's write for a [`TaskCommitter`]: a new task within its quota, or a replacement
/// conditional on the stored state, as [`TaskBackend::insert`] and [`TaskBackend::replace`]
/// make them; once committed, [`TaskWrite::applied`] says whether it took effect.
#[derive(Debug)]
pub struct TaskWrite {
    /// The task, sealed.
    pub row: SealedTask,
    /// Which write.
    pub change: TaskChange,
    applied: AtomicBool,
}

/// Which write a [`TaskWrite`] is.
#[derive(Debug, Clone, Copy)]
pub enum TaskChange {
    /// Insert, within the quota.
    Insert(TaskQuota),
    /// Replace, if the stored state is this one (any state but a terminal one when `None`).
    Replace(Option<&'static str>),
}

impl TaskWrite {
    fn new(row: SealedTask, change: TaskChange) -> Self {
        Self {
            row,
            change,
            applied: AtomicBool::new(false),
        }
    }

    /// Records whether the write took effect (by the backend that committed it).
    pub fn set_applied(&self, applied: bool) {
        self.applied.store(applied, Ordering::Release);
    }

    /// Whether the write took effect (once committed).
    pub fn applied(&self) -> bool {
        self.applied.load(Ordering::Acquire)
    }
}

/// What commits a task's writes with other writes (the execution records' group-commit
/// writer): under load, many requests' tasks and records in one transaction.
pub trait TaskCommitter: Send + Sync {
    /// Commits `write` (setting [`TaskWrite::applied`]).
    ///
    /// # Errors
    /// [`StorageError`]: the commit failed.
    fn commit_task(&self, write: Arc<TaskWrite>) -> BoxFuture<'_, Result<(), StorageError>>;
}

/// Room held for a task not stored yet ([`TaskStore::hold`]), given back when dropped (the
/// task stored by [`TaskStore::create_held`], or never).
pub struct HeldRoom {
    backend: Arc<dyn TaskBackend>,
    caller: String,
    agent: String,
    bytes: u64,
    /// Still to give back (not handed to [`TaskBackend::insert_held`]).
    held: bool,
}

impl Drop for HeldRoom {
    fn drop(&mut self) {
        if self.held {
            self.backend.unhold(&self.caller, &self.agent, self.bytes);
        }
    }
}

impl std::fmt::Debug for HeldRoom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldRoom")
            .field("agent", &self.agent)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

/// The task store: seals and opens tasks over a [`TaskBackend`].
#[derive(Clone)]
pub struct TaskStore {
    backend: Arc<dyn TaskBackend>,
    key: Arc<SealingKey>,
    /// This run: the owner of what it writes.
    owner: String,
    quota: TaskQuota,
    /// Where [`Self::create`] and [`Self::change`] commit (the backend, one statement each,
    /// when `None`).
    committer: Option<Arc<dyn TaskCommitter>>,
}

fn purpose(id: &str) -> Vec<u8> {
    let mut p = PURPOSE.to_vec();
    p.push(0);
    p.extend_from_slice(id.as_bytes());
    p
}

impl TaskStore {
    /// The store over `backend`, sealing with `key`, writing as run `owner`, creating tasks
    /// within `quota`.
    pub fn new(
        backend: Arc<dyn TaskBackend>,
        key: Arc<SealingKey>,
        owner: String,
        quota: TaskQuota,
    ) -> Self {
        Self {
            backend,
            key,
            owner,
            quota,
            committer: None,
        }
    }

    /// The same store, committing [`Self::create`] and [`Self::change`] through `committer`.
    #[must_use]
    pub fn with_committer(mut self, committer: Arc<dyn TaskCommitter>) -> Self {
        self.committer = Some(committer);
        self
    }

    /// Commits `row` as `change`: through the committer if the store has one, else on the
    /// backend. Returns whether it took effect.
    async fn write(&self, row: SealedTask, change: TaskChange) -> Result<bool, StorageError> {
        match &self.committer {
            Some(committer) => {
                let write = Arc::new(TaskWrite::new(row, change));
                committer.commit_task(write.clone()).await?;
                Ok(write.applied())
            }
            None => match change {
                TaskChange::Insert(quota) => self.backend.insert(&row, &quota),
                TaskChange::Replace(expected) => self.backend.replace(&row, expected),
            },
        }
    }

    /// [`Self::insert`], committed with other writes when the store has a committer
    /// ([`Self::with_committer`]).
    ///
    /// # Errors
    /// [`StorageError`] (including a duplicate id).
    pub async fn create(&self, row: &TaskRow) -> Result<Result<(), QuotaExceeded>, StorageError> {
        let sealed = self.sealed(row)?;
        let size = TaskQuota::size_of(&sealed);
        if self.write(sealed, TaskChange::Insert(self.quota)).await? {
            return Ok(Ok(()));
        }
        self.refused(&row.caller, &row.agent, size).map(Err)
    }

    /// Holds room for a new task of `caller` on `agent` taking about `bytes` (within the
    /// bounds on stored tasks, counted as stored from now), to store it once, later, with
    /// [`Self::create_held`]. `None`: the backend holds no room (a shared database: create
    /// the task before it runs).
    ///
    /// # Errors
    /// [`StorageError`].
    pub fn hold(
        &self,
        caller: &str,
        agent: &str,
        bytes: u64,
    ) -> Result<Option<Result<HeldRoom, QuotaExceeded>>, StorageError> {
        match self.backend.hold(caller, agent, bytes, &self.quota)? {
            None => Ok(None),
            Some(true) => Ok(Some(Ok(HeldRoom {
                backend: self.backend.clone(),
                caller: caller.to_string(),
                agent: agent.to_string(),
                bytes,
                held: true,
            }))),
            Some(false) => Ok(Some(Err(self.refused(caller, agent, bytes)?))),
        }
    }

    /// Stores a new task whose room `room` holds (no bound refuses it), giving the room back
    /// in the same step (stored or not).
    ///
    /// # Errors
    /// [`StorageError`] (a duplicate id included).
    pub fn create_held(&self, row: &TaskRow, mut room: HeldRoom) -> Result<(), StorageError> {
        // (Sealing fails before the room is taken over: the guard gives it back.)
        let sealed = self.sealed(row)?;
        room.held = false;
        self.backend.insert_held(&sealed, room.bytes)
    }

    /// [`Self::update`] (`expected` `None`) or [`Self::update_from`], committed with other
    /// writes when the store has a committer ([`Self::with_committer`]).
    ///
    /// # Errors
    /// [`StorageError`].
    pub async fn change(
        &self,
        row: &TaskRow,
        expected: Option<TaskState>,
    ) -> Result<bool, StorageError> {
        let change = TaskChange::Replace(expected.map(TaskState::v1_name));
        self.write(self.sealed(row)?, change).await
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

    fn sealed(&self, row: &TaskRow) -> Result<SealedTask, StorageError> {
        let id = &row.task.id;
        Ok(SealedTask {
            id: id.clone(),
            agent: row.agent.clone(),
            caller: row.caller.clone(),
            context_id: row.task.context_id.clone(),
            state: row.task.status.state.v1_name(),
            owner: self.owner.clone(),
            task: self.seal(id, &row.task)?,
            pending: row.pending.as_ref().map(|p| self.seal(id, p)).transpose()?,
            created_ms: row.created_ms,
            updated_ms: row.updated_ms,
        })
    }

    fn open_row(&self, s: StoredTask) -> Result<TaskRow, StorageError> {
        Ok(TaskRow {
            task: self.unseal(&s.id, &s.task)?,
            pending: s
                .pending
                .as_deref()
                .map(|p| self.unseal(&s.id, p))
                .transpose()?,
            agent: s.agent,
            caller: s.caller,
            created_ms: s.created_ms,
            updated_ms: s.updated_ms,
        })
    }

    /// Whether `caller` may create a task of at least `adding` bytes on `agent` now (checked
    /// again, atomically, when it is stored: [`Self::insert`]).
    ///
    /// # Errors
    /// [`StorageError`].
    pub fn admit(
        &self,
        caller: &str,
        agent: &str,
        adding: u64,
    ) -> Result<Result<(), QuotaExceeded>, StorageError> {
        let (tasks, bytes) = self.backend.usage(caller, agent)?;
        Ok(self
            .exceeded(caller, tasks, bytes, adding)
            .map_or(Ok(()), Err))
    }

    fn exceeded(&self, caller: &str, tasks: u64, bytes: u64, adding: u64) -> Option<QuotaExceeded> {
        let q = &self.quota;
        if tasks >= q.tasks_bound(caller) {
            Some(if caller.is_empty() {
                QuotaExceeded::Anonymous(tasks)
            } else {
                QuotaExceeded::Caller(tasks)
            })
        } else if bytes.saturating_add(adding.max(1)) > q.total_bytes {
            // (A task takes at least a byte: with nothing left, none is admitted.)
            Some(QuotaExceeded::Bytes(bytes))
        } else {
            None
        }
    }

    /// Stores a new task within the quota; `Ok(Err(bound))` when a bound refused it.
    ///
    /// # Errors
    /// [`StorageError`] (including a duplicate id).
    pub fn insert(&self, row: &TaskRow) -> Result<Result<(), QuotaExceeded>, StorageError> {
        let sealed = self.sealed(row)?;
        if self.backend.insert(&sealed, &self.quota)? {
            return Ok(Ok(()));
        }
        self.refused(&row.caller, &row.agent, TaskQuota::size_of(&sealed))
            .map(Err)
    }

    /// The bound that refused a new task of `caller` on `agent` (of `size` sealed bytes).
    fn refused(&self, caller: &str, agent: &str, size: u64) -> Result<QuotaExceeded, StorageError> {
        let (tasks, bytes) = self.backend.usage(caller, agent)?;
        Ok(self
            .exceeded(caller, tasks, bytes, size)
            // Freed meanwhile: the bound that refused it is no longer to be seen.
            .unwrap_or(QuotaExceeded::Freed))
    }

    /// The task `id`, if stored.
    ///
    /// # Errors
    /// [`StorageError`], [`StorageError::Tampered`].
    pub fn get(&self, id: &str) -> Result<Option<TaskRow>, StorageError> {
        self.backend.get(id)?.map(|s| self.open_row(s)).transpose()
    }

    /// Replaces the task and its pending message, unless the stored task is already in a
    /// terminal state. Returns whether it was replaced.
    ///
    /// # Errors
    /// [`StorageError`].
    pub fn update(&self, row: &TaskRow) -> Result<bool, StorageError> {
        self.backend.replace(&self.sealed(row)?, None)
    }

    /// Replaces the task and its pending message only if the stored task is still in state
    /// `expected` (compare and set): of two messages continuing the same waiting task at
    /// once, one wins. Returns whether it was replaced.
    ///
    /// # Errors
    /// [`StorageError`].
    pub fn update_from(&self, row: &TaskRow, expected: TaskState) -> Result<bool, StorageError> {
        self.backend
            .replace(&self.sealed(row)?, Some(expected.v1_name()))
    }

    /// One page of the caller's tasks, newest change first: `(tasks, total matching)`.
    ///
    /// # Errors
    /// [`StorageError`], [`StorageError::Tampered`].
    pub fn list(
        &self,
        filter: &TaskFilter<'_>,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<TaskRow>, u64), StorageError> {
        let (rows, total) = self.backend.list(filter, offset, limit)?;
        let tasks = rows
            .into_iter()
            .map(|s| self.open_row(s))
            .collect::<Result<_, _>>()?;
        Ok((tasks, total))
    }

    /// The ids of tasks left submitted or working by runs that stopped (silent since before
    /// `alive_since_ms`) while they ran.
    ///
    /// # Errors
    /// [`StorageError`].
    pub fn unfinished(&self, alive_since_ms: u64) -> Result<Vec<String>, StorageError> {
        self.backend.unfinished(&self.owner, alive_since_ms)
    }

    /// Deletes the tasks that finished, or have waited for their payment, before `before_ms`
    /// (Unix milliseconds). Returns how many.
    ///
    /// # Errors
    /// [`StorageError`].
    pub fn reap(&self, before_ms: u64) -> Result<usize, StorageError> {
        self.backend.reap(before_ms)
    }
}
