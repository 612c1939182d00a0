//! Agents' configuration (`wasi:config/store`): the variables and secrets an owner sets
//! (`PUT /agents/{name}/config`), one sealed document per agent ([`ConfigBackend`], on SQLite
//! and PostgreSQL) under a key derived for the agent and its owner
//! ([`crate::storage::state::AgentKeys::config_key`]), and [`ConfigStore`] above it: applying
//! changes in order, and a cache of opened documents that changes (here, or another replica's
//! notification) drop.
//!
//! Values are secrets: zeroized in memory when dropped, never logged, never returned to
//! anyone but the agent; the owner reads names, versions and hashes.

use std::collections::BTreeMap;
use std::sync::Arc;

use hypervisor_protocol::state::{
    ConfigChange, ConfigEntry, ConfigInfo, MAX_CONFIG_ENTRIES, value_hash,
};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::crypto::at_rest::SealingKey;
use crate::storage::StorageError;
use crate::storage::agents::{OwnerOrder, RegistryError};
use crate::storage::state::AgentKeys;
use crate::storage::weighed::Weighed;

/// Purpose label of a sealed configuration document.
const CONFIG_PURPOSE: &[u8] = b"wasm-hypervisor/v1/agent-config/document";

/// What a change does to an agent's sealed document (`None`: it has none yet): the new one.
pub type Rewrite<'a> = dyn FnMut(Option<&[u8]>) -> Result<Vec<u8>, StorageError> + Send + 'a;

/// The configuration tables of one backend.
pub trait ConfigBackend: Send + Sync {
    /// The agent's sealed document, if it has one.
    ///
    /// # Errors
    /// [`StorageError`].
    fn get(&self, agent: &str) -> Result<Option<Vec<u8>>, StorageError>;

    /// Replaces the agent's document by what `change` makes of the current one, in one
    /// transaction, refusing an owner operation out of `order` (as the catalog does).
    ///
    /// # Errors
    /// [`RegistryError`]; `change`'s error as [`RegistryError::Storage`].
    fn update(
        &self,
        agent: &str,
        order: OwnerOrder,
        now: u64,
        change: &mut Rewrite<'_>,
    ) -> Result<(), RegistryError>;

    /// Removes the agent's document.
    ///
    /// # Errors
    /// [`StorageError`].
    fn remove(&self, agent: &str) -> Result<(), StorageError>;
}

/// One value with its history.
#[derive(Clone, Serialize, Deserialize)]
struct Stored {
    value: String,
    version: u64,
    updated_at: u64,
}

impl Drop for Stored {
    fn drop(&mut self) {
        self.value.zeroize();
    }
}

/// An agent's configuration, opened.
#[derive(Default, Serialize, Deserialize)]
pub struct ConfigDoc {
    entries: BTreeMap<String, Stored>,
}

impl std::fmt::Debug for ConfigDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigDoc")
            .field("names", &self.entries.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ConfigDoc {
    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries.get(name).map(|s| s.value.as_str())
    }

    /// Every name and value, by name.
    pub fn all(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .map(|(k, s)| (k.as_str(), s.value.as_str()))
    }

    /// What the owner reads: names, versions, hashes.
    pub fn info(&self, agent: &str) -> ConfigInfo {
        ConfigInfo {
            agent: agent.to_string(),
            entries: self
                .entries
                .iter()
                .map(|(name, s)| ConfigEntry {
                    name: name.clone(),
                    version: s.version,
                    sha256: value_hash(agent, name, &s.value),
                    updated_at: s.updated_at,
                })
                .collect(),
        }
    }

    fn apply(&mut self, change: &ConfigChange, now: u64) -> Result<(), String> {
        for name in &change.remove {
            self.entries.remove(name);
        }
        for (name, value) in &change.set {
            let version = self.entries.get(name).map_or(1, |s| s.version + 1);
            self.entries.insert(
                name.clone(),
                Stored {
                    value: value.clone(),
                    version,
                    updated_at: now,
                },
            );
        }
        if self.entries.len() > MAX_CONFIG_ENTRIES {
            return Err(format!(
                "an agent's configuration holds at most {MAX_CONFIG_ENTRIES} names"
            ));
        }
        Ok(())
    }
}

/// Why a change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The change would break a limit.
    #[error("{0}")]
    Invalid(String),
    /// Out of order, or the database failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// Agents' configuration.
pub struct ConfigStore {
    backend: Arc<dyn ConfigBackend>,
    root: Arc<SealingKey>,
    /// Opened documents (`state.config_cache_bytes`): a document read before a forget is not
    /// cached after it (it may be the one a change, here or on another replica, has just
    /// replaced).
    cache: Weighed<String, Arc<ConfigDoc>>,
}

impl ConfigStore {
    /// The store over `backend`, deriving agents' keys from `root`, keeping opened documents
    /// up to `cache_bytes` (their sealed size).
    pub fn new(backend: Arc<dyn ConfigBackend>, root: Arc<SealingKey>, cache_bytes: usize) -> Self {
        Self {
            backend,
            root,
            cache: Weighed::new(cache_bytes),
        }
    }

    fn key(&self, agent: &str, owner_key: &str) -> SealingKey {
        AgentKeys::config_key(&self.root, agent, owner_key)
    }

    fn open(key: &SealingKey, sealed: &[u8]) -> Result<ConfigDoc, StorageError> {
        let plain = Zeroizing::new(
            key.open(CONFIG_PURPOSE, sealed)
                .map_err(|_| StorageError::Tampered("configuration of an agent"))?,
        );
        serde_json::from_slice(&plain)
            .map_err(|_| StorageError::Tampered("configuration of an agent"))
    }

    /// The configuration of `agent` (owned by `owner_key`): from the cache, else opened from
    /// the database.
    ///
    /// # Errors
    /// [`StorageError`].
    pub fn get(&self, agent: &str, owner_key: &str) -> Result<Arc<ConfigDoc>, StorageError> {
        let read_at = match self.cache.get(agent, |_| true) {
            Ok(doc) => return Ok(doc),
            Err(generation) => generation,
        };
        let (doc, weight) = match self.backend.get(agent)? {
            Some(sealed) => (
                Arc::new(Self::open(&self.key(agent, owner_key), &sealed)?),
                sealed.len(),
            ),
            None => (Arc::new(ConfigDoc::default()), 0),
        };
        // Forgotten meanwhile (a change committed after this read): the document read may be
        // the old one, a rotated-out secret: answered, not kept.
        self.cache.fill(
            agent.to_string(),
            doc.clone(),
            weight + agent.len() + 64,
            read_at,
        );
        Ok(doc)
    }

    /// Applies the owner's `change` to `agent`'s configuration, in the owner's `order`.
    ///
    /// # Errors
    /// [`ConfigError`].
    pub fn apply(
        &self,
        agent: &str,
        owner_key: &str,
        change: &ConfigChange,
        order: OwnerOrder,
        now: u64,
    ) -> Result<ConfigInfo, ConfigError> {
        let key = self.key(agent, owner_key);
        let mut invalid = None;
        let mut info = None;
        let result = self.backend.update(agent, order, now, &mut |old| {
            let mut doc = match old {
                Some(sealed) => Self::open(&key, sealed)?,
                None => ConfigDoc::default(),
            };
            if let Err(e) = doc.apply(change, now) {
                invalid = Some(e);
                return Err(StorageError::Database {
                    op: "apply a configuration change",
                    detail: "refused".into(),
                });
            }
            info = Some(doc.info(agent));
            let plain =
                Zeroizing::new(
                    serde_json::to_vec(&doc).map_err(|e| StorageError::Database {
                        op: "encode a configuration",
                        detail: e.to_string(),
                    })?,
                );
            key.seal(CONFIG_PURPOSE, &plain)
                .map_err(|_| StorageError::KeyGeneration)
        });
        self.forget(agent);
        if let Some(why) = invalid {
            return Err(ConfigError::Invalid(why));
        }
        result?;
        info.ok_or_else(|| {
            ConfigError::Registry(RegistryError::Storage(StorageError::Database {
                op: "apply a configuration change",
                detail: "no document".into(),
            }))
        })
    }

    /// Drops the cached configuration of `agent` (changed here or on another replica).
    pub fn forget(&self, agent: &str) {
        self.cache.forget(agent);
    }

    /// Drops every cached configuration (notifications possibly missed).
    pub fn forget_all(&self) {
        self.cache.forget_all();
    }

    /// Removes `agent`'s configuration (the agent is deleted).
    ///
    /// # Errors
    /// [`StorageError`].
    pub fn remove(&self, agent: &str) -> Result<(), StorageError> {
        let removed = self.backend.remove(agent);
        self.forget(agent);
        removed
    }
}
