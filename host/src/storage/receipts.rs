//! The receipt log: every signed receipt, appended in batches to a [`ReceiptSink`]: one JSON
//! line each in `<data_dir>/receipts/receipts.jsonl` ([`FileSink`], the embedded backend), or a
//! row each in the shared database (PostgreSQL). Receipts hold hashes and commitments only,
//! never plaintext, so the log is an audit trail of what ran and what was committed to.
//!
//! Appends go through a channel to one writer task that writes in batches (at most every
//! 50 ms), so recording costs a request a channel send. A receipt is durable within that
//! window; a crash can lose at most the last batch of *records* (the client always holds its
//! own signed receipt). The queue is bounded ([`QUEUE`] receipts): if the sink stalls that
//! long, further receipts are dropped from the log with an error in the host's log instead of
//! growing memory without bound.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hypervisor_protocol::wire::Receipt;
use tokio::sync::mpsc;

use super::{StorageError, io};

/// Receipts waiting for the writer, at most.
pub const QUEUE: usize = 65_536;

/// Where receipts are appended (blocking calls, made by the log's writer task).
pub trait ReceiptSink: Send + Sync {
    /// Appends `batch` durably, all or none.
    ///
    /// # Errors
    /// Why not.
    fn append(&self, batch: &[Receipt]) -> Result<(), String>;
}

/// Receipts as JSON lines in a file (fsync per batch).
pub struct FileSink {
    out: Mutex<std::io::BufWriter<std::fs::File>>,
    path: PathBuf,
}

impl FileSink {
    /// Opens (creating) `<data_dir>/receipts/receipts.jsonl`.
    ///
    /// # Errors
    /// [`StorageError::Io`] if the file cannot be opened.
    pub fn open(data_dir: &Path) -> Result<Self, StorageError> {
        let dir = data_dir.join("receipts");
        std::fs::create_dir_all(&dir).map_err(io("create directory", &dir))?;
        let path = dir.join("receipts.jsonl");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io("open", &path))?;
        Ok(Self {
            out: Mutex::new(std::io::BufWriter::new(file)),
            path,
        })
    }

    /// Where the log is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl ReceiptSink for FileSink {
    fn append(&self, batch: &[Receipt]) -> Result<(), String> {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let write = |out: &mut std::io::BufWriter<std::fs::File>| -> std::io::Result<()> {
            for r in batch {
                serde_json::to_writer(&mut *out, r).map_err(std::io::Error::other)?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
            out.get_ref().sync_data()
        };
        write(&mut out).map_err(|e| format!("{}: {e}", self.path.display()))
    }
}

/// Handle for appending receipts.
#[derive(Clone)]
pub struct ReceiptLog {
    tx: mpsc::Sender<Receipt>,
}

impl ReceiptLog {
    /// Starts the log's writer task on the current tokio runtime, appending to `sink`.
    pub fn open(sink: Arc<dyn ReceiptSink>) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(sink, rx));
        Self { tx }
    }

    /// Queues a receipt for appending.
    pub fn record(&self, receipt: Receipt) {
        match self.tx.try_send(receipt) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::error!("receipt log {QUEUE} receipts behind; receipt not recorded");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::error!("receipt log writer has stopped; receipt not recorded");
            }
        }
    }
}

async fn writer(sink: Arc<dyn ReceiptSink>, mut rx: mpsc::Receiver<Receipt>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        // Gather whatever else arrives within the batching window.
        let deadline = tokio::time::Instant::now() + Duration::from_millis(50);
        while let Ok(Some(r)) = tokio::time::timeout_at(deadline, rx.recv()).await {
            batch.push(r);
            if batch.len() >= 1024 {
                break;
            }
        }
        let result = tokio::task::block_in_place(|| sink.append(&batch));
        if let Err(e) = result {
            tracing::error!(error = %e, lost = batch.len(), "cannot append to the receipt log");
        }
    }
}
