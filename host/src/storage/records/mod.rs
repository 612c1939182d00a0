//! Execution records and invocation logs: the writes every execution makes. Never plaintext in
//! a record: ids, hashes, times, status, the result commitment and the payment reference only;
//! logs are sealed by the caller.
//!
//! Writes go through one writer thread that commits whatever has queued up in one transaction
//! (group commit), on a connection of its own ([`RecordStore::sink`]); on a local database an
//! awaited write that finds no commit under way is committed by its caller on that connection
//! instead ([`RecordSink::local`]); on a backend with an asynchronous driver, by a task of its
//! own on the driver's runtime ([`RecordSink::asynchronous`]). Two kinds of write:
//! - **awaited** ([`Records::insert`]): the caller waits until its record is committed (on
//!   SQLite in the WAL: safe from a crash of this process, `kill -9` included; on disk at the
//!   next checkpoint; on PostgreSQL, committed). Used where a record must exist before the
//!   response is sent.
//! - **deferred** ([`Records::insert_later`], [`Records::append_log_later`]): queued, and
//!   committed within [`LINGER`] together with whatever else queued meanwhile, so that a
//!   stream of small requests pays for one transaction per few hundred writes. Used for writes
//!   made after the response (HTTP agents) and for logs. A crash can lose the last
//!   [`LINGER`] of deferred writes, never an awaited one.
//!
//! Reads ([`Records::get`], [`Records::list`], logs) call [`Records::flush`] first, so whatever
//! was queued before the read is visible to it. On PostgreSQL an awaited record commits alone
//! when only logs wait, and they commit right after it (one round trip for the record, not
//! three); a flush waits for them as well.
//!
//! Layout: `record` holds the record type, `writer` the group-commit thread; this module is the
//! store that puts them together over a backend's [`RecordStore`].

mod record;
mod writer;

use std::sync::Arc;

use futures_util::future::BoxFuture;

pub use self::record::ExecutionRecord;
pub use self::writer::LINGER;
pub use self::writer::Write;
use self::writer::Writer;
use super::StorageError;
use super::agents::LogEntry;
use super::tasks::{TaskCommitter, TaskWrite};

/// The records store: reads on the backend, writes through the group-commit thread.
pub struct Records {
    store: Arc<dyn RecordStore>,
    writer: Writer,
}

/// What commits a batch of writes in one transaction: a backend's connection, owned by the
/// writer thread.
pub trait RecordSink: Send {
    /// Commits `writes` in one transaction (all or none). A log of an agent that no longer
    /// exists is skipped, not an error.
    ///
    /// # Errors
    /// Why not: [`StorageError::Unavailable`] when the database could not be reached (the
    /// writer then keeps the deferred writes for the next attempt).
    fn commit(&mut self, writes: &[Write]) -> Result<(), StorageError>;

    /// Whether a commit is a local write that waits for neither the network nor, as a rule,
    /// the disk (SQLite's write-ahead log at `synchronous = NORMAL`): an awaited write may then
    /// be committed by its caller when no commit is under way, without the hop to the writer
    /// thread and back (two cross-thread wake-ups, which cost more than the commit).
    fn local(&self) -> bool {
        false
    }

    /// The asynchronous way to commit, if the backend has one: an awaited write that finds no
    /// commit under way is then committed by a task of its own ([`AsyncRecordSink::spawn`]),
    /// not handed to the writer thread, which would wait on the database from a thread of its
    /// own (two more cross-thread wake-ups per awaited write).
    fn asynchronous(&self) -> Option<Arc<dyn AsyncRecordSink>> {
        None
    }
}

/// A backend's asynchronous commit (PostgreSQL's driver is asynchronous).
pub trait AsyncRecordSink: Send + Sync {
    /// Commits `writes` in one transaction, as [`RecordSink::commit`] does.
    fn commit<'a>(&'a self, writes: &'a [Write]) -> BoxFuture<'a, Result<(), StorageError>>;

    /// Runs `work` to its end where commits run best (it goes on if its caller stops waiting).
    fn spawn(&self, work: BoxFuture<'static, ()>);
}

/// The interface of the records' tables: what a database backend implements (blocking calls).
pub trait RecordStore: Send + Sync {
    /// A connection for the writer thread.
    ///
    /// # Errors
    /// [`StorageError`].
    fn sink(&self) -> Result<Box<dyn RecordSink>, StorageError>;

    /// The record `id`, if any and visible to `reader`.
    ///
    /// # Errors
    /// [`StorageError`].
    fn get(&self, id: &str, reader: &Reader) -> Result<Option<ExecutionRecord>, StorageError>;

    /// Records started at or after `since_ms` (and, at `since_ms` exactly, with an id after
    /// `after_id`), visible to `reader`, oldest first, at most `limit`.
    ///
    /// # Errors
    /// [`StorageError`].
    fn list(
        &self,
        since_ms: u64,
        after_id: &str,
        limit: u32,
        reader: &Reader,
    ) -> Result<Vec<ExecutionRecord>, StorageError>;
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
    /// The filter's parameters: the caller hash and owner key, `None`s for the operator. An
    /// anonymous record (`caller_hash` empty) is its agent's owner's only.
    pub fn filter(&self) -> (Option<&str>, Option<&str>) {
        match self {
            Reader::Operator => (None, None),
            Reader::Key {
                caller_hash,
                owner_key,
            } => (Some(caller_hash), Some(owner_key)),
        }
    }
}

impl TaskCommitter for Records {
    /// An awaited write: committed before it returns, with whatever else is queued.
    fn commit_task(&self, write: Arc<TaskWrite>) -> BoxFuture<'_, Result<(), StorageError>> {
        Box::pin(
            self.writer
                .submit_now(Some(Write::Task(write)), "store an A2A task"),
        )
    }
}

impl Records {
    /// Starts the writer thread on a connection of `store`'s.
    ///
    /// # Errors
    /// [`StorageError`] if the connection or the thread cannot be made.
    pub fn open(store: Arc<dyn RecordStore>) -> Result<Self, StorageError> {
        let writer = Writer::start(store.sink()?)?;
        Ok(Self { store, writer })
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
    /// [`StorageError`].
    pub async fn get(
        &self,
        id: &str,
        reader: &Reader,
    ) -> Result<Option<ExecutionRecord>, StorageError> {
        self.flush().await?;
        self.store.get(id, reader)
    }

    /// Records started at or after `since_ms` (at `since_ms` exactly, with an id after
    /// `after_id`: the cursor of the previous page), oldest first, at most `limit` (after a
    /// [`Records::flush`]).
    ///
    /// # Errors
    /// [`StorageError`].
    pub async fn list(
        &self,
        since_ms: u64,
        after_id: &str,
        limit: u32,
        reader: &Reader,
    ) -> Result<Vec<ExecutionRecord>, StorageError> {
        self.flush().await?;
        self.store.list(since_ms, after_id, limit, reader)
    }
}
