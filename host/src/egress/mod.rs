//! Agents' egress: what an agent's outgoing `wasi:http` requests reach, above the pipeline.
//!
//! Each agent run gets its own hook ([`RunHook`], built by [`Egress`] as the pipeline's
//! [`Dispatcher`]). For every request the guest sends, the hook:
//! 1. counts it against `egress.max_calls_per_run` (fan-out);
//! 2. reads the destination from the URI's authority ([`destination::Destination`]):
//!    - `NAME.agents.internal`: agent `NAME` on this host, if the run's grants name it (with
//!      its owner's key) and the call stays within `egress.max_depth`. It is dispatched
//!      in-process into the HTTP front (`/agents/NAME/…`), with a [`CallFrame`] attached: no
//!      socket, no TLS, no second decryption. The callee runs through the pipeline like any
//!      invocation (its own fresh sandbox, limits, policy, payment), and the pipeline checks
//!      the callee's side (owner as granted, its `callers`, the time left);
//!    - `hypervisor.internal`: the host's own search (`POST /search`), if granted;
//!    - a granted hypervisor's origin: an attested, sealed invocation of an agent there
//!      ([`remote`]);
//!    - anything else: sent over the network if its origin is granted, else
//!      `HTTP-request-denied`, to an address checked once and connected to as checked
//!      ([`connect`]: no private addresses unless named, no DNS rebinding, no redirects
//!      followed);
//! 3. answers a callee's 402 from the agent's wallet, within its owner's spending policy, and
//!    sends the request once more with the payment ([`pay`]; the agent's code never holds the
//!    key); no wallet: the guest gets the 402; outside the policy: `spending_refused`;
//! 4. records the call in the ledger ([`crate::storage::calls`]) before the guest sees the
//!    response: callee, status, the callee's execution id, the SHA-256 of the body the caller
//!    got (for an invocation, the callee record's commitment), the settlement of a paid call.
//!
//! A refusal made here is an HTTP response with the host's usual JSON error body (the stable
//! codes `call_not_granted`, `call_depth_exceeded`, `call_fan_out_exceeded`, ...), so the
//! guest can tell why; only an ungranted remote origin is a `wasi:http` error, as on any
//! `wasi:http` host.

mod connect;
mod destination;
mod hook;
mod pay;
mod pool;
mod remote;
mod response;

use std::sync::{Arc, OnceLock};

pub use connect::{Refusal, is_public};
pub use destination::Destination;
pub use hook::RunHook;

use crate::config::Config;
use crate::engine::OutgoingHook;
use crate::pipeline::call::{Dispatcher, RunContext};
use crate::storage::agent_store::AgentStore;

/// The egress layer: builds each agent run's hook. Dispatches local calls into the HTTP front,
/// which the composition root hands over once it is built ([`Egress::attach_front`]).
pub struct Egress {
    inner: Arc<Shared>,
}

/// What every run's hook shares.
pub(crate) struct Shared {
    pub(crate) config: crate::config::EgressConfig,
    pub(crate) max_body_bytes: usize,
    pub(crate) front: OnceLock<axum::Router>,
    /// Agents' storage: the records' writer (the call ledger) and the wallets.
    pub(crate) agents: Arc<AgentStore>,
    /// The payment ledger: what a metered callee on this host was charged.
    pub(crate) ledger: Arc<dyn crate::storage::payments::PaymentLedger>,
    /// Remote origins: names resolved (`egress.hosts` first) and checked, connections kept
    /// alive per agent.
    pub(crate) remote: connect::Remote,
}

impl Egress {
    /// The layer for `config`, recording calls and paying from wallets in `agents`.
    pub fn new(
        config: &Config,
        agents: Arc<AgentStore>,
        ledger: Arc<dyn crate::storage::payments::PaymentLedger>,
    ) -> Self {
        Self {
            inner: Arc::new(Shared {
                config: config.egress.clone(),
                max_body_bytes: config.http.max_body_bytes,
                front: OnceLock::new(),
                agents,
                ledger,
                remote: connect::Remote::new(
                    Arc::new(connect::SystemResolver::new(config.egress.hosts.clone())),
                    pool::Pool::new(
                        std::time::Duration::from_millis(config.egress.keep_alive_ms),
                        config.egress.max_idle_connections,
                    ),
                ),
            }),
        }
    }

    /// Hands over the HTTP front local calls are dispatched into (once).
    pub fn attach_front(&self, front: axum::Router) {
        let _ = self.inner.front.set(front);
    }
}

impl Dispatcher for Egress {
    fn hook(&self, run: RunContext) -> Arc<dyn OutgoingHook> {
        Arc::new(RunHook::new(self.inner.clone(), run))
    }
}
