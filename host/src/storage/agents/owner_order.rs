//! The order of owner operations: each agent name keeps the signing time of the last
//! deployment or deletion accepted (table `agent_owner_ops`, kept for a while after a
//! deletion), and an operation signed no later is refused as a replay, inside the transaction
//! that would apply it (see the registry's module documentation).

use rusqlite::{OptionalExtension, params};

use super::RegistryError;
use super::rows::to_i64;
use crate::storage::StorageError;
use crate::storage::db::sql;

/// How long the mark of a deleted agent is kept after its last signing time, seconds: a
/// signature older than one validity window is refused anyway; the second is a margin for the
/// host's clock being set back.
pub(super) const DELETED_MARK_KEPT_SECONDS: u64 =
    2 * hypervisor_protocol::agents::OWNER_SIGNATURE_WINDOW_SECONDS;

/// Refuses an owner operation on `name` signed at `signed_at` unless it is later than the last
/// one accepted.
pub(super) fn check_order(
    tx: &rusqlite::Transaction<'_>,
    name: &str,
    signed_at: u64,
) -> Result<(), RegistryError> {
    let last: Option<i64> = tx
        .query_row(
            "SELECT last_signed_at FROM agent_owner_ops WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql("read owner mark"))?;
    match last {
        Some(last) if to_i64(signed_at) <= last => Err(RegistryError::Replayed),
        _ => Ok(()),
    }
}

/// Records `signed_at` as the last owner operation on `name`, and forgets the marks of agents
/// deleted long enough ago.
pub(super) fn mark(
    tx: &rusqlite::Transaction<'_>,
    name: &str,
    signed_at: u64,
    now: u64,
) -> Result<(), StorageError> {
    tx.execute(
        "INSERT INTO agent_owner_ops (name, last_signed_at) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET last_signed_at = excluded.last_signed_at",
        params![name, to_i64(signed_at)],
    )
    .map_err(sql("write owner mark"))?;
    tx.execute(
        "DELETE FROM agent_owner_ops WHERE last_signed_at < ?1
           AND name NOT IN (SELECT name FROM agents)",
        [to_i64(now.saturating_sub(DELETED_MARK_KEPT_SECONDS))],
    )
    .map_err(sql("prune owner marks"))?;
    Ok(())
}
