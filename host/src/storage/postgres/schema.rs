//! The PostgreSQL schema: numbered migrations recorded in `schema_migrations`, applied at
//! start-up, each in one transaction, under an advisory lock so that replicas starting at once
//! apply each migration once (the others wait, then find it applied). Never edit a released
//! migration: append a new one.
//!
//! Types: every integer is `BIGINT` (Unix times, sizes, versions), every blob `BYTEA`; sealed
//! columns hold what [`crate::crypto::at_rest`] sealed with the cluster key.

use std::sync::Arc;

use super::{Pg, pg};
use crate::storage::StorageError;

/// The advisory lock key held while migrating (`'wasmhypr'` as a number).
const MIGRATION_LOCK: i64 = 0x7761_736d_6879_7072;

/// The migrations, one entry per version.
pub const MIGRATIONS: &[&str] = &[
    // 1: everything the SQLite backend keeps, plus the agents' code (a table here: replicas
    // do not share a disk), the receipts, and the cluster's members, key and join requests.
    "CREATE TABLE host_identity (
         id       INTEGER PRIMARY KEY CHECK (id = 1),
         audience TEXT NOT NULL
     );
     INSERT INTO host_identity (id, audience)
         VALUES (1, replace(gen_random_uuid()::text, '-', ''));
     CREATE TABLE agents (
         name           TEXT PRIMARY KEY,
         owner_key      TEXT NOT NULL,
         description    TEXT NOT NULL,
         tags           TEXT NOT NULL,
         public         BOOLEAN NOT NULL,
         latest_version BIGINT NOT NULL,
         price_amount   TEXT,
         created_at     BIGINT NOT NULL,
         updated_at     BIGINT NOT NULL,
         expires_at     BIGINT,
         charge         TEXT NOT NULL,
         content_type   TEXT,
         grants         TEXT NOT NULL
     );
     CREATE INDEX agents_expiry ON agents (expires_at) WHERE expires_at IS NOT NULL;
     CREATE INDEX agents_by_owner ON agents (owner_key);
     CREATE TABLE agent_versions (
         name       TEXT NOT NULL REFERENCES agents(name) ON DELETE CASCADE,
         version    BIGINT NOT NULL,
         code_hash  TEXT NOT NULL,
         kind       TEXT NOT NULL,
         world      TEXT NOT NULL,
         size       BIGINT NOT NULL,
         limits     TEXT NOT NULL,
         created_at BIGINT NOT NULL,
         PRIMARY KEY (name, version)
     );
     CREATE INDEX agent_versions_by_code ON agent_versions (code_hash);
     CREATE TABLE agent_code (
         code_hash TEXT PRIMARY KEY,
         sealed    BYTEA NOT NULL,
         stored_ms BIGINT NOT NULL
     );
     CREATE TABLE agent_owner_ops (
         name           TEXT PRIMARY KEY,
         last_signed_at BIGINT NOT NULL,
         last_sequence  BIGINT NOT NULL
     );
     CREATE TABLE agent_logs (
         id           BIGSERIAL PRIMARY KEY,
         name         TEXT NOT NULL REFERENCES agents(name) ON DELETE CASCADE,
         execution_id TEXT NOT NULL,
         at_ms        BIGINT NOT NULL,
         sealed       BYTEA NOT NULL
     );
     CREATE INDEX agent_logs_by_agent ON agent_logs (name, id);
     CREATE TABLE executions (
         id            TEXT PRIMARY KEY,
         route         TEXT NOT NULL,
         agent         TEXT,
         agent_version BIGINT,
         code_hash     TEXT NOT NULL,
         caller_hash   TEXT NOT NULL,
         started_ms    BIGINT NOT NULL,
         duration_us   BIGINT NOT NULL,
         status        TEXT NOT NULL,
         exit_code     INTEGER,
         commitment    TEXT,
         payment       TEXT
     );
     CREATE INDEX executions_by_time ON executions (started_ms, id);
     CREATE TABLE agent_calls (
         id               BIGSERIAL PRIMARY KEY,
         caller           TEXT NOT NULL,
         caller_execution TEXT NOT NULL,
         callee           TEXT NOT NULL,
         path             TEXT NOT NULL,
         status           INTEGER NOT NULL,
         callee_execution TEXT,
         response_sha256  TEXT,
         settlement       TEXT,
         at_ms            BIGINT NOT NULL,
         duration_us      BIGINT NOT NULL
     );
     CREATE INDEX agent_calls_by_caller ON agent_calls (caller, id);
     CREATE INDEX agent_calls_by_execution ON agent_calls (caller_execution);
     CREATE TABLE agent_wallets (
         agent      TEXT PRIMARY KEY,
         address    TEXT NOT NULL,
         sealed_key BYTEA NOT NULL,
         policy     TEXT NOT NULL,
         created_at BIGINT NOT NULL
     );
     CREATE TABLE agent_spends (
         id               BIGSERIAL PRIMARY KEY,
         agent            TEXT NOT NULL,
         caller_execution TEXT NOT NULL,
         callee           TEXT NOT NULL,
         pay_to           TEXT NOT NULL,
         asset            TEXT NOT NULL,
         network          TEXT NOT NULL,
         amount           BIGINT NOT NULL,
         state            TEXT NOT NULL,
         nonce            TEXT,
         tx               TEXT,
         at_ms            BIGINT NOT NULL
     );
     CREATE INDEX agent_spends_by_agent ON agent_spends (agent, at_ms);
     CREATE TABLE a2a_tasks (
         id             TEXT PRIMARY KEY,
         agent          TEXT NOT NULL,
         caller         TEXT NOT NULL,
         context_id     TEXT NOT NULL,
         state          TEXT NOT NULL,
         sealed_task    BYTEA NOT NULL,
         sealed_pending BYTEA,
         created_ms     BIGINT NOT NULL,
         updated_ms     BIGINT NOT NULL,
         owner          TEXT NOT NULL
     );
     CREATE INDEX a2a_tasks_by_caller ON a2a_tasks (caller, updated_ms);
     CREATE TABLE payments (
         replay_key       TEXT PRIMARY KEY,
         payer            TEXT NOT NULL,
         amount           TEXT NOT NULL,
         network          TEXT NOT NULL,
         route            TEXT NOT NULL,
         state            TEXT NOT NULL,
         transaction_hash TEXT,
         reason           TEXT,
         owner            TEXT NOT NULL,
         sealed           BYTEA,
         reserved_at      BIGINT NOT NULL,
         updated_at       BIGINT NOT NULL
     );
     CREATE INDEX payments_unfinished ON payments (owner) WHERE state IN ('reserved', 'settling');
     CREATE TABLE receipts (
         id         BIGSERIAL PRIMARY KEY,
         session_id TEXT NOT NULL,
         sequence   BIGINT NOT NULL,
         issued_at  BIGINT NOT NULL,
         receipt    TEXT NOT NULL
     );
     CREATE TABLE cluster_members (
         run          TEXT PRIMARY KEY,
         replica      TEXT NOT NULL,
         tag          INTEGER NOT NULL,
         signing_key  TEXT NOT NULL,
         url          TEXT NOT NULL,
         started_ms   BIGINT NOT NULL,
         heartbeat_ms BIGINT NOT NULL
     );
     CREATE TABLE cluster_key (
         id          INTEGER PRIMARY KEY CHECK (id = 1),
         key_check   TEXT NOT NULL,
         measurement TEXT NOT NULL,
         created_by  TEXT NOT NULL,
         created_ms  BIGINT NOT NULL
     );
     CREATE TABLE cluster_joins (
         run         TEXT PRIMARY KEY,
         replica     TEXT NOT NULL,
         request     TEXT NOT NULL,
         state       TEXT NOT NULL,
         response    TEXT,
         answered_by TEXT,
         created_ms  BIGINT NOT NULL,
         answered_ms BIGINT
     );",
    // 2: agents' key-value state (`storage::state`) with a usage row per agent (every write
    // locks it first), and agents' configuration (`storage::agent_config`).
    "CREATE TABLE agent_state (
         agent        TEXT NOT NULL,
         id           BYTEA NOT NULL,
         bucket       BYTEA NOT NULL,
         version      BIGINT NOT NULL,
         size         BIGINT NOT NULL,
         sealed_name  BYTEA NOT NULL,
         sealed_value BYTEA NOT NULL,
         PRIMARY KEY (agent, id)
     );
     CREATE INDEX agent_state_by_bucket ON agent_state(agent, bucket, id);
     CREATE TABLE agent_state_usage (
         agent TEXT PRIMARY KEY,
         keys  BIGINT NOT NULL,
         bytes BIGINT NOT NULL
     );
     CREATE TABLE agent_config (
         agent      TEXT PRIMARY KEY,
         sealed     BYTEA NOT NULL,
         updated_at BIGINT NOT NULL
     );",
    // A handler agent's declared event and result schemas (its MCP tool's), JSON.
    "ALTER TABLE agents ADD COLUMN schemas TEXT;",
    // What the stored A2A tasks take, kept by a trigger (`storage::tasks`'s quotas): a row per
    // caller (`caller:<hash>`), per agent for anonymous tasks (`anonymous:<agent>`), and the
    // host's total (''). A new task's quota check had counted and summed the whole table.
    // Every change locks the total's row first, then the caller's: one order, no deadlock.
    "CREATE TABLE a2a_usage (
         key   TEXT PRIMARY KEY,
         tasks BIGINT NOT NULL,
         bytes BIGINT NOT NULL
     );
     CREATE FUNCTION a2a_usage_key(caller TEXT, agent TEXT) RETURNS TEXT
         LANGUAGE sql IMMUTABLE
         AS $$ SELECT CASE WHEN caller <> '' THEN 'caller:' || caller ELSE 'anonymous:' || agent END $$;
     INSERT INTO a2a_usage (key, tasks, bytes)
         SELECT a2a_usage_key(caller, agent), count(*),
                sum(octet_length(sealed_task) + coalesce(octet_length(sealed_pending), 0))
         FROM a2a_tasks GROUP BY 1;
     INSERT INTO a2a_usage (key, tasks, bytes)
         SELECT '', count(*),
                coalesce(sum(octet_length(sealed_task) + coalesce(octet_length(sealed_pending), 0)), 0)
         FROM a2a_tasks;
     CREATE FUNCTION a2a_usage_track() RETURNS trigger LANGUAGE plpgsql AS $$
     DECLARE
         d_tasks BIGINT := 0;
         d_bytes BIGINT := 0;
         k TEXT;
     BEGIN
         IF TG_OP <> 'INSERT' THEN
             k := a2a_usage_key(OLD.caller, OLD.agent);
             d_bytes := d_bytes - octet_length(OLD.sealed_task) - coalesce(octet_length(OLD.sealed_pending), 0);
         ELSE
             k := a2a_usage_key(NEW.caller, NEW.agent);
         END IF;
         IF TG_OP <> 'DELETE' THEN
             d_bytes := d_bytes + octet_length(NEW.sealed_task) + coalesce(octet_length(NEW.sealed_pending), 0);
         END IF;
         d_tasks := CASE TG_OP WHEN 'INSERT' THEN 1 WHEN 'DELETE' THEN -1 ELSE 0 END;
         INSERT INTO a2a_usage AS u (key, tasks, bytes) VALUES ('', d_tasks, d_bytes)
             ON CONFLICT ON CONSTRAINT a2a_usage_pkey
             DO UPDATE SET tasks = u.tasks + excluded.tasks, bytes = u.bytes + excluded.bytes;
         INSERT INTO a2a_usage AS u (key, tasks, bytes) VALUES (k, d_tasks, d_bytes)
             ON CONFLICT ON CONSTRAINT a2a_usage_pkey
             DO UPDATE SET tasks = u.tasks + excluded.tasks, bytes = u.bytes + excluded.bytes;
         IF TG_OP = 'DELETE' THEN
             DELETE FROM a2a_usage AS u WHERE u.key = k AND u.tasks <= 0;
         END IF;
         RETURN NULL;
     END $$;
     CREATE TRIGGER a2a_usage_track
         AFTER INSERT OR DELETE OR UPDATE OF sealed_task, sealed_pending ON a2a_tasks
         FOR EACH ROW EXECUTE FUNCTION a2a_usage_track();",
    // x402 payment identifiers (unique), the fingerprint of the payment each came with, and the
    // answer kept for a retry (sealed; empty once forgotten).
    "ALTER TABLE payments ADD COLUMN payment_id TEXT;
     ALTER TABLE payments ADD COLUMN payment_fingerprint BYTEA;
     ALTER TABLE payments ADD COLUMN answer BYTEA;
     ALTER TABLE payments ADD COLUMN answer_at BIGINT;
     CREATE UNIQUE INDEX payments_by_id ON payments (payment_id) WHERE payment_id IS NOT NULL;
     CREATE INDEX payments_answers ON payments (answer_at) WHERE answer_at IS NOT NULL;",
    // x402 sign-in-with-x (`storage::sign_in`): the nonces of accepted sign-ins, and the last
    // payment of each wallet to each agent (its access window).
    "CREATE TABLE siwx_nonces (
         nonce      TEXT PRIMARY KEY,
         expires_ms BIGINT NOT NULL
     );
     CREATE INDEX siwx_nonces_expiry ON siwx_nonces (expires_ms);
     CREATE TABLE siwx_access (
         agent    TEXT NOT NULL,
         owner    TEXT NOT NULL,
         address  TEXT NOT NULL,
         paid_ms  BIGINT NOT NULL,
         PRIMARY KEY (agent, owner, address)
     );
     CREATE INDEX siwx_access_by_payment ON siwx_access (paid_ms);",
    // A metered agent's tariff (x402 `upto`), JSON.
    "ALTER TABLE agents ADD COLUMN tariff TEXT;",
];

/// Applies the pending migrations.
///
/// # Errors
/// [`StorageError`], also for a database migrated by a newer host.
pub fn migrate(db: &Arc<Pg>) -> Result<(), StorageError> {
    db.block(async {
        let mut client = db.client("migrate").await?;
        client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (
                     version    BIGINT PRIMARY KEY,
                     applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
                 )",
            )
            .await
            .or_else(|e| {
                // Two replicas creating it at once: one loses the race, harmlessly.
                if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .map_err(pg("create schema_migrations"))?;
        client
            .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(pg("lock for migrations"))?;
        let result = apply(&mut client).await;
        client
            .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(pg("unlock after migrations"))?;
        result
    })
}

async fn apply(client: &mut super::Client) -> Result<(), StorageError> {
    let current: i64 = client
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )
        .await
        .map_err(pg("read schema version"))?
        .get(0);
    let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    if current > known {
        return Err(StorageError::Database {
            op: "migrate",
            detail: format!("schema version {current} is newer than this host's {known}"),
        });
    }
    for (version, migration) in (1_i64..)
        .zip(MIGRATIONS)
        .skip(usize::try_from(current).unwrap_or(0))
    {
        let tx = client.transaction().await.map_err(pg("begin migration"))?;
        tx.batch_execute(migration).await.map_err(pg("migrate"))?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[&version],
        )
        .await
        .map_err(pg("record schema version"))?;
        tx.commit().await.map_err(pg("commit migration"))?;
        tracing::info!(version, "PostgreSQL schema migrated");
    }
    Ok(())
}

/// The schema version the database is at.
///
/// # Errors
/// [`StorageError`].
pub fn version(db: &Arc<Pg>) -> Result<i64, StorageError> {
    db.block(async {
        let client = db.client("read schema version").await?;
        let row = client
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                &[],
            )
            .await
            .map_err(pg("read schema version"))?;
        Ok(row.get(0))
    })
}

/// The host's audience, shared by every replica.
///
/// # Errors
/// [`StorageError`].
pub fn audience(db: &Arc<Pg>) -> Result<String, StorageError> {
    db.block(async {
        let client = db.client("read the audience").await?;
        let row = client
            .query_one("SELECT audience FROM host_identity WHERE id = 1", &[])
            .await
            .map_err(pg("read the audience"))?;
        Ok(row.get(0))
    })
}
