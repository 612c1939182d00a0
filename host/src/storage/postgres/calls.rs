//! The call ledger on PostgreSQL (table `agent_calls`; written through the records' sink).

use std::sync::Arc;

use hypervisor_protocol::grants::CallRecord;
use tokio_postgres::Row;

use super::{Pg, pg, unsigned};
use crate::storage::StorageError;
use crate::storage::calls::CallLedger;

/// The PostgreSQL call ledger.
pub struct PgCalls {
    pg: Arc<Pg>,
}

impl PgCalls {
    /// The ledger on `pg`.
    pub fn new(pg: Arc<Pg>) -> Self {
        Self { pg }
    }
}

pub(super) const COLUMNS: &str = "caller_execution, caller, callee, path, status, \
     callee_execution, response_sha256, settlement, at_ms, duration_us";

fn call(r: &Row) -> CallRecord {
    let settlement: Option<String> = r.get(7);
    CallRecord {
        caller_execution: r.get(0),
        caller: r.get(1),
        callee: r.get(2),
        path: r.get(3),
        status: u16::try_from(r.get::<_, i32>(4)).unwrap_or(0),
        callee_execution: r.get(5),
        response_sha256: r.get(6),
        settlement: settlement.and_then(|s| serde_json::from_str(&s).ok()),
        at_ms: unsigned(r.get(8)),
        duration_us: unsigned(r.get(9)),
    }
}

impl CallLedger for PgCalls {
    fn by_caller(&self, caller: &str, limit: u32) -> Result<Vec<CallRecord>, StorageError> {
        self.pg.block(async {
            let client = self.pg.client("list calls").await?;
            let rows = client
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM agent_calls WHERE caller = $1 ORDER BY id DESC LIMIT $2"
                    ),
                    &[&caller, &i64::from(limit)],
                )
                .await
                .map_err(pg("list calls"))?;
            Ok(rows.iter().map(call).collect())
        })
    }

    fn by_execution(&self, execution: &str) -> Result<Vec<CallRecord>, StorageError> {
        self.pg.block(async {
            let client = self.pg.client("calls of a run").await?;
            let rows = client
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM agent_calls WHERE caller_execution = $1 ORDER BY id"
                    ),
                    &[&execution],
                )
                .await
                .map_err(pg("calls of a run"))?;
            Ok(rows.iter().map(call).collect())
        })
    }
}
