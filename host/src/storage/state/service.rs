//! [`StateStore`]: agents' key-value state above a [`StateBackend`]: names and values sealed
//! per agent ([`AgentKeys`]), quotas, counters and compare-and-swap, and a read cache.
//!
//! Reads go through the read cache (`super::cache`). Every write drops its entry; on a shared
//! database, a write on another replica drops it when its change notification arrives
//! ([`StateStore::invalidate`]), and a lost notification connection empties the cache
//! ([`StateStore::invalidate_all`]). Counters and compare-and-swap never read the cache.

use std::collections::BTreeMap;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::cache::{ReadCache, Value};
use super::counter;
use super::keys::{AgentKeys, EntryId};
use super::{Applied, Change, Place, Quota, StateBackend, Stored, Usage};
use crate::crypto::at_rest::SealingKey;
use crate::storage::StorageError;
use crate::storage::agents::{OwnerOrder, RegistryError};
use hypervisor_protocol::state::STATE_QUOTA_EXCEEDED;

/// The host's limits on agents' state (`[state]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateLimits {
    /// The most keys per agent.
    pub max_keys: u64,
    /// The most bytes (keys and values) per agent.
    pub max_bytes: u64,
    /// The largest value.
    pub max_value_bytes: u64,
    /// The longest key or bucket name.
    pub max_key_bytes: usize,
    /// Bytes of values the read cache keeps.
    pub cache_bytes: usize,
}

/// Keys a `list-keys` page holds at most.
pub const LIST_PAGE: u32 = 100;

/// Why a key-value operation failed (what the guest is told, through `error::other`).
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// A quota: the agent would hold more than it may.
    #[error("{STATE_QUOTA_EXCEEDED}: {0}")]
    Quota(String),
    /// A key, bucket name or value over its limit.
    #[error("{0}")]
    TooLarge(String),
    /// `increment` on a value that is not an 8-byte counter, or past its range.
    #[error("{0}")]
    Counter(String),
    /// A compare-and-swap whose value changed since it was read.
    #[error("the value changed since it was read")]
    Changed,
    /// A sealed entry did not open (tampered with, or sealed under another key).
    #[error("a stored entry is corrupt")]
    Corrupt,
    /// The database failed.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
}

impl KvError {
    /// Whether this is a quota refusal (reported to the invocation's caller too).
    pub fn is_quota(&self) -> bool {
        matches!(self, KvError::Quota(_))
    }
}

/// Agents' key-value state.
pub struct StateStore {
    backend: Arc<dyn StateBackend>,
    root: Arc<SealingKey>,
    limits: StateLimits,
    cache: ReadCache,
}

impl StateStore {
    /// The store over `backend`, deriving agents' keys from `root` (the at-rest key, or the
    /// cluster key on PostgreSQL).
    pub fn new(backend: Arc<dyn StateBackend>, root: Arc<SealingKey>, limits: StateLimits) -> Self {
        Self {
            backend,
            root,
            limits,
            cache: ReadCache::new(limits.cache_bytes),
        }
    }

    /// The limits.
    pub fn limits(&self) -> StateLimits {
        self.limits
    }

    /// The keys of agent `agent` owned by `owner_key`.
    pub fn keys(&self, agent: &str, owner_key: &str) -> AgentKeys {
        AgentKeys::derive(&self.root, agent, owner_key)
    }

    /// The key that seals `agent`'s configuration.
    pub fn config_key(&self, agent: &str, owner_key: &str) -> SealingKey {
        AgentKeys::config_key(&self.root, agent, owner_key)
    }

    /// Drops entry `id` from the read cache (written here or on another replica).
    pub fn invalidate(&self, id: &EntryId) {
        self.cache.invalidate(id);
    }

    /// Empties the read cache (an agent wiped, or notifications possibly missed).
    pub fn invalidate_all(&self) {
        self.cache.clear();
    }

    pub(super) fn check_name(&self, what: &str, name: &str) -> Result<(), KvError> {
        if name.len() > self.limits.max_key_bytes {
            return Err(KvError::TooLarge(format!(
                "the {what} is {} bytes, more than this host's limit of {} (state.max_key_bytes)",
                name.len(),
                self.limits.max_key_bytes
            )));
        }
        Ok(())
    }

    /// Checks a bucket name (`open`): at most `state.max_key_bytes`.
    ///
    /// # Errors
    /// [`KvError::TooLarge`].
    pub fn check_bucket(&self, bucket: &str) -> Result<(), KvError> {
        self.check_name("bucket name", bucket)
    }

    /// The value of `key` in `bucket`, through the read cache.
    ///
    /// # Errors
    /// [`KvError`].
    pub fn get(&self, keys: &AgentKeys, bucket: &str, key: &str) -> Result<Value, KvError> {
        self.check_name("key", key)?;
        let id = keys.entry_id(bucket, key);
        let generation = match self.cache.get(&id) {
            Ok(hit) => return Ok(hit),
            Err(generation) => generation,
        };
        let value = self
            .backend
            .get(&keys.agent, &id)?
            .map(|s| keys.open_value(&id, &s.sealed_value).map(Arc::new))
            .transpose()
            .map_err(|_| KvError::Corrupt)?;
        self.cache.fill(generation, id, value.clone());
        Ok(value)
    }

    /// Whether `key` is set in `bucket`.
    ///
    /// # Errors
    /// [`KvError`].
    pub fn exists(&self, keys: &AgentKeys, bucket: &str, key: &str) -> Result<bool, KvError> {
        Ok(self.get(keys, bucket, key)?.is_some())
    }

    /// Applies `decide` to the entry of `key` in `bucket` under the agent's lock (see
    /// [`StateBackend::update`]); `decide` sees the stored entry's version and value.
    fn update(
        &self,
        keys: &AgentKeys,
        bucket: &str,
        key: &str,
        mut decide: impl FnMut(Option<(i64, &[u8])>) -> Result<Option<Zeroizing<Vec<u8>>>, KvError>
        + Send,
        delete: bool,
    ) -> Result<(), KvError> {
        self.check_name("key", key)?;
        self.check_bucket(bucket)?;
        let id = keys.entry_id(bucket, key);
        let bucket_id = keys.bucket_id(bucket);
        let quota = Quota {
            max_keys: self.limits.max_keys,
            max_bytes: self.limits.max_bytes,
        };
        let mut failure: Option<KvError> = None;
        let applied = self.backend.update(
            Place {
                agent: &keys.agent,
                bucket: &bucket_id,
                id: &id,
            },
            quota,
            &mut |old: Option<&Stored>| {
                let opened = match old {
                    Some(s) => match keys.open_value(&id, &s.sealed_value) {
                        Ok(v) => Some((s.version, v)),
                        Err(_) => {
                            failure = Some(KvError::Corrupt);
                            return Change::Keep;
                        }
                    },
                    None => None,
                };
                let new = match decide(opened.as_ref().map(|(v, value)| (*v, value.as_slice()))) {
                    Ok(new) => new,
                    Err(e) => {
                        failure = Some(e);
                        return Change::Keep;
                    }
                };
                match new {
                    None if delete => Change::Delete,
                    None => Change::Keep,
                    Some(value) => match (
                        keys.seal_name(&id, bucket, key),
                        keys.seal_value(&id, &value),
                    ) {
                        (Ok(sealed_name), Ok(sealed_value)) => Change::Put {
                            sealed_name,
                            sealed_value,
                            size: (key.len() + value.len()) as u64,
                            version: fresh_version(),
                        },
                        _ => {
                            failure = Some(KvError::Corrupt);
                            Change::Keep
                        }
                    },
                }
            },
        );
        self.invalidate(&id);
        let applied = applied?;
        if let Some(e) = failure {
            return Err(e);
        }
        match applied {
            Applied::Done => Ok(()),
            Applied::OverQuota { keys: k, bytes } => Err(KvError::Quota(if k > quota.max_keys {
                format!(
                    "agent {} would hold {k} keys, more than this host allows ({}, \
                     state.max_keys)",
                    keys.agent, quota.max_keys
                )
            } else {
                format!(
                    "agent {} would hold {bytes} bytes of keys and values, more than this host \
                     allows ({}, state.max_bytes)",
                    keys.agent, quota.max_bytes
                )
            })),
        }
    }

    pub(super) fn check_value(&self, value: &[u8]) -> Result<(), KvError> {
        if value.len() as u64 > self.limits.max_value_bytes {
            return Err(KvError::TooLarge(format!(
                "the value is {} bytes, more than this host's limit of {} (state.max_value_bytes)",
                value.len(),
                self.limits.max_value_bytes
            )));
        }
        Ok(())
    }

    /// Sets `key` in `bucket` to `value`.
    ///
    /// # Errors
    /// [`KvError`].
    pub fn set(
        &self,
        keys: &AgentKeys,
        bucket: &str,
        key: &str,
        value: &[u8],
    ) -> Result<(), KvError> {
        self.check_value(value)?;
        let value = Zeroizing::new(value.to_vec());
        self.update(keys, bucket, key, |_| Ok(Some(value.clone())), false)
    }

    /// Removes `key` from `bucket`.
    ///
    /// # Errors
    /// [`KvError`].
    pub fn delete(&self, keys: &AgentKeys, bucket: &str, key: &str) -> Result<(), KvError> {
        self.update(keys, bucket, key, |_| Ok(None), true)
    }

    /// Adds `delta` to the counter at `key` (8 bytes little-endian, `signed` or not, or decimal
    /// text, which stays decimal; absent: 0, written as 8 bytes) and returns the new value.
    ///
    /// # Errors
    /// [`KvError::Counter`] for another value or an overflow; the others of a write.
    pub fn add(
        &self,
        keys: &AgentKeys,
        bucket: &str,
        key: &str,
        delta: i128,
        signed: bool,
    ) -> Result<i128, KvError> {
        let mut result = 0i128;
        self.update(
            keys,
            bucket,
            key,
            |old| {
                let (current, form) = match old {
                    None => (0, counter::Form::Binary),
                    Some((_, bytes)) => counter::read(bytes, signed).ok_or_else(|| {
                        KvError::Counter(format!(
                            "the value at {key:?} ({} bytes) is not a counter: 8 bytes \
                             little-endian, or decimal text",
                            bytes.len()
                        ))
                    })?,
                };
                let new = current + delta;
                let bytes = counter::write(new, signed, form).ok_or_else(|| {
                    KvError::Counter(format!("the counter at {key:?} would overflow"))
                })?;
                result = new;
                Ok(Some(Zeroizing::new(bytes)))
            },
            false,
        )?;
        Ok(result)
    }

    /// Reads `key` for a compare-and-swap, from the database (never the cache): its version
    /// (`None`: not set) and value.
    ///
    /// # Errors
    /// [`KvError`].
    pub fn read_for_swap(
        &self,
        keys: &AgentKeys,
        bucket: &str,
        key: &str,
    ) -> Result<(Option<i64>, Value), KvError> {
        self.check_name("key", key)?;
        let id = keys.entry_id(bucket, key);
        match self.backend.get(&keys.agent, &id)? {
            None => Ok((None, None)),
            Some(s) => {
                let value = keys
                    .open_value(&id, &s.sealed_value)
                    .map_err(|_| KvError::Corrupt)?;
                Ok((Some(s.version), Some(Arc::new(value))))
            }
        }
    }

    /// Sets `key` to `value` if its version is still `expected` (`None`: still not set).
    ///
    /// # Errors
    /// [`KvError::Changed`] when it changed; the others of a write.
    pub fn swap(
        &self,
        keys: &AgentKeys,
        bucket: &str,
        key: &str,
        expected: Option<i64>,
        value: &[u8],
    ) -> Result<(), KvError> {
        self.check_value(value)?;
        let value = Zeroizing::new(value.to_vec());
        self.update(
            keys,
            bucket,
            key,
            |old| {
                if old.map(|(v, _)| v) == expected {
                    Ok(Some(value.clone()))
                } else {
                    Err(KvError::Changed)
                }
            },
            false,
        )
    }

    /// One page of `bucket`'s keys from `offset`, and where the next page starts.
    ///
    /// # Errors
    /// [`KvError`].
    pub fn list(
        &self,
        keys: &AgentKeys,
        bucket: &str,
        offset: u64,
    ) -> Result<(Vec<String>, Option<u64>), KvError> {
        let rows = self
            .backend
            .names(&keys.agent, &keys.bucket_id(bucket), offset, LIST_PAGE)?;
        let full = rows.len() == LIST_PAGE as usize;
        let names = rows
            .iter()
            .map(|r| keys.open_name(&r.id, &r.sealed_name).map(|(_, k)| k))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| KvError::Corrupt)?;
        let next = full.then(|| offset + names.len() as u64);
        Ok((names, next))
    }

    /// Everything the agent keeps: `bucket → key → value`.
    ///
    /// # Errors
    /// [`KvError`].
    #[allow(clippy::type_complexity)]
    pub fn export(
        &self,
        keys: &AgentKeys,
    ) -> Result<BTreeMap<String, BTreeMap<String, Zeroizing<Vec<u8>>>>, KvError> {
        let mut out: BTreeMap<String, BTreeMap<String, Zeroizing<Vec<u8>>>> = BTreeMap::new();
        let mut after: Vec<u8> = Vec::new();
        loop {
            let rows = self.backend.export(&keys.agent, &after, 256)?;
            let Some(last) = rows.last() else { break };
            after = last.id.to_vec();
            for r in &rows {
                let (bucket, key) = keys
                    .open_name(&r.id, &r.sealed_name)
                    .map_err(|_| KvError::Corrupt)?;
                let value = keys
                    .open_value(&r.id, &r.sealed_value)
                    .map_err(|_| KvError::Corrupt)?;
                out.entry(bucket).or_default().insert(key, value);
            }
        }
        Ok(out)
    }

    /// The agent's usage.
    ///
    /// # Errors
    /// [`StorageError`].
    pub fn usage(&self, agent: &str) -> Result<Usage, StorageError> {
        self.backend.usage(agent)
    }

    /// Removes everything the agent keeps; returns how many keys. With `order`, the owner's
    /// wipe (ordered like the owner's other operations).
    ///
    /// # Errors
    /// [`RegistryError`].
    pub fn wipe(
        &self,
        agent: &str,
        order: Option<OwnerOrder>,
        now: u64,
    ) -> Result<u64, RegistryError> {
        let removed = self.backend.wipe(agent, order, now);
        self.invalidate_all();
        removed
    }

    /// Records the owner's operation `order` on the agent's state (an import): refused unless
    /// later than the last owner operation on the agent.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub fn mark_order(
        &self,
        agent: &str,
        order: OwnerOrder,
        now: u64,
    ) -> Result<(), RegistryError> {
        self.backend.mark_order(agent, order, now)
    }
}

/// A fresh random version (never 0).
fn fresh_version() -> i64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        // Without randomness, a clock reading still changes with every write.
        return i64::try_from(crate::clock::unix_millis())
            .unwrap_or(1)
            .max(1);
    }
    (i64::from_le_bytes(b) & i64::MAX).max(1)
}
