//! Agents' state and configuration, from the owner's side: set variables and secrets sealed
//! to a session and signed (`PUT /agents/{name}/config`), read back names, versions and hashes,
//! export the agent's key-value state sealed to a session, import it (sealed the same way),
//! and wipe it.

use std::collections::BTreeMap;

use hypervisor_protocol::agents::{OWNER_KEY_HEADER, OwnerAction};
use hypervisor_protocol::state::{
    ConfigChange, ConfigInfo, ConfigUpload, ExportedState, StateExport, StateExportRequest,
    StateImportRequest, StateImported, StateWiped, config_detail, import_detail,
};
use hypervisor_protocol::wire::decode_hex;
use hypervisor_protocol::{ClientSecret, Role};
use zeroize::Zeroizing;

use crate::agents::owner_signature;
use crate::error::server_error;
use crate::{Client, ClientError, Session};

fn parse<T: serde::de::DeserializeOwned>(
    what: &str,
    json: serde_json::Value,
) -> Result<T, ClientError> {
    serde_json::from_value(json).map_err(|e| ClientError::BadResponse(format!("{what}: {e}")))
}

impl Client {
    /// Changes agent `name`'s configuration: `change` sealed to `session` (which `owner`
    /// opened), signed by `owner` over its SHA-256.
    ///
    /// # Errors
    /// Transport or server errors.
    pub fn set_agent_config(
        &self,
        owner: &ClientSecret,
        session: &Session,
        name: &str,
        change: &ConfigChange,
    ) -> Result<ConfigInfo, ClientError> {
        let plain = Zeroizing::new(
            serde_json::to_vec(change).map_err(|e| ClientError::BadResponse(e.to_string()))?,
        );
        let signed = owner_signature(
            owner,
            &self.audience()?,
            OwnerAction::Config,
            name,
            &config_detail(&plain),
        )?;
        let upload = ConfigUpload {
            public_key: owner.public_key().to_hex(),
            session_id: Some(session.id),
            encrypted_config: hex::encode(session.envelope().seal(Role::AgentConfig, &plain)?),
            signature: signed.signature,
            signed_at: signed.signed_at,
            sequence: signed.sequence,
        };
        let (status, _, json) = self.put_json_with(
            &format!("/agents/{name}/config"),
            &upload,
            &[(OWNER_KEY_HEADER, owner.public_key().to_hex())],
        )?;
        if status != 200 {
            return Err(server_error(status, json));
        }
        parse("config", json)
    }

    /// `GET /agents/{name}/config`: names, versions and hashes, for the owner.
    ///
    /// # Errors
    /// Transport or server errors.
    pub fn agent_config(
        &self,
        owner: &ClientSecret,
        name: &str,
    ) -> Result<ConfigInfo, ClientError> {
        let (status, json) =
            self.owner_request("GET", owner, OwnerAction::ReadConfig, name, "/config")?;
        if status != 200 {
            return Err(server_error(status, json));
        }
        parse("config", json)
    }

    /// Exports agent `name`'s key-value state, sealed to `session`, and opens it.
    ///
    /// # Errors
    /// Transport or server errors, or an export that does not open.
    pub fn export_agent_state(
        &self,
        owner: &ClientSecret,
        session: &Session,
        name: &str,
    ) -> Result<ExportedState, ClientError> {
        let signed = owner_signature(owner, &self.audience()?, OwnerAction::ExportState, name, "")?;
        let req = StateExportRequest {
            public_key: owner.public_key().to_hex(),
            session_id: Some(session.id),
            signature: signed.signature,
            signed_at: signed.signed_at,
            sequence: signed.sequence,
        };
        let (status, _, json) = self.post_json_with(
            &format!("/agents/{name}/state/export"),
            &req,
            &[(OWNER_KEY_HEADER, owner.public_key().to_hex())],
        )?;
        if status != 200 {
            return Err(server_error(status, json));
        }
        let export: StateExport = parse("state export", json)?;
        if export.session_id != session.id {
            return Err(ClientError::BadResponse(
                "the export is sealed to another session".into(),
            ));
        }
        let sealed = decode_hex("encrypted_state", &export.encrypted_state)?;
        let plain = Zeroizing::new(session.envelope().open(Role::StateExport, &sealed)?);
        serde_json::from_slice(&plain)
            .map_err(|e| ClientError::BadResponse(format!("state export: {e}")))
    }

    /// Imports `state` (an export, of this agent or another) into agent `name`: sealed to
    /// `session`, signed by `owner` over its SHA-256 and the mode. With `replace`, the keys
    /// `state` does not name are removed; otherwise it is merged (its keys overwrite).
    ///
    /// # Errors
    /// Transport or server errors (`413 state_quota_exceeded` when the agent would hold more
    /// than its quotas; nothing is written then).
    pub fn import_agent_state(
        &self,
        owner: &ClientSecret,
        session: &Session,
        name: &str,
        state: &ExportedState,
        replace: bool,
    ) -> Result<StateImported, ClientError> {
        let plain = Zeroizing::new(
            serde_json::to_vec(state).map_err(|e| ClientError::BadResponse(e.to_string()))?,
        );
        let signed = owner_signature(
            owner,
            &self.audience()?,
            OwnerAction::ImportState,
            name,
            &import_detail(&plain, replace),
        )?;
        let req = StateImportRequest {
            public_key: owner.public_key().to_hex(),
            session_id: Some(session.id),
            encrypted_state: hex::encode(session.envelope().seal(Role::StateImport, &plain)?),
            replace,
            signature: signed.signature,
            signed_at: signed.signed_at,
            sequence: signed.sequence,
        };
        let (status, _, json) = self.post_json_with(
            &format!("/agents/{name}/state/import"),
            &req,
            &[(OWNER_KEY_HEADER, owner.public_key().to_hex())],
        )?;
        if status != 200 {
            return Err(server_error(status, json));
        }
        parse("state import", json)
    }

    /// Wipes agent `name`'s key-value state.
    ///
    /// # Errors
    /// Transport or server errors.
    pub fn wipe_agent_state(
        &self,
        owner: &ClientSecret,
        name: &str,
    ) -> Result<StateWiped, ClientError> {
        let (status, json) =
            self.owner_request("DELETE", owner, OwnerAction::WipeState, name, "/state")?;
        if status != 200 {
            return Err(server_error(status, json));
        }
        parse("state wipe", json)
    }
}

/// A change setting each `NAME=VALUE` of `pairs` and removing each name of `remove`.
///
/// # Errors
/// A pair without `=`.
pub fn change_of(pairs: &[String], remove: &[String]) -> Result<ConfigChange, ClientError> {
    let mut set = BTreeMap::new();
    for pair in pairs {
        let (name, value) = pair
            .split_once('=')
            // Not echoed: the text may be a secret typed without its name.
            .ok_or_else(|| ClientError::BadResponse("a value to set is not NAME=VALUE".into()))?;
        set.insert(name.to_string(), value.to_string());
    }
    Ok(ConfigChange {
        set,
        remove: remove.to_vec(),
    })
}
