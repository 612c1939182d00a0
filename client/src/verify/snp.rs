//! AMD SEV-SNP attestation reports, verified offline with the `sev` crate: the VCEK must chain
//! to AMD's built-in roots (Milan, Genoa or Turin) and must have signed the report.

use sev::certs::snp::{Certificate, Chain, Verifiable, builtin, ca};
use sev::firmware::guest::AttestationReport;
use sev::parser::ByteParser;

use super::{Policy, VerifyError};
use hypervisor_protocol::attest::ct_eq;

/// Loads a built-in AMD root certificate (ARK or ASK).
type RootFn = fn() -> std::io::Result<Certificate>;

/// What a verified SNP report says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnpClaims {
    /// REPORTDATA.
    pub report_data: [u8; 64],
    /// Launch measurement.
    pub measurement: [u8; 48],
    /// Whether the guest policy allows debugging.
    pub debug_allowed: bool,
    /// The product line whose roots verified the VCEK.
    pub product: &'static str,
}

/// Verifies a raw SNP report (1184 bytes, or its hex text) signed by `vcek_der`.
///
/// # Errors
/// [`VerifyError`] naming what failed.
pub fn verify_snp_report(
    report: &[u8],
    vcek_der: &[u8],
    policy: &Policy,
) -> Result<SnpClaims, VerifyError> {
    let raw = decode_maybe_hex(report);
    let parsed = AttestationReport::from_bytes(&raw)
        .map_err(|e| VerifyError::Malformed(format!("SNP report: {e}")))?;
    let vcek = Certificate::from_der(vcek_der)
        .map_err(|e| VerifyError::Malformed(format!("VCEK: {e}")))?;
    let roots: [(&'static str, RootFn, RootFn); 3] = [
        ("milan", builtin::milan::ark, builtin::milan::ask),
        ("genoa", builtin::genoa::ark, builtin::genoa::ask),
        ("turin", builtin::turin::ark, builtin::turin::ask),
    ];
    let mut product = None;
    for (name, ark, ask) in roots {
        let (Ok(ark), Ok(ask)) = (ark(), ask()) else {
            continue;
        };
        let chain = Chain {
            ca: ca::Chain { ark, ask },
            vek: vcek.clone(),
        };
        if chain.verify().is_ok() {
            if (&chain, &parsed).verify().is_err() {
                return Err(VerifyError::Evidence(
                    "the VCEK did not sign this report".into(),
                ));
            }
            product = Some(name);
            break;
        }
    }
    let product = product
        .ok_or_else(|| VerifyError::Evidence("the VCEK does not chain to an AMD root".into()))?;
    let claims = SnpClaims {
        report_data: parsed.report_data,
        measurement: parsed.measurement,
        debug_allowed: parsed.policy.debug_allowed(),
        product,
    };
    if claims.debug_allowed && !policy.allow_debug {
        return Err(VerifyError::Debug);
    }
    if let Some(want) = &policy.expected_snp_measurement
        && !ct_eq(want, &claims.measurement)
    {
        return Err(VerifyError::Measurement("SNP launch measurement".into()));
    }
    Ok(claims)
}

/// Reports are sometimes stored as hex text; accept both.
fn decode_maybe_hex(bytes: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes);
    let trimmed: String = text.split_whitespace().collect();
    if !trimmed.is_empty()
        && trimmed.len().is_multiple_of(2)
        && trimmed.bytes().all(|b| b.is_ascii_hexdigit())
    {
        hex::decode(&trimmed).unwrap_or_else(|_| bytes.to_vec())
    } else {
        bytes.to_vec()
    }
}
