//! Attestation providers: who can produce evidence over 64 bytes of report data.
//!
//! The foundation links only [`NoAttestation`], which says plainly that no provider is
//! configured. TDX and SEV-SNP (through configfs-tsm) and a clearly labelled simulated
//! provider come with the attestation work; they implement the same trait.

/// The kind of trusted execution environment behind a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TeeKind {
    /// No provider.
    None,
    /// Development-only simulation.
    Simulated,
    /// Intel TDX.
    Tdx,
    /// AMD SEV-SNP.
    SevSnp,
}

/// Evidence produced by a provider.
#[derive(Debug, Clone)]
pub struct Evidence {
    /// Who produced it.
    pub tee: TeeKind,
    /// Encoding name, e.g. `tdx-dcap-quote-v4`.
    pub format: String,
    /// The 64 bytes of report data it carries.
    pub report_data: [u8; 64],
    /// The evidence bytes.
    pub evidence: Vec<u8>,
}

/// Why no evidence was produced.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum AttestationError {
    /// No provider configured.
    #[error("no attestation provider is configured on this host")]
    NotConfigured,
    /// The provider failed.
    #[error("attestation provider failed: {0}")]
    ProviderFailed(String),
}

/// A source of attestation evidence.
pub trait AttestationProvider: Send + Sync + 'static {
    /// Which TEE this is.
    fn kind(&self) -> TeeKind;

    /// Evidence over exactly 64 bytes of report data.
    ///
    /// # Errors
    /// [`AttestationError`].
    fn attest(&self, report_data: &[u8; 64]) -> Result<Evidence, AttestationError>;
}

/// The stand-in used when no provider is configured: every request for evidence fails with
/// [`AttestationError::NotConfigured`].
#[derive(Debug, Default, Clone, Copy)]
pub struct NoAttestation;

impl AttestationProvider for NoAttestation {
    fn kind(&self) -> TeeKind {
        TeeKind::None
    }

    fn attest(&self, _report_data: &[u8; 64]) -> Result<Evidence, AttestationError> {
        Err(AttestationError::NotConfigured)
    }
}

/// The report data for a statement made by a component through `hypervisor:host/attestation`:
/// `SHA-512("wasm-hypervisor/v1/component-statement" || sha256(component) || user_data)`.
/// Domain separation keeps components from forging statements of the host.
pub fn component_report_data(component_hash: &[u8; 32], user_data: &[u8; 64]) -> [u8; 64] {
    let mut input = Vec::with_capacity(64 + 32 + 64);
    input.extend_from_slice(b"wasm-hypervisor/v1/component-statement");
    input.extend_from_slice(component_hash);
    input.extend_from_slice(user_data);
    crate::crypto::primitives::sha512(&input)
}
