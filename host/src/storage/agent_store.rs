//! [`AgentStore`]: everything agents are kept in, behind one value: the catalog (any
//! [`AgentCatalog`] backend), the execution records, the deployed components (sealed), the
//! search index, the key that seals logs, and the records of recently used agents.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use crate::clock::{unix_millis, unix_seconds};
use crate::crypto::at_rest::SealingKey;
use crate::storage::StorageError;
use crate::storage::agent_config::ConfigStore;
use crate::storage::agents::{
    AgentCatalog, AgentRecord, CodeHash, LOGS_KEPT, LogEntry, OwnerOrder, RegistryError,
    SearchDocument, SearchHit,
};
use crate::storage::calls::CallLedger;
use crate::storage::code::CodeStore;
use crate::storage::records::Records;
use crate::storage::search::SearchIndex;
use crate::storage::state::StateStore;
use crate::storage::wallets::Wallets;
use crate::storage::weighed::Weighed;

/// Purpose label of sealed agent logs.
const AGENT_LOG_PURPOSE: &[u8] = b"wasm-hypervisor/v1/agent-log";

/// What a record weighs in the cache of recently used ones: its JSON size, times this (its
/// schemas are kept parsed, larger than their text).
const PARSED: usize = 4;

/// One log entry as the owner reads it.
#[derive(Debug, Clone, Serialize)]
pub struct LogLine {
    /// The invocation.
    pub execution_id: String,
    /// When, Unix milliseconds.
    pub at_ms: u64,
    /// The invocation's stderr (UTF-8, lossy).
    pub stderr: String,
}

/// The stores an [`AgentStore`] is made of.
pub struct AgentStoreParts {
    /// Agents, versions, logs.
    pub catalog: Arc<dyn AgentCatalog>,
    /// Execution records (their writer also commits A2A tasks: `storage::tasks`).
    pub records: Arc<Records>,
    /// Deployed components.
    pub code: Arc<dyn CodeStore>,
    /// Outgoing calls.
    pub calls: Arc<dyn CallLedger>,
    /// Wallets.
    pub wallets: Arc<Wallets>,
    /// x402 sign-in-with-x: nonces used and access windows.
    pub sign_in: Arc<dyn crate::storage::sign_in::SignInBackend>,
    /// Key-value state.
    pub state: Arc<StateStore>,
    /// Configuration.
    pub config: Arc<ConfigStore>,
    /// Bytes of recently used agents' records kept (`storage.agent_cache_bytes`).
    pub records_cache_bytes: usize,
}

/// Everything agents are stored in.
pub struct AgentStore {
    /// Agents, versions, search index, logs.
    pub catalog: Arc<dyn AgentCatalog>,
    /// Execution records.
    pub records: Arc<Records>,
    /// Deployed components, sealed.
    pub code: Arc<dyn CodeStore>,
    /// Agents' outgoing calls.
    pub calls: Arc<dyn CallLedger>,
    /// Agents' wallets and spends.
    pub wallets: Arc<Wallets>,
    /// x402 sign-in-with-x: nonces used and access windows.
    pub sign_in: Arc<dyn crate::storage::sign_in::SignInBackend>,
    /// Agents' key-value state.
    pub state: Arc<StateStore>,
    /// Agents' configuration.
    pub config: Arc<ConfigStore>,
    /// The search index over the catalog (empty until [`Self::load_search_index`]).
    index: SearchIndex,
    /// Seals logs.
    key: Arc<SealingKey>,
    /// Agents looked up recently, so an invocation does not query the database: dropped when
    /// the agent changes (deployment, deletion, grants), here or, on a shared database, on
    /// another replica (its change notification, [`Self::invalidate`]); within a byte budget.
    hot: Weighed<String, AgentRecord>,
}

impl AgentStore {
    /// The store over `parts`; `key` seals logs.
    pub fn new(parts: AgentStoreParts, key: Arc<SealingKey>) -> Self {
        let AgentStoreParts {
            catalog,
            records,
            code,
            calls,
            wallets,
            sign_in,
            state,
            config,
            records_cache_bytes,
        } = parts;
        Self {
            catalog,
            records,
            code,
            calls,
            wallets,
            sign_in,
            state,
            config,
            index: SearchIndex::new(),
            key,
            hot: Weighed::new(records_cache_bytes),
        }
    }

    /// Forgets the cached record of `name`.
    fn invalidate(&self, name: &str) {
        self.hot.forget(name);
    }

    /// Takes note that the agent `name` changed (deployed, deleted, grants replaced), here or
    /// on another replica: its cached record goes, and its search entry is read again.
    ///
    /// # Errors
    /// [`StorageError`] if the catalog cannot be read (the cache entry is gone anyway).
    pub fn changed(&self, name: &str) -> Result<(), StorageError> {
        self.invalidate(name);
        match self.catalog.get(name)? {
            Some(agent) => self.index.upsert(&SearchDocument {
                name: agent.name,
                description: agent.description,
                tags: agent.tags,
            }),
            None => self.index.remove(name),
        }
        Ok(())
    }

    /// Takes note that changes may have been missed (a lost notification connection): every
    /// cached record goes and the search index is rebuilt.
    ///
    /// # Errors
    /// [`StorageError`] if the catalog cannot be read.
    pub fn changed_all(&self) -> Result<(), StorageError> {
        self.hot.forget_all();
        self.index.reload(self.catalog.as_ref())
    }

    /// Starts a thread that applies the changes announced on the returned channel (from
    /// another replica: `Some(name)`, or `None` when some may have been missed) to the cache
    /// and the search index. It ends when the store or the sender is dropped.
    ///
    /// # Errors
    /// If the thread cannot be started.
    pub fn follow_changes(
        self: &Arc<Self>,
    ) -> std::io::Result<std::sync::mpsc::Sender<Option<String>>> {
        let (tx, rx) = std::sync::mpsc::channel::<Option<String>>();
        let store = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("agent-changes".into())
            .spawn(move || {
                while let Ok(change) = rx.recv() {
                    let Some(store) = store.upgrade() else { break };
                    let done = match &change {
                        Some(name) => store.changed(name),
                        None => store.changed_all(),
                    };
                    if let Err(e) = done {
                        // The cache entry is gone; the index may lag until the next change.
                        tracing::warn!(error = %e, "cannot read a changed agent");
                    }
                }
            })?;
        Ok(tx)
    }

    /// Applies a change of state or configuration made on another replica (a payload of
    /// [`crate::storage::postgres::STATE_CHANNEL`]) to the caches.
    pub fn state_changed(&self, payload: &str) {
        let mut parts = payload.splitn(3, ' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("e"), Some(_), Some(id)) => {
                match hex::decode(id)
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                {
                    Some(id) => self.state.invalidate(&id),
                    None => self.state.invalidate_all(),
                }
            }
            (Some("c"), Some(agent), None) => self.config.forget(agent),
            // A wipe, or anything not understood: drop everything.
            _ => self.state.invalidate_all(),
        }
    }

    /// Removes what `name` keeps besides its catalog entry: its key-value state and its
    /// configuration (the agent is deleted or expired).
    ///
    /// # Errors
    /// [`StorageError`].
    pub fn forget_agent_data(&self, name: &str) -> Result<(), StorageError> {
        let removed = self
            .state
            .wipe(name, None, unix_seconds())
            .map_err(|e| match e {
                RegistryError::Storage(s) => s,
                other => StorageError::Database {
                    op: "wipe an agent's state",
                    detail: other.to_string(),
                },
            })?;
        self.config.remove(name)?;
        if removed > 0 {
            tracing::info!(agent = name, keys = removed, "agent state wiped");
        }
        Ok(())
    }

    /// Builds the search index from the catalog (at start-up).
    ///
    /// # Errors
    /// [`StorageError`] if the catalog cannot be read.
    pub fn load_search_index(&self) -> Result<usize, StorageError> {
        self.index.reload(self.catalog.as_ref())?;
        Ok(self.index.len())
    }

    /// Ranked search: the best `limit` agents for `text` (see [`crate::storage::search`]).
    ///
    /// # Errors
    /// [`StorageError`] if the hits' records cannot be read.
    pub fn search(&self, text: &str, limit: usize) -> Result<Vec<SearchHit>, StorageError> {
        let top = self.index.top(text, limit);
        let names: Vec<String> = top.iter().map(|(name, _)| name.clone()).collect();
        let mut records: HashMap<String, AgentRecord> = self
            .catalog
            .get_many(&names)?
            .into_iter()
            .map(|a| (a.name.clone(), a))
            .collect();
        // An agent deleted since the index saw it is left out.
        Ok(top
            .into_iter()
            .filter_map(|(name, score)| records.remove(&name).map(|a| SearchHit::new(a, score)))
            .collect())
    }

    /// The agent `name` with its latest version: from memory when it was used recently and
    /// has not expired, else from the catalog.
    ///
    /// # Errors
    /// [`StorageError`].
    pub fn find(&self, name: &str) -> Result<Option<AgentRecord>, StorageError> {
        let fresh = |agent: &AgentRecord| agent.expires_at.is_none_or(|t| t > unix_seconds());
        let generation = match self.hot.get(name, fresh) {
            Ok(agent) => return Ok(Some(agent)),
            Err(generation) => generation,
        };
        let Some(agent) = self.catalog.get(name)? else {
            return Ok(None);
        };
        // An invalidation while the catalog was read may concern this very record: `fill`
        // keeps it out of the cache then (the next lookup reads again).
        let weight = serde_json::to_vec(&agent)
            .map_or(64 << 10, |json| json.len())
            .saturating_mul(PARSED);
        self.hot
            .fill(name.to_string(), agent.clone(), weight, generation);
        Ok(Some(agent))
    }

    /// Removes an agent and the components no other agent uses; `order` is that of the
    /// owner's deletion (none for an expiry). `Ok(false)` if there was no such
    /// agent.
    ///
    /// # Errors
    /// [`RegistryError::Replayed`], [`RegistryError::Storage`].
    pub fn remove(&self, name: &str, order: Option<OwnerOrder>) -> Result<bool, RegistryError> {
        self.invalidate(name);
        let deleted = self.catalog.delete(name, order, unix_seconds());
        self.changed(name)?;
        let Some(hashes) = deleted? else {
            return Ok(false);
        };
        for hash in hashes {
            if !self.catalog.code_in_use(&hash)? {
                self.code.remove(&hash);
            }
        }
        Ok(true)
    }

    /// Keeps an invocation's stderr as the agent's log, sealed at rest and written with the
    /// next batch of records.
    pub fn keep_log(&self, name: &str, execution_id: &str, stderr: &[u8]) {
        if stderr.is_empty() {
            return;
        }
        let Ok(sealed) = self.key.seal(&log_aad(name, execution_id), stderr) else {
            return;
        };
        let entry = LogEntry {
            execution_id: execution_id.to_string(),
            at_ms: unix_millis(),
            sealed,
        };
        self.records.append_log_later(name, entry);
    }

    /// The newest logs of `name`, opened (everything queued so far included).
    ///
    /// # Errors
    /// [`StorageError`].
    pub async fn logs(&self, name: &str) -> Result<Vec<LogLine>, StorageError> {
        // Logs are written in batches: include everything queued so far.
        self.records.flush().await?;
        let entries = self.catalog.logs(name, LOGS_KEPT)?;
        Ok(entries
            .into_iter()
            .filter_map(|e| {
                let plain = self
                    .key
                    .open(&log_aad(name, &e.execution_id), &e.sealed)
                    .ok()?;
                Some(LogLine {
                    execution_id: e.execution_id,
                    at_ms: e.at_ms,
                    stderr: String::from_utf8_lossy(&plain).into_owned(),
                })
            })
            .collect())
    }

    /// The sealed component of `hash`, opened.
    ///
    /// # Errors
    /// [`StorageError`].
    pub fn component(&self, hash: &CodeHash) -> Result<Option<Vec<u8>>, StorageError> {
        self.code.load(hash)
    }
}

fn log_aad(name: &str, execution_id: &str) -> Vec<u8> {
    let mut aad = AGENT_LOG_PURPOSE.to_vec();
    aad.extend_from_slice(name.as_bytes());
    aad.push(0);
    aad.extend_from_slice(execution_id.as_bytes());
    aad
}
