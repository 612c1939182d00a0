//! Errors: why a client operation failed, and how a server's refusal is turned into one.

use hypervisor_protocol::ProtocolError;
use hypervisor_protocol::wire::ErrorResponse;

use crate::{verify, x402};

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached or the connection broke.
    #[error("transport error: {0}")]
    Transport(String),
    /// The server answered with an error.
    #[error("server refused the request ({status} {code}): {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// Stable error code.
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
    /// The server asked for a payment outside the wallet's [`x402::PaymentLimit`]; nothing was
    /// signed.
    #[error("payment refused, nothing signed: {0}")]
    PaymentRefused(#[from] x402::PaymentRefusal),
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
