//! An agent's state and configuration as its owner manages them: the configuration set
//! sealed to the owner's session and signed (`PUT /agents/{name}/config`), read back as names,
//! versions and hashes (`GET …/config`); the key-value state exported sealed to the owner's
//! session (`POST …/state/export`), imported sealed the same way (`POST …/state/import`) or
//! wiped (`DELETE …/state`). What the agent itself reads
//! and writes goes through `wasi:keyvalue` and `wasi:config` (`crate::engine`).

use base64::Engine as _;
use hypervisor_protocol::EncodedPublicKey;
use hypervisor_protocol::agents::OwnerAction;
use hypervisor_protocol::envelope::{Envelope, Role};
use hypervisor_protocol::state::{
    ConfigChange, ConfigInfo, ConfigUpload, ExportedState, StateExport, StateExportRequest,
    StateImportRequest, StateImported, StateWiped, config_detail, import_detail,
};
use hypervisor_protocol::wire::decode_hex;
use zeroize::Zeroizing;

use super::{owner, registry, storage};
use crate::clock::{unix_millis, unix_seconds};
use crate::error::ApiError;
use crate::pipeline::Pipeline;
use crate::storage::agent_config::ConfigError;
use crate::storage::state::{Buckets, KvError};

fn kv(e: KvError) -> ApiError {
    match e {
        KvError::Storage(s) => storage(s),
        other => ApiError::Internal(format!("reading the agent's state: {other}")),
    }
}

/// An import's refusal: the owner's input over a limit or a quota, or the store's failure.
fn import_refused(e: KvError) -> ApiError {
    match e {
        KvError::Quota(why) => ApiError::StateQuotaExceeded(why),
        KvError::TooLarge(why) => ApiError::InvalidRequest(why),
        other => kv(other),
    }
}

impl Pipeline {
    /// `PUT /agents/{name}/config`: applies the owner's change, sealed to its session (role
    /// `agent-config`) and signed over the plaintext's SHA-256, in the owner's order. The next
    /// invocation reads the new values; no redeployment.
    ///
    /// # Errors
    /// [`ApiError::AgentNotFound`], [`ApiError::NotOwner`], [`ApiError::OwnerSignature`],
    /// [`ApiError::InvalidRequest`] for a bad change, session and envelope errors.
    pub fn set_agent_config(
        &self,
        name: &str,
        upload: ConfigUpload,
    ) -> Result<ConfigInfo, ApiError> {
        let agent = self.find_agent(name)?;
        let owner_key = EncodedPublicKey::from_hex("public_key", &upload.public_key)?;
        // Someone else's change is refused before anything is opened.
        if !owner::same_key(&upload.public_key, &agent.owner_key) {
            return Err(ApiError::NotOwner(name.to_string()));
        }
        let proof = owner::Proof {
            key: Some(upload.public_key.clone()),
            signature: upload.signature.clone(),
            signed_at: upload.signed_at,
            sequence: upload.sequence,
        };
        let session = self.lookup_session(upload.session_id, &owner_key)?;
        let sealed = decode_hex("encrypted_config", &upload.encrypted_config)?;
        let plain = Zeroizing::new(
            Envelope::new(&session.key, session.id).open(Role::AgentConfig, &sealed)?,
        );
        // Signed over exactly the bytes sealed: checked before they are even parsed.
        self.check_owner(
            &agent.owner_key,
            OwnerAction::Config,
            name,
            &config_detail(&plain),
            &proof,
        )?;
        let change: ConfigChange = serde_json::from_slice(&plain).map_err(|e| {
            // The position only: the message of a JSON error may quote the input.
            ApiError::InvalidRequest(format!(
                "the sealed configuration is not a change (`set`, `remove`): error at line {} \
                 column {}",
                e.line(),
                e.column()
            ))
        })?;
        // Its values are zeroized when it goes.
        let change = ZeroizedChange(change);
        change.0.check().map_err(ApiError::InvalidRequest)?;
        let info = self
            .agents
            .config
            .apply(
                name,
                &agent.owner_key,
                &change.0,
                proof.order(),
                unix_seconds(),
            )
            .map_err(|e| match e {
                ConfigError::Invalid(why) => ApiError::InvalidRequest(why),
                ConfigError::Registry(e) => registry(e),
            })?;
        // Names only: never a value.
        tracing::info!(
            agent = name,
            set = change.0.set.len(),
            removed = change.0.remove.len(),
            "agent configuration changed"
        );
        Ok(info)
    }

    /// `GET /agents/{name}/config`: names, versions and hashes, for the owner.
    ///
    /// # Errors
    /// [`ApiError::AgentNotFound`], [`ApiError::NotOwner`], [`ApiError::OwnerSignature`].
    pub fn agent_config(&self, name: &str, proof: &owner::Proof) -> Result<ConfigInfo, ApiError> {
        let agent = self.find_agent(name)?;
        self.check_owner(&agent.owner_key, OwnerAction::ReadConfig, name, "", proof)?;
        let doc = self
            .agents
            .config
            .get(name, &agent.owner_key)
            .map_err(storage)?;
        Ok(doc.info(name))
    }

    /// `POST /agents/{name}/state/export`: everything the agent keeps, sealed to the owner's
    /// session (role `state-export`).
    ///
    /// # Errors
    /// [`ApiError::AgentNotFound`], [`ApiError::NotOwner`], [`ApiError::OwnerSignature`],
    /// session errors.
    pub fn export_agent_state(
        &self,
        name: &str,
        req: StateExportRequest,
    ) -> Result<StateExport, ApiError> {
        let agent = self.find_agent(name)?;
        let owner_key = EncodedPublicKey::from_hex("public_key", &req.public_key)?;
        let proof = owner::Proof {
            key: Some(req.public_key.clone()),
            signature: req.signature,
            signed_at: req.signed_at,
            sequence: req.sequence,
        };
        self.check_owner(&agent.owner_key, OwnerAction::ExportState, name, "", &proof)?;
        let session = self.lookup_session(req.session_id, &owner_key)?;
        let state = &self.agents.state;
        let entries = state
            .export(&state.keys(name, &agent.owner_key))
            .map_err(kv)?;
        let (mut keys, mut bytes) = (0u64, 0u64);
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut doc = ExportedState {
            agent: name.to_string(),
            exported_at_ms: unix_millis(),
            buckets: Default::default(),
        };
        for (bucket, values) in entries {
            let out = doc.buckets.entry(bucket).or_default();
            for (key, value) in values {
                keys += 1;
                bytes += (key.len() + value.len()) as u64;
                out.insert(key, b64.encode(&*value));
            }
        }
        let plain = Zeroizing::new(
            serde_json::to_vec(&doc).map_err(|e| ApiError::Internal(e.to_string()))?,
        );
        let sealed = Envelope::new(&session.key, session.id).seal(Role::StateExport, &plain)?;
        tracing::info!(agent = name, keys, bytes, "agent state exported");
        Ok(StateExport {
            agent: name.to_string(),
            session_id: session.id,
            keys,
            bytes,
            encrypted_state: hex::encode(sealed),
        })
    }

    /// `POST /agents/{name}/state/import`: state sealed to the owner's session (role
    /// `state-import`, an export's plaintext) written into the agent, merged or replacing,
    /// in the owner's order. Checked whole before anything is written.
    ///
    /// # Errors
    /// [`ApiError::AgentNotFound`], [`ApiError::NotOwner`], [`ApiError::OwnerSignature`],
    /// session errors, [`ApiError::InvalidRequest`] (not an export, a value not base64, a name
    /// or value over its limit), [`ApiError::StateQuotaExceeded`].
    pub fn import_agent_state(
        &self,
        name: &str,
        req: StateImportRequest,
    ) -> Result<StateImported, ApiError> {
        let agent = self.find_agent(name)?;
        let owner_key = EncodedPublicKey::from_hex("public_key", &req.public_key)?;
        // Someone else's import is refused before anything is opened.
        if !owner::same_key(&req.public_key, &agent.owner_key) {
            return Err(ApiError::NotOwner(name.to_string()));
        }
        let proof = owner::Proof {
            key: Some(req.public_key.clone()),
            signature: req.signature.clone(),
            signed_at: req.signed_at,
            sequence: req.sequence,
        };
        let session = self.lookup_session(req.session_id, &owner_key)?;
        let sealed = decode_hex("encrypted_state", &req.encrypted_state)?;
        let plain = Zeroizing::new(
            Envelope::new(&session.key, session.id).open(Role::StateImport, &sealed)?,
        );
        // Signed over exactly the bytes sealed and the mode: checked before they are parsed.
        self.check_owner(
            &agent.owner_key,
            OwnerAction::ImportState,
            name,
            &import_detail(&plain, req.replace),
            &proof,
        )?;
        let doc: ExportedState = serde_json::from_slice(&plain).map_err(|e| {
            // The position only: the message of a JSON error may quote the input.
            ApiError::InvalidRequest(format!(
                "the sealed state is not an export (`agent`, `exported_at_ms`, `buckets`): \
                 error at line {} column {}",
                e.line(),
                e.column()
            ))
        })?;
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut entries = Buckets::new();
        for (bucket, values) in doc.buckets {
            let out = entries.entry(bucket.clone()).or_default();
            for (key, value) in values {
                let value = b64.decode(value.as_bytes()).map_err(|_| {
                    ApiError::InvalidRequest(format!(
                        "the value of {key:?} in bucket {bucket:?} is not standard base64"
                    ))
                })?;
                out.insert(key, Zeroizing::new(value));
            }
        }
        let state = &self.agents.state;
        state
            .check_import(name, &entries, req.replace)
            .map_err(import_refused)?;
        state
            .mark_order(name, proof.order(), unix_seconds())
            .map_err(registry)?;
        let done = state
            .import(&state.keys(name, &agent.owner_key), &entries, req.replace)
            .map_err(import_refused)?;
        tracing::info!(
            agent = name,
            keys = done.keys,
            bytes = done.bytes,
            removed = done.removed,
            replace = req.replace,
            "agent state imported by its owner"
        );
        Ok(StateImported {
            agent: name.to_string(),
            keys: done.keys,
            bytes: done.bytes,
            keys_removed: done.removed,
        })
    }

    /// `DELETE /agents/{name}/state`: removes everything the agent keeps, in the owner's
    /// order.
    ///
    /// # Errors
    /// [`ApiError::AgentNotFound`], [`ApiError::NotOwner`], [`ApiError::OwnerSignature`].
    pub fn wipe_agent_state(
        &self,
        name: &str,
        proof: &owner::Proof,
    ) -> Result<StateWiped, ApiError> {
        let agent = self.find_agent(name)?;
        self.check_owner(&agent.owner_key, OwnerAction::WipeState, name, "", proof)?;
        let removed = self
            .agents
            .state
            .wipe(name, Some(proof.order()), unix_seconds())
            .map_err(registry)?;
        tracing::info!(
            agent = name,
            keys = removed,
            "agent state wiped by its owner"
        );
        Ok(StateWiped {
            agent: name.to_string(),
            keys_removed: removed,
        })
    }
}

/// A change whose values are zeroized when it is dropped.
struct ZeroizedChange(ConfigChange);

impl Drop for ZeroizedChange {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        for value in self.0.set.values_mut() {
            value.zeroize();
        }
    }
}
