//! The HTTP accept loop: hyper serving the router as `axum::serve` does (HTTP/1.1 and h2c,
//! graceful shutdown), plus the limits `axum::serve` lacks against slow and idle clients:
//!
//! - a request head (request line and headers) must arrive within `http.header_timeout_ms`:
//!   counted from accepting a new connection (a TLS handshake included), or from the first
//!   byte of a later request on a keep-alive connection;
//! - a connection with no request in flight is closed after `http.idle_timeout_ms`;
//! - at most `http.max_connections` connections are open: at the cap the loop stops accepting
//!   until one closes, so new clients wait in the listen backlog instead of being refused.
//!
//! Each connection has a watchdog ([`Activity`]). Its I/O notes bytes read, its service notes
//! requests starting and finishing (a request is in flight from its complete head until its
//! response body has been sent or dropped), and the watchdog closes the connection when a
//! deadline passes with no request in flight. Request bodies have their own limit
//! (`http.body_timeout_ms`, 408, in [`crate::http`]); a request in flight is never cut by the
//! watchdog.
//!
//! Closing is graceful first (an idle HTTP/1.1 connection closes at once, HTTP/2 gets a
//! GOAWAY), then forced after [`CLOSE_GRACE`] if no request has started meanwhile.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, HttpBody};
use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;

use super::tls::Tls;
use crate::config::HttpConfig;
use crate::net::TlsChannel;
use crate::pipeline::Pipeline;

mod linger;
mod watched;
pub use linger::LingerLimits;
use linger::Observed;
use watched::Watched;

/// After a deadline passes, how long a gracefully closing connection may take to finish
/// before it is dropped (unless a request started meanwhile).
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// How often, at most, the log says that `http.max_connections` was reached.
const FULL_WARNING_EVERY: Duration = Duration::from_secs(60);

/// The connection limits, from the `[http]` configuration.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Time to receive a request head.
    pub header_timeout: Duration,
    /// Time a connection may stay open with no request in flight.
    pub idle_timeout: Duration,
    /// Open connections at most.
    pub max_connections: usize,
    /// Largest request head, bytes.
    pub max_head_bytes: usize,
    /// Lingering close after an answer given before the body was read ([`linger`]).
    pub linger: LingerLimits,
}

impl ConnectionLimits {
    /// The limits configured in `http`.
    pub fn from_config(http: &HttpConfig) -> Self {
        Self {
            header_timeout: Duration::from_millis(http.header_timeout_ms),
            idle_timeout: Duration::from_millis(http.idle_timeout_ms),
            max_connections: http.max_connections,
            max_head_bytes: http.max_head_bytes,
            linger: LingerLimits {
                time: Duration::from_millis(http.linger_ms),
                bytes: http.linger_bytes,
            },
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting, lets every
/// open connection finish its requests in flight (idle ones close at once) and returns when
/// all are closed. With `tls`, each connection starts with a TLS handshake, which must end
/// within `http.header_timeout_ms`, and its requests carry its [`TlsChannel`].
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    pipeline: Arc<Pipeline>,
    tls: Option<Arc<Tls>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let builder = Arc::new(builder(limits));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    // As in `axum::serve`: the signal drops the only receiver; every connection waits for
    // `closed()` on its clone of the sender.
    let (signal_tx, signal_rx) = watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        drop(signal_rx);
    });
    let mut stop = pin!(signal_tx.closed());
    let mut warned_full: Option<Instant> = None;
    loop {
        if slots.available_permits() == 0
            && warned_full.is_none_or(|at| at.elapsed() >= FULL_WARNING_EVERY)
        {
            warned_full = Some(Instant::now());
            tracing::warn!(
                max_connections = limits.max_connections,
                "http.max_connections reached: new connections wait until one closes"
            );
        }
        let slot = tokio::select! {
            biased;
            () = &mut stop => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break, // never closed
            },
        };
        let (tcp, remote) = tokio::select! {
            biased;
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    if !is_connection_error(&e) {
                        // Typically EMFILE: out of file descriptors. Wait for some to close.
                        tracing::error!(error = %e, "accept failed; retrying in 1 s");
                        tokio::select! {
                            () = &mut stop => break,
                            () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                    }
                    continue;
                }
            },
        };
        // Responses are often written in two parts (head, then the body as a guest streams
        // it): without TCP_NODELAY, Nagle's algorithm holds the second part until the
        // client's delayed ACK, up to 40 ms later.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        tracing::trace!(%remote, "connection accepted");
        let open = Open::new(slot, pipeline.clone());
        let builder = builder.clone();
        let app = app.clone();
        let signal = signal_tx.clone();
        let tls = tls.clone();
        let accepted = Instant::now();
        tokio::spawn(async move {
            match tls {
                None => connection(tcp, &builder, app, limits, signal, None, accepted).await,
                Some(tls) => {
                    // The handshake counts against the first request head's deadline, which
                    // runs from acceptance.
                    match tokio::time::timeout(limits.header_timeout, tls.handshake(tcp)).await {
                        Ok(Ok((stream, channel))) => {
                            let channel = Some(Arc::new(channel));
                            connection(stream, &builder, app, limits, signal, channel, accepted)
                                .await;
                        }
                        Ok(Err(e)) => tracing::debug!(%remote, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(
                            %remote,
                            "TLS handshake not complete within http.header_timeout_ms"
                        ),
                    }
                }
            }
            drop(open);
        });
    }
    // No new connections: the kernel resets those still in the backlog.
    drop(listener);
    tracing::info!(
        open = limits.max_connections - slots.available_permits(),
        "not accepting connections; waiting for open ones to finish"
    );
    // Every connection holds a slot until it ends: all slots free means all closed.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
}

/// The hyper connection builder: HTTP/1.1 with keep-alive and h2c, as `axum::serve`.
fn builder(limits: ConnectionLimits) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    // The watchdog enforces the head and idle deadlines. hyper's own header-read timeout
    // (which, once a timer is set, defaults to 30 s and also runs while a keep-alive
    // connection waits for its next request) is set to the longest time the watchdog allows
    // before a head is complete, as a backstop.
    builder
        .http1()
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(limits.idle_timeout + limits.header_timeout + CLOSE_GRACE)
        // A head that does not fit is answered 431 (with a JSON body: `head_errors`).
        .max_buf_size(limits.max_head_bytes);
    // The CONNECT protocol (RFC 8441), as `axum::serve` enables it.
    builder.http2().enable_connect_protocol();
    builder
}

/// Serves one connection (a socket, or a TLS stream with its channel) until it ends, the
/// watchdog closes it, or the server shuts down (then it finishes its requests in flight).
async fn connection<S>(
    io: S,
    builder: &Builder<TokioExecutor>,
    app: Router,
    limits: ConnectionLimits,
    signal: watch::Sender<()>,
    channel: Option<Arc<TlsChannel>>,
    accepted: Instant,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::since(accepted));
    let io = TokioIo::new(Watched {
        io,
        activity: activity.clone(),
        max_head_bytes: limits.max_head_bytes,
        replacing: None,
        linger_limits: limits.linger,
        lingering: None,
    });
    let service = Tracked {
        inner: TowerToHyperService::new(app),
        activity: activity.clone(),
        channel,
    };
    let mut conn = pin!(builder.serve_connection_with_upgrades(io, service));
    let mut draining = pin!(signal.closed());
    let mut watchdog = pin!(activity.watchdog(limits));
    let mut grace = pin!(tokio::time::sleep(CLOSE_GRACE));
    let (mut shutting_down, mut expired, mut forced) = (false, false, false);
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = &mut draining, if !shutting_down => {
                shutting_down = true;
                conn.as_mut().graceful_shutdown();
            }
            reason = &mut watchdog, if !expired => {
                expired = true;
                tracing::debug!(reason, "closing connection");
                conn.as_mut().graceful_shutdown();
                grace.as_mut().reset(Instant::now() + CLOSE_GRACE);
            }
            () = &mut grace, if expired && !forced => {
                if activity.in_flight() == 0 {
                    return;
                }
                // A request started during the grace: it finishes, then the connection
                // closes (keep-alive is off).
                forced = true;
            }
        }
    }
}

/// Marks an accepted connection: holds its slot and counts it in the metrics.
struct Open {
    _slot: OwnedSemaphorePermit,
    pipeline: Arc<Pipeline>,
}

impl Open {
    fn new(slot: OwnedSemaphorePermit, pipeline: Arc<Pipeline>) -> Self {
        pipeline.metrics().connection_opened();
        Self {
            _slot: slot,
            pipeline,
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.pipeline.metrics().connection_closed();
    }
}

/// "No time recorded" in [`Activity::head_since`].
const NEVER: u64 = u64::MAX;

/// What one connection is doing, for its watchdog. Times are milliseconds since `origin`
/// (the connection's acceptance).
struct Activity {
    origin: Instant,
    /// Requests in flight (from a complete head until the response body is done).
    in_flight: AtomicU32,
    /// Whether any request has started: before the first, the head deadline runs from
    /// `origin`.
    served: AtomicBool,
    /// When the last request in flight finished.
    idle_since: AtomicU64,
    /// When the first byte arrived since the connection became idle, or [`NEVER`].
    head_since: AtomicU64,
    /// Wakes the watchdog when its deadline may have moved earlier or appeared.
    changed: Notify,
    /// Whether the latest request's body has not been read to the end (closing then lingers:
    /// [`linger`]).
    body_unread: AtomicBool,
}

impl Activity {
    /// The activity of a connection accepted at `origin`.
    fn since(origin: Instant) -> Self {
        Self {
            origin,
            in_flight: AtomicU32::new(0),
            served: AtomicBool::new(false),
            idle_since: AtomicU64::new(0),
            head_since: AtomicU64::new(NEVER),
            changed: Notify::new(),
            body_unread: AtomicBool::new(false),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(NEVER - 1)
    }

    fn at(&self, millis: u64) -> Instant {
        self.origin + Duration::from_millis(millis)
    }

    fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Bytes arrived: with no request in flight, they start a request head.
    fn bytes_read(&self) {
        if self.in_flight() == 0
            && self.head_since.load(Ordering::Relaxed) == NEVER
            && self
                .head_since
                .compare_exchange(NEVER, self.now(), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.changed.notify_one();
        }
    }

    /// A request head is complete and its handler called.
    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.served.store(true, Ordering::Release);
        InFlight(self.clone())
    }

    /// When the connection must close if nothing changes, and why; `None` while a request is
    /// in flight.
    fn deadline(&self, limits: ConnectionLimits) -> Option<(Instant, &'static str)> {
        if self.in_flight() > 0 {
            return None;
        }
        if !self.served.load(Ordering::Acquire) {
            return Some((
                self.origin + limits.header_timeout,
                "no complete request head within http.header_timeout_ms of connecting",
            ));
        }
        let head = self.head_since.load(Ordering::Acquire);
        if head != NEVER {
            return Some((
                self.at(head) + limits.header_timeout,
                "request head not complete within http.header_timeout_ms",
            ));
        }
        Some((
            self.at(self.idle_since.load(Ordering::Acquire)) + limits.idle_timeout,
            "idle for http.idle_timeout_ms",
        ))
    }

    /// Completes, with the reason, when a deadline passes with no request in flight.
    async fn watchdog(&self, limits: ConnectionLimits) -> &'static str {
        loop {
            // `notify_one` stores a permit when nobody waits, so no change is missed
            // between reading the state and waiting.
            let changed = self.changed.notified();
            match self.deadline(limits) {
                None => changed.await,
                Some((at, reason)) => {
                    if at <= Instant::now() {
                        return reason;
                    }
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = changed => {}
                    }
                }
            }
        }
    }
}

/// A request in flight on a connection; dropped when its response body is done.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0;
        if a.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            a.idle_since.store(a.now(), Ordering::Release);
            a.head_since.store(NEVER, Ordering::Release);
            a.changed.notify_one();
        }
    }
}

/// The router as a hyper service, counting requests in flight, attaching the connection's
/// TLS channel, if any, to each request, and noting whether its body is read to the end.
#[derive(Clone)]
struct Tracked {
    inner: TowerToHyperService<Router>,
    activity: Arc<Activity>,
    channel: Option<Arc<TlsChannel>>,
}

type TrackedFuture =
    Pin<Box<dyn Future<Output = Result<Response<TrackedBody>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for Tracked {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = TrackedFuture;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        let in_flight = self.activity.begin();
        if let Some(channel) = &self.channel {
            request.extensions_mut().insert(channel.clone());
        }
        let activity = self.activity.clone();
        let http1 = request.version() < http::Version::HTTP_2;
        let request = request.map(|body| Observed::new(body, activity));
        let response = self.inner.call(request);
        let activity = self.activity.clone();
        Box::pin(async move {
            let mut response = response.await?;
            // An answer given before the request's body ended: hyper closes the connection
            // after it (it drains only what has already arrived), so the answer says so, and a
            // client that pools connections does not send its next request into a closing one.
            // (HTTP/2 has no such header, and its streams end on their own.)
            if http1 && activity.body_unread.load(Ordering::Acquire) {
                response.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
            }
            Ok(response.map(|body| TrackedBody {
                body,
                _in_flight: in_flight,
            }))
        })
    }
}

/// A response body that ends its request's time in flight when dropped (hyper drops it once
/// sent, or when the connection fails).
struct TrackedBody {
    body: Body,
    _in_flight: InFlight,
}

impl HttpBody for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Errors of one incoming connection (the next accept may well succeed).
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
