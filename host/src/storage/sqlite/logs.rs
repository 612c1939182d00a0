//! Each agent's recent logs: the stderr of its clear invocations, sealed by the caller, the
//! newest [`LOGS_KEPT`] kept.

use rusqlite::{Connection, params};

use super::rows::{to_i64, to_u64};
use super::sql;
use crate::storage::StorageError;
use crate::storage::agents::{LOGS_KEPT, LogEntry};

/// The newest `limit` log entries of `name` on `conn`, oldest first.
///
/// # Errors
/// [`StorageError::Database`].
pub(super) fn read(
    conn: &Connection,
    name: &str,
    limit: u32,
) -> Result<Vec<LogEntry>, StorageError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT execution_id, at_ms, sealed FROM (
               SELECT id, execution_id, at_ms, sealed FROM agent_logs WHERE name = ?1
               ORDER BY id DESC LIMIT ?2) ORDER BY id",
        )
        .map_err(sql("read logs"))?;
    let rows = stmt
        .query_map(params![name, limit], |r| {
            Ok(LogEntry {
                execution_id: r.get(0)?,
                at_ms: to_u64(r.get(1)?),
                sealed: r.get(2)?,
            })
        })
        .map_err(sql("read logs"))?;
    rows.collect::<Result<_, _>>().map_err(sql("read logs"))
}

/// Appends a log entry on `conn` (a transaction of the records writer, or the shared
/// connection), keeping the newest [`LOGS_KEPT`] of the agent.
pub(crate) fn append_log_on(
    conn: &rusqlite::Connection,
    name: &str,
    entry: &LogEntry,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        // An agent deleted since the invocation gets no log (and the batch no foreign-key
        // failure).
        "INSERT INTO agent_logs (name, execution_id, at_ms, sealed)
         SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM agents WHERE name = ?1)",
    )?
    .execute(params![
        name,
        entry.execution_id,
        to_i64(entry.at_ms),
        entry.sealed
    ])?;
    conn.prepare_cached(
        "DELETE FROM agent_logs WHERE name = ?1 AND id <= (
           SELECT id FROM agent_logs WHERE name = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
    )?
    .execute(params![name, LOGS_KEPT])?;
    Ok(())
}
