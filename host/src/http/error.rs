//! The one place where errors become HTTP: status code, stable error code, JSON body
//! `{"error": {"code", "message"}}` (plus the encrypted partial result when a guest was
//! stopped). The codes are part of the protocol (`docs/PROTOCOL.md`) and never change meaning.

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hypervisor_protocol::wire::{ErrorDetail, ErrorResponse, ExitStatus};

use crate::engine::EngineError;
use crate::error::ApiError;
use crate::plugins::payments::{Challenge, SettlementHeader};
use crate::session::SessionError;

impl ApiError {
    /// HTTP status and stable error code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        use StatusCode as S;
        match self {
            ApiError::MalformedJson(_) => (S::BAD_REQUEST, "malformed_json"),
            ApiError::InvalidRequest(_) => (S::BAD_REQUEST, "invalid_request"),
            ApiError::MalformedHex(_) => (S::BAD_REQUEST, "malformed_hex"),
            ApiError::InvalidPublicKey(_) => (S::BAD_REQUEST, "invalid_public_key"),
            ApiError::Session(SessionError::NotFound(_)) => (S::NOT_FOUND, "session_not_found"),
            ApiError::Session(SessionError::Expired(_)) => (S::NOT_FOUND, "session_expired"),
            ApiError::Session(SessionError::KeyMismatch(_)) => {
                (S::FORBIDDEN, "session_key_mismatch")
            }
            ApiError::Session(SessionError::Random) => (S::INTERNAL_SERVER_ERROR, "internal_error"),
            ApiError::Decryption(_) => (S::BAD_REQUEST, "decryption_failed"),
            ApiError::BodyTooLarge(_) => (S::PAYLOAD_TOO_LARGE, "body_too_large"),
            ApiError::BodyTimeout(_) => (S::REQUEST_TIMEOUT, "body_timeout"),
            ApiError::BodyRead(_) => (S::BAD_REQUEST, "body_unreadable"),
            ApiError::InvalidArgument(_) => (S::BAD_REQUEST, "invalid_argument"),
            ApiError::LimitExceedsMaximum(_) => (S::BAD_REQUEST, "limit_exceeds_maximum"),
            ApiError::FuelNotEnabled => (S::BAD_REQUEST, "fuel_not_enabled"),
            ApiError::Engine(EngineError::InvalidComponent(_)) => {
                (S::UNPROCESSABLE_ENTITY, "invalid_component")
            }
            ApiError::Engine(EngineError::NotACommand) => {
                (S::UNPROCESSABLE_ENTITY, "not_a_command")
            }
            ApiError::Engine(EngineError::NotAnAgent) => (S::UNPROCESSABLE_ENTITY, "not_an_agent"),
            ApiError::AgentNotFound(_) => (S::NOT_FOUND, "agent_not_found"),
            ApiError::NotOwner(_) => (S::FORBIDDEN, "not_owner"),
            ApiError::OwnerSignature(_) => (S::FORBIDDEN, "owner_signature_invalid"),
            ApiError::AgentNotPublic(_) => (S::FORBIDDEN, "agent_not_public"),
            ApiError::WrongAgentKind(_) => (S::CONFLICT, "wrong_agent_kind"),
            ApiError::AgentFailed(_) => (S::BAD_GATEWAY, "agent_failed"),
            ApiError::ExecutionNotFound(_) => (S::NOT_FOUND, "execution_not_found"),
            ApiError::Engine(EngineError::NotAHandler | EngineError::NotAnHttpAgent) => {
                (S::CONFLICT, "wrong_agent_kind")
            }
            ApiError::Engine(EngineError::DisallowedImport(_)) => {
                (S::UNPROCESSABLE_ENTITY, "disallowed_import")
            }
            ApiError::Engine(EngineError::UnsupportedImport(_)) => {
                (S::UNPROCESSABLE_ENTITY, "unsupported_import")
            }
            ApiError::Engine(EngineError::Busy) => (S::SERVICE_UNAVAILABLE, "busy"),
            ApiError::Engine(EngineError::Internal(_)) => {
                (S::INTERNAL_SERVER_ERROR, "internal_error")
            }
            ApiError::AttestationUnavailable => (S::SERVICE_UNAVAILABLE, "attestation_unavailable"),
            ApiError::SessionNotVerifiable(_) => (S::BAD_REQUEST, "session_not_verifiable"),
            ApiError::GuestStopped { status, .. } => (
                S::UNPROCESSABLE_ENTITY,
                match status {
                    ExitStatus::TimeLimitExceeded => "time_limit_exceeded",
                    ExitStatus::MemoryLimitExceeded => "memory_limit_exceeded",
                    ExitStatus::FuelExhausted => "fuel_exhausted",
                    ExitStatus::Trapped | ExitStatus::Exited => "guest_trap",
                },
            ),
            ApiError::PolicyDenied { .. } => (S::FORBIDDEN, "policy_denied"),
            ApiError::PolicyUnavailable(_) => (S::SERVICE_UNAVAILABLE, "policy_unavailable"),
            ApiError::PythonUnavailable => (S::SERVICE_UNAVAILABLE, "python_unavailable"),
            ApiError::InvalidScript(_) => (S::BAD_REQUEST, "invalid_script"),
            ApiError::PaymentRequired { .. } => (S::PAYMENT_REQUIRED, "payment_required"),
            ApiError::SettlementFailed { .. } => (S::PAYMENT_REQUIRED, "settlement_failed"),
            ApiError::PaymentsUnavailable => (S::SERVICE_UNAVAILABLE, "payments_unavailable"),
            ApiError::PaymentsFailed(_) => (S::SERVICE_UNAVAILABLE, "payments_unavailable"),
            ApiError::NotFound(_) => (S::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed => (S::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Internal(_) => (S::INTERNAL_SERVER_ERROR, "internal_error"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            tracing::error!(code, error = %self, "request failed");
        } else {
            tracing::debug!(code, error = %self, "request refused");
        }
        let message = match &self {
            // Internal details stay in the log.
            ApiError::Internal(_) | ApiError::Engine(EngineError::Internal(_)) => {
                "internal error; see the host's log".to_string()
            }
            other => other.to_string(),
        };
        let mut headers = HeaderMap::new();
        let (result, result_quote) = match self {
            ApiError::GuestStopped {
                result,
                receipt,
                settlement,
                ..
            } => {
                if let Some(s) = settlement {
                    add_settlement_header(&mut headers, &s);
                }
                (Some(*result), receipt.map(|r| *r))
            }
            ApiError::PaymentRequired {
                challenge, reason, ..
            } => return payment_required(status, code, &challenge, &reason, &message),
            ApiError::SettlementFailed { header, .. } => {
                add_settlement_header(&mut headers, &header);
                (None, None)
            }
            _ => (None, None),
        };
        let body = ErrorResponse {
            error: ErrorDetail {
                code: code.to_string(),
                message,
            },
            result,
            result_quote,
        };
        (status, headers, Json(body)).into_response()
    }
}

/// Adds a settlement's header (and exposes it to browsers).
pub fn add_settlement_header(headers: &mut HeaderMap, s: &SettlementHeader) {
    if let Ok(value) = HeaderValue::from_str(&s.value) {
        headers.insert(s.name, value);
        headers.insert(
            "access-control-expose-headers",
            HeaderValue::from_static("PAYMENT-RESPONSE, X-PAYMENT-RESPONSE"),
        );
    }
}

/// A 402 in both x402 forms: the v2 `PAYMENT-REQUIRED` header and the v1 JSON body
/// `{x402Version: 1, error, accepts}` (plus this API's `code` and `message`).
fn payment_required(
    status: StatusCode,
    code: &str,
    challenge: &Challenge,
    reason: &str,
    message: &str,
) -> Response {
    let mut body = challenge
        .v1_body
        .as_deref()
        .and_then(|b| serde_json::from_str::<serde_json::Value>(b).ok())
        // A component's body that is JSON but not an object cannot take the fields below.
        .filter(serde_json::Value::is_object)
        .unwrap_or_else(|| serde_json::json!({ "x402Version": 2, "error": reason }));
    body["code"] = serde_json::json!(code);
    body["message"] = serde_json::json!(message);
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&challenge.payment_required) {
        headers.insert("payment-required", v);
        headers.insert(
            "access-control-expose-headers",
            HeaderValue::from_static("PAYMENT-REQUIRED"),
        );
    }
    (status, headers, Json(body)).into_response()
}
