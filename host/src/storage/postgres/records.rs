//! Execution records, logs and calls on PostgreSQL (tables `executions`, `agent_logs`,
//! `agent_calls`): the group-commit writer commits each batch in one transaction on a pooled
//! connection.

use std::sync::{Arc, PoisonError};
use std::time::Duration;

use tokio_postgres::Row;

use super::{Pg, big, pg, unsigned};
use crate::storage::StorageError;
use crate::storage::agents::{LOGS_KEPT, LogEntry};
use futures_util::future::BoxFuture;

use crate::storage::records::{
    AsyncRecordSink, ExecutionRecord, Reader, RecordSink, RecordStore, Write,
};
use crate::storage::tasks::{TaskChange, TaskWrite};

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

const INSERT_RECORD: &str = "INSERT INTO executions (id, route, agent, agent_version, code_hash,
       caller_hash, started_ms, duration_us, status, exit_code, commitment, payment)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
     ON CONFLICT (id) DO UPDATE SET route = EXCLUDED.route, agent = EXCLUDED.agent,
       agent_version = EXCLUDED.agent_version, code_hash = EXCLUDED.code_hash,
       caller_hash = EXCLUDED.caller_hash, started_ms = EXCLUDED.started_ms,
       duration_us = EXCLUDED.duration_us, status = EXCLUDED.status,
       exit_code = EXCLUDED.exit_code, commitment = EXCLUDED.commitment,
       payment = EXCLUDED.payment";

/// An agent deleted since the invocation gets no log.
const INSERT_LOG: &str = "INSERT INTO agent_logs (name, execution_id, at_ms, sealed)
     SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM agents WHERE name = $1)";

const TRIM_LOGS: &str = "DELETE FROM agent_logs WHERE name = $1 AND id <= (
     SELECT id FROM agent_logs WHERE name = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)";

/// One write's parameters, converted to the columns' types (owned, so that every statement
/// of a batch can be in flight at once).
enum Params<'a> {
    Record {
        r: &'a ExecutionRecord,
        version: Option<i64>,
        started: i64,
        duration: i64,
    },
    Log {
        agent: &'a str,
        entry: &'a LogEntry,
        at: i64,
    },
    Call {
        call: &'a hypervisor_protocol::grants::CallRecord,
        status: i32,
        settlement: Option<String>,
        at: i64,
        duration: i64,
    },
    Task(&'a TaskWrite),
}

impl<'a> Params<'a> {
    fn of(write: &'a Write) -> Self {
        match write {
            Write::Record(r) => Params::Record {
                r,
                version: r.agent_version.map(i64::from),
                started: big(r.started_ms),
                duration: big(r.duration_us),
            },
            Write::Log { agent, entry } => Params::Log {
                agent,
                entry,
                at: big(entry.at_ms),
            },
            Write::Task(task) => Params::Task(task),
            Write::Call(call) => Params::Call {
                call,
                status: i32::from(call.status),
                settlement: call.settlement.as_ref().map(ToString::to_string),
                at: big(call.at_ms),
                duration: big(call.duration_us),
            },
        }
    }
}

/// The prepared statements of a batch.
struct Statements {
    record: tokio_postgres::Statement,
    log: tokio_postgres::Statement,
    trim: tokio_postgres::Statement,
    call: tokio_postgres::Statement,
    task_insert: tokio_postgres::Statement,
    task_replace: tokio_postgres::Statement,
}

/// Runs one write's statements on `client` (the log's trim after its insert).
async fn apply(
    client: &impl tokio_postgres::GenericClient,
    s: &Statements,
    p: &Params<'_>,
) -> Result<(), tokio_postgres::Error> {
    match p {
        Params::Record {
            r,
            version,
            started,
            duration,
        } => {
            client
                .execute(
                    &s.record,
                    &[
                        &r.id,
                        &r.route,
                        &r.agent,
                        version,
                        &r.code_hash,
                        &r.caller_hash,
                        started,
                        duration,
                        &r.status,
                        &r.exit_code,
                        &r.commitment,
                        &r.payment,
                    ],
                )
                .await?;
        }
        Params::Log { agent, entry, at } => {
            client
                .execute(&s.log, &[agent, &entry.execution_id, at, &entry.sealed])
                .await?;
            client
                .execute(&s.trim, &[agent, &i64::from(LOGS_KEPT)])
                .await?;
        }
        Params::Task(write) => {
            let applied = match write.change {
                TaskChange::Insert(quota) => {
                    super::tasks::insert_with(client, &s.task_insert, &write.row, &quota).await?
                }
                TaskChange::Replace(expected) => {
                    super::tasks::replace_with(client, &s.task_replace, &write.row, expected)
                        .await?
                }
            };
            write.set_applied(applied);
        }
        Params::Call {
            call,
            status,
            settlement,
            at,
            duration,
        } => {
            client
                .execute(
                    &s.call,
                    &[
                        &call.caller_execution,
                        &call.caller,
                        &call.callee,
                        &call.path,
                        status,
                        &call.callee_execution,
                        &call.response_sha256,
                        settlement,
                        at,
                        duration,
                    ],
                )
                .await?;
        }
    }
    Ok(())
}

/// The records' ways to the database: the writer thread's, through the pool (blocking,
/// [`RecordSink`]), and the awaited writes' own ([`AsyncRecordSink`]): a connection of its
/// own, driven on the host's runtime. An awaited write then costs the round trip and no
/// thread hop: through the pool, whose connections live on a runtime of their own, the
/// statement went to that runtime's thread and the answer came back (two cross-thread
/// wake-ups, on two busy cores about as long as the round trip itself).
///
/// A batch costs three round trips whatever its size (BEGIN; every statement pipelined on the
/// connection; COMMIT), a lone record one (it commits by itself).
#[derive(Clone)]
struct Sink {
    pg: Arc<Pg>,
    /// The awaited writes' connection, opened when first needed and again after it broke.
    /// Only the writer's turn holder uses it (the writer's sink lock): taken out for a commit
    /// and put back.
    own: Arc<std::sync::Mutex<Option<Own>>>,
}

/// The awaited writes' connection and its prepared statements.
struct Own {
    client: tokio_postgres::Client,
    statements: Statements,
}

/// Prepares the writer's statements on `client`.
async fn prepare(client: &tokio_postgres::Client) -> Result<Statements, tokio_postgres::Error> {
    Ok(Statements {
        record: client.prepare(INSERT_RECORD).await?,
        log: client.prepare(INSERT_LOG).await?,
        trim: client.prepare(TRIM_LOGS).await?,
        call: client.prepare(&insert_call()).await?,
        task_insert: client.prepare(&super::tasks::insert_sql()).await?,
        task_replace: client.prepare(super::tasks::REPLACE_SQL).await?,
    })
}

fn insert_call() -> String {
    format!(
        "INSERT INTO agent_calls ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        super::calls::COLUMNS
    )
}

/// Commits `writes` in one transaction on `client`.
async fn commit_on(
    client: &mut tokio_postgres::Client,
    statements: &Statements,
    writes: &[Write],
) -> Result<(), StorageError> {
    let params: Vec<Params<'_>> = writes.iter().map(Params::of).collect();
    // A lone one-statement write commits by itself: one round trip.
    if let [only @ (Params::Record { .. } | Params::Task(_))] = params.as_slice() {
        return apply(&*client, statements, only)
            .await
            .map_err(pg_err("record an execution"));
    }
    let tx = client
        .transaction()
        .await
        .map_err(pg_err("record executions"))?;
    // Sent in order, answered in order: one round trip for all of them.
    futures_util::future::try_join_all(params.iter().map(|p| apply(&tx, statements, p)))
        .await
        .map_err(pg_err("record executions"))?;
    tx.commit().await.map_err(pg_err("record executions"))?;
    Ok(())
}

/// `commit`'s output, if it comes `within` ([`Pg::answer_within`]); [`StorageError::Unavailable`]
/// when the server did not answer in time (the connection is then not to be used again).
async fn answered<T>(
    within: Option<Duration>,
    commit: impl std::future::Future<Output = T>,
) -> Result<T, StorageError> {
    match within {
        None => Ok(commit.await),
        Some(within) => {
            tokio::time::timeout(within, commit)
                .await
                .map_err(|_| StorageError::Unavailable {
                    op: "record executions",
                    detail: format!("PostgreSQL did not answer within {} ms", within.as_millis()),
                })
        }
    }
}

/// Commits `writes` in one transaction on a pooled connection; one that gives no answer in
/// time is closed, not given back to the pool.
async fn commit_pooled(pg: &Pg, writes: &[Write]) -> Result<(), StorageError> {
    let mut client = pg.client("record executions").await?;
    match answered(pg.answer_within, commit_pooled_on(&mut client, writes)).await {
        Ok(result) => result,
        Err(silent) => {
            drop(deadpool_postgres::Object::take(client));
            Err(silent)
        }
    }
}

async fn commit_pooled_on(
    client: &mut deadpool_postgres::Client,
    writes: &[Write],
) -> Result<(), StorageError> {
    let statements = Statements {
        record: client
            .prepare_cached(INSERT_RECORD)
            .await
            .map_err(pg_err("prepare"))?,
        log: client
            .prepare_cached(INSERT_LOG)
            .await
            .map_err(pg_err("prepare"))?,
        trim: client
            .prepare_cached(TRIM_LOGS)
            .await
            .map_err(pg_err("prepare"))?,
        call: client
            .prepare_cached(&insert_call())
            .await
            .map_err(pg_err("prepare"))?,
        task_insert: client
            .prepare_cached(&super::tasks::insert_sql())
            .await
            .map_err(pg_err("prepare"))?,
        task_replace: client
            .prepare_cached(super::tasks::REPLACE_SQL)
            .await
            .map_err(pg_err("prepare"))?,
    };
    commit_on(client, &statements, writes).await
}

impl Sink {
    fn new(pg: Arc<Pg>) -> Self {
        Self {
            pg,
            own: Arc::default(),
        }
    }

    /// The awaited writes' connection, opened if there is none (its driver spawned on the
    /// current runtime).
    async fn own(&self) -> Result<Own, StorageError> {
        if let Some(own) = self
            .own
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            && !own.client.is_closed()
        {
            return Ok(own);
        }
        let unavailable = |e: tokio_postgres::Error| StorageError::Unavailable {
            op: "connect for execution records",
            detail: e.to_string(),
        };
        let (client, connection) = self
            .pg
            .config()
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(unavailable)?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "the execution records' connection ended");
            }
        });
        let statements = prepare(&client).await.map_err(pg_err("prepare"))?;
        Ok(Own { client, statements })
    }
}

impl RecordSink for Sink {
    fn commit(&mut self, writes: &[Write]) -> Result<(), StorageError> {
        self.pg.block(commit_pooled(&self.pg, writes))
    }

    fn asynchronous(&self) -> Option<Arc<dyn AsyncRecordSink>> {
        Some(Arc::new(self.clone()))
    }
}

impl AsyncRecordSink for Sink {
    fn commit<'a>(&'a self, writes: &'a [Write]) -> BoxFuture<'a, Result<(), StorageError>> {
        Box::pin(async move {
            let mut own = self.own().await?;
            let result = answered(
                self.pg.answer_within,
                commit_on(&mut own.client, &own.statements, writes),
            )
            .await;
            // A connection that broke, or gave no answer in time, is not kept: the next commit
            // opens another.
            match result {
                Ok(result) => {
                    if !own.client.is_closed() {
                        *self.own.lock().unwrap_or_else(PoisonError::into_inner) = Some(own);
                    }
                    result
                }
                Err(silent) => Err(silent),
            }
        })
    }

    /// On the host's runtime, where the connection's driver is: a task there reaches it
    /// without waking another thread.
    fn spawn(&self, work: BoxFuture<'static, ()>) {
        tokio::spawn(work);
    }
}

fn pg_err(op: &'static str) -> impl Fn(tokio_postgres::Error) -> StorageError {
    pg(op)
}

impl RecordStore for PgRecords {
    fn sink(&self) -> Result<Box<dyn RecordSink>, StorageError> {
        Ok(Box::new(Sink::new(self.pg.clone())))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A commit with no answer (a half-open connection: the server's `statement_timeout`
    /// cannot end the wait) fails as unreachable once its time is up, instead of holding the
    /// records' turn for as long as TCP takes to notice; one that answers is passed through.
    #[tokio::test]
    async fn a_commit_without_an_answer_is_unavailable_in_time() {
        let within = Some(Duration::from_millis(50));
        let silent = answered(within, std::future::pending::<()>());
        let failed = tokio::time::timeout(Duration::from_secs(10), silent)
            .await
            .expect("bounded");
        assert!(
            matches!(failed, Err(StorageError::Unavailable { .. })),
            "{failed:?}"
        );
        assert_eq!(answered(within, async { 7 }).await.unwrap(), 7);
        assert_eq!(answered(None, async { 7 }).await.unwrap(), 7);
    }
}
