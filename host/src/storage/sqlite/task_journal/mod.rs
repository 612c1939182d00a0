//! A2A tasks on SQLite through a journal: a task's write is decided in memory ([`overlay`]),
//! appended to `<data_dir>/journal/a2a-tasks-*.journal` (one `pwrite`, no flush: safe from a
//! crash of the process, as the table's `synchronous = NORMAL` commits were) and answered; a
//! thread folds what was written into `a2a_tasks` every [`FOLD_EVERY`], in one transaction
//! with the last record folded (`a2a_journal`), so that the table's B-tree work is paid once
//! per batch, not twice per request (a blocking `SendMessage` writes its task twice: working,
//! then its outcome). At start, the records after the last folded one are applied to the
//! table before anything reads it.
//!
//! What holds, as on the table alone: a new task's bounds are checked with its insert, in one
//! step (under the journal's lock); a replacement is a compare and set on the state as the
//! overlay, else the table, has it; every read sees every answered write (`get` reads the
//! overlay first; `list`, `unfinished` and `reap` fold first); an answered write survives
//! `kill -9` (it is in the page cache; replayed at start); one not answered is either whole
//! or absent. After a failed append the journal takes no more writes until the host restarts
//! (the failed write's fate is unknown: answered as an error, never as refused).
//!
//! The design and its measurements: `docs/research/task-journal.md`.

mod image;
mod overlay;
mod promised;

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use hypervisor_journal::{Journal, Options};
use hypervisor_protocol::a2a::TaskState;

use self::overlay::{Change, Ids, Overlay, Table};
use super::tasks::{self as table, SqliteTasks};
use super::{Database, sql};
use crate::storage::StorageError;
use crate::storage::tasks::{
    SealedTask, StoredTask, TaskBackend, TaskChange, TaskFilter, TaskQuota, TaskWrite,
};

/// How often the fold runs.
pub const FOLD_EVERY: Duration = Duration::from_millis(100);

/// Sealed bytes, or tasks, the overlay holds before a write wakes the fold early.
const FOLD_BYTES: u64 = 32 << 20;
const FOLD_TASKS: usize = 50_000;

/// Twice those: a write first folds itself, and is refused if the overlay stays past them
/// (the table cannot be written: memory stays bounded).
const HELD_BYTES_MAX: u64 = 2 * FOLD_BYTES;
const HELD_TASKS_MAX: usize = 2 * FOLD_TASKS;

/// The journal's file names: `a2a-tasks-<first record, 20 digits>.journal`.
const PREFIX: &str = "a2a-tasks";

/// Segments of 16 MiB; no flush per write (as `synchronous = NORMAL`), but a segment is
/// flushed when closed (so that after a power loss only the last one can end short: an earlier
/// one cut short with a later one whole would stop the start); a record as large as a task can
/// be (the HTTP body limits bound it long before).
const OPTIONS: Options = Options {
    segment_bytes: 16 << 20,
    max_record: u32::MAX,
    sync_on_rotate: true,
};

fn journal_error(op: &'static str) -> impl FnOnce(hypervisor_journal::Error) -> StorageError {
    move |e| StorageError::Database {
        op,
        detail: e.to_string(),
    }
}

/// The journal and what it holds unfolded.
struct State {
    journal: Journal,
    overlay: Overlay,
    /// `journal/a2a-tasks.lock`, locked while the journal is open: two processes appending to
    /// one journal would interleave their records.
    _lock: std::fs::File,
}

/// Locks `<dir>/a2a-tasks.lock` (creating `dir`) for this process.
fn lock_dir(dir: &Path) -> Result<std::fs::File, StorageError> {
    let path = dir.join(format!("{PREFIX}.lock"));
    let io = |op| {
        let path = path.clone();
        move |source| StorageError::Io { op, path, source }
    };
    std::fs::create_dir_all(dir).map_err(io("create the task journal's directory"))?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io("open the task journal's lock"))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StorageError::Database {
            op: "open the task journal",
            detail: format!(
                "{} is locked: another host runs on this data directory",
                path.display()
            ),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(io("lock the task journal")(e)),
    }
}

struct Inner {
    /// The table on the relaxed connection (the records writer's): folds, reaps.
    table: SqliteTasks,
    /// The table on a connection of its own, for a write's reads under the journal's lock (a
    /// key's counts, a row not held), so that they do not wait for a fold's transaction.
    reader: SqliteTasks,
    state: Mutex<State>,
    /// Held through a fold, so that folds do not overlap.
    folding: Mutex<()>,
    /// Folds failed in a row (logged at 1, 2, 4, 8, …).
    failures: std::sync::atomic::AtomicU64,
    /// When the last fold failed.
    failed_at: Mutex<Option<std::time::Instant>>,
}

/// A2A tasks: the journal over the table.
pub struct JournaledTasks {
    inner: Arc<Inner>,
    /// Wakes the fold early (dropped: the fold's thread ends).
    wake: Option<SyncSender<()>>,
    folder: Option<JoinHandle<()>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Table for SqliteTasks {
    fn usage(&self, key: &str) -> Result<(u64, u64), StorageError> {
        SqliteTasks::usage(self, key)
    }

    fn row(&self, id: &str) -> Result<Option<SealedTask>, StorageError> {
        self.image(id)
    }
}

impl JournaledTasks {
    /// Opens the journal in `<data_dir>/journal`, applies to the table in `db` (the relaxed
    /// connection) the records it has not got, and starts the fold.
    ///
    /// # Errors
    /// [`StorageError`]: the journal cannot be read (a record damaged or missing that the
    /// table has not got: the host does not start rather than lose it), or the table written.
    pub fn open(data_dir: &Path, db: Arc<Database>) -> Result<Self, StorageError> {
        Self::open_with(data_dir, db, Some(FOLD_EVERY))
    }

    /// [`Self::open`], folding every `fold_every` (never by itself when `None`: only reads
    /// and [`Self::fold`] fold).
    fn open_with(
        data_dir: &Path,
        db: Arc<Database>,
        fold_every: Option<Duration>,
    ) -> Result<Self, StorageError> {
        let dir = data_dir.join("journal");
        let lock_file = lock_dir(&dir)?;
        let journal = {
            let mut conn = db.lock();
            let tx = conn.transaction().map_err(sql("replay the task journal"))?;
            let applied = table::applied_on(&tx).map_err(sql("replay the task journal"))?;
            let mut last = applied;
            let journal = Journal::open(&dir, PREFIX, OPTIONS, applied, |lsn, payload| {
                let row = image::decode(payload)?;
                if !table::upsert_on(&tx, &row).map_err(|e| e.to_string())? {
                    tracing::error!(id = %row.id, "a journaled A2A task's id is another task's: the stored one is kept");
                }
                last = lsn;
                Ok(())
            })
            .map_err(journal_error("replay the task journal"))?;
            if last > applied {
                tracing::info!(records = last - applied, "A2A task journal replayed");
                table::set_applied_on(&tx, last).map_err(sql("replay the task journal"))?;
            }
            tx.commit().map_err(sql("replay the task journal"))?;
            journal
        };
        let table = SqliteTasks::new(db);
        let ids = table.ids()?;
        let overlay = Overlay::new(Ids::new(ids.iter().map(String::as_str)));
        drop(ids);
        let inner = Arc::new(Inner {
            table,
            reader: SqliteTasks::new(Arc::new(Database::open_relaxed(data_dir)?)),
            state: Mutex::new(State {
                journal,
                overlay,
                _lock: lock_file,
            }),
            folding: Mutex::new(()),
            failures: std::sync::atomic::AtomicU64::new(0),
            failed_at: Mutex::new(None),
        });
        // (Segments the replay applied are removed by the next fold, whose commit is flushed
        // to disk first: see `Inner::fold`.)
        let Some(every) = fold_every else {
            return Ok(Self {
                inner,
                wake: None,
                folder: None,
            });
        };
        let (wake, woken) = mpsc::sync_channel(1);
        let weak = Arc::downgrade(&inner);
        let folder = std::thread::Builder::new()
            .name("a2a-task-fold".into())
            .spawn(move || fold_until_dropped(&weak, &woken, every))
            .map_err(|e| StorageError::Database {
                op: "start the task fold",
                detail: e.to_string(),
            })?;
        Ok(Self {
            inner,
            wake: Some(wake),
            folder: Some(folder),
        })
    }

    /// Commits a task's write made through the execution records' writer (setting whether it
    /// took effect).
    ///
    /// # Errors
    /// [`StorageError`].
    pub fn write(&self, write: &TaskWrite) -> Result<(), StorageError> {
        let applied = self.commit(&write.row, write.change)?;
        write.set_applied(applied);
        Ok(())
    }

    /// The journal's lock, once the overlay has room for a new task (the fold behind or
    /// failing: it folds here first, unless a fold failed within the last second); refused
    /// while it stays full, so that memory stays bounded.
    fn room(&self) -> Result<MutexGuard<'_, State>, StorageError> {
        let inner = &*self.inner;
        let state = lock(&inner.state);
        if !full(&state.overlay) {
            return Ok(state);
        }
        drop(state);
        let folded = match inner.failed_recently() {
            true => Err("a fold failed within the last second".to_string()),
            false => inner.fold().map_err(|e| e.to_string()),
        };
        let state = lock(&inner.state);
        if full(&state.overlay) {
            return Err(StorageError::Unavailable {
                op: "store an A2A task",
                detail: match folded {
                    Err(e) => format!("the task journal cannot be folded into the table: {e}"),
                    Ok(()) => "the task journal holds too much unfolded".into(),
                },
            });
        }
        Ok(state)
    }

    /// Decides, appends and applies one write. Whether it took effect.
    ///
    /// A new task is refused while the overlay is full (the fold behind or failing: it folds
    /// here first, unless a fold failed within the last second), so that memory stays bounded.
    /// A replacement is not: it is a run's outcome, which must not be refused, and the task
    /// it replaces was stored (the overlay holds it, or it takes one entry more per run).
    fn commit(&self, row: &SealedTask, change: TaskChange) -> Result<bool, StorageError> {
        let refusable = matches!(change, TaskChange::Insert(_));
        self.commit_with(refusable, |overlay, reader| match change {
            TaskChange::Insert(quota) => overlay.insert(reader, row, &quota),
            TaskChange::Replace(expected) => overlay.replace(reader, row, expected),
        })
    }

    /// [`Self::commit`] of the change `decide` makes (`None`: none), refused while the
    /// overlay is full if `refusable`.
    fn commit_with(
        &self,
        refusable: bool,
        decide: impl FnOnce(&mut Overlay, &SqliteTasks) -> Result<Option<Change>, StorageError>,
    ) -> Result<bool, StorageError> {
        let inner = &*self.inner;
        let mut state = match refusable {
            true => self.room()?,
            false => lock(&inner.state),
        };
        let state = &mut *state;
        let Some(decided) = decide(&mut state.overlay, &inner.reader)? else {
            return Ok(false);
        };
        let record = image::encode(&decided.image).map_err(|detail| StorageError::Database {
            op: "store an A2A task",
            detail,
        })?;
        let lsn = state
            .journal
            .append(&[&record])
            .map_err(journal_error("store an A2A task"))?;
        state.overlay.apply(decided, lsn);
        if (state.overlay.held_bytes() > FOLD_BYTES || state.overlay.len() > FOLD_TASKS)
            && let Some(wake) = &self.wake
        {
            // Full: a wake-up is already pending.
            let _ = wake.try_send(());
        }
        Ok(true)
    }

    /// Folds everything written so far into the table.
    ///
    /// # Errors
    /// [`StorageError`] (what was taken is folded again next time).
    pub fn fold(&self) -> Result<(), StorageError> {
        self.inner.fold()
    }
}

impl Drop for JournaledTasks {
    /// Stops the fold's thread, then folds what is left (a host stopping leaves nothing to
    /// replay; a failure here only leaves it to the next start's replay).
    fn drop(&mut self) {
        self.wake = None;
        if let Some(folder) = self.folder.take() {
            let _ = folder.join();
            if let Err(e) = self.inner.fold() {
                tracing::warn!(error = %e, "the A2A task journal is left to be replayed at the next start");
            }
        }
    }
}

/// Whether the overlay holds more than a new task may add to.
fn full(overlay: &Overlay) -> bool {
    overlay.held_bytes() > HELD_BYTES_MAX || overlay.len() > HELD_TASKS_MAX
}

/// The fold's thread: every `every`, or when woken, until the tasks are dropped.
fn fold_until_dropped(inner: &Weak<Inner>, woken: &mpsc::Receiver<()>, every: Duration) {
    loop {
        if let Err(RecvTimeoutError::Disconnected) = woken.recv_timeout(every) {
            return;
        }
        let Some(inner) = inner.upgrade() else { return };
        // (A failure is logged by the fold; a panic is logged here, and the thread goes on:
        // the next fold takes everything held again.)
        let folded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.fold()));
        if folded.is_err() {
            tracing::error!("folding the A2A task journal panicked; retrying");
        }
    }
}

impl Inner {
    /// Applies `taken` (and the journal's records up to `upto`) to the table in one
    /// transaction; when `durable`, committed at `synchronous = FULL`, which flushes the whole
    /// log: this fold and every earlier one are then on disk.
    fn apply(
        &self,
        taken: &[(Arc<SealedTask>, u64)],
        upto: u64,
        durable: bool,
    ) -> Result<(), StorageError> {
        let mut conn = self.table.db().lock();
        if durable {
            conn.pragma_update(None, "synchronous", "FULL")
                .map_err(sql("fold the task journal"))?;
        }
        // In the order of their ids (distinct rows: any order gives the same table): the id's
        // index is then written in one sweep, each of its pages once (ids are in time order,
        // version 7 UUIDs, but older ones were random, and a batch spans other writers' ids).
        let mut order: Vec<&SealedTask> = taken.iter().map(|(image, _)| &**image).collect();
        order.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        let mut fold = || -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            for image in &order {
                if !table::upsert_on(&tx, image)? {
                    // (An insert on a stored id is refused, so only a table changed under the
                    // host could get here.)
                    tracing::error!(id = %image.id, "an A2A task's id is another stored task's: the stored one is kept");
                }
            }
            table::set_applied_on(&tx, upto)?;
            tx.commit()
        };
        let folded = fold().map_err(sql("fold the task journal"));
        if durable && let Err(e) = conn.pragma_update(None, "synchronous", "NORMAL") {
            // Safe (every commit then flushes), only slower: said loudly.
            tracing::error!(error = %e, "the records' connection stays at synchronous = FULL");
        }
        folded
    }

    /// Whether a fold failed within the last second.
    fn failed_recently(&self) -> bool {
        lock(&self.failed_at).is_some_and(|at| at.elapsed() < Duration::from_secs(1))
    }

    /// Folds with the journal's lock released while the table is written (writes that need
    /// no read of the table go on; those that do read on [`Inner::reader`]). When the journal
    /// has segments before the last, the fold's commit is flushed to disk and then the
    /// segments it wholly applied are removed: a power loss cannot leave the table behind a
    /// removed segment (the start would then fail on the missing records).
    fn fold(&self) -> Result<(), StorageError> {
        let _folding = lock(&self.folding);
        let (taken, upto, durable) = {
            let state = lock(&self.state);
            (
                state.overlay.take(),
                state.journal.next_lsn() - 1,
                state.journal.segments() > 1,
            )
        };
        if taken.is_empty() {
            return Ok(());
        }
        let applied = self.apply(&taken, upto, durable);
        let mut state = lock(&self.state);
        self.settle(&mut state, &taken, upto, durable, applied)
    }

    /// [`Self::fold`] holding the journal's lock (`state`) throughout: nothing is written
    /// meanwhile.
    fn fold_locked(&self, state: &mut State) -> Result<(), StorageError> {
        let upto = state.journal.next_lsn() - 1;
        let durable = state.journal.segments() > 1;
        let taken = state.overlay.take();
        if taken.is_empty() {
            return Ok(());
        }
        let applied = self.apply(&taken, upto, durable);
        self.settle(state, &taken, upto, durable, applied)
    }

    /// After a fold: drops what it folded and, if its commit was flushed, removes the
    /// journal's segments it wholly applied. A failure is logged (at 1, 2, 4, … in a row) and
    /// changes nothing: the next fold takes everything held again.
    fn settle(
        &self,
        state: &mut State,
        taken: &[(Arc<SealedTask>, u64)],
        upto: u64,
        durable: bool,
        applied: Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        use std::sync::atomic::Ordering;
        if let Err(e) = applied {
            *lock(&self.failed_at) = Some(std::time::Instant::now());
            let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
            if failures.is_power_of_two() {
                tracing::error!(error = %e, failures, "folding the A2A task journal into the table failed; retrying");
            }
            return Err(e);
        }
        *lock(&self.failed_at) = None;
        if self.failures.swap(0, Ordering::Relaxed) > 0 {
            tracing::info!("the A2A task journal is folded into the table again");
        }
        state.overlay.folded(taken);
        if durable && let Err(e) = state.journal.forget(upto) {
            tracing::warn!(error = %e, "applied A2A task journal segments not removed");
        }
        Ok(())
    }
}

impl TaskBackend for JournaledTasks {
    fn insert(&self, row: &SealedTask, quota: &TaskQuota) -> Result<bool, StorageError> {
        self.commit(row, TaskChange::Insert(*quota))
    }

    fn usage(&self, caller: &str, agent: &str) -> Result<(u64, u64), StorageError> {
        lock(&self.inner.state)
            .overlay
            .usage(&self.inner.reader, caller, agent)
    }

    fn get(&self, id: &str) -> Result<Option<StoredTask>, StorageError> {
        if let Some(image) = lock(&self.inner.state).overlay.get(id) {
            return Ok(Some(overlay::stored(&image)));
        }
        // Not held: the table has its last write (an entry leaves the overlay only once its
        // fold committed).
        self.inner.reader.get(id)
    }

    fn replace(&self, row: &SealedTask, expected: Option<&str>) -> Result<bool, StorageError> {
        let expected = match expected {
            None => None,
            Some(name) => match TaskState::parse(name) {
                Some(state) => Some(state.v1_name()),
                // No task is in a state this host does not name.
                None => return Ok(false),
            },
        };
        self.commit(row, TaskChange::Replace(expected))
    }

    fn list(
        &self,
        filter: &TaskFilter<'_>,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<StoredTask>, u64), StorageError> {
        self.inner.fold()?;
        self.inner.table.list(filter, offset, limit)
    }

    fn unfinished(&self, owner: &str, _alive_since_ms: u64) -> Result<Vec<String>, StorageError> {
        self.inner.fold()?;
        self.inner.table.unfinished(owner)
    }

    fn reap(&self, before_ms: u64) -> Result<usize, StorageError> {
        let inner = &*self.inner;
        // Most of the fold with writes going on; the rest with them held.
        inner.fold()?;
        let _folding = lock(&inner.folding);
        let mut state = lock(&inner.state);
        inner.fold_locked(&mut state)?;
        let reaped = inner.table.reap(before_ms)?;
        state
            .overlay
            .ids()
            .remove(reaped.iter().map(String::as_str));
        // The table's counts changed under the overlay's (which holds no task now).
        state.overlay.forget_usage();
        Ok(reaped.len())
    }

    fn hold(
        &self,
        caller: &str,
        agent: &str,
        bytes: u64,
        quota: &TaskQuota,
    ) -> Result<Option<bool>, StorageError> {
        // (Refused while the overlay is full, as a new task's insert is: the held task's
        // outcome will take an entry.)
        let held = self
            .room()?
            .overlay
            .hold(&self.inner.reader, caller, agent, bytes, quota)?;
        Ok(Some(held))
    }

    fn unhold(&self, caller: &str, agent: &str, bytes: u64) {
        lock(&self.inner.state).overlay.unhold(caller, agent, bytes);
    }

    fn insert_held(&self, row: &SealedTask, bytes: u64) -> Result<(), StorageError> {
        // Not refused while the overlay is full: its room was held, and it is a run's
        // outcome, as a replacement is. The room is given back under the lock that decides
        // the insert (stored or not), so that no decision counts both the room and the task.
        // (Not refusable: `commit_with` runs the decision whatever follows.)
        self.commit_with(false, |overlay, reader| {
            let change = overlay.insert_held(reader, row);
            overlay.unhold(&row.caller, &row.agent, bytes);
            change.map(Some)
        })
        .map(|_| ())
    }

    fn joins_group_commit(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests;
