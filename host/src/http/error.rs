//! The one place where errors become HTTP: status code, stable error code, JSON body
//! `{"error": {"code", "message"}}` (plus the encrypted partial result when a guest was
//! stopped). The codes are part of the protocol (`docs/PROTOCOL.md`) and never change meaning.

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hypervisor_protocol::ErrorCode;
use hypervisor_protocol::wire::{ErrorDetail, ErrorResponse, ExitStatus};

use crate::engine::EngineError;
use crate::error::ApiError;
use crate::plugins::payments::{Challenge, SettlementHeader};
use crate::session::SessionError;

impl ApiError {
    /// HTTP status and stable error code (the status is the code's, [`ErrorCode::status`]).
    pub fn status_and_code(&self) -> (StatusCode, ErrorCode) {
        let code = self.error_code();
        // Every code's status is a valid one (checked by a unit test).
        let status =
            StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, code)
    }

    /// What a client is told of this error: its text, except the detail of a failure on the
    /// host's side (the database's, an internal one), which may name files, addresses,
    /// statements or keys, and stays in the host's log. (A payments failure's text is written
    /// for the payer: the facilitator's reason, a retry.)
    pub fn client_message(&self) -> String {
        match self {
            ApiError::Internal(_) | ApiError::Engine(EngineError::Internal(_)) => {
                "internal error; see the host's log".to_string()
            }
            ApiError::StorageUnavailable(_) => {
                "the database is unavailable; retry later (the reason is in the host's log)"
                    .to_string()
            }
            other => other.to_string(),
        }
    }

    /// The stable error code of this error.
    pub fn error_code(&self) -> ErrorCode {
        use ErrorCode as C;
        match self {
            ApiError::MalformedJson(_) => C::MalformedJson,
            ApiError::InvalidRequest(_) => C::InvalidRequest,
            ApiError::MalformedHex(_) => C::MalformedHex,
            ApiError::InvalidPublicKey(_) => C::InvalidPublicKey,
            ApiError::Session(SessionError::NotFound(_)) => C::SessionNotFound,
            ApiError::Session(SessionError::Expired(_)) => C::SessionExpired,
            ApiError::Session(SessionError::KeyMismatch(_)) => C::SessionKeyMismatch,
            ApiError::Session(SessionError::Random) => C::InternalError,
            ApiError::Session(SessionError::Elsewhere(..)) | ApiError::SessionElsewhere { .. } => {
                C::SessionOnOtherReplica
            }
            ApiError::StorageUnavailable(_) => C::StorageUnavailable,
            ApiError::Decryption(_) => C::DecryptionFailed,
            ApiError::BodyTooLarge(_) => C::BodyTooLarge,
            ApiError::BodyTimeout(_) => C::BodyTimeout,
            ApiError::BodyRead(_) => C::BodyUnreadable,
            ApiError::InvalidArgument(_) => C::InvalidArgument,
            ApiError::LimitExceedsMaximum(_) => C::LimitExceedsMaximum,
            ApiError::FuelNotEnabled => C::FuelNotEnabled,
            ApiError::Engine(EngineError::InvalidComponent(_)) => C::InvalidComponent,
            ApiError::Engine(EngineError::InvalidRiscvProgram(_)) => C::InvalidRiscvProgram,
            ApiError::Engine(EngineError::ProgramKindMismatch { .. }) => C::ProgramKindMismatch,
            ApiError::Engine(EngineError::RiscvUnavailable) => C::RiscvUnavailable,
            ApiError::Engine(EngineError::NotACommand) => C::NotACommand,
            ApiError::Engine(EngineError::NotAnAgent) => C::NotAnAgent,
            ApiError::AgentNotFound(_) => C::AgentNotFound,
            ApiError::WalletNotFound(_) => C::WalletNotFound,
            ApiError::StateQuotaExceeded(_) => C::StateQuotaExceeded,
            ApiError::NotOwner(_) => C::NotOwner,
            ApiError::OwnerSignature(_) => C::OwnerSignatureInvalid,
            ApiError::AgentNotPublic(_) => C::AgentNotPublic,
            ApiError::WrongAgentKind(_) => C::WrongAgentKind,
            ApiError::CallNotGranted(_) => C::CallNotGranted,
            ApiError::CallerNotAllowed(_) => C::CallerNotAllowed,
            ApiError::CallDeadlineExceeded(_) => C::CallDeadlineExceeded,
            ApiError::CallDepthExceeded(_) => C::CallDepthExceeded,
            ApiError::CallFanOutExceeded(_) => C::CallFanOutExceeded,
            ApiError::SpendingRefused(_) => C::SpendingRefused,
            ApiError::RemoteNotAttested(_) => C::RemoteNotAttested,
            ApiError::RemoteGrantOutdated(_) => C::RemoteGrantOutdated,
            ApiError::AgentFailed(_) => C::AgentFailed,
            ApiError::ExecutionNotFound(_) => C::ExecutionNotFound,
            ApiError::Engine(EngineError::NotAHandler | EngineError::NotAnHttpAgent) => {
                C::WrongAgentKind
            }
            ApiError::Engine(EngineError::DisallowedImport(_)) => C::DisallowedImport,
            ApiError::Engine(EngineError::UnsupportedImport(_)) => C::UnsupportedImport,
            ApiError::Engine(EngineError::Busy) => C::Busy,
            ApiError::Engine(EngineError::Internal(_)) => C::InternalError,
            ApiError::AttestationUnavailable => C::AttestationUnavailable,
            ApiError::SessionNotVerifiable(_) => C::SessionNotVerifiable,
            ApiError::TlsRequired => C::TlsRequired,
            ApiError::GuestStopped { status, .. } => match status {
                ExitStatus::TimeLimitExceeded => C::TimeLimitExceeded,
                ExitStatus::MemoryLimitExceeded => C::MemoryLimitExceeded,
                ExitStatus::FuelExhausted => C::FuelExhausted,
                ExitStatus::Trapped | ExitStatus::Exited => C::GuestTrap,
            },
            ApiError::PolicyDenied { .. } => C::PolicyDenied,
            ApiError::PolicyUnavailable(_) => C::PolicyUnavailable,
            ApiError::PythonUnavailable => C::PythonUnavailable,
            ApiError::InvalidScript(_) => C::InvalidScript,
            ApiError::PaymentRequired { .. } => C::PaymentRequired,
            ApiError::SettlementFailed { .. } => C::SettlementFailed,
            ApiError::PaymentsUnavailable | ApiError::MeteredUnavailable => C::PaymentsUnavailable,
            ApiError::InvalidPaymentIdentifier(_) => C::InvalidPaymentIdentifier,
            ApiError::PaymentIdentifierRequired(_) => C::PaymentIdentifierRequired,
            ApiError::PaymentIdentifierConflict(_) => C::PaymentIdentifierConflict,
            ApiError::PaymentIdentifierInProgress(_) => C::PaymentIdentifierInProgress,
            ApiError::PaymentIdentifierAnswerGone(_) => C::PaymentIdentifierAnswerGone,
            // Not an error code's answer: `into_response` sends the kept answer as it was.
            ApiError::AnswerReplayed(_) => C::PaymentIdentifierInProgress,
            ApiError::PaymentsFailed(_) => C::PaymentsUnavailable,
            ApiError::NotFound(_) => C::NotFound,
            ApiError::MethodNotAllowed => C::MethodNotAllowed,
            ApiError::Unauthorized => C::Unauthorized,
            ApiError::Internal(_) => C::InternalError,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::AnswerReplayed(answer) = self {
            tracing::debug!("a retry of an identified payment: its kept answer again");
            return replayed(*answer);
        }
        let (status, code) = self.status_and_code();
        let code = code.as_str();
        // (Debug-quoted: the text may hold a client's strings, newlines escaped.)
        if status.is_server_error() {
            tracing::error!(code, error = ?self.to_string(), "request failed");
        } else {
            tracing::debug!(code, error = ?self.to_string(), "request refused");
        }
        let message = self.client_message();
        let mut headers = HeaderMap::new();
        let (result, result_quote) = match self {
            ApiError::GuestStopped {
                result,
                receipt,
                settlement,
                execution_id,
                ..
            } => {
                if let Some(s) = settlement {
                    add_settlement_header(&mut headers, &s);
                }
                if let Ok(id) = HeaderValue::from_str(&execution_id) {
                    headers.insert("x-execution-id", id);
                }
                (Some(*result), receipt.map(|r| *r))
            }
            ApiError::PaymentRequired {
                challenge, reason, ..
            } => {
                // x402 upto: a payer whose token has no Permit2 allowance must approve Permit2
                // once before retrying, which the spec signals with 412 Precondition Failed.
                let status = if reason == PERMIT2_ALLOWANCE_REQUIRED {
                    StatusCode::PRECONDITION_FAILED
                } else {
                    status
                };
                return payment_required(status, &challenge, &reason, &message);
            }
            ApiError::PaymentIdentifierInProgress(_) => {
                headers.insert(
                    axum::http::header::RETRY_AFTER,
                    HeaderValue::from_static("1"),
                );
                (None, None)
            }
            ApiError::SettlementFailed { header, .. } => {
                add_settlement_header(&mut headers, &header);
                (None, None)
            }
            ApiError::Unauthorized => {
                headers.insert(
                    axum::http::header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"operator\""),
                );
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

/// Adds a settlement's header. (Browsers read it when the page's origin is in
/// `http.cors_origins`: the CORS layer exposes every header, `http::cors`.)
pub fn add_settlement_header(headers: &mut HeaderMap, s: &SettlementHeader) {
    if let Ok(value) = HeaderValue::from_str(&s.value) {
        headers.insert(s.name, value);
    }
}

/// The answer kept for an identified payment, as first sent.
fn replayed(answer: crate::error::ReplayedAnswer) -> Response {
    let mut response = Response::new(axum::body::Body::from(answer.body));
    *response.status_mut() =
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in &answer.headers {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

/// A 402 in both x402 forms: the v2 `PAYMENT-REQUIRED` header and the v1 JSON body
/// `{x402Version: 1, error, accepts}`, plus this API's `code` and `message`. The `code` names
/// the refusal: `payment_required` when no payment was sent, otherwise the x402 reason itself
/// (`invalid_scheme`, `invalid_exact_evm_nonce_already_used`, …), the same string as `error`.
fn payment_required(
    status: StatusCode,
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
    body["code"] = serde_json::json!(reason);
    body["message"] = serde_json::json!(message);
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&challenge.payment_required) {
        headers.insert("payment-required", v);
    }
    // Browsers' navigations get the payment page instead (`super::paywall`).
    headers.insert(
        axum::http::header::VARY,
        HeaderValue::from_static("accept, user-agent"),
    );
    let mut response = (status, headers, Json(body)).into_response();
    response.extensions_mut().insert(HostChallenge);
    response
}

/// The x402 reason of a metered payment whose payer has not approved Permit2 for the token
/// (`specs/schemes/upto/scheme_upto_evm.md`, verification step 2): answered `412`.
pub const PERMIT2_ALLOWANCE_REQUIRED: &str = "permit2_allowance_required";

/// Marks a 402 the host made (not an HTTP agent's own): the paywall turns only these into its
/// payment page.
#[derive(Debug, Clone, Copy)]
pub struct HostChallenge;

#[cfg(test)]
mod tests {
    use super::*;

    /// A failure on the host's side answers its code and a fixed message: the detail (a
    /// database's statement and address, a plug-in's error chain, a path) stays in the log.
    /// Before, a 503's detail reached the client as it was.
    #[tokio::test]
    async fn host_failures_tell_the_client_no_detail() {
        const MARKER: &str = "host=10.0.0.7 table agent_calls /var/lib/secret";
        for error in [
            ApiError::StorageUnavailable(MARKER.into()),
            ApiError::Internal(MARKER.into()),
        ] {
            assert!(!error.client_message().contains(MARKER), "{error}");
            let code = error.error_code();
            let response = error.into_response();
            assert!(response.status().is_server_error());
            let body = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap();
            let body = String::from_utf8_lossy(&body);
            assert!(!body.contains("10.0.0.7"), "{body}");
            assert!(body.contains(code.as_str()), "{body}");
        }
        // A client's own error keeps its text.
        let refused = ApiError::InvalidRequest("field x is missing".into());
        assert!(refused.client_message().contains("field x is missing"));
    }

    #[test]
    fn every_code_has_a_valid_error_status() {
        for &code in ErrorCode::ALL {
            let status = StatusCode::from_u16(code.status()).expect("a valid status");
            assert!(
                status.is_client_error() || status.is_server_error(),
                "{code}"
            );
        }
    }

    #[test]
    fn statuses_come_from_the_codes() {
        let not_allowed = ApiError::MethodNotAllowed.status_and_code();
        assert_eq!(
            not_allowed,
            (StatusCode::METHOD_NOT_ALLOWED, ErrorCode::MethodNotAllowed)
        );
        let busy = ApiError::Engine(EngineError::Busy).status_and_code();
        assert_eq!(busy, (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Busy));
        let random = ApiError::Session(SessionError::Random).status_and_code();
        assert_eq!(
            random,
            (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::InternalError)
        );
    }
}
