//! The execution record and its SQL mapping: the `executions` columns, reading a row back and
//! writing one.

use rusqlite::{Connection, params};
use serde::Serialize;

/// One execution or invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExecutionRecord {
    /// UUID v7.
    pub id: String,
    /// The route that ran it.
    pub route: String,
    /// The agent, for invocations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The agent's version, for invocations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_version: Option<u32>,
    /// SHA-256 of the component (or script) that ran, hex.
    pub code_hash: String,
    /// SHA-256 of the caller's public key (SEC1 bytes), hex; empty for anonymous calls.
    pub caller_hash: String,
    /// Start, Unix milliseconds.
    pub started_ms: u64,
    /// Duration, microseconds.
    pub duration_us: u64,
    /// How it ended (`exited`, `time_limit_exceeded`, …, or `error` for a handler error).
    pub status: String,
    /// The exit code, for commands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The result's SHA-256 commitment, hex, when there is a result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commitment: Option<String>,
    /// The payment reference (see the receipt's `payment`), for paid requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment: Option<String>,
}

pub(super) const COLUMNS: &str = "id, route, agent, agent_version, code_hash, caller_hash, \
                                  started_ms, duration_us, status, exit_code, commitment, \
                                  payment";

pub(super) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(super) fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ExecutionRecord> {
    let u =
        |i: usize| -> rusqlite::Result<u64> { Ok(u64::try_from(r.get::<_, i64>(i)?).unwrap_or(0)) };
    Ok(ExecutionRecord {
        id: r.get(0)?,
        route: r.get(1)?,
        agent: r.get(2)?,
        agent_version: r.get(3)?,
        code_hash: r.get(4)?,
        caller_hash: r.get(5)?,
        started_ms: u(6)?,
        duration_us: u(7)?,
        status: r.get(8)?,
        exit_code: r.get(9)?,
        commitment: r.get(10)?,
        payment: r.get(11)?,
    })
}

pub(super) fn insert_record(conn: &Connection, r: &ExecutionRecord) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO executions
           (id, route, agent, agent_version, code_hash, caller_hash, started_ms, duration_us,
            status, exit_code, commitment, payment)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        r.id,
        r.route,
        r.agent,
        r.agent_version,
        r.code_hash,
        r.caller_hash,
        to_i64(r.started_ms),
        to_i64(r.duration_us),
        r.status,
        r.exit_code,
        r.commitment,
        r.payment,
    ])?;
    Ok(())
}
