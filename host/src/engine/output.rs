//! Captured stdout/stderr with a hard cap: bytes beyond the cap are discarded and the
//! truncation is flagged, so a guest that writes gigabytes costs time (bounded by its deadline)
//! but never memory. The guest sees every write succeed, as with a pipe whose reader drops the
//! excess, and keeps running normally.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

#[derive(Debug, Default)]
struct Captured {
    /// Allocated at its cap (up to 1 MiB) on the first write: growing it would leave earlier
    /// copies of the output in freed memory, unwiped (past 1 MiB it grows, and may).
    bytes: Vec<u8>,
    truncated: bool,
}

/// A capped, shared capture buffer (clones share the buffer).
#[derive(Debug, Clone)]
pub struct CappedOutput {
    cap: usize,
    inner: Arc<Mutex<Captured>>,
}

impl CappedOutput {
    /// A buffer keeping at most `cap` bytes.
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            inner: Arc::new(Mutex::new(Captured::default())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Captured> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, data: &[u8]) {
        let mut c = self.lock();
        let room = self.cap.saturating_sub(c.bytes.len());
        if data.len() > room {
            c.truncated = true;
        }
        let keep = data.len().min(room);
        if keep > 0 && c.bytes.capacity() == 0 {
            c.bytes.reserve_exact(self.cap.min(1 << 20));
        }
        c.bytes.extend_from_slice(&data[..keep]);
    }

    /// What was captured (wiped when its last holder drops it: it is the guest's output), and
    /// whether anything was cut.
    pub fn take(&self) -> (Bytes, bool) {
        let mut c = self.lock();
        (
            crate::crypto::plaintext::bytes(std::mem::take(&mut c.bytes)),
            c.truncated,
        )
    }
}

#[async_trait::async_trait]
impl OutputStream for CappedOutput {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        // Always accept a generous chunk; excess is dropped in `write`.
        Ok(64 * 1024)
    }
}

#[async_trait::async_trait]
impl Pollable for CappedOutput {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for CappedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for CappedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_cap_bytes_and_flags_the_rest() {
        let out = CappedOutput::new(5);
        out.push(b"abc");
        out.push(b"defgh");
        let (bytes, truncated) = out.take();
        assert_eq!(&bytes[..], b"abcde");
        assert!(truncated);
        let out = CappedOutput::new(5);
        out.push(b"abcde");
        assert_eq!(out.take(), (Bytes::from_static(b"abcde"), false));
    }
}

/// The most bytes of a short label a guest returns (a handler error's code, a Python
/// exception's type name).
pub const LABEL_BYTES: usize = 256;

/// The most bytes of trap detail (error chain and guest backtrace) a result carries: the
/// backtrace's frame names come from the guest's name section, which the guest's author
/// chooses.
pub const TRAP_DETAIL_BYTES: usize = 64 << 10;

/// `text` cut to at most `max` bytes (at a character boundary), with a note of how much was
/// dropped. For strings a guest returns through its interface (handler errors, Python
/// exceptions, trap details), which no capture cap bounds.
pub fn cap_text(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let total = text.len();
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    text.push_str(&format!("… [truncated: {total} bytes, limit {max}]"));
    text
}

#[cfg(test)]
mod cap_tests {
    use super::cap_text;

    #[test]
    fn text_is_cut_at_a_character_boundary_with_a_note() {
        assert_eq!(cap_text("short".into(), 10), "short");
        let cut = cap_text("ééééé".into(), 5); // 10 bytes; byte 5 is inside the third é
        assert!(cut.starts_with("éé…"), "{cut}");
        assert!(cut.contains("10 bytes, limit 5"), "{cut}");
    }
}
