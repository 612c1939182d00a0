//! Attestation: who produces hardware evidence, and the host's attested signing key.
//!
//! Providers ([`AttestationProvider`]) produce evidence over 64 bytes of REPORTDATA:
//! - [`configfs::TsmProvider`]: Intel TDX or AMD SEV-SNP through Linux configfs-tsm
//!   (`/sys/kernel/config/tsm/report`, Linux 6.7+). The `tdx-guest` crate is not used: it is a
//!   `no_std` crate for guest kernels (raw TDCALL), does not build on stable Rust and faults in
//!   user space; `/dev/tdx_guest` only yields a TDREPORT that no remote party can verify.
//! - [`dstack::DstackProvider`]: Intel TDX through the dstack guest agent's socket, with
//!   dstack's event log (the app's compose hash in RTMR3).
//! - `simulated::SimulatedProvider` (cargo feature `simulated-attestation` **and**
//!   `attestation.provider = "simulated"`): development only, labelled in every response.
//! - [`NoAttestation`]: verifiable routes answer 503 `attestation_unavailable`.
//!
//! Hardware evidence costs tens of milliseconds and is serialised host-wide, so it is never on
//! the request path: at start-up (and on rotation) the host creates a signing key, obtains
//! evidence binding it ([`signer::Attestor`]), and signs sessions, receipts and component
//! statements with it.

pub mod configfs;
pub mod dstack;
pub mod launcher;
pub mod signer;
#[cfg(feature = "simulated-attestation")]
pub mod simulated;
pub mod statement;

pub use signer::{AttestedKey, Attestor};

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

impl TeeKind {
    /// The name used on the wire.
    pub fn name(self) -> &'static str {
        match self {
            TeeKind::None => "none",
            TeeKind::Simulated => "simulated",
            TeeKind::Tdx => "tdx",
            TeeKind::SevSnp => "sev-snp",
        }
    }
}

/// Evidence produced by a provider.
#[derive(Debug, Clone)]
pub struct Evidence {
    /// Who produced it.
    pub tee: TeeKind,
    /// Encoding name: `tdx-dcap-quote`, `sev-snp-report`, `simulated-not-for-production`.
    pub format: &'static str,
    /// The 64 bytes of report data it carries.
    pub report_data: [u8; 64],
    /// The evidence bytes.
    pub evidence: Vec<u8>,
    /// The measurement event log that replays to the evidence's RTMRs (dstack's JSON form,
    /// `hypervisor_eventlog`), where the platform keeps one.
    pub event_log: Option<String>,
}

/// Why no evidence was produced.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum AttestationError {
    /// No provider configured.
    #[error("no attestation provider is configured on this host")]
    NotConfigured,
    /// configfs-tsm reports a different provider than expected.
    #[error("configfs-tsm provider is `{found}`, expected `{expected}`")]
    WrongProvider {
        /// What the kernel reports.
        found: String,
        /// What was configured.
        expected: String,
    },
    /// Another writer changed the report while we used it.
    #[error(
        "configfs-tsm generation changed from {before} to {after} during the request: another writer raced; retry"
    )]
    GenerationChanged {
        /// Generation after writing inblob.
        before: u64,
        /// Generation after reading outblob.
        after: u64,
    },
    /// The kernel returned no evidence.
    #[error("configfs-tsm returned an empty outblob")]
    EmptyEvidence,
    /// Any other provider failure.
    #[error("attestation provider failed: {0}")]
    ProviderFailed(String),
}

/// A source of attestation evidence.
pub trait AttestationProvider: Send + Sync + 'static {
    /// Which TEE this is.
    fn kind(&self) -> TeeKind;

    /// Evidence over exactly 64 bytes of report data. May block for tens of milliseconds.
    ///
    /// # Errors
    /// [`AttestationError`].
    fn attest(&self, report_data: &[u8; 64]) -> Result<Evidence, AttestationError>;
}

/// The provider of a host without attestation: every request fails with
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
