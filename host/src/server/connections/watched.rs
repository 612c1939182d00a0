//! The connection's socket as hyper sees it: reads are noted in the connection's
//! [`Activity`] (for the head and idle deadlines), and hyper's own answers to request heads it
//! cannot parse are written with JSON bodies ([`head_errors`]).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::Activity;
use super::linger::{Linger, LingerLimits};
use crate::server::head_errors;

/// The connection's socket, noting reads in its [`Activity`], and writing hyper's own answers
/// to unparsable heads with JSON bodies ([`head_errors`]).
pub(super) struct Watched<S> {
    /// The socket, or the TLS stream over it.
    pub(super) io: S,
    pub(super) activity: Arc<Activity>,
    pub(super) max_head_bytes: usize,
    /// The JSON answer being written in place of hyper's canned one, and how much of it is
    /// written.
    pub(super) replacing: Option<(Vec<u8>, usize)>,
    /// How long and how much a closing connection lingers ([`super::linger`]).
    pub(super) linger_limits: LingerLimits,
    /// The linger in progress, once the write side is shut.
    pub(super) lingering: Option<Linger>,
}

impl<S: AsyncWrite + Unpin> Watched<S> {
    /// Writes what is left of a replacement answer; `Ready(Ok)` once none is left.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, done)) = &mut self.replacing {
            if *done == bytes.len() {
                self.replacing = None;
                break;
            }
            match Pin::new(&mut self.io).poll_write(cx, &bytes[*done..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *done += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Takes `written` as written if it is hyper's canned answer to an unparsable head (its
    /// JSON replacement is written instead).
    fn replaced(&mut self, written: &[u8]) -> bool {
        match head_errors::replacement(written, self.max_head_bytes) {
            Some(json) => {
                self.replacing = Some((json, 0));
                true
            }
            None => false,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_read();
        }
        polled
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        std::task::ready!(self.drain(cx))?;
        if self.replaced(buf) {
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        std::task::ready!(self.drain(cx))?;
        // A canned answer is a few hundred bytes: only then is it worth gathering.
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if total <= 512 && bufs.first().is_some_and(|b| b.starts_with(b"HTTP/1.1 ")) {
            let gathered: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            if self.replaced(&gathered) {
                return Poll::Ready(Ok(total));
            }
        }
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.drain(cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    /// Shuts the write side (after the answer), then, if the latest request's body was not
    /// read to the end, lingers: reads and discards what the client still sends, so that it
    /// reads the answer instead of a reset ([`super::linger`]).
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.drain(cx))?;
        let this = &mut *self;
        if this.lingering.is_none() {
            std::task::ready!(Pin::new(&mut this.io).poll_shutdown(cx))?;
            if !this.activity.body_unread.load(Ordering::Acquire)
                || this.linger_limits.time.is_zero()
            {
                return Poll::Ready(Ok(()));
            }
            tracing::debug!("answered before the request body ended: lingering");
            this.lingering = Some(Linger::new(this.linger_limits));
        }
        match &mut this.lingering {
            Some(linger) => linger.poll_discard(Pin::new(&mut this.io), cx).map(Ok),
            None => Poll::Ready(Ok(())),
        }
    }
}
