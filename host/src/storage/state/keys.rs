//! The keys of one agent's state: derived from the host's (or cluster's) at-rest key, the
//! agent's name and its owner's key, so each agent's entries are sealed under a key of its own,
//! and an agent deployed again under the same name by another owner could not read what an
//! earlier one left (deleting an agent wipes its state anyway).
//!
//! ```text
//! state key  = HMAC-SHA256(at-rest key, "wasm-hypervisor/v1/agent-state" || 0 || name || 0 || owner key hex)
//! bucket id  = HMAC-SHA256(state key, "bucket" || 0 || bucket)
//! entry id   = HMAC-SHA256(state key, "entry" || 0 || u32be(len bucket) || bucket || key)
//! sealed     = AES-256-GCM-SIV under the state key (crypto::at_rest), aad = purpose || entry id
//! ```

use std::sync::Arc;

use zeroize::Zeroizing;

use crate::crypto::at_rest::{SealError, SealingKey};

/// An entry's or a bucket's id (32 bytes).
pub type EntryId = [u8; 32];

const STATE_KEY_PURPOSE: &[u8] = b"wasm-hypervisor/v1/agent-state";
const CONFIG_KEY_PURPOSE: &[u8] = b"wasm-hypervisor/v1/agent-config";
const NAME_PURPOSE: &[u8] = b"wasm-hypervisor/v1/agent-state/name";
const VALUE_PURPOSE: &[u8] = b"wasm-hypervisor/v1/agent-state/value";

/// One agent's state keys.
pub struct AgentKeys {
    /// The agent's name.
    pub agent: Arc<str>,
    state: SealingKey,
}

impl std::fmt::Debug for AgentKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentKeys")
            .field("agent", &self.agent)
            .finish_non_exhaustive()
    }
}

fn derived(root: &SealingKey, purpose: &[u8], agent: &str, owner_key: &str) -> SealingKey {
    let mut data = Vec::with_capacity(agent.len() + 1 + owner_key.len());
    data.extend_from_slice(agent.as_bytes());
    data.push(0);
    data.extend_from_slice(owner_key.to_ascii_lowercase().as_bytes());
    SealingKey::from_bytes(Zeroizing::new(root.derive_name(purpose, &data)))
}

impl AgentKeys {
    /// The state keys of agent `agent` owned by `owner_key` (hex SEC1).
    pub fn derive(root: &SealingKey, agent: &str, owner_key: &str) -> Self {
        Self {
            agent: Arc::from(agent),
            state: derived(root, STATE_KEY_PURPOSE, agent, owner_key),
        }
    }

    /// The key that seals the agent's configuration (`storage::agent_config`).
    pub fn config_key(root: &SealingKey, agent: &str, owner_key: &str) -> SealingKey {
        derived(root, CONFIG_KEY_PURPOSE, agent, owner_key)
    }

    /// The id of bucket `bucket`.
    pub fn bucket_id(&self, bucket: &str) -> EntryId {
        self.state.derive_name(b"bucket", bucket.as_bytes())
    }

    /// The id of `key` in `bucket`.
    pub fn entry_id(&self, bucket: &str, key: &str) -> EntryId {
        let mut data = Vec::with_capacity(4 + bucket.len() + key.len());
        data.extend_from_slice(
            &u32::try_from(bucket.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        data.extend_from_slice(bucket.as_bytes());
        data.extend_from_slice(key.as_bytes());
        self.state.derive_name(b"entry", &data)
    }

    fn aad(purpose: &[u8], id: &EntryId) -> Vec<u8> {
        let mut aad = Vec::with_capacity(purpose.len() + 32);
        aad.extend_from_slice(purpose);
        aad.extend_from_slice(id);
        aad
    }

    /// Seals the bucket and key names of entry `id`.
    ///
    /// # Errors
    /// [`SealError`].
    pub fn seal_name(&self, id: &EntryId, bucket: &str, key: &str) -> Result<Vec<u8>, SealError> {
        let mut plain = Vec::with_capacity(4 + bucket.len() + key.len());
        plain.extend_from_slice(
            &u32::try_from(bucket.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        plain.extend_from_slice(bucket.as_bytes());
        plain.extend_from_slice(key.as_bytes());
        self.state.seal(&Self::aad(NAME_PURPOSE, id), &plain)
    }

    /// Opens what [`Self::seal_name`] sealed: `(bucket, key)`.
    ///
    /// # Errors
    /// [`SealError::Corrupt`].
    pub fn open_name(&self, id: &EntryId, sealed: &[u8]) -> Result<(String, String), SealError> {
        let plain = self.state.open(&Self::aad(NAME_PURPOSE, id), sealed)?;
        let (len, rest) = plain.split_at_checked(4).ok_or(SealError::Corrupt)?;
        let len = u32::from_be_bytes(len.try_into().map_err(|_| SealError::Corrupt)?) as usize;
        let (bucket, key) = rest.split_at_checked(len).ok_or(SealError::Corrupt)?;
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| SealError::Corrupt);
        Ok((text(bucket)?, text(key)?))
    }

    /// Seals the value of entry `id`.
    ///
    /// # Errors
    /// [`SealError`].
    pub fn seal_value(&self, id: &EntryId, value: &[u8]) -> Result<Vec<u8>, SealError> {
        self.state.seal(&Self::aad(VALUE_PURPOSE, id), value)
    }

    /// Opens a value sealed by [`Self::seal_value`] for the same `id`.
    ///
    /// # Errors
    /// [`SealError::Corrupt`] (also for a value moved to another entry or agent).
    pub fn open_value(&self, id: &EntryId, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        self.state
            .open(&Self::aad(VALUE_PURPOSE, id), sealed)
            .map(Zeroizing::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_and_owners_get_separate_ids_and_keys() {
        let root = SealingKey::generate().unwrap();
        let a = AgentKeys::derive(&root, "a", "04aa");
        let b = AgentKeys::derive(&root, "b", "04aa");
        let a2 = AgentKeys::derive(&root, "a", "04bb");
        assert_ne!(a.entry_id("cart", "k"), b.entry_id("cart", "k"));
        assert_ne!(a.entry_id("cart", "k"), a2.entry_id("cart", "k"));
        assert_eq!(
            a.entry_id("cart", "k"),
            AgentKeys::derive(&root, "a", "04AA").entry_id("cart", "k")
        );
        // The bucket/key boundary is length-prefixed.
        assert_ne!(a.entry_id("ab", "c"), a.entry_id("a", "bc"));
        let id = a.entry_id("cart", "k");
        let sealed = a.seal_value(&id, b"v").unwrap();
        assert_eq!(&*a.open_value(&id, &sealed).unwrap(), b"v");
        assert!(b.open_value(&b.entry_id("cart", "k"), &sealed).is_err());
        assert!(a.open_value(&a.entry_id("cart", "other"), &sealed).is_err());
        let name = a.seal_name(&id, "cart", "k").unwrap();
        assert_eq!(
            a.open_name(&id, &name).unwrap(),
            ("cart".into(), "k".into())
        );
    }
}
