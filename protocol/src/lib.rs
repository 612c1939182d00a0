//! The wire protocol of WASM Hypervisor, version 1.
//!
//! This crate is the executable form of `docs/PROTOCOL.md`: P-256 key agreement, the HKDF
//! derivation of a per-session AES-256-GCM-SIV key, the per-field envelope format with its
//! associated data, the result commitment, and the JSON messages of the HTTP API. It does no
//! I/O and knows nothing about WebAssembly, so the host and any client share it.
//!
//! Every domain-separation label is an ASCII constant in [`labels`]; every length is fixed or
//! explicitly prefixed, so there is exactly one encoding of each value.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod a2a;
pub mod aead;
pub mod agents;
pub mod attest;
pub mod bounded;
pub mod cluster;
pub mod codes;
pub mod commitment;
pub mod envelope;
pub mod environments;
pub mod error;
pub mod grants;
pub mod host;
pub mod jsonrpc;
pub mod keys;
pub mod offer_receipt;
pub mod owner;
pub mod paid;
pub mod program;
pub mod reference;
pub mod routes;
pub mod session;
pub mod state;
pub mod strict;
pub mod tariff;
pub mod tls;
pub mod vectors;
pub mod wallet;
pub mod wire;

pub use codes::ErrorCode;
pub use commitment::{InputDigests, result_commitment};
pub use envelope::{Envelope, NONCE_LEN, Role, TAG_LEN};
pub use error::ProtocolError;
pub use keys::{ClientSecret, EncodedPublicKey};
pub use session::SessionKey;

/// Domain-separation labels. Each is used in exactly one place; see `docs/PROTOCOL.md`.
pub mod labels {
    /// Prefix of the HKDF salt (followed by the 16-byte session id).
    pub const HKDF_SALT: &[u8] = b"wasm-hypervisor/v1/hkdf-salt";
    /// Prefix of the HKDF info (followed by both public keys, uncompressed).
    pub const HKDF_INFO: &[u8] = b"wasm-hypervisor/v1/aes-256-gcm-siv";
    /// Prefix of the associated data of every envelope.
    pub const AAD: &[u8] = b"wasm-hypervisor/v1/aad";
    /// Prefix of the result commitment preimage.
    pub const RESULT_COMMITMENT: &[u8] = b"wasm-hypervisor/v1/result-commitment";
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

/// Fills `buf` from the operating system's CSPRNG.
///
/// # Errors
/// [`ProtocolError::Random`] when the OS refuses (never expected on Linux).
pub fn fill_random(buf: &mut [u8]) -> Result<(), ProtocolError> {
    getrandom::fill(buf).map_err(|_| ProtocolError::Random)
}
