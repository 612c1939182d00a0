//! Importing state into an agent (`POST /agents/{name}/state/import`): everything is checked
//! before anything is written (names, value sizes, the quotas), so a refused import changes
//! nothing; then the keys are written, after removing, for a replacing import, the keys it does
//! not name.

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use super::keys::AgentKeys;
use super::service::{KvError, StateStore};

/// State to import: `bucket → key → value`.
pub type Buckets = BTreeMap<String, BTreeMap<String, Zeroizing<Vec<u8>>>>;

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    /// Keys written.
    pub keys: u64,
    /// Bytes written (keys and values).
    pub bytes: u64,
    /// Keys removed first (a replacing import).
    pub removed: u64,
}

impl StateStore {
    /// Checks that `entries` can be imported: every bucket name, key and value within its
    /// limit, and the agent within its quotas afterwards (a merge is counted as if every key
    /// were new; a replacement as the import alone).
    ///
    /// # Errors
    /// [`KvError::TooLarge`], [`KvError::Quota`], [`KvError::Storage`].
    pub fn check_import(
        &self,
        agent: &str,
        entries: &Buckets,
        replace: bool,
    ) -> Result<(), KvError> {
        let (mut keys, mut bytes) = (0u64, 0u64);
        for (bucket, values) in entries {
            self.check_bucket(bucket)?;
            for (key, value) in values {
                self.check_name("key", key)?;
                self.check_value(value)?;
                keys += 1;
                bytes += (key.len() + value.len()) as u64;
            }
        }
        if !replace {
            let usage = self.usage(agent)?;
            keys += usage.keys;
            bytes += usage.bytes;
        }
        let limits = self.limits();
        if keys > limits.max_keys {
            return Err(KvError::Quota(format!(
                "the agent would hold {keys} keys, more than its {} (state.max_keys)",
                limits.max_keys
            )));
        }
        if bytes > limits.max_bytes {
            return Err(KvError::Quota(format!(
                "the agent would hold {bytes} bytes, more than its {} (state.max_bytes)",
                limits.max_bytes
            )));
        }
        Ok(())
    }

    /// Writes `entries` (checked by [`Self::check_import`]); with `replace`, first removes the
    /// keys they do not name.
    ///
    /// # Errors
    /// [`KvError`]: a storage failure part-way leaves the keys written so far.
    pub fn import(
        &self,
        keys: &AgentKeys,
        entries: &Buckets,
        replace: bool,
    ) -> Result<Imported, KvError> {
        let mut done = Imported {
            keys: 0,
            bytes: 0,
            removed: 0,
        };
        if replace {
            for (bucket, values) in self.export(keys)? {
                for key in values.keys() {
                    let kept = entries.get(&bucket).is_some_and(|b| b.contains_key(key));
                    if !kept {
                        self.delete(keys, &bucket, key)?;
                        done.removed += 1;
                    }
                }
            }
        }
        for (bucket, values) in entries {
            for (key, value) in values {
                self.set(keys, bucket, key, value)?;
                done.keys += 1;
                done.bytes += (key.len() + value.len()) as u64;
            }
        }
        Ok(done)
    }
}
