//! The host's attestation (`hypervisor:host/attestation`): a statement of the host's attested
//! key over this program's hash (the SHA-256 of its ELF file) and 64 bytes of the program's
//! own.

use alloc::vec::Vec;

use crate::sys;

/// The kind of trusted execution environment behind the host's evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tee {
    /// No attestation provider on this host.
    None,
    /// Development-only simulation: proves nothing.
    Simulated,
    /// Intel TDX.
    Tdx,
    /// AMD SEV-SNP.
    SevSnp,
}

/// Why no statement was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttestError {
    /// No attestation provider on this host.
    NotConfigured,
    /// The provider failed.
    ProviderFailed,
}

/// The provider behind the host's evidence.
pub fn provider() -> Tee {
    // SAFETY: no arguments.
    match unsafe { sys::attestation_provider() } {
        1 => Tee::Simulated,
        2 => Tee::Tdx,
        3 => Tee::SevSnp,
        _ => Tee::None,
    }
}

/// A statement over `user_data`: the JSON document `docs/PROTOCOL.md` describes (the same
/// fields as the WIT `statement` record), to hand to a verifier.
///
/// # Errors
/// When the host has no provider, or it failed.
pub fn attest(user_data: &[u8; 64]) -> Result<Vec<u8>, AttestError> {
    let mut out = Vec::new();
    loop {
        let cap = u32::try_from(out.capacity()).unwrap_or(u32::MAX);
        // SAFETY: `out` has `cap` bytes of room; the host writes only when the statement fits.
        let n = unsafe { sys::attest(user_data.as_ptr(), out.as_mut_ptr(), cap) };
        match n {
            sys::ERR_NOT_CONFIGURED => return Err(AttestError::NotConfigured),
            sys::ERR_PROVIDER_FAILED | sys::ERR_INVALID_LENGTH => {
                return Err(AttestError::ProviderFailed);
            }
            n if n <= cap => {
                // SAFETY: the host wrote `n` bytes.
                unsafe { out.set_len(n as usize) };
                return Ok(out);
            }
            n => out.reserve_exact(n as usize),
        }
    }
}
