//! The call ledger on SQLite (table `agent_calls`).

use std::sync::Arc;

use hypervisor_protocol::grants::CallRecord;
use rusqlite::params;

use super::{Database, sql};
use crate::storage::StorageError;
use crate::storage::calls::CallLedger;

/// The SQLite call ledger.
#[derive(Clone)]
pub struct SqliteCalls {
    db: Arc<Database>,
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CallRecord> {
    let settlement: Option<String> = r.get(7)?;
    Ok(CallRecord {
        caller_execution: r.get(0)?,
        caller: r.get(1)?,
        callee: r.get(2)?,
        path: r.get(3)?,
        status: r.get(4)?,
        callee_execution: r.get(5)?,
        response_sha256: r.get(6)?,
        settlement: settlement.and_then(|s| serde_json::from_str(&s).ok()),
        at_ms: u64::try_from(r.get::<_, i64>(8)?).unwrap_or(0),
        duration_us: u64::try_from(r.get::<_, i64>(9)?).unwrap_or(0),
    })
}

const COLUMNS: &str = "caller_execution, caller, callee, path, status, callee_execution, \
                       response_sha256, settlement, at_ms, duration_us";

/// Inserts `call` on `conn` (inside the writer's transaction).
pub(super) fn insert_on(conn: &rusqlite::Connection, call: &CallRecord) -> rusqlite::Result<()> {
    let settlement = call.settlement.as_ref().map(ToString::to_string);
    conn.prepare_cached(&format!(
        "INSERT INTO agent_calls ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    ))?
    .execute(params![
        call.caller_execution,
        call.caller,
        call.callee,
        call.path,
        call.status,
        call.callee_execution,
        call.response_sha256,
        settlement,
        to_i64(call.at_ms),
        to_i64(call.duration_us)
    ])?;
    Ok(())
}

impl SqliteCalls {
    /// The ledger in `db`.
    pub fn new(db: Arc<Database>) -> Self {
        Self { db }
    }
}

impl CallLedger for SqliteCalls {
    fn by_caller(&self, caller: &str, limit: u32) -> Result<Vec<CallRecord>, StorageError> {
        let conn = self.db.lock();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM agent_calls WHERE caller = ?1 ORDER BY id DESC LIMIT ?2"
            ))
            .map_err(sql("list calls"))?;
        let rows = stmt
            .query_map(params![caller, limit], row)
            .map_err(sql("list calls"))?;
        rows.collect::<Result<_, _>>().map_err(sql("list calls"))
    }

    fn by_execution(&self, execution: &str) -> Result<Vec<CallRecord>, StorageError> {
        let conn = self.db.lock();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM agent_calls WHERE caller_execution = ?1 ORDER BY id"
            ))
            .map_err(sql("calls of a run"))?;
        let rows = stmt
            .query_map([execution], row)
            .map_err(sql("calls of a run"))?;
        rows.collect::<Result<_, _>>()
            .map_err(sql("calls of a run"))
    }
}
