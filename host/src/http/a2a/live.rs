//! The A2A tasks running on this host and their followers' streams: who tells a stream that
//! its task ended, and with what.
//!
//! A running task has an entry here (its followers' channel, its run's abort handle) from its
//! start until whoever ends it takes the entry: its run, once it has tried to store its
//! outcome, or a cancellation, once it has stored `CANCELED`. The store decides which outcome
//! stands (a finished task never changes: the second write is refused); both take the entry
//! under one lock, so exactly one of them does, and that one sends the streams their last
//! event, with the status the store holds: a run whose outcome the store refused (the task
//! ended otherwise meanwhile) reads the stored status and sends that. The exception: when the
//! run cannot tell what the store holds (its outcome could not be stored and the task is not
//! stored finished, or the stored task cannot be read back), it closes the streams without a
//! last event.
//!
//! A task stored `WORKING` before its run starts (any but a new task whose room is held, which
//! no one knows yet) takes its place here first ([`Running::reserve`]): a cancellation after
//! the stored write then always finds the entry, and a run whose place was taken meanwhile
//! does not start ([`Running::start`]). A cancellation on another replica cannot find the
//! place: a run another replica can reach (a continuation, or a paid task) reads the stored
//! state before it starts ([`Running::may_run`]). A run that stops without ending its task (it
//! panicked) fails the task, so that neither its streams nor its stored state wait forever.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures_util::FutureExt;
use hypervisor_protocol::a2a::TaskState;
use hypervisor_protocol::a2a::model::{Artifact, Message, Part, Task, TaskStatus, timestamp};
use tokio::sync::broadcast;
use tokio::task::{AbortHandle, JoinHandle};

use crate::clock::unix_millis;
use crate::storage::StorageError;
use crate::storage::tasks::{HeldRoom, TaskRow, TaskStore};

/// A change to a running task, as streams relay it.
#[derive(Debug, Clone)]
pub enum Event {
    /// The status changed; `last` when the stream ends with it (terminal or interrupted).
    Status {
        /// The new status.
        status: TaskStatus,
        /// Whether it is the last event.
        last: bool,
    },
    /// An artifact was produced.
    Artifact(Artifact),
}

/// A running task, or one whose run is about to start.
struct Live {
    /// Its followers' channel, made when the first one comes (a blocking send has none).
    events: Option<broadcast::Sender<Event>>,
    /// Its run's, once started.
    abort: Option<AbortHandle>,
    /// Which reservation or start made it.
    token: u64,
}

impl Live {
    fn new(token: u64) -> Self {
        Self {
            events: None,
            abort: None,
            token,
        }
    }

    /// Sends the followers, if any, `status` as their last event.
    fn end(self, status: TaskStatus) {
        if let Some(events) = self.events {
            // (No follower left is fine.)
            let _ = events.send(Event::Status { status, last: true });
        }
    }
}

/// The tasks running on this host, over the store that holds them.
#[derive(Clone)]
pub(super) struct Running(Arc<Inner>);

struct Inner {
    store: TaskStore,
    live: Mutex<HashMap<String, Live>>,
    /// Tells entries apart (a place given up must not take a later one's).
    tokens: AtomicU64,
}

/// A started run: its sender's receiver of the task's events when it follows them, and the
/// run (the task as it ended, `None` when it ended otherwise).
pub(super) type Started = (Option<broadcast::Receiver<Event>>, JoinHandle<Option<Task>>);

/// Where a run starts: the place its task reserved, or none when no one can know its id
/// yet (a new task stored only with its outcome).
pub(super) enum Place {
    /// Reserved before the task's `WORKING` state was stored.
    Reserved(Reserved),
    /// Not stored before the run.
    Unlisted(String),
}

/// A task's place, reserved ([`Running::reserve`]) and not yet started: given up when
/// dropped (its `WORKING` state could not be stored).
pub(super) struct Reserved {
    running: Running,
    id: String,
    /// `None` once started.
    token: Option<u64>,
}

impl Drop for Reserved {
    fn drop(&mut self) {
        if let Some(token) = self.token {
            let mut live = self.running.lock();
            if live.get(&self.id).is_some_and(|l| l.token == token) {
                // (A follower that came meanwhile sees its stream close.)
                live.remove(&self.id);
            }
        }
    }
}

/// Stores `row` as it is now, if its task has not finished meanwhile: whether it was.
///
/// # Errors
/// [`StorageError`].
async fn save(store: &TaskStore, row: &mut TaskRow) -> Result<bool, StorageError> {
    row.updated_ms = unix_millis();
    store.change(row, None).await
}

impl Running {
    /// No task running yet, over `store`.
    pub(super) fn new(store: TaskStore) -> Self {
        Self(Arc::new(Inner {
            store,
            live: Mutex::new(HashMap::new()),
            tokens: AtomicU64::new(0),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Live>> {
        self.0.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes task `id`'s place before its `WORKING` state is stored, so that a cancellation
    /// after that write finds it. `None` when the task already has one (another message is
    /// starting or running it).
    pub(super) fn reserve(&self, id: &str) -> Option<Reserved> {
        let token = self.0.tokens.fetch_add(1, Ordering::Relaxed);
        let mut live = self.lock();
        if live.contains_key(id) {
            return None;
        }
        live.insert(id.to_string(), Live::new(token));
        Some(Reserved {
            running: self.clone(),
            id: id.to_string(),
            token: Some(token),
        })
    }

    /// Spawns `run`, the run of the task in `place`, under the lock, so that a cancellation
    /// always finds the run's abort handle; a run that panics fails the task. `None` when the
    /// task's reserved place was taken meanwhile (it was canceled: nothing runs). Returns the
    /// sender's receiver of the task's events when it follows them, and the run (the task as
    /// it ended, `None` when it ended otherwise).
    pub(super) fn start(
        &self,
        place: Place,
        follow: bool,
        run: impl Future<Output = Option<Task>> + Send + 'static,
    ) -> Option<Started> {
        let (id, token) = match place {
            Place::Reserved(mut reserved) => {
                (std::mem::take(&mut reserved.id), reserved.token.take())
            }
            Place::Unlisted(id) => (id, None),
        };
        let fresh = self.0.tokens.fetch_add(1, Ordering::Relaxed);
        let mut live = self.lock();
        let entry = match (token, live.entry(id.clone())) {
            (Some(token), Entry::Occupied(entry)) if entry.get().token == token => entry.into_mut(),
            // Taken by a cancellation between the stored write and here.
            (Some(_), _) => return None,
            (None, entry) => entry.or_insert(Live::new(fresh)),
        };
        let receiver = follow.then(|| {
            let events = entry.events.get_or_insert_with(|| broadcast::channel(16).0);
            events.subscribe()
        });
        let (this, task) = (self.clone(), id);
        let run = tokio::spawn(async move {
            match AssertUnwindSafe(run).catch_unwind().await {
                Ok(ended) => ended,
                Err(_) => {
                    this.stopped(&task).await;
                    None
                }
            }
        });
        entry.abort = Some(run.abort_handle());
        Some((receiver, run))
    }

    /// Sends the event `event` makes to the task's followers, if it has any.
    pub(super) fn emit(&self, id: &str, event: impl FnOnce() -> Event) {
        let live = self.lock();
        if let Some(events) = live.get(id).and_then(|l| l.events.as_ref())
            && events.receiver_count() > 0
        {
            // (A follower gone meanwhile is fine.)
            let _ = events.send(event());
        }
    }

    /// A new follower of task `id`, if it is running here.
    pub(super) fn subscribe(&self, id: &str) -> Option<broadcast::Receiver<Event>> {
        self.lock().get_mut(id).map(|l| {
            let events = l.events.get_or_insert_with(|| broadcast::channel(16).0);
            events.subscribe()
        })
    }

    /// Whether the run of task `row`, stored `WORKING` before its run started, may go on: not
    /// if the task ended meanwhile through another replica (whose cancellation stores
    /// `CANCELED` but cannot find this replica's place; one here takes the place, and the run
    /// never starts), nor if its stored state cannot be read (the run cannot tell). When it
    /// may not, the task is ended here: its streams get the stored status, or, when
    /// unreadable, the task is failed if still open.
    pub(super) async fn may_run(&self, row: &TaskRow) -> bool {
        let id = &row.task.id;
        match self.0.store.get(id) {
            Ok(Some(stored)) if stored.task.status.state.is_terminal() => {
                if let Some(live) = self.lock().remove(id) {
                    live.end(stored.task.status);
                }
                false
            }
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(task = %id, error = %e, "an A2A task's stored state cannot be read: it does not run");
                self.conclude(
                    failed(row.clone(), "the task's state could not be read"),
                    false,
                    None,
                )
                .await;
                false
            }
        }
    }

    /// A run that stopped before it ended its task (it panicked): the task, if stored and
    /// not finished, is failed; its streams end with what the store then holds (they close
    /// when it cannot be read, or was never stored).
    async fn stopped(&self, id: &str) {
        tracing::error!(task = %id, "an A2A task's run stopped before its end: the task is failed");
        match self.0.store.get(id) {
            Ok(Some(row)) => {
                let row = match row.task.status.state.is_terminal() {
                    true => row,
                    false => failed(row, "the run stopped unexpectedly"),
                };
                self.conclude(row, false, None).await;
            }
            Ok(None) | Err(_) => {
                self.lock().remove(id);
            }
        }
    }

    /// The end of task `row`'s run, its outcome in `row` (with an artifact last when
    /// `produced`): stores it (as a new task in `room` when the task was not stored yet), then
    /// ends the followers' streams. Returns the task as it ended, `None` when it had finished
    /// otherwise meanwhile or its outcome could not be stored.
    pub(super) async fn conclude(
        &self,
        mut row: TaskRow,
        produced: bool,
        room: Option<HeldRoom>,
    ) -> Option<Task> {
        let (id, store) = (row.task.id.clone(), &self.0.store);
        let saved = match room {
            Some(room) => {
                row.updated_ms = unix_millis();
                // Its sender waits for this outcome, and nothing else knows its id: answered
                // even when it cannot be kept.
                if let Err(e) = store.create_held(&row, room) {
                    tracing::warn!(task = %id, error = %e, "an A2A task's outcome could not be stored: answered, not kept");
                }
                Ok(true)
            }
            None => save(store, &mut row).await,
        };
        let (last, ended) = match saved {
            Ok(true) => {
                if let Some(a) = row.task.artifacts.last().filter(|_| produced) {
                    self.emit(&id, || Event::Artifact(a.clone()));
                }
                (Some(row.task.status.clone()), Some(row.task))
            }
            // Finished otherwise meanwhile (canceled, or failed by another replica's
            // recovery): the streams end with what the store holds, unless the cancellation
            // takes the entry and tells them itself.
            Ok(false) => (stored_end(store, &id), None),
            Err(e) => {
                tracing::warn!(task = %id, error = %e, "an A2A task's outcome could not be stored");
                (stored_end(store, &id), None)
            }
        };
        let live = self.lock().remove(&id);
        if let (Some(live), Some(last)) = (live, last) {
            live.end(last);
        }
        ended
    }

    /// `CancelTask` for task `row` (not finished when read): stores it `CANCELED`, then stops
    /// its run, if it runs here, and ends its followers' streams. Whether it was canceled
    /// (`false`: it finished meanwhile).
    ///
    /// # Errors
    /// [`StorageError`].
    pub(super) async fn cancel(&self, row: &mut TaskRow) -> Result<bool, StorageError> {
        if !save(&self.0.store, row).await? {
            return Ok(false);
        }
        let live = self.lock().remove(&row.task.id);
        if let Some(mut live) = live {
            if let Some(abort) = live.abort.take() {
                abort.abort();
            }
            live.end(row.task.status.clone());
        }
        Ok(true)
    }
}

/// `work`, run to its end in a task of its own even if the caller stops waiting for it (its
/// request dropped); its output, `None` if it panicked.
pub(super) async fn detached<T: Send + 'static>(
    work: impl Future<Output = T> + Send + 'static,
) -> Option<T> {
    tokio::spawn(work).await.ok()
}

/// `row`, failed by the host with `text` (the run did not end it).
fn failed(mut row: TaskRow, text: &str) -> TaskRow {
    let note = Message::agent(
        &row.task,
        uuid::Uuid::now_v7().to_string(),
        vec![Part::text(text)],
        None,
    );
    row.task.status = TaskStatus {
        state: TaskState::Failed,
        message: Some(note),
        timestamp: timestamp(unix_millis()),
    };
    row
}

/// Task `id`'s status as stored, if it is final (`None` when it cannot be read: its streams
/// then close without a last event, as its stored state is unknown).
fn stored_end(store: &TaskStore, id: &str) -> Option<TaskStatus> {
    match store.get(id) {
        Ok(Some(row)) => Some(row.task.status).filter(|s| s.state.is_terminal()),
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(task = %id, error = %e, "an A2A task's stored state cannot be read");
            None
        }
    }
}

#[cfg(test)]
mod tests;
