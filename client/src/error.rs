//! Errors: why a client operation failed, and how a server's refusal is turned into one.

use hypervisor_protocol::wire::ErrorResponse;
use hypervisor_protocol::{ErrorCode, ProtocolError};

use crate::{verify, x402};

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached or the connection broke.
    #[error("transport error: {0}")]
    Transport(String),
    /// The server URL is not one the client can speak to (no scheme, no host, …).
    #[error("bad server URL: {0}")]
    BadUrl(String),
    /// The certificates to trust (`--cacert`) could not be read.
    #[error("certificate authorities: {0}")]
    Trust(String),
    /// The server answered with an error.
    #[error("server refused the request ({status} {code}): {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// Stable error code, as sent (typed by [`ClientError::error_code`]).
        code: String,
        /// Human message.
        message: String,
    },
    /// A protocol operation failed (for example, the result did not decrypt).
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The decrypted result does not match the commitment the server sent.
    #[error("the result does not match its commitment: do not trust it")]
    CommitmentMismatch,
    /// The server's answer is not what the protocol says.
    #[error("unexpected response: {0}")]
    BadResponse(String),
    /// The attestation chain, the session statement or the receipt did not verify.
    #[error(transparent)]
    Verify(#[from] verify::VerifyError),
    /// The server asks for a payment and the call was made without a payer; nothing was
    /// signed.
    #[error(
        "payment required (402 payment_required): the server asks for {0}; nothing was paid \
         (hypervisor-client: --pay-with WALLET_KEY_FILE --max-price ATOMIC_UNITS)"
    )]
    PaymentRequired(String),
    /// The server asked for a payment outside the wallet's [`x402::PaymentLimit`]; nothing was
    /// signed.
    #[error("payment refused, nothing signed: {0}")]
    PaymentRefused(x402::PaymentRefusal),
}

impl ClientError {
    /// The server's error code, typed: `Some` for a [`ClientError::Server`] whose code this
    /// version knows (and `payment_required` for [`ClientError::PaymentRequired`]); `None` for every other error and for a code of a newer server (its
    /// bare string stays in [`ClientError::Server`]'s `code`).
    pub fn error_code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Server { code, .. } => code.parse().ok(),
            ClientError::PaymentRequired(_) => Some(ErrorCode::PaymentRequired),
            _ => None,
        }
    }
}

/// The error for a refused request: [`ClientError::Server`] when the body is the protocol's
/// error document, [`ClientError::BadResponse`] otherwise.
pub(crate) fn server_error(status: u16, json: serde_json::Value) -> ClientError {
    match serde_json::from_value::<ErrorResponse>(json.clone()) {
        Ok(e) => ClientError::Server {
            status,
            code: e.error.code,
            message: e.error.message,
        },
        Err(_) => ClientError::BadResponse(format!("{status}: {json}")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn refusals_carry_their_code_typed_and_as_sent() {
        let body = json!({"error": {"code": "policy_denied", "message": "no"}});
        let err = server_error(403, body);
        assert_eq!(err.error_code(), Some(ErrorCode::PolicyDenied));
        assert!(matches!(&err, ClientError::Server { code, .. } if code == "policy_denied"));

        let newer = json!({"error": {"code": "from_a_newer_host", "message": "?"}});
        let err = server_error(400, newer);
        assert_eq!(err.error_code(), None);
        assert!(matches!(&err, ClientError::Server { code, .. } if code == "from_a_newer_host"));

        let other = server_error(500, json!("not an error document"));
        assert!(matches!(other, ClientError::BadResponse(_)));
        assert_eq!(other.error_code(), None);
    }
}
