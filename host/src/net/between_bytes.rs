//! A response body with `wasi:http`'s `between-bytes-timeout`: every frame must come within a
//! set time of the one before (or of the head), as `wasmtime-wasi-http`'s own sender enforces.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use wasmtime_wasi_http::Error;

/// `body`, failing with [`Error::ConnectionReadTimeout`] when its next frame takes longer than
/// `between`.
pub struct BetweenBytes<B> {
    body: B,
    between: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl<B> BetweenBytes<B> {
    /// `body`, its first frame due within `between` from now.
    pub fn new(body: B, between: Duration) -> Self {
        Self {
            body,
            between,
            deadline: Box::pin(tokio::time::sleep(between)),
        }
    }
}

impl<B> Body for BetweenBytes<B>
where
    B: Body<Data = Bytes, Error = hyper::Error> + Unpin,
{
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match Pin::new(&mut self.body).poll_frame(cx) {
            Poll::Ready(frame) => {
                let next = tokio::time::Instant::now() + self.between;
                self.deadline.as_mut().reset(next);
                Poll::Ready(frame.map(|f| f.map_err(Error::from)))
            }
            Poll::Pending => {
                ready!(self.deadline.as_mut().poll(cx));
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
