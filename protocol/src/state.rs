//! Agents' state and configuration (`docs/PROTOCOL.md` §23): what an owner sends to set an
//! agent's variables and secrets (read by the agent through `wasi:config/store`), what it reads
//! back, and the export of an agent's key-value state (`wasi:keyvalue`), sealed to the owner.
//!
//! Setting the configuration: the owner seals a [`ConfigChange`] (JSON) to its session
//! (envelope role `agent-config`) and signs action `config` over [`config_detail`] of those
//! plaintext bytes. Nothing of a value ever comes back: the owner reads names, versions and
//! [`value_hash`]es.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The most names an agent's configuration holds.
pub const MAX_CONFIG_ENTRIES: usize = 64;
/// The longest name, bytes.
pub const MAX_CONFIG_NAME_BYTES: usize = 128;
/// The longest value, bytes (UTF-8).
pub const MAX_CONFIG_VALUE_BYTES: usize = 16 * 1024;

/// The code an invocation reports (in [`crate::agents::InvokeResponse::state_error`]) when
/// the host refused one of its key-value writes for a quota.
pub const STATE_QUOTA_EXCEEDED: &str = "state_quota_exceeded";

/// Whether `name` can name a configuration value: 1 to [`MAX_CONFIG_NAME_BYTES`] bytes of
/// ASCII letters, digits, `_`, `-` and `.`.
pub fn valid_config_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_CONFIG_NAME_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// A change of an agent's configuration: the plaintext the owner seals (JSON). Names in `set`
/// get the value given (a new version each time, even if the value is the same); names in
/// `remove` go. A name may not be in both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigChange {
    /// Names and their new values.
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// Names to remove.
    #[serde(default)]
    pub remove: Vec<String>,
}

impl ConfigChange {
    /// Checks names, sizes and counts.
    ///
    /// # Errors
    /// A message naming the first problem.
    pub fn check(&self) -> Result<(), String> {
        if self.set.len() + self.remove.len() > MAX_CONFIG_ENTRIES {
            return Err(format!(
                "a change names at most {MAX_CONFIG_ENTRIES} entries"
            ));
        }
        for name in self.set.keys().chain(self.remove.iter()) {
            if !valid_config_name(name) {
                return Err(format!(
                    "{:?} is not a configuration name (1 to {MAX_CONFIG_NAME_BYTES} bytes of \
                     letters, digits, `_`, `-`, `.`)",
                    truncate(name)
                ));
            }
        }
        if let Some(name) = self.remove.iter().find(|n| self.set.contains_key(*n)) {
            return Err(format!("{name} is both set and removed"));
        }
        if let Some((name, _)) = self
            .set
            .iter()
            .find(|(_, v)| v.len() > MAX_CONFIG_VALUE_BYTES)
        {
            return Err(format!(
                "the value of {name} is longer than {MAX_CONFIG_VALUE_BYTES} bytes"
            ));
        }
        Ok(())
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// The detail an owner signs to change an agent's configuration (action `config`): the
/// SHA-256 (lowercase hex) of the sealed [`ConfigChange`]'s plaintext bytes, exactly as sealed.
pub fn config_detail(plaintext: &[u8]) -> String {
    hex::encode(crate::sha256(plaintext))
}

/// How the owner recognises a value without the host returning it: SHA-256 (lowercase hex)
/// of `"wasm-hypervisor/v1/config-value" || 0x00 || agent || 0x00 || name || 0x00 || value`.
/// (Salted by agent and name, so equal secrets of two agents do not hash alike.)
pub fn value_hash(agent: &str, name: &str, value: &str) -> String {
    let mut input = Vec::with_capacity(64 + agent.len() + name.len() + value.len());
    for part in [
        b"wasm-hypervisor/v1/config-value".as_slice(),
        agent.as_bytes(),
        name.as_bytes(),
    ] {
        input.extend_from_slice(part);
        input.push(0);
    }
    input.extend_from_slice(value.as_bytes());
    hex::encode(crate::sha256(&input))
}

/// `PUT /agents/{name}/config`: changes an agent's configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigUpload {
    /// The owner's P-256 key, which owns the session `encrypted_config` is sealed to.
    pub public_key: String,
    /// That session (default: the newest of `public_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<Uuid>,
    /// The [`ConfigChange`] as JSON, sealed to the session (envelope, role `agent-config`,
    /// hex).
    pub encrypted_config: String,
    /// The owner's signature over `(config, name, config_detail(plaintext))`.
    pub signature: String,
    /// Its signing time, Unix seconds.
    pub signed_at: u64,
    /// Its sequence number ([`crate::agents::OwnerStatement::sequence`]).
    pub sequence: u64,
}

/// One configuration value as the owner reads it back: never the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigEntry {
    /// Its name.
    pub name: String,
    /// 1 when first set, +1 each time it is set again.
    pub version: u64,
    /// [`value_hash`] of the value.
    pub sha256: String,
    /// When it was last set, Unix seconds.
    pub updated_at: u64,
}

/// `GET /agents/{name}/config` (and the answer to `PUT`): the names the agent can read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigInfo {
    /// The agent.
    pub agent: String,
    /// Its entries, by name.
    pub entries: Vec<ConfigEntry>,
}

/// `POST /agents/{name}/state/export`: the owner asks for the agent's state, sealed to one of
/// its sessions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateExportRequest {
    /// The owner's P-256 key, which owns the session the export is sealed to.
    pub public_key: String,
    /// That session (default: the newest of `public_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<Uuid>,
    /// The owner's signature over `(export-state, name, "")`.
    pub signature: String,
    /// Its signing time, Unix seconds.
    pub signed_at: u64,
    /// Its sequence number (not ordered: an export changes nothing).
    pub sequence: u64,
}

/// The answer to an export.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StateExport {
    /// The agent.
    pub agent: String,
    /// The session the state is sealed to.
    pub session_id: Uuid,
    /// Keys exported.
    pub keys: u64,
    /// Bytes exported (keys and values).
    pub bytes: u64,
    /// An [`ExportedState`] as JSON, sealed to the session (envelope, role `state-export`,
    /// hex).
    pub encrypted_state: String,
}

/// The plaintext of an export.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportedState {
    /// The agent.
    pub agent: String,
    /// When, Unix milliseconds.
    pub exported_at_ms: u64,
    /// Buckets by name; in each, values (standard base64) by key.
    pub buckets: BTreeMap<String, BTreeMap<String, String>>,
}

/// `POST /agents/{name}/state/import`: the owner puts key-value state into the agent (an
/// [`ExportedState`], sealed to one of the owner's sessions).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateImportRequest {
    /// The owner's P-256 key, which owns the session.
    pub public_key: String,
    /// That session (default: the newest of `public_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<Uuid>,
    /// The [`ExportedState`] as JSON, sealed to the session (envelope, role `state-import`,
    /// hex).
    pub encrypted_state: String,
    /// Whether the imported state replaces everything the agent keeps (keys it does not name
    /// are removed) instead of being merged into it (default: merged, imported keys
    /// overwrite).
    #[serde(default)]
    pub replace: bool,
    /// The owner's signature over `(import-state, name, import_detail(plaintext, replace))`.
    pub signature: String,
    /// Its signing time, Unix seconds.
    pub signed_at: u64,
    /// Its sequence number (ordered like a deployment: an import changes the agent).
    pub sequence: u64,
}

/// The owner-signature detail of an import: the SHA-256 (lowercase hex) of the plaintext
/// exactly as sealed, a newline, and `replace=true` or `replace=false`.
pub fn import_detail(plaintext: &[u8], replace: bool) -> String {
    format!(
        "{}\nreplace={replace}",
        hex::encode(crate::sha256(plaintext))
    )
}

/// The answer to an import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateImported {
    /// The agent.
    pub agent: String,
    /// Keys written.
    pub keys: u64,
    /// Bytes written (keys and values).
    pub bytes: u64,
    /// Keys removed first (with `replace`).
    pub keys_removed: u64,
}

/// The answer to `DELETE /agents/{name}/state`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StateWiped {
    /// The agent.
    pub agent: String,
    /// Keys removed.
    pub keys_removed: u64,
}

/// What the host refused an invocation while it ran (a key-value quota): reported beside the
/// guest's own result, whatever the guest made of the refusal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateRefusal {
    /// [`STATE_QUOTA_EXCEEDED`].
    pub code: String,
    /// Which limit, and its value.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_checked() {
        let mut c = ConfigChange::default();
        c.set.insert("API_KEY".into(), "v".into());
        assert!(c.check().is_ok());
        c.remove.push("API_KEY".into());
        assert!(c.check().unwrap_err().contains("both"));
        let mut c = ConfigChange::default();
        c.set.insert("bad name".into(), "v".into());
        assert!(c.check().is_err());
        let mut c = ConfigChange::default();
        c.set
            .insert("BIG".into(), "x".repeat(MAX_CONFIG_VALUE_BYTES + 1));
        assert!(c.check().unwrap_err().contains("longer"));
    }

    #[test]
    fn value_hashes_are_salted_by_agent_and_name() {
        let a = value_hash("a", "K", "secret");
        assert_eq!(a.len(), 64);
        assert_ne!(a, value_hash("b", "K", "secret"));
        assert_ne!(a, value_hash("a", "L", "secret"));
        assert_eq!(a, value_hash("a", "K", "secret"));
    }
}
