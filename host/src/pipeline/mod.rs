//! The request pipeline: everything between the fronts (HTTP today) and the engine. It knows
//! nothing about HTTP: it takes and returns plain values and its own error type. Every request
//! that runs code goes through the same steps, in this order:
//!
//! 0. **verify** (paid routes and agents, [`x402`]): the payment is verified first of all; a
//!    402 without a valid one;
//! 1. **open** ([`open`], the one door): find the session and check it belongs to the caller's
//!    key, decode and decrypt every field under its own role, resolve the limits; the program
//!    is a ciphertext or code the host holds (a deployed agent's), the input stdin or an
//!    event. Clear invocations of public agents enter through the same `Opened` form;
//! 2. **admit** ([`admission`]): the operator's policy decides on metadata, before anything is
//!    compiled or run; then the verified payment is recorded durably (a reservation);
//! 3. **prepare**: compile or fetch the component from the cache, check its imports;
//! 4. **run**: a fresh sandbox with the limits;
//! 5. **seal** ([`seal`]): encode the result, commit to it, encrypt it for the session; on
//!    verifiable routes and sessions sign a receipt with the session's attested key;
//! 6. **conclude** ([`conclude`]): record the run, then settle the reservation. A reservation
//!    that never gets there (no result) is released when dropped.

mod admission;
pub mod agents;
mod binary;
pub mod call;
mod conclude;
pub mod environments;
mod execute;
mod limits;
mod metrics;
mod open;
mod orphans;
mod python;
mod route;
mod seal;
mod x402;
/// x402 sign-in-with-x: the request's header and the account it signed in as.
pub use x402::sign_in;

use std::sync::Arc;

use hypervisor_protocol::EncodedPublicKey;
use hypervisor_protocol::attest::{StatementKind, as_refs, session_fields};
use hypervisor_protocol::wire::{
    Attestation, CreateKeypairRequest, CreateKeypairResponse, SessionQuote,
    VerifiableKeypairResponse,
};

pub use binary::BinaryField;
pub use execute::ARGV0;
pub use limits::resolve_limits;
pub use route::RouteKind;
pub use seal::ExecuteOutcome;
pub use x402::REPLAY_REASON;
pub use x402::discovery::{ListQuery, SearchQuery};
pub use x402::identifier::{KeepSlot, Reserved, keeping};

use crate::attestation::{Attestor, TeeKind};
use crate::cluster::Identity;
use crate::config::Config;
use crate::crypto::at_rest::SealingKey;
use crate::engine::Engine;
use crate::error::ApiError;
use crate::plugins::payments::Payments;
use crate::plugins::policy::{PolicySlot, ProgramKind};
use crate::plugins::python::PythonRuntime;
use crate::session::SessionTable;
use crate::session::{Session, SessionError};
use crate::storage::agent_store::AgentStore;
use crate::storage::members::Members;
use crate::storage::payments::PaymentLedger;
use crate::storage::receipts::ReceiptLog;

/// Shared state of the pipeline.
pub struct Pipeline {
    config: Arc<Config>,
    sessions: Arc<SessionTable>,
    engine: Arc<Engine>,
    attestor: Arc<Attestor>,
    receipts: ReceiptLog,
    policy: Arc<PolicySlot>,
    python: Option<PythonRuntime>,
    /// The JavaScript runtime component (snapshotted per agent at deployment).
    js_runtime: Option<Arc<crate::engine::JsRuntime>>,
    /// StarlingMonkey's spliced engine, for agents deployed with that engine.
    starlingmonkey: Option<Arc<crate::engine::StarlingMonkey>>,
    payments: Option<Arc<Payments>>,
    ledger: Arc<dyn PaymentLedger>,
    /// Settlements after the response in flight (`payments.deferred_settlements_max`).
    deferred_settlements: Arc<tokio::sync::Semaphore>,
    /// Payments held by runs that record them after the run ([`x402::claims`]).
    claims: Arc<x402::claims::Claims>,
    agents: Arc<AgentStore>,
    audience: String,
    identity: Identity,
    members: Arc<dyn Members>,
    sealing: Arc<SealingKey>,
    public_base: std::sync::OnceLock<String>,
    dispatcher: std::sync::OnceLock<Arc<dyn call::Dispatcher>>,
    metrics: Arc<crate::metrics::Metrics>,
    /// SHA-256 of programs sent recently (an execution's program is not hashed again).
    digests: crate::crypto::digests::DigestMemo,
    started: std::time::Instant,
}

/// The parts the pipeline is assembled from (built by [`crate::server::Host::build`]).
pub struct Parts {
    /// The configuration.
    pub config: Arc<Config>,
    /// Live sessions.
    pub sessions: Arc<SessionTable>,
    /// The engine.
    pub engine: Arc<Engine>,
    /// The attestor.
    pub attestor: Arc<Attestor>,
    /// The receipt log.
    pub receipts: ReceiptLog,
    /// The policy in force (swappable).
    pub policy: Arc<PolicySlot>,
    /// The Python runtime, when the Python routes are enabled.
    pub python: Option<PythonRuntime>,
    /// The payments component, when the paid routes are enabled.
    pub payments: Option<Payments>,
    /// The JavaScript runtime component, when JS/TS agents are accepted.
    pub js_runtime: Option<Arc<crate::engine::JsRuntime>>,
    /// StarlingMonkey's spliced engine, when that engine is offered.
    pub starlingmonkey: Option<Arc<crate::engine::StarlingMonkey>>,
    /// The payment ledger.
    pub ledger: Arc<dyn PaymentLedger>,
    /// Agents and execution records.
    pub agents: Arc<AgentStore>,
    /// The host's audience, named by every owner signature (shared by every replica).
    pub audience: String,
    /// Which replica and run this is.
    pub identity: Identity,
    /// The runs sharing the database (to name the replica of another's session).
    pub members: Arc<dyn Members>,
    /// Seals what the payment ledger keeps to settle a payment if this run dies (the at-rest
    /// key, or the cluster key: another replica opens it).
    pub sealing: Arc<SealingKey>,
}

impl Pipeline {
    /// Assembles the pipeline.
    pub fn new(parts: Parts) -> Self {
        let Parts {
            config,
            sessions,
            engine,
            attestor,
            receipts,
            policy,
            python,
            payments,
            js_runtime,
            starlingmonkey,
            ledger,
            agents,
            audience,
            identity,
            members,
            sealing,
        } = parts;
        let digests =
            crate::crypto::digests::DigestMemo::new(config.engine.program_digest_memo_bytes);
        let deferred_settlements = Arc::new(tokio::sync::Semaphore::new(
            config.payments.deferred_settlements_max,
        ));
        Self {
            config,
            sessions,
            engine,
            attestor,
            receipts,
            policy,
            python,
            payments: payments.map(Arc::new),
            js_runtime,
            starlingmonkey,
            ledger,
            deferred_settlements,
            claims: Arc::default(),
            agents,
            audience,
            identity,
            members,
            sealing,
            public_base: std::sync::OnceLock::new(),
            dispatcher: std::sync::OnceLock::new(),
            metrics: Arc::default(),
            digests,
            started: std::time::Instant::now(),
        }
    }

    /// The host's audience: owner signatures made for another host are refused here.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Sets, once, what builds agents' outgoing-request hooks (the egress layer, wired by the
    /// composition root once the HTTP front exists). Without one, agents reach nothing.
    pub fn set_dispatcher(&self, dispatcher: Arc<dyn call::Dispatcher>) {
        let _ = self.dispatcher.set(dispatcher);
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Sets the base URL of resource URLs in payment challenges, once, when the listener's
    /// address is known (`payments.public_url` takes precedence).
    pub fn set_public_base(&self, url: String) {
        let _ = self.public_base.set(url);
    }

    /// The base URL clients reach this host at (`payments.public_url`, else the listener's
    /// address), without a trailing slash: in payment challenges and A2A cards.
    pub fn public_base(&self) -> &str {
        match &self.config.payments.public_url {
            Some(url) => url.trim_end_matches('/'),
            None => self
                .public_base
                .get()
                .map_or("http://localhost", String::as_str),
        }
    }

    /// The policy slot (replaced on reload).
    pub fn policy(&self) -> &Arc<PolicySlot> {
        &self.policy
    }

    /// The attestor.
    pub fn attestor(&self) -> &Attestor {
        &self.attestor
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine, shared.
    pub fn engine_arc(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The session table.
    pub fn sessions(&self) -> &SessionTable {
        &self.sessions
    }

    /// Which replica and run this is.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The replica's name, when it is one of a cluster's: the `x-hypervisor-replica` header
    /// and the receipts' `replica` say it.
    pub fn replica_label(&self) -> Option<&str> {
        self.identity.label()
    }

    /// The session of a request (see [`SessionTable::lookup`]); one that another replica
    /// created is a 421 naming that replica.
    ///
    /// # Errors
    /// [`ApiError::Session`], [`ApiError::SessionElsewhere`].
    pub(crate) fn lookup_session(
        &self,
        id: Option<uuid::Uuid>,
        key: &EncodedPublicKey,
    ) -> Result<Arc<Session>, ApiError> {
        match self.sessions.lookup(id, key) {
            Ok(session) => Ok(session),
            Err(SessionError::Elsewhere(session, tag)) => {
                // The miss path only: which replica has that tag.
                let replica = self
                    .members
                    .list()
                    .ok()
                    .and_then(|members| {
                        members
                            .into_iter()
                            .find(|m| m.tag == tag)
                            .map(|m| m.replica)
                    })
                    .unwrap_or_else(|| format!("another replica (tag {tag:04x})"));
                Err(ApiError::SessionElsewhere { session, replica })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// `create_keypair`: a new session for the caller's key.
    ///
    /// # Errors
    /// [`ApiError::MalformedHex`], [`ApiError::InvalidPublicKey`], or a session error.
    pub fn create_session(
        &self,
        req: &CreateKeypairRequest,
    ) -> Result<CreateKeypairResponse, ApiError> {
        let client_key = EncodedPublicKey::from_hex("pubkey", &req.pubkey)?;
        let session = self.sessions.create(client_key, None)?;
        Ok(CreateKeypairResponse {
            session_pubkey: session.server_key.to_hex(),
            session_id: session.id,
            expires_in_seconds: self.sessions.ttl().as_secs(),
        })
    }

    /// `verifiable/create_keypair`: a session whose statement (id, both session keys, times)
    /// is signed by the attested key; the response carries the whole chain.
    ///
    /// # Errors
    /// [`ApiError::AttestationUnavailable`] without a provider, or the errors of
    /// [`Self::create_session`].
    pub fn create_verifiable_session(
        &self,
        req: &CreateKeypairRequest,
    ) -> Result<VerifiableKeypairResponse, ApiError> {
        let key = self
            .attestor
            .current()
            .ok_or(ApiError::AttestationUnavailable)?;
        let client_key = EncodedPublicKey::from_hex("pubkey", &req.pubkey)?;
        let session = self.sessions.create(client_key, Some(key.clone()))?;
        let fields = session_fields(
            &session.id,
            &session.server_key,
            &client_key,
            session.created_unix,
            session.expires_unix,
        );
        let signature = key
            .sign(StatementKind::Session, &as_refs(&fields))
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok(VerifiableKeypairResponse {
            session_pubkey: session.server_key.to_hex(),
            session_id: session.id,
            expires_in_seconds: self.sessions.ttl().as_secs(),
            quote: SessionQuote {
                attestation: key.attestation().clone(),
                session_created_at: session.created_unix,
                session_expires_at: session.expires_unix,
                session_signature: hex::encode(signature),
            },
        })
    }

    /// The attestation provider's kind.
    pub fn tee_kind(&self) -> TeeKind {
        self.attestor.kind()
    }

    /// How RISC-V programs run here (`GET /host`); `None` when they do not.
    pub async fn riscv_info(&self) -> Option<hypervisor_protocol::host::RiscvInfo> {
        self.engine.riscv_info().await
    }

    /// `GET /attestation`: the provider kind and, when configured, the current attested key.
    pub fn attestation(&self) -> (TeeKind, Option<Attestation>) {
        (
            self.attestor.kind(),
            self.attestor.current().map(|k| k.attestation().clone()),
        )
    }
}
