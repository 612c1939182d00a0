//! Agent-to-agent calls, as the pipeline sees them: the [`CallFrame`] a call from another agent
//! arrives with, the checks the callee's side makes (owner as granted, `callers`, remaining
//! time), and the [`Dispatcher`] the pipeline asks for each agent run's outgoing-request hook.
//!
//! The dispatcher itself lives above the pipeline (`crate::egress`): it applies the caller's
//! grants and dispatches a call to a local agent back into the pipeline through the HTTP front,
//! in-process, with a [`CallFrame`] attached to the request. The pipeline only defines what it
//! needs from it, so no import runs from here up to the egress layer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hypervisor_protocol::EncodedPublicKey;
use hypervisor_protocol::grants::{AgentRef, Grants};
use hypervisor_protocol::wire::CallLink;

use crate::engine::OutgoingHook;
use crate::error::ApiError;
use crate::storage::agents::AgentRecord;

/// Where a request from an agent sits in its tree of calls. Attached by the egress layer to the
/// in-process request (an `http::Extensions` value: a network client cannot send one).
#[derive(Debug, Clone)]
pub struct CallFrame {
    /// The calling agent.
    pub caller: String,
    /// Its owner's key.
    pub caller_owner: EncodedPublicKey,
    /// The callee's owner as the caller's grant names it: the callee must still be owned by
    /// it when it runs (a name deleted and deployed again by another key is not the grant's).
    pub callee_owner: EncodedPublicKey,
    /// The callee's depth: 1 for an agent called by an agent a client invoked.
    pub depth: u32,
    /// When the caller's run must end: the callee's time is capped by what is left.
    pub deadline: Instant,
}

impl CallFrame {
    /// The checks of the callee's side: the agent is the one granted, it accepts the caller,
    /// and time is left. Returns the time left.
    ///
    /// # Errors
    /// [`ApiError::CallNotGranted`], [`ApiError::CallerNotAllowed`],
    /// [`ApiError::CallDeadlineExceeded`].
    pub fn admit(&self, callee: &AgentRecord) -> Result<Duration, ApiError> {
        if !same_owner(&self.callee_owner, &callee.owner_key) {
            return Err(ApiError::CallNotGranted(format!(
                "agent {} is not owned by the key the grant names",
                callee.name
            )));
        }
        if !self.accepted_by(&callee.grants) {
            return Err(ApiError::CallerNotAllowed(format!(
                "agent {} does not accept calls from agent {}",
                callee.name, self.caller
            )));
        }
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left < Duration::from_millis(1) {
            return Err(ApiError::CallDeadlineExceeded(format!(
                "the calling agent {} has no time left for a call",
                self.caller
            )));
        }
        Ok(left)
    }

    /// Whether the callee's `callers` list (absent: anyone granted) accepts this caller.
    pub fn accepted_by(&self, callee: &Grants) -> bool {
        callee.callers.as_ref().is_none_or(|callers| {
            callers
                .iter()
                .any(|c| c.name == self.caller && same_owner(&self.caller_owner, &c.owner_key))
        })
    }

    /// Whether the callee names this caller in its `callers` list explicitly (which lets it
    /// call a private agent in the clear).
    pub fn named_by(&self, callee: &Grants) -> bool {
        callee.callers.is_some() && self.accepted_by(callee)
    }
}

/// Whether `hex` is the key `key` (either SEC1 form).
pub fn same_owner(key: &EncodedPublicKey, hex: &str) -> bool {
    EncodedPublicKey::from_hex("owner_key", hex).is_ok_and(|k| &k == key)
}

/// An agent run that may send requests: what its hook needs to know.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// The agent.
    pub agent: AgentRef,
    /// Its grants.
    pub grants: Grants,
    /// The run's execution id (the call ledger links calls to it).
    pub execution_id: String,
    /// The run's depth: 0 for a client's invocation, the frame's depth for a called agent.
    pub depth: u32,
    /// When the run must end.
    pub deadline: Instant,
    /// The calls the run made, in order, as its receipt binds them (filled by the hook).
    pub calls: CallLog,
}

/// The calls one run made (shared by the run's hook, which appends, and the pipeline, which
/// reads them for the receipt when the run is over).
pub type CallLog = Arc<std::sync::Mutex<Vec<CallLink>>>;

/// The calls in `log`, or `None` when there were none.
pub fn calls_of(log: &CallLog) -> Option<Vec<CallLink>> {
    let calls = log
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    (!calls.is_empty()).then(|| calls.clone())
}

impl RunContext {
    /// The context of `agent`'s run `execution_id`, called with `frame` (none for a client's
    /// invocation), ending at `deadline`.
    pub fn of(
        agent: &AgentRecord,
        execution_id: &str,
        frame: Option<&CallFrame>,
        deadline: Instant,
        calls: CallLog,
    ) -> Self {
        Self {
            agent: AgentRef {
                name: agent.name.clone(),
                owner_key: agent.owner_key.clone(),
            },
            grants: agent.grants.clone(),
            execution_id: execution_id.to_string(),
            depth: frame.map_or(0, |f| f.depth),
            deadline,
            calls,
        }
    }
}

/// Builds each agent run's outgoing-request hook (implemented by `crate::egress`).
pub trait Dispatcher: Send + Sync {
    /// The hook of one run.
    fn hook(&self, run: RunContext) -> Arc<dyn OutgoingHook>;
}
