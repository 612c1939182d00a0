//! Agents' key-value state (`wasi:keyvalue`, `wit/state.wit`): the backend interface
//! ([`StateBackend`], on SQLite and PostgreSQL) and the store above it ([`StateStore`]: sealing,
//! quotas, the read cache).
//!
//! What a backend keeps, per entry: the agent's name, the entry's id and its bucket's id (both
//! HMACs under the agent's state key, so neither bucket names nor keys are readable in the
//! database), a random version (changed by every write: compare-and-swap compares it), the
//! entry's size (key and value bytes, for the quota), and two sealed fields, the bucket and key
//! names (for `list-keys` and exports) and the value. Per agent, one usage row (keys, bytes):
//! every write locks it first, so the writes of one agent are serialised across replicas and
//! the quota check is exact.

mod cache;
mod counter;
mod import;
mod keys;
mod service;

pub use import::{Buckets, Imported};
pub use keys::{AgentKeys, EntryId};
pub use service::{KvError, StateLimits, StateStore};

use crate::storage::StorageError;
use crate::storage::agents::{OwnerOrder, RegistryError};

/// An entry as a backend holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Changed by every write (random).
    pub version: i64,
    /// Key and value bytes.
    pub size: u64,
    /// The value, sealed.
    pub sealed_value: Vec<u8>,
}

/// An entry with its names, for listings and exports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedRow {
    /// The entry's id.
    pub id: EntryId,
    /// The bucket and key names, sealed.
    pub sealed_name: Vec<u8>,
    /// The value, sealed.
    pub sealed_value: Vec<u8>,
}

/// What a write does to an entry, decided from what the entry holds (under the agent's lock).
#[derive(Debug)]
pub enum Change {
    /// Leave it as it is.
    Keep,
    /// Write it.
    Put {
        /// The bucket and key names, sealed.
        sealed_name: Vec<u8>,
        /// The value, sealed.
        sealed_value: Vec<u8>,
        /// Key and value bytes.
        size: u64,
        /// The version to write (random, fresh).
        version: i64,
    },
    /// Remove it.
    Delete,
}

/// An agent's limits, checked by the backend against its usage row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// The most keys.
    pub max_keys: u64,
    /// The most bytes (keys and values).
    pub max_bytes: u64,
}

/// How a write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Done (or nothing to do).
    Done,
    /// Refused: the agent would hold more than its quota.
    OverQuota {
        /// Keys it would hold.
        keys: u64,
        /// Bytes it would hold.
        bytes: u64,
    },
}

/// An agent's usage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Keys held.
    pub keys: u64,
    /// Bytes held (keys and values).
    pub bytes: u64,
}

/// Where one entry is.
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    /// The agent.
    pub agent: &'a str,
    /// Its bucket's id.
    pub bucket: &'a EntryId,
    /// The entry's id.
    pub id: &'a EntryId,
}

/// The state tables of one backend.
pub trait StateBackend: Send + Sync {
    /// The entry at `id`, if any.
    ///
    /// # Errors
    /// [`StorageError`].
    fn get(&self, agent: &str, id: &EntryId) -> Result<Option<Stored>, StorageError>;

    /// Applies `change` to the entry at `place`, atomically: with the agent's usage row locked,
    /// `change` sees what the entry holds now, and what it returns is written (within `quota`)
    /// in the same transaction.
    ///
    /// # Errors
    /// [`StorageError`].
    fn update(
        &self,
        place: Place<'_>,
        quota: Quota,
        change: &mut (dyn FnMut(Option<&Stored>) -> Change + Send),
    ) -> Result<Applied, StorageError>;

    /// One page of a bucket's entries (names only: `sealed_value` empty), by id, after
    /// `offset` entries.
    ///
    /// # Errors
    /// [`StorageError`].
    fn names(
        &self,
        agent: &str,
        bucket: &EntryId,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<NamedRow>, StorageError>;

    /// One page of all the agent's entries, by id, after `after` (empty: from the start).
    ///
    /// # Errors
    /// [`StorageError`].
    fn export(&self, agent: &str, after: &[u8], limit: u32) -> Result<Vec<NamedRow>, StorageError>;

    /// The agent's usage.
    ///
    /// # Errors
    /// [`StorageError`].
    fn usage(&self, agent: &str) -> Result<Usage, StorageError>;

    /// Removes all of the agent's entries and its usage row; returns how many entries. With
    /// `order` (the owner's wipe), refused unless later than the last owner operation on the
    /// agent, and recorded as the last.
    ///
    /// # Errors
    /// [`RegistryError`].
    fn wipe(&self, agent: &str, order: Option<OwnerOrder>, now: u64) -> Result<u64, RegistryError>;

    /// Records an owner's operation on the agent's state that is not a wipe (an import),
    /// refused unless later than the last owner operation on the agent.
    ///
    /// # Errors
    /// [`RegistryError`].
    fn mark_order(&self, agent: &str, order: OwnerOrder, now: u64) -> Result<(), RegistryError>;
}

/// What a backend does for an `update`, once it has the agent's usage and the entry: the new
/// usage (checked against `quota`) and what to write.
pub(crate) fn plan(
    usage: Usage,
    old: Option<&Stored>,
    change: &Change,
    quota: Quota,
) -> Result<Usage, Applied> {
    let (old_keys, old_bytes) = old.map_or((0, 0), |s| (1, s.size));
    let (new_keys, new_bytes) = match change {
        Change::Keep => return Ok(usage),
        Change::Put { size, .. } => (1, *size),
        Change::Delete => (0, 0),
    };
    let keys = (usage.keys + new_keys).saturating_sub(old_keys);
    let bytes = (usage.bytes + new_bytes).saturating_sub(old_bytes);
    // Shrinking is always allowed, even past a quota lowered since.
    let grows = keys > usage.keys || bytes > usage.bytes;
    if grows && (keys > quota.max_keys || bytes > quota.max_bytes) {
        return Err(Applied::OverQuota { keys, bytes });
    }
    Ok(Usage { keys, bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_count_keys_and_bytes() {
        let quota = Quota {
            max_keys: 2,
            max_bytes: 100,
        };
        let put = |size| Change::Put {
            sealed_name: vec![],
            sealed_value: vec![],
            size,
            version: 1,
        };
        let u = Usage { keys: 1, bytes: 40 };
        assert_eq!(
            plan(u, None, &put(50), quota),
            Ok(Usage { keys: 2, bytes: 90 })
        );
        assert_eq!(
            plan(u, None, &put(61), quota),
            Err(Applied::OverQuota {
                keys: 2,
                bytes: 101
            })
        );
        let old = Stored {
            version: 1,
            size: 40,
            sealed_value: vec![],
        };
        assert_eq!(
            plan(u, Some(&old), &put(100), quota),
            Ok(Usage {
                keys: 1,
                bytes: 100
            })
        );
        assert_eq!(
            plan(u, Some(&old), &Change::Delete, quota),
            Ok(Usage::default())
        );
        let full = Usage { keys: 2, bytes: 10 };
        assert!(plan(full, None, &put(1), quota).is_err());
        // Over a quota lowered since, a write that shrinks still goes through.
        let over = Usage { keys: 3, bytes: 10 };
        assert!(plan(over, Some(&old), &Change::Delete, quota).is_ok());
    }
}
