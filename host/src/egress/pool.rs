//! Keep-alive connections for agents' requests to remote origins ([`super::connect::send`]).
//!
//! - **Only checked connections are pooled.** A connection enters the pool only after
//!   `connect::send` opened it to the address it had just resolved and checked (`pick`), so a
//!   reused connection always goes to an address that was checked when it was opened. A DNS
//!   answer that changes later (rebinding) reaches only new connections, which are resolved and
//!   checked again.
//! - **One pool per agent.** Connections are keyed by the agent (its owner and name) as well as
//!   the origin (scheme, host as asked, port): agents never share a connection, so a remote
//!   server cannot link one agent's requests to another's by their connection, and one agent's
//!   requests never follow another's on the wire.
//! - **Bounded.** An idle connection is kept `egress.keep_alive_ms` at most (checked when it is
//!   taken or another is kept), `egress.max_idle_connections` in all (the one idle longest
//!   goes first); one goes back to the pool only once its response has been read to the end
//!   ([`Returning`]) and the connection is ready for another request (its request's body
//!   written too) within [`READY_WAIT`], and a body dropped before its end closes its
//!   connection.
//! - **Nothing outlives its holder.** A connection's task (hyper's, which reads responses and
//!   writes request bodies) is stopped when the connection is dropped: by the request that
//!   gave up on it, its response body (when not given back), or the pool (expired, pushed out,
//!   not ready). A server that answers early and then stops reading the request's body
//!   cannot keep the task, its socket and the body's bytes alive.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Response;
use http_body_util::Full;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;

/// How long a pooled connection whose response was read may take to be ready again.
const READY_WAIT: Duration = Duration::from_secs(1);

/// What a pooled connection is keyed by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Origin {
    /// The agent whose connection it is (owner key and name).
    pub(crate) partition: Arc<str>,
    /// `https`.
    pub(crate) https: bool,
    /// The host as the guest asked for it (lowercase): the TLS name checked.
    pub(crate) host: String,
    /// The port.
    pub(crate) port: u16,
}

/// Stops a connection's task when dropped.
pub(crate) struct Driver(pub(crate) tokio::task::AbortHandle);

impl Drop for Driver {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An open connection: how to send on it, and its task.
pub(crate) struct Conn {
    pub(crate) sender: SendRequest<Full<Bytes>>,
    /// Its task, stopped with it.
    pub(crate) _driver: Driver,
}

/// A connection ready for a request.
pub(crate) struct Idle {
    pub(crate) conn: Conn,
    /// The checked address it is connected to.
    pub(crate) addr: SocketAddr,
    since: Instant,
}

/// Counters (read by the tests).
#[cfg(test)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PoolStats {
    /// Connections opened (each to an address checked just before).
    pub opened: u64,
    /// Requests sent on a pooled connection.
    pub reused: u64,
}

/// The idle connections of every agent's egress.
pub(crate) struct Pool {
    idle: Mutex<HashMap<Origin, Vec<Idle>>>,
    keep_alive: Duration,
    max_idle: usize,
    opened: AtomicU64,
    reused: AtomicU64,
}

impl Pool {
    /// Connections kept `keep_alive` when idle, `max_idle` in all; either 0 keeps none.
    pub(crate) fn new(keep_alive: Duration, max_idle: usize) -> Self {
        Self {
            idle: Mutex::new(HashMap::new()),
            keep_alive,
            max_idle,
            opened: AtomicU64::new(0),
            reused: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Origin, Vec<Idle>>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fresh(&self, idle: &Idle, now: Instant) -> bool {
        now.duration_since(idle.since) < self.keep_alive && !idle.conn.sender.is_closed()
    }

    /// An open idle connection to `origin`, the one used last first.
    pub(crate) async fn take(&self, origin: &Origin) -> Option<Idle> {
        loop {
            let mut idle = {
                let mut map = self.lock();
                let list = map.get_mut(origin)?;
                let now = Instant::now();
                let mut found = None;
                while let Some(idle) = list.pop() {
                    if self.fresh(&idle, now) {
                        found = Some(idle);
                        break;
                    }
                }
                if list.is_empty() {
                    map.remove(origin);
                }
                found?
            };
            // It was ready when kept: ready now, unless the server closed it meanwhile.
            if let Ok(Ok(())) = tokio::time::timeout(READY_WAIT, idle.conn.sender.ready()).await {
                self.reused.fetch_add(1, Ordering::Relaxed);
                return Some(idle);
            }
        }
    }

    /// Counts a connection opened.
    pub(crate) fn opened(&self) {
        self.opened.fetch_add(1, Ordering::Relaxed);
    }

    /// `response`, whose body puts `conn` back in the pool once read to its end (a body
    /// dropped before its end, or with keep-alive off, stops the connection).
    pub(crate) fn returning(
        self: &Arc<Self>,
        response: Response<Incoming>,
        origin: Origin,
        conn: Conn,
        addr: SocketAddr,
    ) -> Response<Returning> {
        let keep = !self.keep_alive.is_zero() && self.max_idle > 0;
        response.map(|inner| {
            let mut body = Returning {
                inner,
                conn: Some(Idle {
                    conn,
                    addr,
                    since: Instant::now(),
                }),
                back: keep.then(|| (self.clone(), origin)),
            };
            if body.inner.is_end_stream() {
                body.give_back();
            }
            body
        })
    }

    /// Keeps `idle`, whose response was read to the end, once it is ready for another request
    /// (its request's body written too: a server may answer before reading it all), within
    /// [`READY_WAIT`]; one that is not is dropped, its task stopped.
    fn keep_when_ready(self: Arc<Self>, origin: Origin, mut idle: Idle) {
        if idle.conn.sender.is_ready() {
            self.keep(origin, idle);
            return;
        }
        tokio::spawn(async move {
            if let Ok(Ok(())) = tokio::time::timeout(READY_WAIT, idle.conn.sender.ready()).await {
                idle.since = Instant::now();
                self.keep(origin, idle);
            }
        });
    }

    fn keep(&self, origin: Origin, idle: Idle) {
        let mut map = self.lock();
        let now = Instant::now();
        map.retain(|_, list| {
            list.retain(|c| self.fresh(c, now));
            !list.is_empty()
        });
        let total: usize = map.values().map(Vec::len).sum();
        if total >= self.max_idle {
            // The one idle longest gives way.
            let oldest = map
                .iter()
                .flat_map(|(o, list)| list.iter().enumerate().map(move |(i, c)| (c.since, o, i)))
                .min_by_key(|(since, _, _)| *since)
                .map(|(_, o, i)| (o.clone(), i));
            if let Some((o, i)) = oldest
                && let Some(list) = map.get_mut(&o)
            {
                list.remove(i);
                if list.is_empty() {
                    map.remove(&o);
                }
            }
        }
        map.entry(origin).or_default().push(idle);
    }

    /// The counters so far.
    #[cfg(test)]
    pub(crate) fn stats(&self) -> PoolStats {
        PoolStats {
            opened: self.opened.load(Ordering::Relaxed),
            reused: self.reused.load(Ordering::Relaxed),
        }
    }

    /// Idle connections now.
    #[cfg(test)]
    pub(crate) fn idle_count(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }
}

/// A response body that puts its connection back in the pool when it has been read to the end.
pub(crate) struct Returning {
    inner: Incoming,
    /// The connection, until given back (dropped with the body: its task stops).
    conn: Option<Idle>,
    /// Where it goes back to: `None` when keep-alive is off, or the body broke.
    back: Option<(Arc<Pool>, Origin)>,
}

impl Returning {
    fn give_back(&mut self) {
        if let (Some((pool, origin)), Some(mut idle)) = (self.back.take(), self.conn.take()) {
            idle.since = Instant::now();
            pool.keep_when_ready(origin, idle);
        }
    }
}

impl Body for Returning {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.give_back(),
            Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => self.give_back(),
            // A broken body: its connection is not reused.
            Poll::Ready(Some(Err(_))) => self.back = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
