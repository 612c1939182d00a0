//! Persistent storage: typed stores over one of two backends.
//!
//! - **SQLite** ([`sqlite`], the embedded default): everything in the data directory.
//! - **PostgreSQL** ([`postgres`], `storage.database = "postgres://…"`): everything durable in
//!   one database that several replicas share; sealed with the cluster key
//!   ([`crate::cluster`]).
//!
//! Each store's interface is defined beside its types ([`agents::AgentCatalog`],
//! [`records::RecordStore`], [`payments::PaymentLedger`], [`tasks::TaskBackend`],
//! [`wallets::WalletBackend`], [`calls::CallLedger`], [`code::CodeStore`],
//! [`members::Members`]); [`Stores`] holds one backend's implementations of all of them.
//!
//! Files in the data directory (both backends):
//! ```text
//! <data_dir>/keys/at-rest.key     32 random bytes, mode 0600, created on first start: seals
//!                                  this host's caches (and, on SQLite, everything else)
//! <data_dir>/keys/cluster.key     the cluster key (PostgreSQL), kept across restarts
//! <cache_dir>/<name>.cwasm.sealed compiled components, sealed (see crypto::at_rest)
//! <data_dir>/uploads/               unnamed spool files of uploads in flight, sealed per upload
//! ```
//! SQLite only:
//! ```text
//! <data_dir>/payments.sqlite       the x402 payment ledger (replay keys, settlement states)
//! <data_dir>/hypervisor.sqlite     agents, versions, search index, logs, execution records,
//!                                  calls, wallets, A2A tasks (sealed)
//! <data_dir>/agents/<name>.wasm.sealed  deployed components (source), sealed
//! <data_dir>/receipts/receipts.jsonl    the receipt log
//! ```
//! Writes are atomic (temporary file, fsync, rename), so a crash leaves the old file or the
//! new one, never a torn one.

pub mod agent_config;
pub mod agent_store;
pub mod agents;
pub mod artifacts;
pub mod calls;
pub mod code;
#[cfg(test)]
mod conformance;
pub mod members;
pub mod payments;
pub mod postgres;
pub mod receipts;
pub mod records;
pub mod search;
pub mod sign_in;
pub mod spool;
pub mod sqlite;
pub mod state;
pub mod tasks;
#[cfg(test)]
pub(crate) mod testing;
pub mod wallets;
pub mod weighed;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::crypto::at_rest::SealingKey;

/// Why storage failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// An I/O operation on a path failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// Where.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The key file exists but is not 32 bytes.
    #[error("key file {0} is corrupt (expected 32 bytes)")]
    CorruptKey(PathBuf),
    /// Randomness failed while creating a key.
    #[error("cannot generate the at-rest key")]
    KeyGeneration,
    /// Data the host wrote itself did not read back as written (changed on disk under it).
    #[error("the {0} was changed on disk while the host used it")]
    Tampered(&'static str),
    /// A database operation failed.
    #[error("database {op}: {detail}")]
    Database {
        /// What was being done.
        op: &'static str,
        /// The database's message.
        detail: String,
    },
    /// The database cannot be reached (PostgreSQL down, the pool exhausted past its wait, a
    /// connection lost mid-statement): nothing was written; retry later.
    #[error("the database is unavailable ({op}): {detail}")]
    Unavailable {
        /// What was being done.
        op: &'static str,
        /// Why.
        detail: String,
    },
}

impl StorageError {
    /// Whether the database was out of reach (answered 503, not 500).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StorageError::Unavailable { .. })
    }
}

/// Which backend a host's stores are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// SQLite in the data directory.
    Sqlite,
    /// A PostgreSQL database, possibly shared by replicas.
    Postgres,
}

impl BackendKind {
    /// The name used in logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Sqlite => "sqlite",
            BackendKind::Postgres => "postgresql",
        }
    }
}

/// One backend's implementation of every store, and the key that seals what they hold.
#[derive(Clone)]
pub struct Stores {
    /// Which backend.
    pub kind: BackendKind,
    /// Seals agents' code, logs, tasks, wallets' keys (the cluster key on PostgreSQL).
    pub key: Arc<SealingKey>,
    /// Agents, versions, search, logs, owner operations.
    pub catalog: Arc<dyn agents::AgentCatalog>,
    /// Execution records (and, through their sink, logs and calls).
    pub records: Arc<dyn records::RecordStore>,
    /// Agents' outgoing calls.
    pub calls: Arc<dyn calls::CallLedger>,
    /// Agents' wallets and spends.
    pub wallets: Arc<dyn wallets::WalletBackend>,
    /// x402 sign-in-with-x: nonces used and access windows.
    pub sign_in: Arc<dyn sign_in::SignInBackend>,
    /// Agents' key-value state.
    pub state: Arc<dyn state::StateBackend>,
    /// Agents' configuration.
    pub config: Arc<dyn agent_config::ConfigBackend>,
    /// A2A tasks.
    pub tasks: Arc<dyn tasks::TaskBackend>,
    /// The x402 payment ledger.
    pub payments: Arc<dyn payments::PaymentLedger>,
    /// Deployed components.
    pub code: Arc<dyn code::CodeStore>,
    /// The runs sharing the database.
    pub members: Arc<dyn members::Members>,
    /// Where receipts are appended.
    pub receipts: Arc<dyn receipts::ReceiptSink>,
    /// The host's audience (what owner signatures name), shared by every replica.
    pub audience: String,
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StorageError + 'a {
    move |source| StorageError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// Loads the at-rest key from `<data_dir>/keys/at-rest.key`, creating it on first use.
///
/// # Errors
/// [`StorageError`] when the directory or file cannot be created or read.
pub fn load_or_create_key(data_dir: &Path) -> Result<SealingKey, StorageError> {
    let dir = data_dir.join("keys");
    std::fs::create_dir_all(&dir).map_err(io("create directory", &dir))?;
    let path = dir.join("at-rest.key");
    match std::fs::read(&path) {
        Ok(bytes) => {
            let bytes = Zeroizing::new(bytes);
            let arr: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| StorageError::CorruptKey(path.clone()))?;
            Ok(SealingKey::from_bytes(Zeroizing::new(arr)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SealingKey::generate().map_err(|_| StorageError::KeyGeneration)?;
            write_atomic(&path, key.bytes(), true)?;
            Ok(key)
        }
        Err(e) => Err(io("read", &path)(e)),
    }
}

/// Writes `data` to `path` atomically: temporary file in the same directory, fsync, rename.
/// `private` makes the file readable by the owner only.
///
/// # Errors
/// [`StorageError::Io`].
pub fn write_atomic(path: &Path, data: &[u8], private: bool) -> Result<(), StorageError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).map_err(|_| StorageError::KeyGeneration)?;
    let tmp = dir.join(format!(".tmp-{}", hex::encode(suffix)));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let result = (|| {
        let mut f = options.open(&tmp).map_err(io("create", &tmp))?;
        f.write_all(data).map_err(io("write", &tmp))?;
        f.sync_all().map_err(io("fsync", &tmp))?;
        std::fs::rename(&tmp, path).map_err(io("rename into place", path))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
