//! A run's end racing a cancellation, over a real task store (SQLite) whose commits go
//! through a committer made here, which can hold a cancellation between its stored write and
//! the rest of its work: the interleaving in which followers' streams used to close without
//! a last event.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use hypervisor_protocol::a2a::TaskState;
use hypervisor_protocol::a2a::model::TaskStatus;
use tokio::sync::{Notify, Semaphore, broadcast};

use super::*;
use crate::storage::tasks::{TaskBackend, TaskChange, TaskCommitter, TaskQuota, TaskWrite};

/// Commits on the backend; once a `CANCELED` write is stored, says so (`stored`) and waits
/// for a permit of `gate` before the cancellation may go on.
struct Gated {
    backend: Arc<dyn TaskBackend>,
    stored: Arc<Notify>,
    gate: Arc<Semaphore>,
}

impl TaskCommitter for Gated {
    fn commit_task(&self, write: Arc<TaskWrite>) -> BoxFuture<'_, Result<(), StorageError>> {
        Box::pin(async move {
            let applied = match write.change {
                TaskChange::Insert(quota) => self.backend.insert(&write.row, &quota)?,
                TaskChange::Replace(expected) => self.backend.replace(&write.row, expected)?,
            };
            write.set_applied(applied);
            if applied && write.row.state == TaskState::Canceled.v1_name() {
                self.stored.notify_one();
                self.gate.acquire().await.unwrap().forget();
            }
            Ok(())
        })
    }
}

/// Task `id` of alice, in `state`, now.
fn row(id: &str, state: TaskState) -> TaskRow {
    crate::storage::testing::task(id, "alice", state, unix_millis())
}

/// A store over a new SQLite directory, committing through [`Gated`].
fn store() -> (TaskStore, Arc<Notify>, Arc<Semaphore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(crate::crypto::at_rest::SealingKey::generate().unwrap());
    let stores = crate::storage::sqlite::open(dir.path(), key.clone()).unwrap();
    let (stored, gate) = (Arc::new(Notify::new()), Arc::new(Semaphore::new(0)));
    let quota = TaskQuota {
        per_caller: 100,
        anonymous_per_agent: 100,
        total_bytes: 1 << 20,
    };
    let store = TaskStore::new(stores.tasks.clone(), key, "run-a".into(), quota).with_committer(
        Arc::new(Gated {
            backend: stores.tasks,
            stored: stored.clone(),
            gate: gate.clone(),
        }),
    );
    (store, stored, gate, dir)
}

/// `work`, or a failure if it takes more than 10 s (a regression must fail, not hang).
async fn soon<T>(work: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), work)
        .await
        .expect("did not end within 10 s")
}

/// Reserves task `id`'s place and starts `run` there, as `Tasks::send` does for a task
/// stored before its run.
fn start(
    running: &Running,
    id: &str,
    run: impl std::future::Future<Output = Option<Task>> + Send + 'static,
) -> (
    broadcast::Receiver<Event>,
    tokio::task::JoinHandle<Option<Task>>,
) {
    let place = Place::Reserved(running.reserve(id).expect("a free place"));
    let (events, run) = running.start(place, true, run).expect("started");
    (events.expect("followed"), run)
}

/// Starts task `id`'s run in its reserved `place` as `Tasks::run` starts a run that checks
/// first, and asserts that it stops there; the events its follower got.
async fn checked_run_stops(running: &Running, place: Reserved, id: &'static str) -> Vec<Event> {
    let went_on = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (events, run) = {
        let (r, went_on) = (running.clone(), went_on.clone());
        running
            .start(Place::Reserved(place), true, async move {
                if !r.may_run(&row(id, TaskState::Working)).await {
                    return None;
                }
                went_on.store(true, std::sync::atomic::Ordering::SeqCst);
                None
            })
            .expect("started")
    };
    assert!(soon(run).await.unwrap().is_none());
    assert!(
        !went_on.load(std::sync::atomic::Ordering::SeqCst),
        "the run went on"
    );
    drain(events.unwrap()).await
}

/// Continuation `id` as a send makes it, then canceled: stored `INPUT_REQUIRED`, its place
/// reserved on `owner` (a follower subscribed there), stored `WORKING`, then canceled through
/// `canceler` (`owner` itself, or another replica's). The place, the follower and the
/// canceled row.
async fn continued_then_canceled(
    store: &TaskStore,
    owner: &Running,
    canceler: &Running,
    id: &str,
) -> (Reserved, broadcast::Receiver<Event>, TaskRow) {
    store
        .create(&row(id, TaskState::InputRequired))
        .await
        .unwrap()
        .unwrap();
    let place = owner.reserve(id).unwrap();
    let follower = owner.subscribe(id).unwrap();
    assert!(
        store
            .change(&row(id, TaskState::Working), Some(TaskState::InputRequired))
            .await
            .unwrap()
    );
    let mut canceled = row(id, TaskState::Canceled);
    assert!(soon(canceler.cancel(&mut canceled)).await.unwrap());
    (place, follower, canceled)
}

/// Every event a follower gets until its stream closes.
async fn drain(mut events: broadcast::Receiver<Event>) -> Vec<Event> {
    let mut got = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
            Ok(Ok(event)) => got.push(event),
            Ok(Err(broadcast::error::RecvError::Closed)) => return got,
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            Err(_) => panic!("the stream neither ended nor closed: {got:?}"),
        }
    }
}

/// The one last event among `events`: its status.
fn last_status(events: &[Event]) -> TaskStatus {
    let last: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Status { status, last: true } => Some(status.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(last.len(), 1, "one last event: {events:?}");
    assert!(
        matches!(events.last(), Some(Event::Status { last: true, .. })),
        "the last event comes last: {events:?}"
    );
    last[0].clone()
}

/// A cancellation has stored `CANCELED` but not yet taken the task's entry when the run ends:
/// the run's outcome is refused by the store, the run takes the entry, and the followers'
/// streams end with the stored `CANCELED` status, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_ending_inside_a_cancellation_ends_the_streams_with_the_stored_cancel() {
    let (store, stored, gate, _dir) = store();
    store
        .create(&row("t1", TaskState::Working))
        .await
        .unwrap()
        .unwrap();
    let running = Running::new(store.clone());
    let (events, _run) = start(&running, "t1", std::future::pending());
    let follower = running.subscribe("t1").unwrap();

    let canceling = {
        let running = running.clone();
        tokio::spawn(async move {
            let mut canceled = row("t1", TaskState::Canceled);
            running.cancel(&mut canceled).await
        })
    };
    soon(stored.notified()).await;
    // The run ends now, its outcome second.
    let ended = running
        .conclude(row("t1", TaskState::Completed), false, None)
        .await;
    assert!(ended.is_none(), "the store kept the cancellation");
    gate.add_permits(1);
    assert!(soon(canceling).await.unwrap().unwrap(), "canceled");

    let held = store.get("t1").unwrap().unwrap().task.status;
    assert_eq!(held.state, TaskState::Canceled);
    for got in [drain(events).await, drain(follower).await] {
        assert_eq!(last_status(&got), held, "{got:?}");
    }
}

/// The other orders: the cancellation takes the entry before the run ends (its stream's last
/// event is the cancellation's, the run sends none), and a run that ends first stores its
/// outcome, sends it, and the cancellation is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whichever_ends_a_task_first_its_streams_get_one_last_event() {
    let (store, _stored, gate, _dir) = store();
    // One for the cancellation that applies, and a spare: a wrongly applied second one must
    // not wait forever.
    gate.add_permits(2);
    let running = Running::new(store.clone());
    for id in ["c", "r"] {
        store
            .create(&row(id, TaskState::Working))
            .await
            .unwrap()
            .unwrap();
    }

    // Canceled first, then the (aborted here, and so never ending) run's end comes anyway.
    let (events, run) = start(&running, "c", std::future::pending());
    let mut canceled = row("c", TaskState::Canceled);
    assert!(soon(running.cancel(&mut canceled)).await.unwrap());
    assert!(
        soon(run).await.unwrap_err().is_cancelled(),
        "the run is stopped"
    );
    assert!(
        running
            .conclude(row("c", TaskState::Completed), false, None)
            .await
            .is_none()
    );
    let got = drain(events).await;
    assert_eq!(last_status(&got), canceled.task.status);

    // Ended first: the cancellation finds it finished.
    let (events, _run) = start(&running, "r", std::future::pending());
    let done = running
        .conclude(row("r", TaskState::Completed), false, None)
        .await
        .expect("stored");
    assert!(
        !soon(running.cancel(&mut row("r", TaskState::Canceled)))
            .await
            .unwrap()
    );
    let got = drain(events).await;
    assert_eq!(last_status(&got), done.status);
    assert_eq!(
        store.get("r").unwrap().unwrap().task.status.state,
        TaskState::Completed
    );
}

/// A task stored `WORKING` (a continuation here; a new task stored before its run reserves
/// its place the same way) and canceled before its run starts: the cancellation takes the
/// place, the run does not start, and a follower that came meanwhile gets the stored
/// `CANCELED` as its last event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_canceled_before_its_run_starts_does_not_run() {
    let (store, _stored, gate, _dir) = store();
    gate.add_permits(2);
    let running = Running::new(store.clone());
    let (place, follower, canceled) =
        continued_then_canceled(&store, &running, &running, "p").await;
    let went_on = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let run = {
        let went_on = went_on.clone();
        async move {
            went_on.store(true, std::sync::atomic::Ordering::SeqCst);
            None
        }
    };
    assert!(running.start(Place::Reserved(place), true, run).is_none());
    tokio::task::yield_now().await;
    assert!(!went_on.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(last_status(&drain(follower).await), canceled.task.status);
    assert_eq!(
        store.get("p").unwrap().unwrap().task.status.state,
        TaskState::Canceled
    );
}

/// A place is held once: a second reservation is refused while it is; a place given up (the
/// task's write failed) leaves nothing behind; and a place given up after a cancellation took
/// it does not take, or start in, a later reservation's place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_place_given_up_leaves_no_entry_and_never_takes_a_later_one() {
    let (store, _stored, gate, _dir) = store();
    gate.add_permits(2);
    let running = Running::new(store.clone());
    let place = running.reserve("q").unwrap();
    assert!(running.reserve("q").is_none(), "held once");
    drop(place);
    assert!(running.subscribe("q").is_none(), "nothing left");

    for id in ["y", "z"] {
        store
            .create(&row(id, TaskState::Working))
            .await
            .unwrap()
            .unwrap();
    }
    // Reserved, taken by a cancellation, reserved again (a later message).
    let stale = |id: &'static str| {
        let running = running.clone();
        async move {
            let first = running.reserve(id).unwrap();
            assert!(
                soon(running.cancel(&mut row(id, TaskState::Canceled)))
                    .await
                    .unwrap()
            );
            (first, running.reserve(id).unwrap())
        }
    };
    let (first, second) = stale("y").await;
    assert!(
        running
            .start(Place::Reserved(first), false, async { None })
            .is_none(),
        "the first place was taken: nothing starts in the second"
    );
    assert!(running.subscribe("y").is_some(), "the second place stays");
    let (_, run) = running
        .start(Place::Reserved(second), false, async { None })
        .expect("the second starts");
    assert!(soon(run).await.unwrap().is_none());
    let (first, _second) = stale("z").await;
    drop(first);
    assert!(
        running.subscribe("z").is_some(),
        "a place given up does not take a later one"
    );
}

/// A run that panics fails its task: the store holds `FAILED` and the streams end with it,
/// instead of staying open (and the task `WORKING`) for the life of the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_panics_fails_its_task_and_ends_its_streams() {
    let (store, _stored, _gate, _dir) = store();
    store
        .create(&row("x", TaskState::Working))
        .await
        .unwrap()
        .unwrap();
    let running = Running::new(store.clone());
    let (events, run) = start(&running, "x", async {
        panic!("a run that panics (expected by this test)")
    });
    assert!(soon(run).await.unwrap().is_none());
    let held = store.get("x").unwrap().unwrap().task.status;
    assert_eq!(held.state, TaskState::Failed);
    let got = drain(events).await;
    assert_eq!(last_status(&got), held, "{got:?}");
    assert!(running.subscribe("x").is_none(), "the entry is gone");
}

/// A continuation stored `WORKING` on replica A is canceled through replica B (another
/// `Running` over the same store), which cannot find A's place: A's run reads the stored
/// `CANCELED` before it starts and does not go on, and A's followers get `CANCELED`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_canceled_on_another_replica_before_it_starts_does_not_run() {
    let (store, _stored, gate, _dir) = store();
    gate.add_permits(1);
    let (a, b) = (Running::new(store.clone()), Running::new(store.clone()));
    let (place, _follower, canceled) = continued_then_canceled(&store, &a, &b, "p").await;
    let got = checked_run_stops(&a, place, "p").await;
    assert_eq!(last_status(&got), canceled.task.status);
    // A continuation nothing canceled goes on.
    store
        .create(&row("q", TaskState::Working))
        .await
        .unwrap()
        .unwrap();
    assert!(a.may_run(&row("q", TaskState::Working)).await);
}

/// A run that cannot read its task's stored state does not start (it cannot tell whether a
/// cancellation came first): the task is failed and its streams end with that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_cannot_read_its_task_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(crate::crypto::at_rest::SealingKey::generate().unwrap());
    let stores = crate::storage::sqlite::open(dir.path(), key.clone()).unwrap();
    let quota = TaskQuota {
        per_caller: 100,
        anonymous_per_agent: 100,
        total_bytes: 1 << 20,
    };
    let store = TaskStore::new(stores.tasks.clone(), key, "run-a".into(), quota);
    store
        .create(&row("u", TaskState::Working))
        .await
        .unwrap()
        .unwrap();
    // The same table read with another key: the stored task cannot be opened.
    let other = Arc::new(crate::crypto::at_rest::SealingKey::generate().unwrap());
    let unreadable = TaskStore::new(stores.tasks, other, "run-a".into(), quota);
    assert!(unreadable.get("u").is_err());
    let running = Running::new(unreadable.clone());
    let place = running.reserve("u").unwrap();
    let got = checked_run_stops(&running, place, "u").await;
    assert_eq!(last_status(&got).state, TaskState::Failed, "{got:?}");
    assert_eq!(
        unreadable.get("u").unwrap().unwrap().task.status.state,
        TaskState::Failed
    );
}

/// Work handed to [`detached`] goes on to its end when its caller stops waiting (a request
/// dropped while its task is being stored): the store write and the run's start are not
/// cut between the two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detached_work_ends_when_its_caller_goes_away() {
    let gate = Arc::new(Notify::new());
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let caller = {
        let (gate, done) = (gate.clone(), done.clone());
        tokio::spawn(detached(async move {
            gate.notified().await;
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        }))
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    caller.abort();
    assert!(caller.await.unwrap_err().is_cancelled());
    gate.notify_one();
    soon(async {
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}
