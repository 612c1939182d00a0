//! Execution records, logs and calls on PostgreSQL (tables `executions`, `agent_logs`,
//! `agent_calls`): the group-commit writer commits each batch in one transaction on a pooled
//! connection.

use std::sync::Arc;

use tokio_postgres::Row;

use super::{Pg, big, pg, unsigned};
use crate::storage::StorageError;
use crate::storage::agents::{LOGS_KEPT, LogEntry};
use crate::storage::records::{ExecutionRecord, Reader, RecordSink, RecordStore, Write};

/// The PostgreSQL records.
pub struct PgRecords {
    pg: Arc<Pg>,
}

impl PgRecords {
    /// The records on `pg`.
    pub fn new(pg: Arc<Pg>) -> Self {
        Self { pg }
    }
}

const COLUMNS: &str = "id, route, agent, agent_version, code_hash, caller_hash, started_ms, \
                       duration_us, status, exit_code, commitment, payment";

/// The records a [`Reader`] sees (parameters 2 and 3: its caller hash and owner key, or
/// `NULL`s for all).
const VISIBLE: &str = "($2::TEXT IS NULL
     OR (caller_hash <> '' AND caller_hash = $2)
     OR agent IN (SELECT name FROM agents WHERE owner_key = $3))";

fn record(r: &Row) -> ExecutionRecord {
    ExecutionRecord {
        id: r.get(0),
        route: r.get(1),
        agent: r.get(2),
        agent_version: r
            .get::<_, Option<i64>>(3)
            .and_then(|v| u32::try_from(v).ok()),
        code_hash: r.get(4),
        caller_hash: r.get(5),
        started_ms: unsigned(r.get(6)),
        duration_us: unsigned(r.get(7)),
        status: r.get(8),
        exit_code: r.get(9),
        commitment: r.get(10),
        payment: r.get(11),
    }
}

async fn insert_record(
    tx: &deadpool_postgres::Transaction<'_>,
    r: &ExecutionRecord,
) -> Result<(), tokio_postgres::Error> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO executions (id, route, agent, agent_version, code_hash, caller_hash,
               started_ms, duration_us, status, exit_code, commitment, payment)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (id) DO UPDATE SET route = EXCLUDED.route, agent = EXCLUDED.agent,
               agent_version = EXCLUDED.agent_version, code_hash = EXCLUDED.code_hash,
               caller_hash = EXCLUDED.caller_hash, started_ms = EXCLUDED.started_ms,
               duration_us = EXCLUDED.duration_us, status = EXCLUDED.status,
               exit_code = EXCLUDED.exit_code, commitment = EXCLUDED.commitment,
               payment = EXCLUDED.payment",
        )
        .await?;
    tx.execute(
        &stmt,
        &[
            &r.id,
            &r.route,
            &r.agent,
            &r.agent_version.map(i64::from),
            &r.code_hash,
            &r.caller_hash,
            &big(r.started_ms),
            &big(r.duration_us),
            &r.status,
            &r.exit_code,
            &r.commitment,
            &r.payment,
        ],
    )
    .await?;
    Ok(())
}

async fn append_log(
    tx: &deadpool_postgres::Transaction<'_>,
    agent: &str,
    entry: &LogEntry,
) -> Result<(), tokio_postgres::Error> {
    // An agent deleted since the invocation gets no log.
    let insert = tx
        .prepare_cached(
            "INSERT INTO agent_logs (name, execution_id, at_ms, sealed)
             SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM agents WHERE name = $1)",
        )
        .await?;
    tx.execute(
        &insert,
        &[
            &agent,
            &entry.execution_id,
            &big(entry.at_ms),
            &entry.sealed,
        ],
    )
    .await?;
    let trim = tx
        .prepare_cached(
            "DELETE FROM agent_logs WHERE name = $1 AND id <= (
               SELECT id FROM agent_logs WHERE name = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
        )
        .await?;
    tx.execute(&trim, &[&agent, &i64::from(LOGS_KEPT)]).await?;
    Ok(())
}

/// The writer thread's way to the pool.
struct Sink(Arc<Pg>);

impl RecordSink for Sink {
    fn commit(&mut self, writes: &[Write]) -> Result<(), StorageError> {
        let pg = &self.0;
        pg.block(async {
            let mut client = pg.client("record executions").await?;
            let tx = client
                .transaction()
                .await
                .map_err(pg_err("record executions"))?;
            for write in writes {
                match write {
                    Write::Record(r) => insert_record(&tx, r).await,
                    Write::Log { agent, entry } => append_log(&tx, agent, entry).await,
                    Write::Call(call) => super::calls::insert_on(&tx, call).await,
                }
                .map_err(pg_err("record executions"))?;
            }
            tx.commit().await.map_err(pg_err("record executions"))?;
            Ok(())
        })
    }
}

fn pg_err(op: &'static str) -> impl Fn(tokio_postgres::Error) -> StorageError {
    pg(op)
}

impl RecordStore for PgRecords {
    fn sink(&self) -> Result<Box<dyn RecordSink>, StorageError> {
        Ok(Box::new(Sink(self.pg.clone())))
    }

    fn get(&self, id: &str, reader: &Reader) -> Result<Option<ExecutionRecord>, StorageError> {
        let (caller_hash, owner_key) = reader.filter();
        self.pg.block(async {
            let client = self.pg.client("read an execution").await?;
            let row = client
                .query_opt(
                    &format!("SELECT {COLUMNS} FROM executions WHERE id = $1 AND {VISIBLE}"),
                    &[&id, &caller_hash, &owner_key],
                )
                .await
                .map_err(pg("read an execution"))?;
            Ok(row.as_ref().map(record))
        })
    }

    fn list(
        &self,
        since_ms: u64,
        after_id: &str,
        limit: u32,
        reader: &Reader,
    ) -> Result<Vec<ExecutionRecord>, StorageError> {
        let (caller_hash, owner_key) = reader.filter();
        self.pg.block(async {
            let client = self.pg.client("list executions").await?;
            let rows = client
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM executions
                         WHERE (started_ms > $1 OR (started_ms = $1 AND id > $5)) AND {VISIBLE}
                         ORDER BY started_ms, id LIMIT $4"
                    ),
                    &[
                        &big(since_ms),
                        &caller_hash,
                        &owner_key,
                        &i64::from(limit),
                        &after_id,
                    ],
                )
                .await
                .map_err(pg("list executions"))?;
            Ok(rows.iter().map(record).collect())
        })
    }
}
