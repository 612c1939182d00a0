//! Errors of the protocol layer.

/// Why a protocol operation failed. Messages never contain key material or plaintext.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// A field was not valid hexadecimal.
    #[error("field `{field}` is not valid hex: {reason}")]
    Hex {
        /// Which field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A public key is not a SEC1-encoded P-256 point.
    #[error("invalid P-256 public key: {0}")]
    PublicKey(String),
    /// A secret key is not a valid P-256 scalar.
    #[error("invalid P-256 secret key")]
    SecretKey,
    /// An envelope is shorter than nonce plus tag.
    #[error(
        "ciphertext of {role} is {len} bytes, shorter than the {min}-byte minimum (nonce + tag)"
    )]
    EnvelopeTooShort {
        /// The field's role.
        role: String,
        /// Its length.
        len: usize,
        /// The minimum.
        min: usize,
    },
    /// Authenticated decryption failed: wrong key, wrong session, wrong field, or tampering.
    #[error(
        "decryption of {role} failed: wrong key, wrong session, wrong field, or tampered ciphertext"
    )]
    Decrypt {
        /// The field's role.
        role: String,
    },
    /// Encryption failed (only on absurd sizes).
    #[error("encryption failed")]
    Encrypt,
    /// A signature is malformed or does not verify.
    #[error("signature is malformed or does not verify")]
    BadSignature,
    /// The OS random number generator failed.
    #[error("the operating system's random number generator failed")]
    Random,
}
