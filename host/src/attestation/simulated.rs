//! Simulated attestation, for development only. Compiled in only with the cargo feature
//! `simulated-attestation`, used only when `attestation.provider = "simulated"` is set
//! explicitly, never as a fallback. Its evidence says what it is in plain words and proves
//! nothing; verifiers reject it unless told `--allow-simulated`.

use super::{AttestationError, AttestationProvider, Evidence, TeeKind};

/// The warning embedded in every piece of simulated evidence.
pub const WARNING: &str = "SIMULATED ATTESTATION - NOT FOR PRODUCTION - PROVES NOTHING";

/// The development provider.
#[derive(Debug, Default)]
pub struct SimulatedProvider;

impl AttestationProvider for SimulatedProvider {
    fn kind(&self) -> TeeKind {
        TeeKind::Simulated
    }

    fn attest(&self, report_data: &[u8; 64]) -> Result<Evidence, AttestationError> {
        let doc = serde_json::json!({
            "warning": WARNING,
            "format": "simulated-not-for-production",
            "report_data": hex::encode(report_data),
        });
        Ok(Evidence {
            tee: TeeKind::Simulated,
            format: "simulated-not-for-production",
            report_data: *report_data,
            evidence: doc.to_string().into_bytes(),
        })
    }
}
