//! Lingering close, as nginx's `lingering_close`: when the host answers a request before
//! reading its whole body (a `413` for a body over `http.max_body_bytes`, or any early
//! error), closing the socket at once makes the kernel reset the connection while the client
//! is still sending, and a client that reads its answer only after sending everything (the
//! official A2A and MCP Python SDKs, curl without `Expect: 100-continue`) sees a broken pipe or
//! a reset instead of the answer. So such a connection, once the answer is written and the
//! write side shut, keeps reading and discarding what the client still sends, until the client
//! closes, and for at most `http.linger_ms` and `http.linger_bytes`, or until it has been
//! silent for [`GAP`]; then it closes. The connection keeps its slot meanwhile, so
//! `http.max_connections` bounds lingering connections too.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::Activity;

/// A linger ends early after this long without a byte from the client.
pub(super) const GAP: Duration = Duration::from_secs(1);

/// Bounds of one linger (`http.linger_ms`, `http.linger_bytes`).
#[derive(Debug, Clone, Copy)]
pub struct LingerLimits {
    /// Longest linger; zero turns lingering off.
    pub time: Duration,
    /// Most bytes read and discarded.
    pub bytes: u64,
}

/// One connection's linger in progress.
pub(super) struct Linger {
    deadline: Pin<Box<Sleep>>,
    silence: Pin<Box<Sleep>>,
    left: u64,
}

impl Linger {
    pub(super) fn new(limits: LingerLimits) -> Self {
        Self {
            deadline: Box::pin(tokio::time::sleep(limits.time)),
            silence: Box::pin(tokio::time::sleep(GAP.min(limits.time))),
            left: limits.bytes,
        }
    }

    /// Reads and discards from `io`; `Ready` when the client has closed, the read fails, the
    /// byte budget is spent, the deadline has passed or the client has been silent for
    /// [`GAP`].
    pub(super) fn poll_discard<S: AsyncRead + Unpin>(
        &mut self,
        mut io: Pin<&mut S>,
        cx: &mut Context<'_>,
    ) -> Poll<()> {
        let mut scratch = [0u8; 16 << 10];
        loop {
            if self.deadline.as_mut().poll(cx).is_ready()
                || self.silence.as_mut().poll(cx).is_ready()
            {
                return Poll::Ready(());
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match io.as_mut().poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(()),
                Poll::Ready(Ok(())) => {
                    let n = buf.filled().len() as u64;
                    self.left = self.left.saturating_sub(n);
                    if self.left == 0 {
                        return Poll::Ready(());
                    }
                    self.silence.as_mut().reset(Instant::now() + GAP);
                }
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// A request body that tells its connection when it has been read to the end: until then,
/// closing the connection lingers.
pub(super) struct Observed {
    inner: Incoming,
    activity: Arc<Activity>,
}

impl Observed {
    /// `inner`, marking the connection's body unread unless it is empty.
    pub(super) fn new(inner: Incoming, activity: Arc<Activity>) -> Self {
        activity
            .body_unread
            .store(!inner.is_end_stream(), Ordering::Release);
        Self { inner, activity }
    }
}

impl HttpBody for Observed {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.activity.body_unread.store(false, Ordering::Release);
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
