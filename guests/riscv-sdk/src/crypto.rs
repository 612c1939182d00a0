//! The host's crypto (`hypervisor:host/crypto`): constant-time, audited implementations, and a
//! signature check that would be slow to carry in the program.

use crate::sys;

/// Why a key or signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptoError {
    /// The public key cannot be read.
    InvalidKey,
    /// The signature cannot be read.
    InvalidSignature,
    /// A buffer has the wrong length.
    InvalidLength,
}

fn error(code: u32) -> CryptoError {
    match code {
        sys::ERR_INVALID_KEY => CryptoError::InvalidKey,
        sys::ERR_INVALID_LENGTH => CryptoError::InvalidLength,
        _ => CryptoError::InvalidSignature,
    }
}

fn len(data: &[u8]) -> u32 {
    u32::try_from(data.len()).unwrap_or(u32::MAX)
}

/// SHA-256.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    // SAFETY: the buffers are valid for the lengths given.
    unsafe { sys::sha256(data.as_ptr(), len(data), out.as_mut_ptr()) };
    out
}

/// SHA-512.
pub fn sha512(data: &[u8]) -> [u8; 64] {
    let mut out = [0u8; 64];
    // SAFETY: the buffers are valid for the lengths given.
    unsafe { sys::sha512(data.as_ptr(), len(data), out.as_mut_ptr()) };
    out
}

/// HMAC-SHA-256.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    // SAFETY: the buffers are valid for the lengths given.
    unsafe {
        sys::hmac_sha256(
            key.as_ptr(),
            len(key),
            data.as_ptr(),
            len(data),
            out.as_mut_ptr(),
        )
    };
    out
}

/// ECDSA P-256 / SHA-256: whether `signature` (64 bytes `r || s`) over `message` is valid for
/// `public_key` (SEC1).
///
/// # Errors
/// When the key or the signature cannot be read.
pub fn verify_p256_sha256(
    public_key: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<bool, CryptoError> {
    // SAFETY: the buffers are valid for the lengths given.
    let r = unsafe {
        sys::verify_p256_sha256(
            public_key.as_ptr(),
            len(public_key),
            message.as_ptr(),
            len(message),
            signature.as_ptr(),
            len(signature),
        )
    };
    match r {
        0 => Ok(false),
        1 => Ok(true),
        code => Err(error(code)),
    }
}

/// The uncompressed secp256k1 public key (65 bytes) that signed the 32-byte `digest`
/// (`signature`: 65 bytes `r || s || v`).
///
/// # Errors
/// For a bad length or an unrecoverable signature.
pub fn recover_secp256k1(digest: &[u8; 32], signature: &[u8]) -> Result<[u8; 65], CryptoError> {
    let mut out = [0u8; 65];
    // SAFETY: the buffers are valid for the lengths given.
    let r = unsafe {
        sys::recover_secp256k1(
            digest.as_ptr(),
            signature.as_ptr(),
            len(signature),
            out.as_mut_ptr(),
        )
    };
    if r == 0 { Ok(out) } else { Err(error(r)) }
}
