//! Driving a server: client threads repeating their requests as fast as it answers until a
//! deadline, while its resident memory is sampled every second.
//! The routes, mixed and soak sections all drive through here.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::agent;
use crate::common::process::{Server, sample_rss};
use crate::common::stats::{mib, ms, percentile};
use crate::requests::{Request, Route};

/// What one route's client threads saw.
pub struct Seen {
    /// Latencies of the answers with the expected status, sorted.
    pub ok: Vec<Duration>,
    /// Anything but the expected status, transport errors included.
    pub errors: u64,
    /// The first of those, for the report.
    pub first_error: Option<String>,
}

impl Seen {
    /// One report line: route, requests, errors, req/s over `wall`, p50 and p99 in ms (the
    /// columns of [`header`]).
    pub fn line(&self, name: &str, wall: Duration) -> String {
        format!(
            "{:<56} {:>8} {:>6} {:>8.0} {:>8.2} {:>8.2}",
            name,
            self.ok.len(),
            self.errors,
            self.ok.len() as f64 / wall.as_secs_f64(),
            ms(percentile(&self.ok, 0.5)),
            ms(percentile(&self.ok, 0.99)),
        )
    }
}

/// The column names of [`Seen::line`].
pub fn header() -> String {
    format!(
        "{:<56} {:>8} {:>6} {:>8} {:>8} {:>8}",
        "route", "ok", "errors", "req/s", "p50 ms", "p99 ms"
    )
}

/// A finished drive.
pub struct Drive {
    /// Per route, in the order given.
    pub seen: Vec<Seen>,
    /// The server's resident memory, bytes, one sample a second from the start.
    pub rss: Vec<u64>,
    /// How long the drive took.
    pub wall: Duration,
}

/// Runs `threads` client threads for each route in `load` against `server`, all at once, each
/// sending its requests as fast as the server answers, for `duration`.
pub fn drive(server: &Server, load: &[(&Route, usize)], duration: Duration) -> Drive {
    // Every thread's request is made (sessions opened, agents' offers read) before the clock
    // starts.
    let made: Vec<(usize, Vec<Request>)> = load
        .iter()
        .enumerate()
        .map(|(i, (route, threads))| {
            (
                i,
                (0..*threads).map(|_| (route.make)(&server.base)).collect(),
            )
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let rss = sample_rss(server.pid(), Duration::from_secs(1), stop.clone());
    let started = Instant::now();
    let until = started + duration;
    let errors: Vec<Arc<AtomicU64>> = load.iter().map(|_| Arc::default()).collect();
    let first_errors: Vec<Arc<Mutex<Option<String>>>> =
        load.iter().map(|_| Arc::default()).collect();
    let mut threads = Vec::new();
    for (i, requests) in made {
        for mut request in requests {
            let expect = load[i].0.expect;
            let (errors, first_error) = (errors[i].clone(), first_errors[i].clone());
            threads.push((
                i,
                std::thread::spawn(move || {
                    let agent = agent();
                    let mut latencies = Vec::new();
                    while Instant::now() < until {
                        let t = Instant::now();
                        match request(&agent) {
                            Ok(status) if status == expect => latencies.push(t.elapsed()),
                            other => {
                                errors.fetch_add(1, Ordering::Relaxed);
                                first_error
                                    .lock()
                                    .unwrap()
                                    .get_or_insert_with(|| format!("{other:?}"));
                            }
                        }
                    }
                    latencies
                }),
            ));
        }
    }
    let mut ok: Vec<Vec<Duration>> = load.iter().map(|_| Vec::new()).collect();
    for (i, thread) in threads {
        ok[i].extend(thread.join().unwrap());
    }
    let wall = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let rss = rss.join().unwrap();
    let seen = ok
        .into_iter()
        .zip(errors.iter().zip(&first_errors))
        .map(|(mut ok, (errors, first))| {
            ok.sort();
            Seen {
                ok,
                errors: errors.load(Ordering::Relaxed),
                first_error: first.lock().unwrap().take(),
            }
        })
        .collect();
    Drive { seen, rss, wall }
}

/// Resident memory after the first 10 % of `rss`, its peak and its last sample, MiB, and
/// whether the end stayed flat (within 10 % or 16 MiB of the early value).
pub fn memory(rss: &[u64]) -> (f64, f64, f64, bool) {
    let early = rss.get(rss.len() / 10).copied().unwrap_or(0);
    let end = rss.last().copied().unwrap_or(0);
    let peak = rss.iter().copied().max().unwrap_or(0);
    let flat = end <= early + (early / 10).max(16 << 20);
    (mib(early), mib(peak), mib(end), flat)
}
