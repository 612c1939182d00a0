//! The watchdog of the recompiler's runs: a run registers its worker process and deadline; a
//! worker still running a slice of gas past its deadline and a grace period is killed
//! (`SIGKILL` through a pidfd, so a recycled process id is never hit). The run loop then sees
//! its worker gone and reports the time limit.
//!
//! The run loop's own clock checks between slices of gas stop a program at its deadline; the
//! watchdog is for a slice that does not end (a worker that stopped answering).

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open, pidfd_send_signal};

/// How long the watchdog sleeps at most between looks, so its thread notices that the
/// executor is gone.
const IDLE_WAKE: Duration = Duration::from_secs(1);

struct Entry {
    kill_at: Instant,
    pidfd: OwnedFd,
    fired: bool,
}

#[derive(Default)]
struct State {
    next_id: u64,
    entries: BTreeMap<u64, Entry>,
    /// When the watchdog's thread looks next (it sleeps until then unless woken).
    wakes_at: Option<Instant>,
}

pub(crate) struct Watchdog {
    state: Mutex<State>,
    wake: Condvar,
}

impl Watchdog {
    /// Starts the watchdog and its thread (which holds only a weak reference, and ends soon
    /// after the executor).
    pub(crate) fn start() -> Result<Arc<Self>, String> {
        let watchdog = Arc::new(Self {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let weak = Arc::downgrade(&watchdog);
        std::thread::Builder::new()
            .name("riscv-watchdog".into())
            .spawn(move || run(&weak))
            .map_err(|e| format!("the watchdog thread cannot start: {e}"))?;
        Ok(watchdog)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Watches worker `pid` until the guard is dropped: killed at `kill_at` if still watched.
    pub(crate) fn watch(self: &Arc<Self>, pid: u32, kill_at: Instant) -> Result<Guard, String> {
        let pid = i32::try_from(pid)
            .ok()
            .and_then(Pid::from_raw)
            .ok_or_else(|| format!("worker process id {pid} is not valid"))?;
        let pidfd = pidfd_open(pid, PidfdFlags::empty())
            .map_err(|e| format!("pidfd_open on the worker process failed: {e}"))?;
        let (id, sooner) = {
            let mut state = self.lock();
            let id = state.next_id;
            state.next_id += 1;
            state.entries.insert(
                id,
                Entry {
                    kill_at,
                    pidfd,
                    fired: false,
                },
            );
            (id, state.wakes_at.is_none_or(|at| kill_at < at))
        };
        // Waking the thread costs a context switch: only when it would look too late.
        if sooner {
            self.wake.notify_one();
        }
        Ok(Guard {
            watchdog: self.clone(),
            id,
        })
    }
}

fn run(watchdog: &Weak<Watchdog>) {
    loop {
        let Some(dog) = watchdog.upgrade() else {
            return;
        };
        let mut state = dog.lock();
        let now = Instant::now();
        for entry in state.entries.values_mut() {
            if !entry.fired && entry.kill_at <= now {
                entry.fired = true;
                // The worker may have exited meanwhile: nothing to do then.
                let _ = pidfd_send_signal(&entry.pidfd, Signal::KILL);
            }
        }
        let next = state
            .entries
            .values()
            .filter(|e| !e.fired)
            .map(|e| e.kill_at.saturating_duration_since(now))
            .min()
            .unwrap_or(IDLE_WAKE)
            .min(IDLE_WAKE);
        state.wakes_at = Some(now + next);
        let (state, _) = dog
            .wake
            .wait_timeout(state, next)
            .unwrap_or_else(|p| p.into_inner());
        drop(state);
    }
}

/// A watched run; dropping it stops the watch.
pub(crate) struct Guard {
    watchdog: Arc<Watchdog>,
    id: u64,
}

impl Guard {
    /// Whether the watchdog killed the worker.
    pub(crate) fn fired(&self) -> bool {
        self.watchdog
            .lock()
            .entries
            .get(&self.id)
            .is_some_and(|e| e.fired)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.watchdog.lock().entries.remove(&self.id);
    }
}
