//! The receipt log: every signed receipt, appended as one JSON line to
//! `<data_dir>/receipts/receipts.jsonl`. Receipts hold hashes and commitments only, never
//! plaintext, so the log is an audit trail of what ran and what was committed to.
//!
//! Appends go through a channel to one writer task that fsyncs in batches (at most every
//! 50 ms), so recording costs a request a channel send. A receipt is on disk within that
//! window; a crash can lose at most the last batch of *records* (the client always holds its
//! own signed receipt). The queue is bounded ([`QUEUE`] receipts): if the disk stalls that
//! long, further receipts are dropped from the log with an error in the host's log instead of
//! growing memory without bound.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hypervisor_protocol::wire::Receipt;
use tokio::sync::mpsc;

use super::{StorageError, io};

/// Receipts waiting for the writer, at most.
pub const QUEUE: usize = 65_536;

/// Handle for appending receipts.
#[derive(Clone)]
pub struct ReceiptLog {
    tx: mpsc::Sender<Receipt>,
    path: PathBuf,
}

impl ReceiptLog {
    /// Opens (creating) the log under `data_dir` and starts its writer task on the current
    /// tokio runtime.
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
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(file, rx));
        Ok(Self { tx, path })
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

    /// Where the log is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

async fn writer(file: std::fs::File, mut rx: mpsc::Receiver<Receipt>) {
    let mut out = std::io::BufWriter::new(file);
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
        let result = tokio::task::block_in_place(|| {
            for r in &batch {
                serde_json::to_writer(&mut out, r).map_err(std::io::Error::other)?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
            out.get_ref().sync_data()
        });
        if let Err(e) = result {
            tracing::error!(error = %e, lost = batch.len(), "cannot append to the receipt log");
        }
    }
}
