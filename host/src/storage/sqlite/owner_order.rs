//! The order of owner operations: each agent name keeps the sequence number (and signing
//! time) of the last operation accepted that changed it (table `agent_owner_ops`, kept for a
//! while after a deletion), and an operation whose sequence is not greater is refused as a
//! replay, inside the transaction that would apply it (see the catalog's module documentation).

use rusqlite::{OptionalExtension, params};

use super::rows::to_i64;
use super::sql;
use crate::storage::StorageError;
use crate::storage::agents::{OwnerOrder, RegistryError};

/// How long the mark of a deleted agent is kept after its last signing time, seconds: a
/// signature older than one validity window is refused anyway; the second is a margin for the
/// host's clock being set back.
pub(super) const DELETED_MARK_KEPT_SECONDS: u64 =
    2 * hypervisor_protocol::agents::OWNER_SIGNATURE_WINDOW_SECONDS;

/// Refuses an owner operation on `name` at `order` unless its sequence is greater than the
/// last one accepted.
pub(crate) fn check_order(
    tx: &rusqlite::Transaction<'_>,
    name: &str,
    order: OwnerOrder,
) -> Result<(), RegistryError> {
    let last: Option<i64> = tx
        .query_row(
            "SELECT last_sequence FROM agent_owner_ops WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql("read owner mark"))?;
    match last {
        Some(last) if to_i64(order.sequence) <= last => Err(RegistryError::Replayed {
            last: u64::try_from(last).unwrap_or(0),
        }),
        _ => Ok(()),
    }
}

/// Records `order` as the last owner operation on `name`, and forgets the marks of agents
/// deleted long enough ago.
pub(crate) fn mark(
    tx: &rusqlite::Transaction<'_>,
    name: &str,
    order: OwnerOrder,
    now: u64,
) -> Result<(), StorageError> {
    tx.execute(
        "INSERT INTO agent_owner_ops (name, last_signed_at, last_sequence) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO UPDATE SET last_signed_at = excluded.last_signed_at,
           last_sequence = excluded.last_sequence",
        params![name, to_i64(order.signed_at), to_i64(order.sequence)],
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
