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
//! - [`owner`]: the owner's signatures (deployment, deletion, logs, grants, calls);
//! - [`grants`]: the owner's view of an agent's egress grants and outgoing calls;
//! - [`wallet`]: the wallet that pays the agent's calls;
//! - [`state`]: the owner's side of the agent's key-value state and configuration.

pub mod deploy;
mod encrypted;
pub mod grants;
pub mod http;
pub mod invoke;
mod javascript;
pub mod owner;
pub mod state;
pub mod wallet;

use std::sync::Arc;

use hypervisor_protocol::agents::OwnerAction;
use serde::Serialize;

use super::Pipeline;
use crate::engine::Prepared;
use crate::error::ApiError;
use crate::storage::StorageError;
use crate::storage::agent_store::{AgentStore, LogLine};
use crate::storage::agents::{AgentRecord, RegistryError, SearchHit, VersionRecord};
use crate::storage::records::ExecutionRecord;
pub use crate::storage::records::Reader;

/// An agent with all its versions, as `GET /agents/{name}` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AgentDetail {
    /// The agent and its latest version.
    #[serde(flatten)]
    pub agent: AgentRecord,
    /// Every version, oldest first.
    pub versions: Vec<VersionRecord>,
}

fn storage(e: StorageError) -> ApiError {
    ApiError::from(e)
}

/// A catalog refusal as the request's error.
fn registry(e: RegistryError) -> ApiError {
    match e {
        RegistryError::NotOwner(name) => ApiError::NotOwner(name),
        // A replayed (or reordered) owner request.
        RegistryError::Replayed { last } => ApiError::OwnerSignature(format!(
            "the sequence is not greater than {last}, that of the last owner operation on this \
             agent (a replayed request?)"
        )),
        RegistryError::Storage(e) => storage(e),
    }
}

impl Pipeline {
    fn agents(&self) -> &AgentStore {
        &self.agents
    }

    /// Who reads execution records: the key that signed `proof` over action `read-executions`
    /// and `name` (the record's id, or empty for the listing), checked like an owner's
    /// signature but against the key it names (`x-agent-owner`).
    ///
    /// # Errors
    /// [`ApiError::OwnerSignature`] when the proof names no key or does not verify.
    pub fn records_reader(&self, name: &str, proof: &owner::Proof) -> Result<Reader, ApiError> {
        let key = proof.key.as_deref().ok_or_else(|| {
            ApiError::OwnerSignature(
                "reading execution records needs x-agent-owner: the key that ran them or the \
                 agent's owner"
                    .into(),
            )
        })?;
        let key = hypervisor_protocol::EncodedPublicKey::from_hex("x-agent-owner", key)?;
        let owner_key = key.to_hex();
        self.check_owner(&owner_key, OwnerAction::ReadExecutions, name, "", proof)?;
        Ok(Reader::Key {
            caller_hash: hex::encode(hypervisor_protocol::sha256(key.as_bytes())),
            owner_key,
        })
    }

    /// `GET /agents`: one page of agents (by name, after `after`, at most `limit`) with their
    /// latest versions.
    ///
    /// # Errors
    /// [`ApiError::Internal`] if the database fails.
    pub fn list_agents(&self, after: &str, limit: u32) -> Result<Vec<AgentRecord>, ApiError> {
        self.agents().catalog.page(after, limit).map_err(storage)
    }

    /// Every agent (the A2A host card and MCP's tool list show them all).
    ///
    /// # Errors
    /// [`ApiError::Internal`] if the database fails.
    pub fn all_agents(&self) -> Result<Vec<AgentRecord>, ApiError> {
        self.agents().catalog.list().map_err(storage)
    }

    /// `GET /agents/{name}`.
    ///
    /// # Errors
    /// [`ApiError::AgentNotFound`].
    pub fn agent(&self, name: &str) -> Result<AgentDetail, ApiError> {
        let agent = self.find_agent(name)?;
        let versions = self.agents().catalog.versions(name).map_err(storage)?;
        Ok(AgentDetail { agent, versions })
    }

    /// Checks an owner's `proof` of `action` on `name` against `owner_key`, for this host
    /// (`owner::check` with the host's audience).
    fn check_owner(
        &self,
        owner_key: &str,
        action: OwnerAction,
        name: &str,
        detail: &str,
        proof: &owner::Proof,
    ) -> Result<(), ApiError> {
        owner::check(self.audience(), owner_key, action, name, detail, proof)
    }

    /// The agent `name` as the catalog has it (its newest version, no version list): what a
    /// front needs to route a request.
    ///
    /// # Errors
    /// [`ApiError::AgentNotFound`].
    pub fn agent_record(&self, name: &str) -> Result<AgentRecord, ApiError> {
        self.find_agent(name)
    }

    pub(crate) fn find_agent(&self, name: &str) -> Result<AgentRecord, ApiError> {
        self.agents()
            .find(name)
            .map_err(storage)?
            .ok_or_else(|| ApiError::AgentNotFound(name.to_string()))
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
        self.agents().search(query, limit as usize).map_err(storage)
    }

    /// `DELETE /agents/{name}`, proven by the owner's signature, signed later than the last
    /// deployment or deletion of `name` the host accepted.
    ///
    /// # Errors
    /// [`ApiError::AgentNotFound`], [`ApiError::OwnerSignature`].
    pub fn delete_agent(&self, name: &str, proof: &owner::Proof) -> Result<(), ApiError> {
        let agent = self.find_agent(name)?;
        self.check_owner(&agent.owner_key, OwnerAction::Delete, name, "", proof)?;
        if !self
            .agents()
            .remove(name, Some(proof.order()))
            .map_err(registry)?
        {
            return Err(ApiError::AgentNotFound(name.to_string()));
        }
        // Its wallet goes with it (its spends stay on record), and so do its state and
        // configuration.
        self.agents().wallets.detach(name).map_err(storage)?;
        self.agents().forget_agent_data(name).map_err(storage)?;
        tracing::info!(agent = name, "agent deleted");
        Ok(())
    }

    /// Removes every agent whose TTL has passed; returns how many.
    ///
    /// # Errors
    /// [`ApiError::Internal`] if the database fails.
    pub fn reap_expired_agents(&self) -> Result<usize, ApiError> {
        let expired = self
            .agents()
            .catalog
            .expired(crate::clock::unix_seconds())
            .map_err(storage)?;
        for name in &expired {
            self.agents().remove(name, None).map_err(registry)?;
            self.agents().forget_agent_data(name).map_err(storage)?;
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
        self.check_owner(&agent.owner_key, OwnerAction::Logs, name, "", proof)?;
        self.agents().logs(name).await.map_err(storage)
    }

    /// Keeps an invocation's stderr as the agent's log (sealed at rest). Only clear
    /// invocations are logged: what an encrypted invocation printed belongs to its caller.
    fn keep_log(&self, name: &str, execution_id: &str, stderr: &[u8]) {
        self.agents().keep_log(name, execution_id, stderr);
    }

    /// Records an execution (before its response is sent).
    pub(super) async fn record(&self, record: ExecutionRecord) -> Result<(), ApiError> {
        self.count_run(&record);
        self.agents().records.insert(record).await.map_err(storage)
    }

    /// Agents deployed now (for `/metrics`; 0 if the database cannot say).
    pub(super) fn agent_count(&self) -> u64 {
        self.agents().catalog.count().unwrap_or(0)
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
    pub async fn execution(&self, id: &str, reader: &Reader) -> Result<ExecutionRecord, ApiError> {
        self.agents()
            .records
            .get(id, reader)
            .await
            .map_err(storage)?
            .ok_or_else(|| ApiError::ExecutionNotFound(id.to_string()))
    }

    /// `GET /executions?since_ms=&after=&limit=`: the audit listing (hashes and commitments
    /// only), oldest first, from `(since_ms, after)`.
    ///
    /// # Errors
    /// [`ApiError::Internal`] if the database fails.
    pub async fn executions(
        &self,
        since_ms: u64,
        after: &str,
        limit: u32,
        reader: &Reader,
    ) -> Result<Vec<ExecutionRecord>, ApiError> {
        self.agents()
            .records
            .list(since_ms, after, limit.clamp(1, 1000), reader)
            .await
            .map_err(storage)
    }

    /// The compiled code of an agent version: from the compile cache (memory or sealed disk),
    /// or compiled from the sealed component if the cache lost it.
    async fn agent_code(&self, version: &VersionRecord) -> Result<Arc<Prepared>, ApiError> {
        let hash = version.code_hash;
        if let Some(prepared) = self.engine.cached(&hash) {
            return Ok(prepared);
        }
        let bytes = self
            .agents()
            .component(&hash)
            .map_err(storage)?
            .ok_or_else(|| {
                ApiError::Internal(format!("component {} is missing", hex::encode(hash)))
            })?;
        Ok(self
            .engine
            .prepare_agent(
                hash,
                Arc::new(crate::crypto::plaintext::Plaintext::new(bytes)),
                self.js_runtime.as_deref(),
                self.starlingmonkey.as_ref(),
            )
            .await?)
    }
}
