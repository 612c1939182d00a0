//! A2A tasks on PostgreSQL (table `a2a_tasks`). The conditional replacement is one `UPDATE …
//! WHERE state …`: of two replicas continuing the same waiting task at once, the row lock
//! makes the second re-check the state the first wrote, so exactly one wins.

use std::sync::Arc;

use tokio_postgres::{GenericClient, Row, Statement};

use super::{Pg, big, pg, unsigned};
use crate::storage::StorageError;
use crate::storage::tasks::{SealedTask, StoredTask, TERMINAL, TaskBackend, TaskFilter, TaskQuota};

/// The PostgreSQL task table.
pub struct PgTasks {
    pg: Arc<Pg>,
}

impl PgTasks {
    /// The table on `pg`.
    pub fn new(pg: Arc<Pg>) -> Self {
        Self { pg }
    }
}

const COLUMNS: &str = "id, agent, caller, sealed_task, sealed_pending, created_ms, updated_ms";

/// The tasks counted against a new task's caller `$3` on agent `$2`: the caller's, or for an
/// anonymous caller (empty), the agent's anonymous ones (`a2a_usage`, kept by a trigger).
const COUNT_SQL: &str = "SELECT coalesce((SELECT tasks FROM a2a_usage \
     WHERE key = a2a_usage_key($3, $2)), 0)";

/// The bytes all stored tasks take (sealed task and pending message).
const BYTES_SQL: &str = "SELECT coalesce((SELECT bytes FROM a2a_usage WHERE key = ''), 0)";

/// A new task's insert within its quota, in one statement; two replicas inserting at once may
/// each pass a bound by one (read committed), never more.
pub(super) fn insert_sql() -> String {
    format!(
        "INSERT INTO a2a_tasks (id, agent, caller, context_id, state, sealed_task,
           sealed_pending, created_ms, updated_ms, owner)
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10
         WHERE ({COUNT_SQL}) < $11 AND ({BYTES_SQL}) + $12 <= $13"
    )
}

/// A task's replacement if its stored state is `$6` (any but a terminal one, `$7`, when
/// `NULL`).
pub(super) const REPLACE_SQL: &str =
    "UPDATE a2a_tasks SET state = $2, sealed_task = $3, sealed_pending = $4,
       updated_ms = $5, owner = $8
     WHERE id = $1 AND CASE WHEN $6::TEXT IS NULL THEN state <> ALL($7) ELSE state = $6 END";

/// Runs [`insert_sql`] (prepared as `stmt`) for `row`: whether it was inserted.
pub(super) async fn insert_with(
    client: &impl GenericClient,
    stmt: &Statement,
    row: &SealedTask,
    quota: &TaskQuota,
) -> Result<bool, tokio_postgres::Error> {
    let inserted = client
        .execute(
            stmt,
            &[
                &row.id,
                &row.agent,
                &row.caller,
                &row.context_id,
                &row.state,
                &row.task,
                &row.pending,
                &big(row.created_ms),
                &big(row.updated_ms),
                &row.owner,
                &big(quota.tasks_bound(&row.caller)),
                &big(TaskQuota::size_of(row)),
                &big(quota.total_bytes),
            ],
        )
        .await?;
    Ok(inserted == 1)
}

/// Runs [`REPLACE_SQL`] (prepared as `stmt`) for `row`: whether it was replaced.
pub(super) async fn replace_with(
    client: &impl GenericClient,
    stmt: &Statement,
    row: &SealedTask,
    expected: Option<&str>,
) -> Result<bool, tokio_postgres::Error> {
    let terminal: Vec<&str> = TERMINAL.to_vec();
    let changed = client
        .execute(
            stmt,
            &[
                &row.id,
                &row.state,
                &row.task,
                &row.pending,
                &big(row.updated_ms),
                &expected,
                &terminal,
                &row.owner,
            ],
        )
        .await?;
    Ok(changed == 1)
}

fn stored(r: &Row) -> StoredTask {
    StoredTask {
        id: r.get(0),
        agent: r.get(1),
        caller: r.get(2),
        task: r.get(3),
        pending: r.get(4),
        created_ms: unsigned(r.get(5)),
        updated_ms: unsigned(r.get(6)),
    }
}

impl TaskBackend for PgTasks {
    fn insert(&self, row: &SealedTask, quota: &TaskQuota) -> Result<bool, StorageError> {
        self.pg.block(async {
            let client = self.pg.client("insert task").await?;
            let stmt = client
                .prepare_cached(&insert_sql())
                .await
                .map_err(pg("insert task"))?;
            insert_with(&**client, &stmt, row, quota)
                .await
                .map_err(pg("insert task"))
        })
    }

    fn usage(&self, caller: &str, agent: &str) -> Result<(u64, u64), StorageError> {
        self.pg.block(async {
            let client = self.pg.client("task usage").await?;
            let stmt = client
                .prepare_cached(&format!(
                    "SELECT ({}), ({BYTES_SQL})",
                    COUNT_SQL.replace("$3", "$1")
                ))
                .await
                .map_err(pg("task usage"))?;
            let row = client
                .query_one(&stmt, &[&caller, &agent])
                .await
                .map_err(pg("task usage"))?;
            Ok((unsigned(row.get(0)), unsigned(row.get(1))))
        })
    }

    fn get(&self, id: &str) -> Result<Option<StoredTask>, StorageError> {
        self.pg.block(async {
            let client = self.pg.client("get task").await?;
            let stmt = client
                .prepare_cached(&format!("SELECT {COLUMNS} FROM a2a_tasks WHERE id = $1"))
                .await
                .map_err(pg("get task"))?;
            let row = client
                .query_opt(&stmt, &[&id])
                .await
                .map_err(pg("get task"))?;
            Ok(row.as_ref().map(stored))
        })
    }

    fn replace(&self, row: &SealedTask, expected: Option<&str>) -> Result<bool, StorageError> {
        self.pg.block(async {
            let client = self.pg.client("update task").await?;
            let stmt = client
                .prepare_cached(REPLACE_SQL)
                .await
                .map_err(pg("update task"))?;
            replace_with(&**client, &stmt, row, expected)
                .await
                .map_err(pg("update task"))
        })
    }

    fn list(
        &self,
        filter: &TaskFilter<'_>,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<StoredTask>, u64), StorageError> {
        let condition = "caller = $1 AND ($2::TEXT IS NULL OR agent = $2)
             AND ($3::TEXT IS NULL OR context_id = $3) AND ($4::TEXT IS NULL OR state = $4)
             AND ($5::BIGINT IS NULL OR updated_ms >= $5)";
        let state = filter.state.map(|s| s.v1_name());
        let since = filter.updated_since_ms.map(big);
        self.pg.block(async {
            let client = self.pg.client("list tasks").await?;
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] = [
                &filter.caller,
                &filter.agent,
                &filter.context_id,
                &state,
                &since,
            ];
            let total: i64 = client
                .query_one(
                    &format!("SELECT count(*) FROM a2a_tasks WHERE {condition}"),
                    &params,
                )
                .await
                .map_err(pg("count tasks"))?
                .get(0);
            let mut page = params.to_vec();
            let limit = i64::from(limit);
            let offset = big(offset);
            page.push(&limit);
            page.push(&offset);
            let rows = client
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM a2a_tasks WHERE {condition}
                         ORDER BY updated_ms DESC, id LIMIT $6 OFFSET $7"
                    ),
                    &page,
                )
                .await
                .map_err(pg("list tasks"))?;
            Ok((rows.iter().map(stored).collect(), unsigned(total)))
        })
    }

    fn unfinished(&self, owner: &str, alive_since_ms: u64) -> Result<Vec<String>, StorageError> {
        self.pg.block(async {
            let client = self.pg.client("unfinished tasks").await?;
            let rows = client
                .query(
                    "SELECT t.id FROM a2a_tasks t
                     WHERE t.state IN ('TASK_STATE_SUBMITTED', 'TASK_STATE_WORKING')
                       AND t.owner <> $1
                       AND NOT EXISTS (SELECT 1 FROM cluster_members m
                                       WHERE m.run = t.owner AND m.heartbeat_ms >= $2)",
                    &[&owner, &big(alive_since_ms)],
                )
                .await
                .map_err(pg("unfinished tasks"))?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    fn reap(&self, before_ms: u64) -> Result<usize, StorageError> {
        self.pg.block(async {
            let client = self.pg.client("reap tasks").await?;
            let n = client
                .execute(
                    "DELETE FROM a2a_tasks WHERE updated_ms < $1 AND state IN
                       ('TASK_STATE_COMPLETED', 'TASK_STATE_FAILED', 'TASK_STATE_CANCELED',
                        'TASK_STATE_REJECTED', 'TASK_STATE_INPUT_REQUIRED')",
                    &[&big(before_ms)],
                )
                .await
                .map_err(pg("reap tasks"))?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }
}
