//! The stable error codes of the HTTP API (`docs/PROTOCOL.md` §9): the `code` of every error
//! body `{"error": {"code", "message"}}` (and of the x402 challenge body), with its HTTP status.
//!
//! A code never changes meaning or status. On the wire it is its snake_case name
//! ([`ErrorCode::as_str`]). Error bodies carry only these codes, except the x402 challenge
//! (`402`), whose `code` names the refusal: `payment_required` when no payment was sent,
//! otherwise the x402 reason (`docs/PROTOCOL.md` §6b). A client may meet a code it does not
//! know (from a newer host): parsing then gives [`UnknownErrorCode`], and the bare string stays
//! available in [`crate::wire::ErrorDetail::code`].

use std::fmt;
use std::str::FromStr;

/// Declares [`ErrorCode`] from one list: variant, wire name, HTTP status, documentation.
macro_rules! error_codes {
    ($( $(#[doc = $doc:literal])* $variant:ident = $code:literal, $status:literal; )*) => {
        /// A stable error code of the HTTP API (see the module documentation).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ErrorCode {
            $( $(#[doc = $doc])* #[doc = concat!("\n\nWire name `", $code, "`, status ", $status, ".")] $variant, )*
        }

        impl ErrorCode {
            /// Every code, by status (the order of the `ErrorCode` schema of `docs/openapi.json`).
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as sent on the wire (snake_case).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }

            /// The HTTP status every response with this code has.
            pub const fn status(self) -> u16 {
                match self {
                    $(ErrorCode::$variant => $status,)*
                }
            }
        }
    };
}

error_codes! {
    /// The body is not JSON.
    MalformedJson = "malformed_json", 400;
    /// Wrong shape: missing, unknown or mistyped field; too many arguments; a zero limit; a
    /// semantic check of the route (agent name, search query, ...).
    InvalidRequest = "invalid_request", 400;
    /// A hex field does not decode (the message names the field).
    MalformedHex = "malformed_hex", 400;
    /// Not a SEC1 P-256 point.
    InvalidPublicKey = "invalid_public_key", 400;
    /// An envelope does not authenticate: wrong key, session or field, or tampered (the message
    /// names the field).
    DecryptionFailed = "decryption_failed", 400;
    /// An argument is not UTF-8.
    InvalidArgument = "invalid_argument", 400;
    /// A requested limit is above the host's maximum (the message names the maximum).
    LimitExceedsMaximum = "limit_exceeds_maximum", 400;
    /// `limits.fuel` on a host without fuel metering.
    FuelNotEnabled = "fuel_not_enabled", 400;
    /// The body could not be read (broken framing, client went away).
    BodyUnreadable = "body_unreadable", 400;
    /// A Python script that is not UTF-8.
    InvalidScript = "invalid_script", 400;
    /// A verifiable route was called with a session from `/encrypt/create_keypair`.
    SessionNotVerifiable = "session_not_verifiable", 400;
    /// A TLS channel binding was asked for on a connection that is not TLS (plain HTTP has no
    /// exporter to bind).
    TlsRequired = "tls_required", 400;
    /// A payment's x402 `payment-identifier` is not one: an `id` that is not 16–128 of
    /// `A–Z a–z 0–9 _ -`, or an extension that is not an object with an `info` object.
    InvalidPaymentIdentifier = "invalid_payment_identifier", 400;
    /// The paid route requires a payment identifier (its challenge says `required: true`) and
    /// the payment has none (an x402 v1 payment cannot carry one).
    PaymentIdentifierRequired = "payment_identifier_required", 400;
    /// The request head is not valid HTTP (answered before any route is chosen).
    MalformedRequest = "malformed_request", 400;
    /// An operator route (`/metrics`, `/openapi.json`) on a host that restricts them
    /// (`http.operator_token`), without the right `Authorization: Bearer` token.
    Unauthorized = "unauthorized", 401;
    /// A paid route without a valid payment; the body is the x402 challenge, the x402 reason in
    /// `error`.
    PaymentRequired = "payment_required", 402;
    /// The work ran but its payment could not be settled; the result is withheld.
    SettlementFailed = "settlement_failed", 402;
    /// The session belongs to another public key.
    SessionKeyMismatch = "session_key_mismatch", 403;
    /// The operator's policy refused the request before anything ran.
    PolicyDenied = "policy_denied", 403;
    /// The agent's name belongs to another key.
    NotOwner = "not_owner", 403;
    /// An owner signature is missing, stale, for another action or does not verify.
    OwnerSignatureInvalid = "owner_signature_invalid", 403;
    /// A clear request to an agent deployed as private.
    AgentNotPublic = "agent_not_public", 403;
    /// An agent's outgoing request to a destination its grants do not cover (or to an agent
    /// whose owner is not the one granted).
    CallNotGranted = "call_not_granted", 403;
    /// An agent called a remote hypervisor through a grant stored in the old form (host binary
    /// measurements, which the remote writes itself): nothing was sent; the owner must name
    /// reference value sets instead (`PUT /agents/{name}/grants`).
    RemoteGrantOutdated = "remote_grant_outdated", 403;
    /// An agent's call to an agent whose `callers` list does not include it.
    CallerNotAllowed = "caller_not_allowed", 403;
    /// A callee asked an agent for a payment its wallet's spending policy does not allow (wrong
    /// network, asset or payee, above the per-call, daily or total budget): nothing was signed.
    SpendingRefused = "spending_refused", 403;
    /// No such session (or none for this key).
    SessionNotFound = "session_not_found", 404;
    /// The session's TTL has passed.
    SessionExpired = "session_expired", 404;
    /// No agent of that name.
    AgentNotFound = "agent_not_found", 404;
    /// No execution record with that id.
    ExecutionNotFound = "execution_not_found", 404;
    /// The agent exists but has no wallet (its owner attaches one: `PUT /agents/{name}/wallet`).
    WalletNotFound = "wallet_not_found", 404;
    /// No such route (the router's fallback).
    NotFound = "not_found", 404;
    /// The route exists for other methods (the router's fallback), or a handler or CLI agent's
    /// `/invoke` called with a method other than POST.
    MethodNotAllowed = "method_not_allowed", 405;
    /// The body did not arrive within `http.body_timeout_ms`.
    BodyTimeout = "body_timeout", 408;
    /// A request that does not fit the agent's kind (an HTTP path of a handler or CLI agent).
    WrongAgentKind = "wrong_agent_kind", 409;
    /// The payment identifier came before with another payment, or on another route: nothing
    /// ran.
    PaymentIdentifierConflict = "payment_identifier_conflict", 409;
    /// The first request with this payment identifier (and this payment) is still running:
    /// retry after `Retry-After` seconds to get its answer.
    PaymentIdentifierInProgress = "payment_identifier_in_progress", 409;
    /// The answer to this payment identifier is no longer kept (kept
    /// `payments.payment_identifier.keep_seconds`, and only up to its `max_answer_bytes`), or
    /// its host stopped before answering: the payment was used; pay again with a new identifier.
    PaymentIdentifierAnswerGone = "payment_identifier_answer_gone", 409;
    /// The body exceeds `http.max_body_bytes`.
    BodyTooLarge = "body_too_large", 413;
    /// State imported into an agent would take it past its quotas (`state.max_keys`,
    /// `state.max_bytes`): nothing was written.
    StateQuotaExceeded = "state_quota_exceeded", 413;
    /// The request target is longer than the host accepts.
    UriTooLong = "uri_too_long", 414;
    /// The session was created by another replica of a cluster (sessions live in the memory
    /// of the replica that made them; the message names it): open a session on the replica
    /// that answered (its name is in the `x-hypervisor-replica` header), or send the request
    /// to the session's replica.
    SessionOnOtherReplica = "session_on_other_replica", 421;
    /// One run made more agent-to-agent calls than `egress.max_calls_per_run`.
    CallFanOutExceeded = "call_fan_out_exceeded", 429;
    /// The request head is larger than `http.max_head_bytes`.
    HeadersTooLarge = "headers_too_large", 431;
    /// Not a valid WebAssembly component.
    InvalidComponent = "invalid_component", 422;
    /// The request's `program_kind` names another kind than the program is (a WebAssembly
    /// file sent as RISC-V, or the reverse); the message names both.
    ProgramKindMismatch = "program_kind_mismatch", 422;
    /// Not a RISC-V program this host runs: not a little-endian RISC-V ELF file, refused by
    /// the linker, or outside the RISC-V contract (no `main`, the `sbrk` instruction); the
    /// message says which.
    InvalidRiscvProgram = "invalid_riscv_program", 422;
    /// The component does not export `wasi:cli/run`.
    NotACommand = "not_a_command", 422;
    /// The component exports none of `wasi:cli/run`, `wasi:http/incoming-handler`,
    /// `hypervisor:host/handler`.
    NotAnAgent = "not_an_agent", 422;
    /// The component imports something outside WASI and `hypervisor:host/{crypto,attestation}`;
    /// or a RISC-V program imports a host function outside its ABI.
    DisallowedImport = "disallowed_import", 422;
    /// A WASI interface or version this host does not provide.
    UnsupportedImport = "unsupported_import", 422;
    /// The guest was stopped at its time limit (encrypted partial result attached).
    TimeLimitExceeded = "time_limit_exceeded", 422;
    /// The guest trapped after its memory limit refused to grow (encrypted partial result
    /// attached).
    MemoryLimitExceeded = "memory_limit_exceeded", 422;
    /// The guest ran out of fuel (encrypted partial result attached).
    FuelExhausted = "fuel_exhausted", 422;
    /// The guest trapped: unreachable, out-of-bounds access, stack exhausted... (encrypted
    /// partial result attached).
    GuestTrap = "guest_trap", 422;
    /// A host-side failure (details in the host's log only).
    InternalError = "internal_error", 500;
    /// An HTTP agent produced no response (trap, limit, or a `wasi:http` error); or a remote
    /// agent an agent called failed.
    AgentFailed = "agent_failed", 502;
    /// A remote hypervisor an agent called failed verification (its evidence, its session
    /// signature, or a measurement the grant does not name): nothing of the caller's was sent.
    RemoteNotAttested = "remote_not_attested", 502;
    /// No execution slot could be had.
    Busy = "busy", 503;
    /// An agent-to-agent call with no time left: the caller's remaining time is spent.
    CallDeadlineExceeded = "call_deadline_exceeded", 504;
    /// An HTTP version the host does not speak.
    HttpVersionNotSupported = "http_version_not_supported", 505;
    /// An agent-to-agent call deeper than `egress.max_depth` (a cycle of agents calling each
    /// other ends here).
    CallDepthExceeded = "call_depth_exceeded", 508;
    /// A verifiable route on a host without an attestation provider.
    AttestationUnavailable = "attestation_unavailable", 503;
    /// The policy could not decide (it trapped or overran its time): the request is refused.
    PolicyUnavailable = "policy_unavailable", 503;
    /// The host does not serve the Python routes.
    PythonUnavailable = "python_unavailable", 503;
    /// This host does not run RISC-V programs (`riscv.enabled = false`).
    RiscvUnavailable = "riscv_unavailable", 503;
    /// The host does not take payments, its payments component failed, or its facilitator
    /// could not be asked (nothing was recorded or run).
    PaymentsUnavailable = "payments_unavailable", 503;
    /// The database cannot be reached (a shared PostgreSQL down or out of connections):
    /// nothing was written; retry later.
    StorageUnavailable = "storage_unavailable", 503;
}

/// A code that is not one of [`ErrorCode::ALL`] (a newer host's, or not a code at all).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown error code `{0}`")]
pub struct UnknownErrorCode(pub String);

impl FromStr for ErrorCode {
    type Err = UnknownErrorCode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorCode::ALL
            .iter()
            .copied()
            .find(|code| code.as_str() == s)
            .ok_or_else(|| UnknownErrorCode(s.to_string()))
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        code.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn names_are_unique_snake_case_and_round_trip() {
        let names: BTreeSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), ErrorCode::ALL.len(), "a wire name twice");
        for &code in ErrorCode::ALL {
            let name = code.as_str();
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{name} is not snake_case"
            );
            assert_eq!(name.parse::<ErrorCode>(), Ok(code));
            assert_eq!(code.to_string(), name);
            let json = serde_json::to_string(&code).expect("serialises");
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).ok(), Some(code));
            assert!((400..600).contains(&code.status()), "{name}");
        }
    }

    #[test]
    fn unknown_codes_are_a_separate_result() {
        assert_eq!(
            "from_a_newer_host".parse::<ErrorCode>(),
            Err(UnknownErrorCode("from_a_newer_host".into()))
        );
        assert!(serde_json::from_str::<ErrorCode>("\"from_a_newer_host\"").is_err());
        assert_eq!(ErrorCode::GuestTrap.status(), 422);
        assert_eq!(ErrorCode::AgentFailed.status(), 502);
        assert_eq!(ErrorCode::PaymentRequired.as_str(), "payment_required");
    }
}
