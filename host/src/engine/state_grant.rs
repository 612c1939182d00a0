//! The state unit of a store (see the table on [`super::Capabilities`]): which agent's state
//! and configuration a store reaches ([`StateAccess`], from the pipeline), and what the store
//! keeps of them while it runs ([`StateGrant`]). The interfaces over them are in
//! `engine/state.rs`.

use std::sync::Arc;

use crate::storage::agent_config::{ConfigDoc, ConfigStore};
use crate::storage::state::{AgentKeys, StateStore};

/// What an agent's store may reach: its own state and configuration.
#[derive(Clone)]
pub struct StateAccess {
    /// Agents' state.
    pub store: Arc<StateStore>,
    /// Agents' configuration.
    pub config: Arc<ConfigStore>,
    /// The agent.
    pub agent: Arc<str>,
    /// Its owner's key (hex), part of its keys' derivation.
    pub owner_key: Arc<str>,
}

impl std::fmt::Debug for StateAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateAccess")
            .field("agent", &self.agent)
            .finish_non_exhaustive()
    }
}

impl PartialEq for StateAccess {
    fn eq(&self, other: &Self) -> bool {
        self.agent == other.agent
            && self.owner_key == other.owner_key
            && Arc::ptr_eq(&self.store, &other.store)
    }
}

impl Eq for StateAccess {}

/// One store's state: the access, the agent's keys and configuration once used, and the last
/// quota refusal.
pub struct StateGrant {
    pub(super) access: Option<StateAccess>,
    pub(super) keys: Option<Arc<AgentKeys>>,
    pub(super) config: Option<Arc<ConfigDoc>>,
    pub(super) refusal: Option<String>,
    /// Bytes of values the run's open compare-and-swap handles hold (bounded:
    /// `state::MAX_CAS_BYTES`).
    pub(super) cas_bytes: usize,
}

impl StateGrant {
    /// The grant of a store with `access` (none: no state, empty configuration).
    pub fn new(access: Option<StateAccess>) -> Self {
        Self {
            access,
            keys: None,
            config: None,
            refusal: None,
            cas_bytes: 0,
        }
    }

    /// The last quota refusal, taken.
    pub fn take_refusal(&mut self) -> Option<String> {
        self.refusal.take()
    }
}
