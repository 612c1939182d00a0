//! The PostgreSQL backend: every store in one database that several replicas share.
//!
//! - [`Pg`]: a bounded pool of connections ([`deadpool_postgres`] over [`tokio_postgres`], the
//!   async driver; the pair checked on this machine) on a small runtime of its own, and the
//!   bridge that lets the stores' blocking interfaces wait for it ([`Pg::block`]).
//! - [`schema`]: numbered migrations, applied at start-up under an advisory lock (replicas
//!   starting together apply each one once).
//! - One module per store, implementing its interface; [`notify`] carries agents' changes to
//!   the other replicas' caches (`LISTEN`/`NOTIFY`).
//!
//! Failures: a connection that cannot be had within `storage.connect_timeout_ms`, or lost
//! mid-statement, is [`StorageError::Unavailable`] (answered 503 `storage_unavailable`); every
//! write is one transaction, so nothing is half-written; the pool makes new connections as
//! soon as the server is back, so the host recovers without a restart.

mod agents;
mod calls;
mod code;
mod config;
pub mod mailbox;
mod members;
pub mod notify;
mod payments;
mod receipts;
mod records;
pub mod schema;
pub mod scratch;
mod sign_in;
mod state;
mod tasks;
mod wallets;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio::runtime::{Handle, RuntimeFlavor};

pub use agents::PgAgents;
pub use calls::PgCalls;
pub use code::PgCode;
pub use config::PgConfig;
pub use members::PgMembers;
pub use payments::PgPayments;
pub use receipts::PgReceipts;
pub use records::PgRecords;
pub use sign_in::PgSignIn;
pub use state::{PgState, STATE_CHANNEL};
pub use tasks::PgTasks;
pub use wallets::PgWallets;

use super::{BackendKind, StorageError, Stores};
use crate::config::{StorageConfig, redact};
use crate::crypto::at_rest::SealingKey;

/// A pooled connection.
pub type Client = deadpool_postgres::Object;

/// The connection pool and the runtime its connections live on.
pub struct Pg {
    pool: Pool,
    /// The pool's runtime (one worker): connections are driven there whatever thread waits.
    runtime: Option<tokio::runtime::Runtime>,
    handle: Handle,
    /// The connection settings (to open the notification listener's own connection).
    config: tokio_postgres::Config,
    /// The URL without its password (for logs).
    pub url: String,
    /// How long a commit may wait for the server's answer on this side (`None`: no
    /// `statement_timeout`, no bound): the server's `statement_timeout` cannot end a wait on
    /// a connection that is no longer there (half-open: the server or the network gone
    /// without a word), which TCP alone notices only after many minutes.
    pub answer_within: Option<Duration>,
}

impl std::fmt::Debug for Pg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pg").field("url", &self.url).finish()
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        // Never blocks (a drop may happen on an async worker).
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The [`StorageError`] of a driver error during `op`: a lost or refused connection, a server
/// shutting down or out of connections is [`StorageError::Unavailable`]; anything the server
/// answered about the statement itself is [`StorageError::Database`].
pub fn pg(op: &'static str) -> impl Fn(tokio_postgres::Error) -> StorageError {
    move |e| {
        let unavailable = match e.as_db_error() {
            // No answer from the server: a connection closed, refused or timed out (an I/O
            // error underneath), not a statement the server judged.
            None => {
                e.is_closed()
                    || std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>())
                    || e.to_string().contains("timeout")
                    || e.to_string().starts_with("error connecting")
            }
            Some(db) => {
                let code = db.code().code();
                // 08: connection exception; 57P0x: shutdown, crash, cannot connect now;
                // 53300: too many connections.
                code.starts_with("08") || code.starts_with("57P") || code == "53300"
            }
        };
        let detail = match e.as_db_error() {
            Some(db) => format!("{}: {}", db.code().code(), db.message()),
            None => e.to_string(),
        };
        if unavailable {
            StorageError::Unavailable { op, detail }
        } else {
            StorageError::Database { op, detail }
        }
    }
}

/// The [`StorageError`] of a pool that gave no connection.
fn pool(op: &'static str) -> impl Fn(deadpool_postgres::PoolError) -> StorageError {
    move |e| StorageError::Unavailable {
        op,
        detail: e.to_string(),
    }
}

impl Pg {
    /// A pool for `config.database` (at most `config.pool_size` connections; a wait for one
    /// longer than `config.connect_timeout_ms` fails). Connects once to check.
    ///
    /// # Errors
    /// [`StorageError::Database`] for an unusable URL, [`StorageError::Unavailable`] when the
    /// server cannot be reached.
    pub fn connect(config: &StorageConfig) -> Result<Arc<Self>, StorageError> {
        let url = config.database.as_deref().ok_or(StorageError::Database {
            op: "connect",
            detail: "no storage.database URL".into(),
        })?;
        let mut pg_config: tokio_postgres::Config =
            url.parse()
                .map_err(|e: tokio_postgres::Error| StorageError::Database {
                    op: "parse storage.database",
                    detail: e.to_string(),
                })?;
        let timeout = Duration::from_millis(config.connect_timeout_ms);
        pg_config
            .connect_timeout(timeout)
            .application_name("wasm-hypervisor")
            .options(format!(
                "-c statement_timeout={} -c lock_timeout={}",
                config.statement_timeout_ms, config.statement_timeout_ms
            ));
        let manager = Manager::from_config(
            pg_config.clone(),
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .recycle_timeout(Some(timeout))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| StorageError::Database {
                op: "build the connection pool",
                detail: e.to_string(),
            })?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("postgres")
            .enable_all()
            .build()
            .map_err(|e| StorageError::Database {
                op: "start the PostgreSQL runtime",
                detail: e.to_string(),
            })?;
        let handle = runtime.handle().clone();
        let pg = Arc::new(Self {
            pool,
            runtime: Some(runtime),
            handle,
            config: pg_config,
            url: redact(url),
            answer_within: (config.statement_timeout_ms > 0).then(|| {
                Duration::from_millis(
                    config
                        .statement_timeout_ms
                        .saturating_add(config.connect_timeout_ms),
                )
            }),
        });
        pg.block(async {
            drop(pg.client("connect").await?);
            Ok::<_, StorageError>(())
        })?;
        Ok(pg)
    }

    /// Runs `work` on the pool's runtime and waits for it, from anywhere: a worker of the
    /// host's multi-threaded runtime hands its other tasks to its peers meanwhile
    /// ([`tokio::task::block_in_place`]), a blocking thread just waits, and a current-thread
    /// runtime (tests) waits on a helper thread (it cannot block in place).
    ///
    /// # Errors
    /// `work`'s.
    pub fn block<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send,
        E: From<StorageError> + Send,
        F: Future<Output = Result<T, E>> + Send,
    {
        match Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(RuntimeFlavor::MultiThread) => {
                tokio::task::block_in_place(|| self.handle.block_on(work))
            }
            Ok(_) => std::thread::scope(|s| {
                s.spawn(|| self.handle.block_on(work))
                    .join()
                    .unwrap_or_else(|_| {
                        Err(E::from(StorageError::Database {
                            op: "wait for PostgreSQL",
                            detail: "the helper thread panicked".into(),
                        }))
                    })
            }),
            Err(_) => self.handle.block_on(work),
        }
    }

    /// Runs `work` on the pool's runtime and awaits it, from any executor, without blocking
    /// the thread that awaits (the asynchronous counterpart of [`Self::block`]). `work` runs to
    /// its end even if the caller stops waiting.
    ///
    /// # Errors
    /// `work`'s; [`StorageError::Database`] if it panicked.
    pub async fn run<T, F>(&self, work: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StorageError>> + Send + 'static,
    {
        self.handle
            .spawn(work)
            .await
            .map_err(|e| StorageError::Database {
                op: "wait for PostgreSQL",
                detail: e.to_string(),
            })?
    }

    /// A connection from the pool.
    ///
    /// # Errors
    /// [`StorageError::Unavailable`] after `storage.connect_timeout_ms` without one.
    pub async fn client(&self, op: &'static str) -> Result<Client, StorageError> {
        self.pool.get().await.map_err(pool(op))
    }

    /// Spawns `task` on the pool's runtime (background work: the notification listener).
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.handle.spawn(task);
    }

    /// The connection settings.
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// Pool statistics: `(connections open, idle, requests waiting)`.
    pub fn status(&self) -> (usize, usize, usize) {
        let s = self.pool.status();
        (s.size, s.available, s.waiting)
    }
}

/// Every store on `pg` (migrated already, [`schema::migrate`]), sealing with `key` (the
/// cluster key).
///
/// # Errors
/// [`StorageError`] if the audience cannot be read.
pub fn stores(pg: &Arc<Pg>, key: Arc<SealingKey>) -> Result<Stores, StorageError> {
    let audience = schema::audience(pg)?;
    Ok(Stores {
        kind: BackendKind::Postgres,
        catalog: Arc::new(PgAgents::new(pg.clone())),
        records: Arc::new(PgRecords::new(pg.clone())),
        calls: Arc::new(PgCalls::new(pg.clone())),
        wallets: Arc::new(PgWallets::new(pg.clone())),
        sign_in: Arc::new(PgSignIn::new(pg.clone())),
        state: Arc::new(PgState::new(pg.clone())),
        config: Arc::new(PgConfig::new(pg.clone())),
        tasks: Arc::new(PgTasks::new(pg.clone())),
        payments: Arc::new(PgPayments::new(pg.clone())),
        code: Arc::new(PgCode::new(pg.clone(), key.clone())),
        members: Arc::new(PgMembers::new(pg.clone())),
        receipts: Arc::new(PgReceipts::new(pg.clone())),
        audience,
        key,
    })
}

/// `u64` as PostgreSQL's `BIGINT` (saturating).
pub(crate) fn big(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// `BIGINT` as `u64` (negative: 0).
pub(crate) fn unsigned(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}
