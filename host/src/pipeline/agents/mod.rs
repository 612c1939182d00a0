//! Agents: components deployed once (`POST /agent/deploy`) and invoked many times, each
//! invocation in a fresh sandbox. Three kinds, read from the component's exports: handler
//! agents (`hypervisor:host/handler`), HTTP agents (`wasi:http/proxy`) and CLI agents
//! (`wasi:cli/run`).
//!
//! - [`deploy`]: checking, compiling and storing a deployment (the component sealed at rest,
//!   compiled into the sealed compile cache, the version recorded);
//! - [`invoke`]: handler and CLI invocations, in the clear (public agents) or sealed to a
//!   session;
//! - [`http`]: requests under `/agents/{name}/…` served by HTTP agents;
//! - [`owner`]: the owner's signatures (deployment, deletion, logs).

pub mod deploy;
pub mod http;
pub mod invoke;
pub mod owner;
mod sealed;

use std::sync::Arc;

use hypervisor_protocol::agents::OwnerAction;
use serde::Serialize;

use super::Pipeline;
use crate::attestation::signer::unix_now;
use crate::crypto::at_rest::SealingKey;
use crate::engine::Prepared;
use crate::error::ApiError;
use crate::storage::StorageError;
use crate::storage::agents::{AgentRecord, AgentRegistry, RegistryError, SearchHit, VersionRecord};
use crate::storage::artifacts::ArtifactStore;
use crate::storage::records::{ExecutionRecord, Records};

/// Purpose label of sealed agent components.
pub const AGENT_COMPONENT_PURPOSE: &[u8] = b"wasm-hypervisor/v1/agent-component";
/// Purpose label of sealed agent logs.
const AGENT_LOG_PURPOSE: &[u8] = b"wasm-hypervisor/v1/agent-log";

/// Everything agents are stored in.
pub struct AgentStore {
    /// Agents, versions, search index, logs.
    pub registry: AgentRegistry,
    /// Execution records.
    pub records: Records,
    /// Deployed components, sealed.
    pub code: ArtifactStore,
    /// Seals logs.
    pub key: Arc<SealingKey>,
    /// Agents looked up recently, so an invocation does not query SQLite: replaced on
    /// deployment, dropped on deletion (this process is the database's only writer).
    pub hot: std::sync::Mutex<std::collections::HashMap<String, AgentRecord>>,
}

impl AgentStore {
    /// The store over `registry`, `records` and `code`.
    pub fn new(
        registry: AgentRegistry,
        records: Records,
        code: ArtifactStore,
        key: Arc<SealingKey>,
    ) -> Self {
        Self {
            registry,
            records,
            code,
            key,
            hot: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    fn hot(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, AgentRecord>> {
        self.hot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets the cached record of `name` (after a deployment or deletion).
    pub(super) fn invalidate(&self, name: &str) {
        self.hot().remove(name);
    }
}

/// An agent with all its versions, as `GET /agents/{name}` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AgentDetail {
    /// The agent and its latest version.
    #[serde(flatten)]
    pub agent: AgentRecord,
    /// Every version, oldest first.
    pub versions: Vec<VersionRecord>,
}

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

fn storage(e: StorageError) -> ApiError {
    ApiError::Internal(e.to_string())
}

/// The refusal of a deployment or deletion whose signing time is not later than the last one
/// accepted for the agent: a replayed (or reordered) owner request.
fn replayed() -> ApiError {
    ApiError::OwnerSignature(
        "the signing time is not later than that of the last deployment or deletion of this \
         agent (a replayed request?)"
            .into(),
    )
}

impl Pipeline {
    fn agents(&self) -> &AgentStore {
        &self.agents
    }

    /// `GET /agents`: every agent with its latest version.
    ///
    /// # Errors
    /// [`ApiError::Internal`] if the database fails.
    pub fn list_agents(&self) -> Result<Vec<AgentRecord>, ApiError> {
        self.agents().registry.list().map_err(storage)
    }

    /// `GET /agents/{name}`.
    ///
    /// # Errors
    /// [`ApiError::AgentNotFound`].
    pub fn agent(&self, name: &str) -> Result<AgentDetail, ApiError> {
        let agent = self.find_agent(name)?;
        let versions = self.agents().registry.versions(name).map_err(storage)?;
        Ok(AgentDetail { agent, versions })
    }

    fn find_agent(&self, name: &str) -> Result<AgentRecord, ApiError> {
        let store = self.agents();
        let cached = store.hot().get(name).cloned();
        if let Some(agent) = cached
            && agent.expires_at.is_none_or(|t| t > unix_now())
        {
            return Ok(agent);
        }
        let agent = store
            .registry
            .get(name)
            .map_err(storage)?
            .ok_or_else(|| ApiError::AgentNotFound(name.to_string()))?;
        let mut hot = store.hot();
        if hot.len() >= 4096 {
            hot.clear();
        }
        hot.insert(name.to_string(), agent.clone());
        Ok(agent)
    }

    /// `POST /search`: ranked full-text search.
    ///
    /// # Errors
    /// [`ApiError::InvalidRequest`] for a query without words.
    pub fn search_agents(
        &self,
        query: &str,
        limit: Option<u32>,
    ) -> Result<Vec<SearchHit>, ApiError> {
        if !query.chars().any(char::is_alphanumeric) {
            return Err(ApiError::InvalidRequest(
                "`query` needs at least one word".into(),
            ));
        }
        let limit = limit.unwrap_or(10).clamp(1, 100);
        self.agents().registry.search(query, limit).map_err(storage)
    }

    /// `DELETE /agents/{name}`, proven by the owner's signature, signed later than the last
    /// deployment or deletion of `name` the host accepted.
    ///
    /// # Errors
    /// [`ApiError::AgentNotFound`], [`ApiError::OwnerSignature`].
    pub fn delete_agent(&self, name: &str, proof: &owner::Proof) -> Result<(), ApiError> {
        let agent = self.find_agent(name)?;
        owner::check(&agent.owner_key, OwnerAction::Delete, name, "", proof)?;
        self.remove_agent(name, Some(proof.signed_at))?;
        tracing::info!(agent = name, "agent deleted");
        Ok(())
    }

    /// Removes an agent and the components no other agent uses; `signed_at` is the signing
    /// time of the owner's deletion (none for the TTL reaper).
    fn remove_agent(&self, name: &str, signed_at: Option<u64>) -> Result<(), ApiError> {
        let store = self.agents();
        store.invalidate(name);
        let hashes = match store.registry.delete(name, signed_at, unix_now()) {
            Ok(Some(hashes)) => hashes,
            Ok(None) => return Err(ApiError::AgentNotFound(name.to_string())),
            Err(RegistryError::Replayed) => return Err(replayed()),
            Err(RegistryError::NotOwner(name)) => return Err(ApiError::NotOwner(name)),
            Err(RegistryError::Storage(e)) => return Err(storage(e)),
        };
        for h in hashes {
            if !store.registry.code_in_use(&h).map_err(storage)?
                && let Ok(bytes) = hex::decode(&h)
                && let Ok(hash) = <[u8; 32]>::try_from(bytes.as_slice())
            {
                store.code.remove(&hash);
            }
        }
        Ok(())
    }

    /// Removes every agent whose TTL has passed; returns how many.
    ///
    /// # Errors
    /// [`ApiError::Internal`] if the database fails.
    pub fn reap_expired_agents(&self) -> Result<usize, ApiError> {
        let expired = self
            .agents()
            .registry
            .expired(unix_now())
            .map_err(storage)?;
        for name in &expired {
            self.remove_agent(name, None)?;
            tracing::info!(agent = %name, "agent expired and removed");
        }
        Ok(expired.len())
    }

    /// `GET /agents/{name}/logs`: the newest logs, for the owner only.
    ///
    /// # Errors
    /// [`ApiError::AgentNotFound`], [`ApiError::OwnerSignature`].
    pub async fn agent_logs(
        &self,
        name: &str,
        proof: &owner::Proof,
    ) -> Result<Vec<LogLine>, ApiError> {
        let agent = self.find_agent(name)?;
        owner::check(&agent.owner_key, OwnerAction::Logs, name, "", proof)?;
        let store = self.agents();
        // Logs are written in batches: include everything queued so far.
        store.records.flush().await.map_err(storage)?;
        let entries = store
            .registry
            .logs(name, crate::storage::agents::LOGS_KEPT)
            .map_err(storage)?;
        Ok(entries
            .into_iter()
            .filter_map(|e| {
                let plain = store
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

    /// Keeps an invocation's stderr as the agent's log (sealed at rest). Only clear
    /// invocations are logged: what an encrypted invocation printed belongs to its caller.
    fn keep_log(&self, name: &str, execution_id: &str, stderr: &[u8]) {
        if stderr.is_empty() {
            return;
        }
        let store = self.agents();
        let Ok(sealed) = store.key.seal(&log_aad(name, execution_id), stderr) else {
            return;
        };
        let entry = crate::storage::agents::LogEntry {
            execution_id: execution_id.to_string(),
            at_ms: now_ms(),
            sealed,
        };
        store.records.append_log_later(name, entry);
    }

    /// Records an execution (before its response is sent).
    pub(super) async fn record(&self, record: ExecutionRecord) -> Result<(), ApiError> {
        self.count_run(&record);
        self.agents().records.insert(record).await.map_err(storage)
    }

    /// Agents deployed now (for `/metrics`; 0 if the database cannot say).
    pub(super) fn agent_count(&self) -> u64 {
        self.agents().registry.count().unwrap_or(0)
    }

    /// Commits every queued record and log (at shutdown).
    ///
    /// # Errors
    /// [`ApiError::Internal`] if the database fails.
    pub async fn flush_records(&self) -> Result<(), ApiError> {
        self.agents().records.flush().await.map_err(storage)
    }

    /// Records an execution whose response has already gone out: committed shortly after,
    /// batched with others (see [`crate::storage::records`]).
    pub(super) fn record_later(&self, record: ExecutionRecord) {
        self.count_run(&record);
        self.agents().records.insert_later(record);
    }

    /// `GET /executions/{id}`.
    ///
    /// # Errors
    /// [`ApiError::ExecutionNotFound`].
    pub async fn execution(&self, id: &str) -> Result<ExecutionRecord, ApiError> {
        self.agents()
            .records
            .get(id)
            .await
            .map_err(storage)?
            .ok_or_else(|| ApiError::ExecutionNotFound(id.to_string()))
    }

    /// `GET /executions?since_ms=&limit=`: the audit listing (hashes and commitments only).
    ///
    /// # Errors
    /// [`ApiError::Internal`] if the database fails.
    pub async fn executions(
        &self,
        since_ms: u64,
        limit: u32,
    ) -> Result<Vec<ExecutionRecord>, ApiError> {
        self.agents()
            .records
            .list(since_ms, limit.clamp(1, 1000))
            .await
            .map_err(storage)
    }

    /// The compiled code of an agent version: from the compile cache (memory or sealed disk),
    /// or compiled from the sealed component if the cache lost it.
    async fn agent_code(&self, version: &VersionRecord) -> Result<Arc<Prepared>, ApiError> {
        let hash: [u8; 32] = hex::decode(&version.code_hash)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| ApiError::Internal("corrupt code hash in the registry".into()))?;
        if let Some(prepared) = self.engine.cached(&hash) {
            return Ok(prepared);
        }
        let bytes = self
            .agents()
            .code
            .load(&hash)
            .map_err(storage)?
            .ok_or_else(|| {
                ApiError::Internal(format!("component {} is missing", version.code_hash))
            })?;
        Ok(self.engine.prepare(hash, Arc::new(bytes)).await?)
    }
}

fn log_aad(name: &str, execution_id: &str) -> Vec<u8> {
    let mut aad = AGENT_LOG_PURPOSE.to_vec();
    aad.extend_from_slice(name.as_bytes());
    aad.push(0);
    aad.extend_from_slice(execution_id.as_bytes());
    aad
}

/// Unix milliseconds.
pub(super) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
