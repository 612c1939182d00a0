//! The ledger of agents' outgoing calls (table `agent_calls`): one row per request an agent's
//! run sent through its grants, queued when the response comes back, before the guest sees it,
//! on the records' group-commit writer ([`crate::storage::records::Records::insert_call_later`]):
//! committed within its linger, and never after the calling run's own record. Rows outlive
//! the caller's deletion: they are evidence of what was called and paid. Reads here see what
//! the writer committed: flush the records first.

use std::sync::Arc;

use hypervisor_protocol::grants::CallRecord;
use rusqlite::params;

use super::StorageError;
use super::db::{Database, sql};

/// The call ledger.
#[derive(Clone)]
pub struct CallLedger {
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
pub(crate) fn insert_on(conn: &rusqlite::Connection, call: &CallRecord) -> rusqlite::Result<()> {
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

impl CallLedger {
    /// The ledger in `db`.
    pub fn new(db: Arc<Database>) -> Self {
        Self { db }
    }

    /// Records one call at once (tests; the host records through the records' writer).
    ///
    /// # Errors
    /// [`StorageError::Database`].
    pub fn insert(&self, call: &CallRecord) -> Result<(), StorageError> {
        insert_on(&self.db.lock(), call).map_err(sql("insert call"))
    }

    /// The newest `limit` calls agent `caller` made, newest first.
    ///
    /// # Errors
    /// [`StorageError::Database`].
    pub fn by_caller(&self, caller: &str, limit: u32) -> Result<Vec<CallRecord>, StorageError> {
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

    /// The calls one run made, in the order they were made.
    ///
    /// # Errors
    /// [`StorageError::Database`].
    pub fn by_execution(&self, execution: &str) -> Result<Vec<CallRecord>, StorageError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_listed_by_caller_and_by_run() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = CallLedger::new(Arc::new(Database::open(dir.path()).unwrap()));
        let call = |run: &str, callee: &str, at_ms| CallRecord {
            caller_execution: run.into(),
            caller: "buyer".into(),
            callee: callee.into(),
            path: "/invoke".into(),
            status: 200,
            callee_execution: Some("x".into()),
            response_sha256: Some("ab".into()),
            settlement: Some(serde_json::json!({"transaction": "0x1"})),
            at_ms,
            duration_us: 5,
        };
        ledger.insert(&call("r1", "seller", 1)).unwrap();
        ledger.insert(&call("r1", "other", 2)).unwrap();
        ledger.insert(&call("r2", "seller", 3)).unwrap();
        let newest = ledger.by_caller("buyer", 2).unwrap();
        assert_eq!(newest.len(), 2);
        assert_eq!(newest[0], call("r2", "seller", 3));
        let run = ledger.by_execution("r1").unwrap();
        assert_eq!(
            run.iter().map(|c| c.callee.as_str()).collect::<Vec<_>>(),
            ["seller", "other"]
        );
        assert!(ledger.by_caller("nobody", 10).unwrap().is_empty());
    }
}
