//! The group-commit writer: one thread with its own connection commits whatever has queued up
//! in one transaction, either at once for an awaited write or within [`LINGER`] for deferred
//! ones (see the [module](super) documentation for the two kinds). An awaited write that finds
//! no commit under way is committed, with the deferred writes waiting, without going to the
//! thread and back: by its caller on a local database ([`RecordSink::local`]), by a task of its
//! own on a backend with an asynchronous driver ([`RecordSink::asynchronous`]; there, when the
//! deferred writes waiting are all logs, the awaited write commits alone first and the logs
//! right after, before anyone else's commit: see `Writer::commit_direct`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

mod bisect;
mod weight;

use bisect::{any_unreached, commit_bisecting, commit_bisecting_async, unreached};

use super::record::ExecutionRecord;
use super::{AsyncRecordSink, RecordSink};
use crate::storage::StorageError;
use crate::storage::agents::LogEntry;

/// Most writes committed in one transaction.
const BATCH: usize = 512;

/// Longest a deferred write waits for company before it is committed.
pub const LINGER: Duration = Duration::from_millis(10);

/// A write for the writer thread (what a [`RecordSink`] commits).
#[derive(Debug)]
pub enum Write {
    /// An execution record.
    Record(ExecutionRecord),
    /// An agent's log entry.
    Log {
        /// The agent.
        agent: String,
        /// The entry.
        entry: LogEntry,
    },
    /// An agent's outgoing call.
    Call(hypervisor_protocol::grants::CallRecord),
    /// An A2A task's insert or replacement (`storage::tasks`), awaited.
    Task(Arc<crate::storage::tasks::TaskWrite>),
}

/// Why a commit failed, as every waiter of the batch is told.
#[derive(Debug, Clone)]
struct Failed {
    /// The database could not be reached.
    unavailable: bool,
    detail: String,
}

impl Failed {
    fn of(e: &StorageError) -> Self {
        Self {
            unavailable: e.is_unavailable(),
            detail: e.to_string(),
        }
    }

    fn into_error(self, op: &'static str) -> StorageError {
        if self.unavailable {
            StorageError::Unavailable {
                op,
                detail: self.detail,
            }
        } else {
            StorageError::Database {
                op,
                detail: self.detail,
            }
        }
    }
}

type Done = tokio::sync::oneshot::Sender<Result<(), Failed>>;

/// How long the writer waits before trying again when the database was unreachable.
const RETRY: Duration = Duration::from_millis(250);

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
type Pending = Arc<Mutex<Queue>>;

/// The deferred writes waiting, and about how many bytes they hold ([`Write::weight`]).
#[derive(Default)]
struct Queue {
    writes: Vec<Write>,
    bytes: usize,
}

impl Queue {
    /// Every write waiting, taken.
    fn take(&mut self) -> Vec<Write> {
        self.bytes = 0;
        std::mem::take(&mut self.writes)
    }
}

/// Deferred writes kept waiting at most; beyond that (the database has been away or the disk
/// stalled for a long time), further deferred writes are dropped with an error in the log.
const MAX_PENDING: usize = 100_000;

/// Bytes of deferred writes kept waiting at most ([`Write::weight`]; a log holds up to a
/// run's whole sealed stderr), with the same rule: the memory a database outage costs stays
/// bounded whatever the agents write meanwhile.
const MAX_PENDING_BYTES: usize = 64 << 20;

/// The connection, shared by the writer thread and the awaited writes committed without it.
/// Whoever holds it takes the deferred writes to commit while holding it, so a deferred write
/// is never committed after an awaited one submitted later, logs excepted: on the asynchronous
/// path they may commit just after it, still before the holder lets go (`commit_direct`), so
/// a barrier (`submit_now(None)`, which every read makes) always finds them committed. An
/// asynchronous mutex: an
/// asynchronous commit holds it across its awaits (the writer thread waits for it with
/// `blocking_lock`, which is allowed off the async runtime).
type Sink = Arc<tokio::sync::Mutex<Box<dyn RecordSink>>>;

/// The way to the writer thread: its bounded queue and the deferred writes waiting for it.
/// Dropping it stops the thread once it has committed what was queued.
pub(super) struct Writer {
    sender: mpsc::SyncSender<Msg>,
    pending: Pending,
    /// Whether the writer thread was nudged and has not taken the deferred writes since: it
    /// will at its next commit (within [`LINGER`] as a rule; later while it waits for the
    /// connection or sleeps after a failure), so a deferred write made meanwhile needs no
    /// nudge of its own (one wake-up of the thread per linger, not one per request).
    nudged: Arc<AtomicBool>,
    sink: Sink,
    /// Whether callers may commit their awaited writes themselves ([`RecordSink::local`]).
    local: bool,
    /// The backend's asynchronous commit, if any ([`RecordSink::asynchronous`]).
    direct: Option<Arc<dyn AsyncRecordSink>>,
}

fn failed(op: &'static str) -> impl Fn(String) -> StorageError {
    move |detail| StorageError::Database { op, detail }
}

impl Writer {
    /// Starts the writer thread, committing through `sink`.
    ///
    /// # Errors
    /// [`StorageError`] if the thread cannot be made.
    pub(super) fn start(sink: Box<dyn RecordSink>) -> Result<Self, StorageError> {
        let (sender, messages) = mpsc::sync_channel::<Msg>(4096);
        let pending = Pending::default();
        let taken = pending.clone();
        let nudged = Arc::new(AtomicBool::new(false));
        let seen = nudged.clone();
        let local = sink.local();
        let direct = sink.asynchronous();
        let sink = Sink::new(tokio::sync::Mutex::new(sink));
        let shared = sink.clone();
        std::thread::Builder::new()
            .name("records-writer".into())
            .spawn(move || write_loop(&shared, &messages, &taken, &seen))
            .map_err(|e| StorageError::Database {
                op: "start the records writer",
                detail: e.to_string(),
            })?;
        Ok(Self {
            sender,
            pending,
            nudged,
            sink,
            local,
            direct,
        })
    }

    /// Queues `write` (`None`: nothing, a barrier) and returns once it and every write queued
    /// before it are committed (logs queued before an awaited write excepted: they may commit
    /// a moment after it, see `commit_direct`; a barrier waits for them too).
    ///
    /// # Errors
    /// [`StorageError::Database`] (`op` says what was being done) if the writer stopped or the
    /// commit failed.
    pub(super) async fn submit_now(
        &self,
        write: Option<Write>,
        op: &'static str,
    ) -> Result<(), StorageError> {
        let write = match (write.map(Box::new), &self.direct) {
            (Some(write), _) if self.local => match self.commit_here(write) {
                Ok(result) => return result.map_err(|f| f.into_error(op)),
                Err(write) => Some(write),
            },
            (Some(write), Some(direct)) => match self.commit_direct(direct, write).await {
                Ok(result) => return result.map_err(|f| f.into_error(op)),
                Err(write) => Some(write),
            },
            (write, _) => write,
        };
        let (done, committed) = tokio::sync::oneshot::channel();
        let message = Msg::Now(write, done);
        // The queue is bounded: when it is full, wait for room off the async workers.
        match self.sender.try_send(message) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(message)) => {
                let writer = self.sender.clone();
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
            .map_err(|f| f.into_error(op))
    }

    /// Commits `write`, after the deferred writes waiting, on this thread if the connection is
    /// free and fewer than a batch are waiting; gives it back otherwise (it then goes to the
    /// writer thread, which batches it with others).
    fn commit_here(&self, write: Box<Write>) -> Result<Result<(), Failed>, Box<Write>> {
        let Ok(mut sink) = self.sink.try_lock() else {
            return Err(write);
        };
        let Some(mut writes) = self.take_pending() else {
            return Err(write);
        };
        let deferred = writes.len();
        writes.push(*write);
        // On the caller's thread, as the pipeline's other SQLite writes are: a commit is a write
        // to the log as a rule (tens of µs); `block_in_place` would wake another thread to
        // take over the worker's queue, the very hop this saves.
        let mut results = commit_bisecting(&mut **sink, &writes);
        let result = results.pop().unwrap_or(Ok(()));
        if any_unreached(&results) {
            // As the writer thread does: the deferred writes wait for the next attempt,
            // ahead of newer ones, and the thread is told to make it.
            writes.truncate(deferred);
            requeue(&self.pending, unreached(writes, &results, 0));
            self.wake().nudge();
        }
        drop(sink);
        Ok(result)
    }

    /// The deferred writes waiting, taken to be committed before an awaited write by whoever
    /// holds the sink; `None` when so many wait that they are a backlog (after the database
    /// was away): the awaited write then goes to the writer thread, which commits the backlog
    /// with it.
    fn take_pending(&self) -> Option<Vec<Write>> {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        (pending.writes.len() < BATCH).then(|| pending.take())
    }

    /// Commits `write`, after the deferred writes waiting, through the backend's asynchronous
    /// commit on a task of its own, if no commit is under way and fewer than a batch are
    /// waiting; gives it back otherwise (it then goes to the writer thread). The task runs to
    /// its end even if the caller stops waiting (a client that hangs up): the deferred writes
    /// it took are committed, or put back when the database was unreachable.
    ///
    /// When the deferred writes waiting are all logs (as a rule the awaited record's own run's
    /// log, queued just before it), `write` is committed first, alone (one round trip instead of
    /// three: `BEGIN`, the statements, `COMMIT`), and the caller answered; the logs follow in a
    /// second commit before the turn is given up, so a read (which waits for the turn through
    /// [`Records::flush`](super::Records::flush)) still sees them. Logs are deferred writes,
    /// which a crash may lose within [`LINGER`]: committing them a moment after the record
    /// promises nothing less. Any other deferred write (an outgoing call, which must be
    /// committed no later than its caller's record) keeps the one transaction.
    async fn commit_direct(
        &self,
        direct: &Arc<dyn AsyncRecordSink>,
        write: Box<Write>,
    ) -> Result<Result<(), Failed>, Box<Write>> {
        let Ok(turn) = self.sink.clone().try_lock_owned() else {
            return Err(write);
        };
        let Some(mut writes) = self.take_pending() else {
            return Err(write);
        };
        let logs_after =
            !writes.is_empty() && writes.iter().all(|w| matches!(w, Write::Log { .. }));
        let (done, committed) = tokio::sync::oneshot::channel();
        let (sink, pending, wake) = (direct.clone(), self.pending.clone(), self.wake());
        if logs_after {
            let logs = writes;
            direct.spawn(Box::pin(async move {
                let result = sink
                    .commit(std::slice::from_ref(&*write))
                    .await
                    .map_err(|e| Failed::of(&e));
                let unavailable = matches!(&result, Err(e) if e.unavailable);
                if let Err(e) = &result {
                    tracing::error!(error = %e.detail, writes = 1, "recording executions failed");
                }
                let _ = done.send(result);
                if unavailable {
                    requeue(&pending, logs);
                    wake.nudge();
                } else {
                    let results = commit_bisecting_async(&*sink, &logs).await;
                    if any_unreached(&results) {
                        requeue(&pending, unreached(logs, &results, 0));
                        wake.nudge();
                    }
                }
                drop(turn);
            }));
        } else {
            let deferred = writes.len();
            writes.push(*write);
            direct.spawn(Box::pin(async move {
                let mut results = commit_bisecting_async(&*sink, &writes).await;
                let result = results.pop().unwrap_or(Ok(()));
                if any_unreached(&results) {
                    writes.truncate(deferred);
                    requeue(&pending, unreached(writes, &results, 0));
                    wake.nudge();
                }
                drop(turn);
                let _ = done.send(result);
            }));
        }
        Ok(committed.await.unwrap_or_else(|_| {
            Err(Failed {
                unavailable: false,
                detail: "the commit's task stopped".into(),
            })
        }))
    }

    /// Queues `write` without waiting: committed within [`LINGER`] (dropped with an error in
    /// the log beyond [`MAX_PENDING`] waiting writes or [`MAX_PENDING_BYTES`]).
    pub(super) fn submit_deferred(&self, write: Write) {
        let weight = write.weight();
        let waiting = {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            if pending.writes.len() >= MAX_PENDING || pending.bytes + weight > MAX_PENDING_BYTES {
                let (writes, bytes) = (pending.writes.len(), pending.bytes);
                drop(pending);
                tracing::error!(
                    waiting = writes,
                    bytes,
                    "the records writer is far behind: a deferred write is dropped"
                );
                return;
            }
            pending.writes.push(write);
            pending.bytes += weight;
            pending.writes.len()
        };
        // Wake the writer only when the first write starts waiting (it then lingers) and it
        // was not nudged already (an awaited write committed on its caller's thread may have
        // taken the writes it was nudged for: it takes this one when its linger ends), or when
        // a batch is full. A full channel needs no nudge: the writer takes every pending write
        // at its next commit. (The flag is cleared before the writes are taken, so a write
        // that finds it set is taken by that commit.)
        match waiting {
            1 => self.wake().nudge(),
            n if n == BATCH => {
                if let Err(mpsc::TrySendError::Disconnected(_)) = self.sender.try_send(Msg::Full) {
                    tracing::error!("the records writer stopped: deferred writes are lost");
                }
            }
            _ => {}
        }
    }

    /// A way to wake the writer thread for the deferred writes, from wherever they are put.
    fn wake(&self) -> Wake {
        Wake {
            sender: self.sender.clone(),
            nudged: self.nudged.clone(),
        }
    }
}

/// Wakes the writer thread for the deferred writes waiting ([`Msg::Deferred`]), unless it was
/// nudged already and has not taken them since.
struct Wake {
    sender: mpsc::SyncSender<Msg>,
    nudged: Arc<AtomicBool>,
}

impl Wake {
    fn nudge(&self) {
        if self.nudged.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Err(mpsc::TrySendError::Disconnected(_)) = self.sender.try_send(Msg::Deferred) {
            tracing::error!("the records writer stopped: deferred writes are lost");
        }
    }
}

/// Puts deferred writes whose commit failed back in front of the waiting ones.
///
/// A caller that puts them back (after its awaited write's commit found the database away)
/// then nudges the writer thread ([`Wake`]): the thread may have gone idle meanwhile, e.g.
/// when it had put the same writes back itself, slept [`RETRY`], and woke while the caller's
/// commit held them, finding nothing waiting; no later deferred write would wake it (only the
/// first one waiting does), so they would wait for the next awaited write.
fn requeue(pending: &Pending, mut kept: Vec<Write>) {
    let mut pending = pending.lock().unwrap_or_else(PoisonError::into_inner);
    kept.append(&mut pending.writes);
    // Within both bounds, the oldest first.
    let mut bytes = 0;
    let fits = kept
        .iter()
        .take(MAX_PENDING)
        .take_while(|w| {
            bytes += w.weight();
            bytes <= MAX_PENDING_BYTES
        })
        .count();
    if fits < kept.len() {
        tracing::error!(
            dropped = kept.len() - fits,
            "the records writer is far behind: deferred writes are dropped"
        );
        kept.truncate(fits);
    }
    pending.bytes = kept.iter().map(Write::weight).sum();
    pending.writes = kept;
}

fn write_loop(sink: &Sink, messages: &mpsc::Receiver<Msg>, pending: &Pending, nudged: &AtomicBool) {
    let mut open = true;
    while open {
        // Deferred writes kept from a failed commit wait for no nudge: try them again soon.
        let kept = !pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .writes
            .is_empty();
        let first = if kept {
            match messages.recv_timeout(RETRY) {
                Ok(message) => message,
                Err(mpsc::RecvTimeoutError::Timeout) => Msg::Deferred,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        } else {
            let Ok(message) = messages.recv() else { break };
            message
        };
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
        let awaited = writes.len();
        let mut sink = sink.blocking_lock();
        nudged.store(false, Ordering::SeqCst);
        writes.append(
            &mut pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let results = commit_bisecting(&mut **sink, &writes);
        // A barrier's waiter learns whether the database could be reached; a write it
        // refused is dropped (and logged) either way.
        let reached = results
            .iter()
            .find(|r| matches!(r, Err(f) if f.unavailable))
            .cloned()
            .unwrap_or(Ok(()));
        for (index, done) in waiters {
            let result = index.map_or_else(|| reached.clone(), |i| results[i].clone());
            let _ = done.send(result);
        }
        if any_unreached(&results) {
            // The awaited writes' callers were told (their requests fail); the deferred ones
            // were made after their responses went out: keep them for the next commit, ahead
            // of newer ones, and give the database a moment.
            requeue(pending, unreached(writes, &results, awaited));
            drop(sink);
            std::thread::sleep(RETRY);
        }
    }
    // The last deferred writes, when the store is dropped.
    // (Each write the database refuses is logged by the commit, and only it is lost.)
    let writes = pending
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    commit_bisecting(&mut **sink.blocking_lock(), &writes);
}

/// Adds an awaited write (and its waiter, with the write's place in the batch; none for a
/// barrier) from `message` to the batch; nudges add nothing.
fn take(message: Msg, writes: &mut Vec<Write>, waiters: &mut Vec<(Option<usize>, Done)>) {
    if let Msg::Now(write, done) = message {
        let index = write.map(|w| {
            writes.push(*w);
            writes.len() - 1
        });
        waiters.push((index, done));
    }
}

#[cfg(test)]
mod tests;
