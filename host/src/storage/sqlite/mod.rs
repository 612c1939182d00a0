//! The embedded backend: SQLite in the data directory (`<data_dir>/hypervisor.sqlite`: agents,
//! their versions and logs, execution records, calls, wallets, A2A tasks;
//! `<data_dir>/payments.sqlite`: the payment ledger). WAL, `synchronous = FULL`, foreign keys
//! on, and numbered migrations applied in one transaction each at start-up.
//!
//! Each submodule implements one store's interface (defined beside the store's types in
//! [`crate::storage`]) on SQLite.

mod agents;
#[cfg(test)]
mod agents_tests;
mod calls;
mod config;
mod logs;
pub(crate) mod owner_order;
mod payments;
mod records;
mod rows;
mod sign_in;
mod state;
mod task_journal;
mod tasks;
mod wallets;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::Connection;

pub use agents::SqliteAgents;
pub use calls::SqliteCalls;
pub use config::SqliteConfig;
pub use payments::SqlitePayments;
pub use records::SqliteRecords;
pub use sign_in::SqliteSignIn;
pub use state::SqliteState;
pub use task_journal::JournaledTasks;
pub use tasks::SqliteTasks;
pub use wallets::SqliteWallets;

use super::StorageError;
use crate::crypto::at_rest::SealingKey;
use crate::storage::agents::AGENT_COMPONENT_PURPOSE;
use crate::storage::artifacts::ArtifactStore;
use crate::storage::members::Solo;
use crate::storage::receipts::FileSink;
use crate::storage::{BackendKind, Stores};

/// Opens (creating, migrating) every store in `data_dir`, sealing with `key`.
///
/// # Errors
/// [`StorageError`].
pub fn open(data_dir: &Path, key: Arc<SealingKey>) -> Result<Stores, StorageError> {
    let db = Arc::new(Database::open(data_dir)?);
    // The writes made on every request, committed to the WAL without a flush to disk each:
    // execution records (with logs and calls, by the group-commit writer) and A2A tasks. One
    // connection for both, so that an A2A request's two writes take turns on its mutex. On two
    // connections they met at SQLite's write lock, where the loser sleeps and retries (the
    // records' connection slept a millisecond at first, under `busy_timeout`, on an async
    // worker).
    let relaxed = Arc::new(Database::open_relaxed(data_dir)?);
    // A2A tasks through their journal, folded into the table on the same connection.
    let tasks = Arc::new(JournaledTasks::open(data_dir, relaxed.clone())?);
    Ok(Stores {
        kind: BackendKind::Sqlite,
        catalog: Arc::new(SqliteAgents::new(db.clone())),
        records: Arc::new(SqliteRecords::new(db.clone(), relaxed).with_tasks(tasks.clone())),
        calls: Arc::new(SqliteCalls::new(db.clone())),
        // Agents' state on a connection of its own (durable commits, like the catalog's), so
        // its writes do not queue behind the records' writer on one mutex.
        state: Arc::new(SqliteState::new(Arc::new(Database::open(data_dir)?))),
        config: Arc::new(SqliteConfig::new(db.clone())),
        wallets: Arc::new(SqliteWallets::new(db.clone())),
        sign_in: Arc::new(SqliteSignIn::new(db.clone())),
        tasks,
        payments: Arc::new(SqlitePayments::open(data_dir)?),
        code: Arc::new(ArtifactStore::open(
            data_dir.join("agents"),
            key.clone(),
            AGENT_COMPONENT_PURPOSE,
            "wasm.sealed",
        )?),
        members: Arc::new(Solo::default()),
        receipts: Arc::new(FileSink::open(data_dir)?),
        audience: db.audience()?,
        key,
    })
}

/// The schema, one entry per version. Never edit a released entry: append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: agents, versions, search index, logs, execution records.
    "CREATE TABLE agents (
         name           TEXT PRIMARY KEY,
         owner_key      TEXT NOT NULL,
         description    TEXT NOT NULL,
         tags           TEXT NOT NULL,
         public         INTEGER NOT NULL,
         latest_version INTEGER NOT NULL,
         price_amount   TEXT,
         created_at     INTEGER NOT NULL,
         updated_at     INTEGER NOT NULL,
         expires_at     INTEGER
     );
     CREATE TABLE agent_versions (
         name       TEXT NOT NULL REFERENCES agents(name) ON DELETE CASCADE,
         version    INTEGER NOT NULL,
         code_hash  TEXT NOT NULL,
         kind       TEXT NOT NULL,
         world      TEXT NOT NULL,
         size       INTEGER NOT NULL,
         limits     TEXT NOT NULL,
         created_at INTEGER NOT NULL,
         PRIMARY KEY (name, version)
     );
     CREATE VIRTUAL TABLE agents_fts USING fts5(
         name, description, tags, tokenize = 'porter unicode61'
     );
     CREATE TABLE agent_logs (
         id           INTEGER PRIMARY KEY AUTOINCREMENT,
         name         TEXT NOT NULL REFERENCES agents(name) ON DELETE CASCADE,
         execution_id TEXT NOT NULL,
         at_ms        INTEGER NOT NULL,
         sealed       BLOB NOT NULL
     );
     CREATE INDEX agent_logs_by_agent ON agent_logs(name, id);
     CREATE TABLE executions (
         id            TEXT PRIMARY KEY,
         route         TEXT NOT NULL,
         agent         TEXT,
         agent_version INTEGER,
         code_hash     TEXT NOT NULL,
         caller_hash   TEXT NOT NULL,
         started_ms    INTEGER NOT NULL,
         duration_us   INTEGER NOT NULL,
         status        TEXT NOT NULL,
         exit_code     INTEGER,
         commitment    TEXT,
         payment       TEXT
     );
     CREATE INDEX executions_by_time ON executions(started_ms);",
    // 2: per agent name, the signing time of the last owner deployment or deletion accepted,
    // so an older signed request (still within its validity window) cannot be replayed. Not
    // cascaded from `agents`: the mark outlives a deletion, so a deleted agent cannot be
    // brought back by replaying its deployment.
    "CREATE TABLE agent_owner_ops (
         name           TEXT PRIMARY KEY,
         last_signed_at INTEGER NOT NULL
     );",
    // 3: when a paid agent's run is charged (`success` or `always`), and the media type an HTTP
    // agent declares in its payment challenges.
    "ALTER TABLE agents ADD COLUMN charge TEXT NOT NULL DEFAULT 'success';
     ALTER TABLE agents ADD COLUMN content_type TEXT;",
    // 4: an agent's egress grants (JSON, `Grants`; '{}' = nothing granted), the ledger of
    // agents' outgoing calls (kept after the caller is deleted: it is evidence), agents'
    // wallets (key sealed at rest) and their spends (reserved before anything is signed).
    "ALTER TABLE agents ADD COLUMN grants TEXT NOT NULL DEFAULT '{}';
     CREATE TABLE agent_calls (
         id               INTEGER PRIMARY KEY,
         caller           TEXT NOT NULL,
         caller_execution TEXT NOT NULL,
         callee           TEXT NOT NULL,
         path             TEXT NOT NULL,
         status           INTEGER NOT NULL,
         callee_execution TEXT,
         response_sha256  TEXT,
         settlement       TEXT,
         at_ms            INTEGER NOT NULL,
         duration_us      INTEGER NOT NULL
     );
     CREATE INDEX agent_calls_by_caller ON agent_calls(caller, id);
     CREATE INDEX agent_calls_by_execution ON agent_calls(caller_execution);
     CREATE TABLE agent_wallets (
         agent      TEXT PRIMARY KEY,
         address    TEXT NOT NULL,
         sealed_key BLOB NOT NULL,
         policy     TEXT NOT NULL,
         created_at INTEGER NOT NULL
     );
     CREATE TABLE agent_spends (
         id               INTEGER PRIMARY KEY,
         agent            TEXT NOT NULL,
         caller_execution TEXT NOT NULL,
         callee           TEXT NOT NULL,
         pay_to           TEXT NOT NULL,
         asset            TEXT NOT NULL,
         network          TEXT NOT NULL,
         amount           INTEGER NOT NULL,
         state            TEXT NOT NULL,
         nonce            TEXT,
         tx               TEXT,
         at_ms            INTEGER NOT NULL
     );
     CREATE INDEX agent_spends_by_agent ON agent_spends(agent, at_ms);",
    // 5: owner operations are ordered by a sequence number, not by their signing second (the
    // marks left by signing times carry over as microseconds, the Rust client's sequences);
    // the host's audience, which every owner signature names, drawn once.
    "ALTER TABLE agent_owner_ops ADD COLUMN last_sequence INTEGER NOT NULL DEFAULT 0;
     UPDATE agent_owner_ops SET last_sequence = last_signed_at * 1000000;
     CREATE TABLE host_identity (
         id       INTEGER PRIMARY KEY CHECK (id = 1),
         audience TEXT NOT NULL
     );
     INSERT INTO host_identity (id, audience) VALUES (1, lower(hex(randomblob(16))));",
    // 6: A2A tasks (`storage::tasks`): the task and the message awaiting payment are sealed;
    // the columns that lists filter on are not.
    "CREATE TABLE a2a_tasks (
         id          TEXT PRIMARY KEY,
         agent       TEXT NOT NULL,
         caller      TEXT NOT NULL,
         context_id  TEXT NOT NULL,
         state       TEXT NOT NULL,
         sealed_task BLOB NOT NULL,
         sealed_pending BLOB,
         created_ms  INTEGER NOT NULL,
         updated_ms  INTEGER NOT NULL
     );
     CREATE INDEX a2a_tasks_by_caller ON a2a_tasks(caller, updated_ms);",
    // 7: the run that owns an A2A task (writes it last, runs it): a run that stopped leaves
    // its unfinished tasks to be failed by another.
    "ALTER TABLE a2a_tasks ADD COLUMN owner TEXT NOT NULL DEFAULT '';",
    // 8: search moved to an in-memory index built from `agents` (storage::search).
    "DROP TABLE agents_fts;",
    // 9: agents' key-value state (`storage::state`: ids are HMACs, names and values sealed)
    // with a usage row per agent, and agents' configuration (`storage::agent_config`: one
    // sealed document per agent).
    "CREATE TABLE agent_state (
         agent        TEXT NOT NULL,
         id           BLOB NOT NULL,
         bucket       BLOB NOT NULL,
         version      INTEGER NOT NULL,
         size         INTEGER NOT NULL,
         sealed_name  BLOB NOT NULL,
         sealed_value BLOB NOT NULL,
         PRIMARY KEY (agent, id)
     ) WITHOUT ROWID;
     CREATE INDEX agent_state_by_bucket ON agent_state(agent, bucket, id);
     CREATE TABLE agent_state_usage (
         agent TEXT PRIMARY KEY,
         keys  INTEGER NOT NULL,
         bytes INTEGER NOT NULL
     );
     CREATE TABLE agent_config (
         agent      TEXT PRIMARY KEY,
         sealed     BLOB NOT NULL,
         updated_at INTEGER NOT NULL
     );",
    // 10: a handler agent's declared event and result schemas (its MCP tool's), JSON.
    "ALTER TABLE agents ADD COLUMN schemas TEXT;",
    // 11: what the stored A2A tasks take, kept by triggers (`storage::tasks`'s quotas): a row
    // per caller (`caller:<hash>`), per agent for anonymous tasks (`anonymous:<agent>`), and the
    // host's total (''). A new task's quota check had counted and summed the whole table: its
    // cost grew with every task stored.
    "CREATE TABLE a2a_usage (
         key   TEXT PRIMARY KEY,
         tasks INTEGER NOT NULL,
         bytes INTEGER NOT NULL
     ) WITHOUT ROWID;
     INSERT INTO a2a_usage (key, tasks, bytes)
         SELECT CASE WHEN caller <> '' THEN 'caller:' || caller ELSE 'anonymous:' || agent END,
                count(*), sum(length(sealed_task) + coalesce(length(sealed_pending), 0))
         FROM a2a_tasks GROUP BY 1;
     INSERT INTO a2a_usage (key, tasks, bytes)
         SELECT '', count(*), coalesce(sum(length(sealed_task) + coalesce(length(sealed_pending), 0)), 0)
         FROM a2a_tasks;
     CREATE TRIGGER a2a_usage_insert AFTER INSERT ON a2a_tasks BEGIN
         INSERT INTO a2a_usage (key, tasks, bytes) VALUES
             ('', 1, length(NEW.sealed_task) + coalesce(length(NEW.sealed_pending), 0)),
             (CASE WHEN NEW.caller <> '' THEN 'caller:' || NEW.caller ELSE 'anonymous:' || NEW.agent END,
              1, length(NEW.sealed_task) + coalesce(length(NEW.sealed_pending), 0))
         ON CONFLICT (key) DO UPDATE SET tasks = tasks + excluded.tasks, bytes = bytes + excluded.bytes;
     END;
     CREATE TRIGGER a2a_usage_delete AFTER DELETE ON a2a_tasks BEGIN
         UPDATE a2a_usage SET tasks = tasks - 1,
             bytes = bytes - (length(OLD.sealed_task) + coalesce(length(OLD.sealed_pending), 0))
         WHERE key IN ('', CASE WHEN OLD.caller <> '' THEN 'caller:' || OLD.caller ELSE 'anonymous:' || OLD.agent END);
         DELETE FROM a2a_usage WHERE key <> '' AND tasks <= 0 AND key =
             CASE WHEN OLD.caller <> '' THEN 'caller:' || OLD.caller ELSE 'anonymous:' || OLD.agent END;
     END;
     CREATE TRIGGER a2a_usage_update AFTER UPDATE OF sealed_task, sealed_pending ON a2a_tasks BEGIN
         UPDATE a2a_usage SET bytes = bytes
             + (length(NEW.sealed_task) + coalesce(length(NEW.sealed_pending), 0))
             - (length(OLD.sealed_task) + coalesce(length(OLD.sealed_pending), 0))
         WHERE key IN ('', CASE WHEN OLD.caller <> '' THEN 'caller:' || OLD.caller ELSE 'anonymous:' || OLD.agent END);
     END;",
    // 12: x402 sign-in-with-x (`storage::sign_in`): the nonces of accepted sign-ins, and the
    // last payment of each wallet to each agent (its access window).
    "CREATE TABLE siwx_nonces (
         nonce      TEXT PRIMARY KEY,
         expires_ms INTEGER NOT NULL
     ) WITHOUT ROWID;
     CREATE INDEX siwx_nonces_expiry ON siwx_nonces(expires_ms);
     CREATE TABLE siwx_access (
         agent    TEXT NOT NULL,
         owner    TEXT NOT NULL,
         address  TEXT NOT NULL,
         paid_ms  INTEGER NOT NULL,
         PRIMARY KEY (agent, owner, address)
     ) WITHOUT ROWID;
     CREATE INDEX siwx_access_by_payment ON siwx_access(paid_ms);",
    // 13: a metered agent's tariff (x402 `upto`), JSON.
    "ALTER TABLE agents ADD COLUMN tariff TEXT;",
    // 14: the last record of the A2A tasks' journal (`storage::sqlite::task_journal`) folded
    // into `a2a_tasks`, written in the fold's transaction.
    "CREATE TABLE a2a_journal (
         id  INTEGER PRIMARY KEY CHECK (id = 1),
         lsn INTEGER NOT NULL
     );
     INSERT INTO a2a_journal (id, lsn) VALUES (1, 0);",
];

/// How many pages the write-ahead log of `hypervisor.sqlite` holds before a commit checkpoints
/// it into the database file (SQLite's default is 1,000): about 32 MiB of disk, which the file
/// keeps once reached (more while a reader holds an old snapshot). A checkpoint runs on the
/// thread that committed (often an async worker, for an awaited write) and flushes the log and
/// the database to disk; a page written again and again (a task's leaf, the `a2a_usage` rows)
/// is copied back once per checkpoint, not once per 1,000 pages. Measured (fronts bench, three
/// runs, PERFORMANCE.md): A2A +5–19 %, the native route within noise. A commit at
/// `synchronous = NORMAL` stays safe from a crash of the process, not from a power loss before
/// the next checkpoint, as before; `synchronous = FULL` commits flush the log themselves.
///
/// Every connection to the file sets it: a connection checkpoints by its own setting. (A
/// separate checkpointing thread with the others' disabled was tried: under sustained writes its
/// passive checkpoints never caught up, and the log grew without bound, 7.6 GB in a minute.)
const WAL_AUTOCHECKPOINT_PAGES: u32 = 8_000;

fn checkpoint_every(conn: &Connection) -> Result<(), StorageError> {
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)
        .map_err(sql("configure"))
}

/// Busy handler of [`Database::open_relaxed`]: waits 10 µs more at each retry, up to 1 ms
/// between retries, and gives up after about 5 s (as `busy_timeout = 5000`).
fn retry_soon(attempt: i32) -> bool {
    let attempt = u64::try_from(attempt).unwrap_or(0);
    if attempt > 5_100 {
        return false;
    }
    std::thread::sleep(std::time::Duration::from_micros(
        (10 * (attempt + 1)).min(1_000),
    ));
    true
}

/// Applies the `migrations` not yet applied to `conn` (`PRAGMA user_version` counts them), each
/// in one transaction; `what` names the database in the log and in errors.
///
/// # Errors
/// [`StorageError::Database`], also for a database written by a newer host.
pub(super) fn migrate(
    conn: &mut Connection,
    migrations: &[&str],
    what: &'static str,
) -> Result<(), StorageError> {
    let current: usize = conn
        .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        .map_err(sql("read schema version"))?
        .try_into()
        .unwrap_or(0);
    if current > migrations.len() {
        return Err(StorageError::Database {
            op: "open",
            detail: format!(
                "{what} schema version {current} is newer than this host's {}",
                migrations.len()
            ),
        });
    }
    for (i, migration) in migrations.iter().enumerate().skip(current) {
        let tx = conn.transaction().map_err(sql("begin migration"))?;
        tx.execute_batch(migration).map_err(sql("migrate"))?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))
            .map_err(sql("record schema version"))?;
        tx.commit().map_err(sql("commit migration"))?;
        tracing::info!(what, version = i + 1, "SQLite schema migrated");
    }
    Ok(())
}

/// The database connection (one, behind a mutex: every statement is short).
pub struct Database {
    conn: Mutex<Connection>,
}

pub(super) fn sql(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StorageError {
    move |e| StorageError::Database {
        op,
        detail: e.to_string(),
    }
}

impl Database {
    /// Opens (creating) `<data_dir>/hypervisor.sqlite` and applies pending migrations.
    ///
    /// # Errors
    /// [`StorageError::Database`], also for a database written by a newer host.
    pub fn open(data_dir: &Path) -> Result<Self, StorageError> {
        let mut conn = Connection::open(data_dir.join("hypervisor.sqlite")).map_err(sql("open"))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = ON;
             PRAGMA busy_timeout = 5000;",
        )
        .map_err(sql("configure"))?;
        checkpoint_every(&conn)?;
        migrate(&mut conn, MIGRATIONS, "database")?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// A second connection to the database [`Self::open`] made and migrated, whose commits
    /// reach the write-ahead log without waiting for the disk (`synchronous = NORMAL`, as the
    /// execution records' writer): safe from a crash of this process (`kill -9` included), not
    /// from a power loss before the next checkpoint. For state written on every request that a
    /// client can read again (A2A tasks), where a flush to disk per write would cost more than
    /// the request.
    ///
    /// # Errors
    /// [`StorageError::Database`].
    pub fn open_relaxed(data_dir: &Path) -> Result<Self, StorageError> {
        let conn = Connection::open(data_dir.join("hypervisor.sqlite")).map_err(sql("open"))?;
        conn.execute_batch(
            "PRAGMA synchronous = NORMAL;
             PRAGMA foreign_keys = ON;",
        )
        .map_err(sql("configure"))?;
        // The other connections hold the write lock for tens of microseconds (commits without
        // a flush): retry soon, not after SQLite's millisecond sleeps of `busy_timeout`.
        conn.busy_handler(Some(retry_soon))
            .map_err(sql("configure"))?;
        checkpoint_every(&conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// The host's audience: what owner signatures name so that they are valid here only
    /// (drawn at random when the database was created; shared by every host on it).
    ///
    /// # Errors
    /// [`StorageError::Database`].
    pub fn audience(&self) -> Result<String, StorageError> {
        self.lock()
            .query_row("SELECT audience FROM host_identity WHERE id = 1", [], |r| {
                r.get(0)
            })
            .map_err(sql("read the host's audience"))
    }

    /// The connection.
    pub fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database at version 1 (before the owner-operation marks) gains them when opened.
    #[test]
    fn a_version_1_database_is_migrated_forward() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(dir.path().join("hypervisor.sqlite")).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.execute_batch(
                "INSERT INTO agents VALUES ('a', 'k', 'd', '[]', 1, 1, NULL, 0, 0, NULL);
                 PRAGMA user_version = 1;",
            )
            .unwrap();
        }
        let db = Database::open(dir.path()).unwrap();
        let conn = db.lock();
        let agents: i64 = conn
            .query_row("SELECT count(*) FROM agents", [], |r| r.get(0))
            .unwrap();
        let marks: i64 = conn
            .query_row("SELECT count(*) FROM agent_owner_ops", [], |r| r.get(0))
            .unwrap();
        assert_eq!((agents, marks), (1, 0));
        // Migration 3: an agent deployed before it is charged only on success.
        let charge: String = conn
            .query_row("SELECT charge FROM agents WHERE name = 'a'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(charge, "success");
    }

    /// The write-ahead log grows past SQLite's default 1,000 pages before a checkpoint, and
    /// stays bounded by [`WAL_AUTOCHECKPOINT_PAGES`] under sustained commits on both kinds of
    /// connection (a log never checkpointed and restarted would grow with every write).
    #[test]
    fn the_log_is_checkpointed_every_few_thousand_pages_and_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path()).unwrap();
        let relaxed = Database::open_relaxed(dir.path()).unwrap();
        db.lock()
            .execute_batch("CREATE TABLE filler (b BLOB NOT NULL)")
            .unwrap();
        let page: u64 = db
            .lock()
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        let wal = dir.path().join("hypervisor.sqlite-wal");
        // A frame: a 24-byte header and a page.
        let pages = || std::fs::metadata(&wal).map_or(0, |m| m.len()) / (24 + page);
        let blob = vec![7u8; 16 * 1024];
        let mut most = 0;
        // About five frames a commit: 2,500 commits pass 8,000 pages more than once.
        for i in 0..2_500 {
            // Every tenth commit on a durable connection (each flushes the log).
            let on = if i % 10 == 0 { &db } else { &relaxed };
            on.lock()
                .execute("INSERT INTO filler (b) VALUES (?1)", [&blob])
                .unwrap();
            most = most.max(pages());
            if i == 600 {
                assert!(pages() > 1_500, "checkpointed early: {} pages", pages());
            }
        }
        assert!(
            most <= u64::from(WAL_AUTOCHECKPOINT_PAGES) + 100,
            "the log grew to {most} pages"
        );
    }

    #[test]
    fn migrations_apply_once_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path()).unwrap();
        db.lock()
            .execute(
                "INSERT INTO agents (name, owner_key, description, tags, public, latest_version,
                   price_amount, created_at, updated_at, expires_at)
                 VALUES ('a', 'k', 'd', '[]', 1, 1, NULL, 0, 0, NULL)",
                [],
            )
            .unwrap();
        drop(db);
        let db = Database::open(dir.path()).unwrap();
        let n: i64 = db
            .lock()
            .query_row("SELECT count(*) FROM agents", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
        let version: i64 = db
            .lock()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, i64::try_from(MIGRATIONS.len()).unwrap());
        db.lock().execute_batch("PRAGMA user_version = 99").unwrap();
        drop(db);
        assert!(
            Database::open(dir.path()).is_err(),
            "a newer schema is refused"
        );
    }
}
