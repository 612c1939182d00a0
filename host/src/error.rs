//! The error type of every request. Leaf modules have their own typed errors; they convert
//! into [`ApiError`] here, and `http::error` maps each variant to a status and a stable code
//! in one place.

use hypervisor_protocol::ProtocolError;
use hypervisor_protocol::wire::{EncryptedResult, ExitStatus, Receipt};

use crate::engine::EngineError;
use crate::plugins::payments::{Challenge, SettlementHeader};
use crate::session::SessionError;

/// The HTTP answer kept for an identified payment (x402 `payment-identifier`), given again to
/// its retries: status, headers (no framing headers) and body, as first sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayedAnswer {
    /// HTTP status.
    pub status: u16,
    /// Header names and values (visible ASCII).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// Why a request failed. Messages never contain plaintext, keys or guest output.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON.
    #[error("request body is not valid JSON: {0}")]
    MalformedJson(String),
    /// The JSON does not match the route's schema (missing, unknown or mistyped fields).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A hex field does not decode.
    #[error("{0}")]
    MalformedHex(String),
    /// A public key is not a P-256 point.
    #[error("{0}")]
    InvalidPublicKey(String),
    /// Session lookup or creation failed.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// A ciphertext did not authenticate.
    #[error("{0}")]
    Decryption(String),
    /// The body exceeds the configured limit.
    #[error("request body exceeds the limit of {0} bytes")]
    BodyTooLarge(usize),
    /// The body did not arrive in time.
    #[error("request body not received within {0} ms")]
    BodyTimeout(u64),
    /// The body could not be read (client went away, bad framing).
    #[error("request body could not be read: {0}")]
    BodyRead(String),
    /// An argument is not UTF-8 (WASI arguments are strings).
    #[error("{0}")]
    InvalidArgument(String),
    /// A requested limit is above the operator's maximum.
    #[error("{0}")]
    LimitExceedsMaximum(String),
    /// Fuel was requested but metering is off.
    #[error("this host does not meter fuel (engine.fuel = false); omit limits.fuel")]
    FuelNotEnabled,
    /// The component could not be prepared.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Verifiable routes need an attestation provider.
    #[error("this host has no attestation provider: verifiable routes are unavailable")]
    AttestationUnavailable,
    /// The TLS channel binding was asked for on a plain HTTP connection.
    #[error("the channel binding needs an HTTPS connection (TLS 1.3); this one is plain HTTP")]
    TlsRequired,
    /// A verifiable route was called with a session created on a non-verifiable route.
    #[error("session {0} is not verifiable: create it with /verifiable/encrypt/create_keypair")]
    SessionNotVerifiable(uuid::Uuid),
    /// The guest was stopped (deadline, memory, fuel, trap). What it produced until then is
    /// returned encrypted alongside the error.
    #[error("{}", stopped_message(*status))]
    GuestStopped {
        /// How it ended.
        status: ExitStatus,
        /// The encrypted partial result.
        result: Box<EncryptedResult>,
        /// Its signed receipt, on verifiable routes.
        receipt: Option<Box<Receipt>>,
        /// The payment's settlement, on paid routes (the stopped run was paid for).
        settlement: Option<Box<SettlementHeader>>,
        /// The execution's record id, returned in `x-execution-id` as for a run that exited.
        execution_id: String,
    },
    /// A paid route without a valid payment: 402 with the challenge.
    #[error("{message}")]
    PaymentRequired {
        /// The challenge in both protocol versions.
        challenge: Box<Challenge>,
        /// The x402 reason (`payment_required` when no payment was sent).
        reason: String,
        /// Human explanation.
        message: String,
    },
    /// A payment's x402 payment identifier is not one.
    #[error("{0}")]
    InvalidPaymentIdentifier(String),
    /// The route requires a payment identifier and the payment has none.
    #[error("{0}")]
    PaymentIdentifierRequired(String),
    /// The payment identifier came before with another payment or on another route.
    #[error(
        "payment identifier {0} was used with another payment or on another route: choose a new one"
    )]
    PaymentIdentifierConflict(String),
    /// The first request with this payment identifier is still running.
    #[error("the request paid with payment identifier {0} is still running: retry shortly")]
    PaymentIdentifierInProgress(String),
    /// The answer to this payment identifier is no longer kept.
    #[error(
        "the answer to payment identifier {0} is no longer kept (or its request was never \
         answered); its payment was used: pay again with a new identifier"
    )]
    PaymentIdentifierAnswerGone(String),
    /// A retry of an identified payment: the answer its first request got, again.
    #[error("the answer kept for this payment identifier")]
    AnswerReplayed(Box<ReplayedAnswer>),
    /// The paid routes are disabled on this host.
    #[error("this host does not take payments (payments.enabled = false)")]
    PaymentsUnavailable,
    /// A tariff was sent to a host that cannot charge by the meter (x402 `upto`).
    #[error(
        "this host does not take metered payments: a tariff needs payments enabled in \
         facilitator mode, a payments component exporting hypervisor:host/metered-payments, \
         payments.facilitator_address, and engine.fuel when it charges by fuel"
    )]
    MeteredUnavailable,
    /// The payments component failed (host side: not the payer's fault).
    #[error("payment processing failed: {0}")]
    PaymentsFailed(String),
    /// The work ran but its payment could not be settled.
    #[error("the payment could not be settled ({reason}); the result is withheld")]
    SettlementFailed {
        /// x402 reason.
        reason: String,
        /// The settlement header to return.
        header: Box<SettlementHeader>,
    },
    /// The operator's policy refused the request.
    #[error("refused by the operator's policy ({rule}): {reason}")]
    PolicyDenied {
        /// The rule that refused it.
        rule: String,
        /// The policy's explanation.
        reason: String,
    },
    /// The policy could not decide (trap, timeout): the request is refused (fail closed).
    #[error("the operator's policy could not decide, so the request was refused: {0}")]
    PolicyUnavailable(String),
    /// The Python routes are disabled on this host.
    #[error("this host does not serve Python scripts (python.enabled = false)")]
    PythonUnavailable,
    /// The script cannot be run at all (for example, not UTF-8).
    #[error("{0}")]
    InvalidScript(String),
    /// No such agent.
    #[error("no agent named {0}")]
    AgentNotFound(String),
    /// State to import would take the agent past its quotas; nothing was written.
    #[error("{0}")]
    StateQuotaExceeded(String),
    /// The agent has no wallet.
    #[error(
        "agent {0} has no wallet: its owner attaches one (PUT /agents/{0}/wallet; \
         `hypervisor-client agent wallet {0} --wallet-key FILE --policy FILE`)"
    )]
    WalletNotFound(String),
    /// The agent's name belongs to another key.
    #[error("agent {0} belongs to another owner")]
    NotOwner(String),
    /// An owner signature is missing or wrong.
    #[error("owner signature refused: {0}")]
    OwnerSignature(String),
    /// A clear request to an agent deployed as private.
    #[error("agent {0} is private: invoke it with a request sealed to your session")]
    AgentNotPublic(String),
    /// An agent's call outside its grants.
    #[error("{0}")]
    CallNotGranted(String),
    /// An agent's call to an agent that does not accept it as a caller.
    #[error("{0}")]
    CallerNotAllowed(String),
    /// An agent's call with no time left.
    #[error("{0}")]
    CallDeadlineExceeded(String),
    /// An agent's call deeper than the configured depth.
    #[error("{0}")]
    CallDepthExceeded(String),
    /// A remote-hypervisor grant in the old form (host measurements only): nothing was sent.
    #[error("{0}")]
    RemoteGrantOutdated(String),
    /// A remote hypervisor failed verification: nothing of the caller's was sent.
    #[error("the remote hypervisor was not verified: {0}")]
    RemoteNotAttested(String),
    /// The agent's wallet policy refused to pay what a callee asks (nothing was signed).
    #[error("the agent's wallet did not pay: {0}")]
    SpendingRefused(String),
    /// A run made more calls than allowed.
    #[error("{0}")]
    CallFanOutExceeded(String),
    /// The request does not fit the agent's kind.
    #[error("{0}")]
    WrongAgentKind(String),
    /// An HTTP agent produced no response.
    #[error("{0}")]
    AgentFailed(String),
    /// No such execution record.
    #[error("no execution {0}")]
    ExecutionNotFound(String),
    /// No such route.
    #[error("no route for {0}")]
    NotFound(String),
    /// The route exists for other methods.
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// An operator route without the operator's token.
    #[error(
        "this route is for the host's operator: send Authorization: Bearer <http.operator_token>"
    )]
    Unauthorized,
    /// A session another replica created (the message names it).
    #[error(
        "session {session} was created on replica {replica}: open a session on this replica, or send the request to {replica}"
    )]
    SessionElsewhere {
        /// The session.
        session: uuid::Uuid,
        /// The replica that created it (`another replica` when it is not known).
        replica: String,
    },
    /// The database cannot be reached: nothing was written.
    #[error("the database is unavailable; retry later ({0})")]
    StorageUnavailable(String),
    /// A host-side failure.
    #[error("internal error: {0}")]
    Internal(String),
}

fn stopped_message(status: ExitStatus) -> &'static str {
    match status {
        ExitStatus::TimeLimitExceeded => "the program was stopped at its time limit",
        ExitStatus::MemoryLimitExceeded => "the program exceeded its memory limit and trapped",
        ExitStatus::FuelExhausted => "the program ran out of fuel",
        ExitStatus::Trapped => "the program trapped; the encrypted result holds the details",
        ExitStatus::Exited => "the program exited",
    }
}

impl From<ProtocolError> for ApiError {
    fn from(e: ProtocolError) -> Self {
        match e {
            ProtocolError::Hex { .. } => ApiError::MalformedHex(e.to_string()),
            ProtocolError::PublicKey(_) => ApiError::InvalidPublicKey(e.to_string()),
            ProtocolError::EnvelopeTooShort { .. } | ProtocolError::Decrypt { .. } => {
                ApiError::Decryption(e.to_string())
            }
            ProtocolError::SecretKey
            | ProtocolError::Encrypt
            | ProtocolError::Random
            | ProtocolError::BadSignature => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<crate::storage::StorageError> for ApiError {
    /// An unreachable database is a 503 the client may retry; anything else a 500.
    fn from(e: crate::storage::StorageError) -> Self {
        if e.is_unavailable() {
            ApiError::StorageUnavailable(e.to_string())
        } else {
            ApiError::Internal(e.to_string())
        }
    }
}
