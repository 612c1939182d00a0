//! The epoch ticker: one thread per engine increments the epoch every tick, and fires the
//! deadlines of executions that are blocked in the host (for example a guest sleeping in
//! `wasi:io/poll`), which epoch interruption alone cannot reach because no wasm code runs.
//! No execution ever owns a timer.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Registered deadlines, fired by the ticker thread.
#[derive(Default)]
pub struct Deadlines {
    pending: Mutex<BTreeMap<(Instant, u64), Arc<Notify>>>,
    next_id: AtomicU64,
}

impl Deadlines {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<(Instant, u64), Arc<Notify>>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers `at`; the returned guard's [`DeadlineGuard::expired`] completes once it has
    /// passed. Dropping the guard unregisters it.
    pub fn register(self: &Arc<Self>, at: Instant) -> DeadlineGuard {
        let key = (at, self.next_id.fetch_add(1, Ordering::Relaxed));
        let notify = Arc::new(Notify::new());
        self.lock().insert(key, notify.clone());
        DeadlineGuard {
            deadlines: self.clone(),
            key,
            notify,
        }
    }

    fn fire_expired(&self, now: Instant) {
        let mut pending = self.lock();
        while let Some(entry) = pending.first_entry() {
            if entry.key().0 > now {
                break;
            }
            // notify_one stores a permit if nobody waits yet, so a deadline that fires before
            // the execution starts waiting is not lost.
            entry.remove().notify_one();
        }
    }
}

/// A registered deadline.
pub struct DeadlineGuard {
    deadlines: Arc<Deadlines>,
    key: (Instant, u64),
    notify: Arc<Notify>,
}

impl DeadlineGuard {
    /// Completes when the deadline has passed.
    pub async fn expired(&self) {
        self.notify.notified().await;
    }
}

impl Drop for DeadlineGuard {
    fn drop(&mut self) {
        self.deadlines.lock().remove(&self.key);
    }
}

/// Stops and joins the ticker thread when dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Starts ticking `engine` every `tick`, firing `deadlines` as they pass.
    ///
    /// # Errors
    /// If the thread cannot be spawned.
    pub fn start(
        engine: wasmtime::Engine,
        tick: Duration,
        deadlines: Arc<Deadlines>,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                    deadlines.fire_expired(Instant::now());
                }
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
