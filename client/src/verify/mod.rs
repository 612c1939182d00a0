//! Verification of the host's evidence chain, fully offline:
//!
//! ```text
//! vendor root ─► evidence (TDX quote via dcap-qvl + collateral, SNP report via sev + VCEK)
//!   ─► event log replayed ─► RTMR0-3 of the quote (TDX; the app identity comes from RTMR3's log)
//!   ─► platform registers + app identity + host claim match a pinned reference value set
//!   ─► REPORTDATA == report_data(SIGNING_KEY, [key, host_measurement, created_at])  (constant time)
//!     ─► signing key ─► session statement / receipt / component statement signatures
//!       ─► receipt commitment == the commitment recomputed from the plaintext
//! ```
//!
//! What runs is learnt from values the platform measured (a reference value set,
//! [`hypervisor_protocol::reference`]), never from `host_measurement` alone: the host writes
//! that value itself. Simulated evidence is rejected unless [`Policy::allow_simulated`] is set.

mod pccs;
mod platform;
mod snp;
mod statements;
mod tdx;

use hypervisor_protocol::EncodedPublicKey;
use hypervisor_protocol::attest::{ct_eq, signing_key_report_data};
use hypervisor_protocol::reference::{Measured, ReferenceSet, ReferenceValues, match_any};
use hypervisor_protocol::wire::{Attestation, decode_hex};

pub use pccs::fetch_tdx_collateral;
pub use platform::measured_unverified;
pub use snp::{
    SnpClaims, SnpTcb, check_vcek_matches_report, fetch_vcek, vcek_urls, verify_snp_report,
};
pub use statements::{verify_component_statement, verify_receipt, verify_session};
pub use tdx::{TdxClaims, verify_tdx_quote, verify_tdx_quote_with};

/// Why verification failed. Each variant names the link of the chain that broke.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// The evidence is simulated and the policy does not allow it.
    #[error(
        "the evidence is SIMULATED (proves nothing); refused (pass --allow-simulated only for development)"
    )]
    Simulated,
    /// The hardware evidence did not verify against the vendor's roots.
    #[error("evidence does not verify: {0}")]
    Evidence(String),
    /// Collateral or certificates needed for the evidence are missing.
    #[error("missing verification input: {0}")]
    MissingInput(String),
    /// The TCB status is not accepted by the policy.
    #[error("TCB status `{0}` is not accepted by the policy")]
    TcbStatus(String),
    /// The TEE runs in debug mode.
    #[error("the TEE is in debug mode (its memory is readable by the host); refused")]
    Debug,
    /// A measurement differs from the expected value.
    #[error("{0} does not match the expected value")]
    Measurement(String),
    /// The platform's measurements match none of the pinned reference value sets (the message
    /// names, for each set, the first register or value that differs).
    #[error("the platform's measurements match no pinned reference set: {0}")]
    Reference(String),
    /// A pinned reference value set is not usable.
    #[error("{0}")]
    BadReference(String),
    /// The event log does not replay to the evidence's registers, or does not parse.
    #[error("event log: {0}")]
    EventLog(String),
    /// No reference value set is pinned: what runs cannot be known, so nothing is accepted
    /// (or opt out with `accept_any_measurement`).
    #[error(
        "no reference values: pin the platform-measured values of the build you expect \
         (--reference-values FILE, docs/PROTOCOL.md §12b), or accept any code with \
         --accept-any-measurement"
    )]
    NoExpectedMeasurement,
    /// Only `host_measurement` is pinned. The host computes and writes that value itself, so
    /// any program in any genuine TEE can claim it: it proves nothing about what runs.
    #[error(
        "only the host binary's SHA-256 is pinned: the host writes that value itself, so any \
         program in any genuine TEE can claim it and it proves nothing about what runs; pin a \
         reference value set of platform-measured values instead (--reference-values FILE, \
         docs/PROTOCOL.md §12b)"
    )]
    HostPinOnly,
    /// REPORTDATA does not bind the claimed signing key and host measurement.
    #[error("REPORTDATA does not bind the signing key, host measurement and creation time")]
    Binding,
    /// A signature does not verify.
    #[error("the {0} signature does not verify")]
    Signature(&'static str),
    /// A signed value does not match what the client expects.
    #[error("{0} does not match")]
    Mismatch(&'static str),
    /// The channel binding names another deployment than the one pinned.
    #[error("the host is deployment {got}, not the pinned {expected} (--expect-audience)")]
    OtherDeployment {
        /// The audience pinned.
        expected: String,
        /// The audience the host signed.
        got: String,
    },
    /// A field is malformed.
    #[error("malformed {0}")]
    Malformed(String),
    /// The attestation's `tee` / `simulated` claims disagree with its evidence format.
    #[error(
        "the attestation claims tee `{claimed_tee}` (simulated: {claimed_simulated}) but its evidence is `{evidence_format}`"
    )]
    LabelMismatch {
        /// The evidence format, which decides what the evidence is.
        evidence_format: String,
        /// The claimed `tee`.
        claimed_tee: String,
        /// The claimed `simulated`.
        claimed_simulated: bool,
    },
}

/// What a verifier accepts.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Accept simulated evidence (development only).
    pub allow_simulated: bool,
    /// TDX: the DCAP collateral (`QuoteCollateralV3` JSON).
    pub tdx_collateral: Option<String>,
    /// TDX: fetch the collateral from this PCCS / PCS base URL when none is given.
    pub pccs_url: Option<String>,
    /// SNP: the VCEK certificate (DER) of the chip that signed the report.
    pub snp_vcek: Option<Vec<u8>>,
    /// SNP: fetch the VCEK from AMD's key distribution service (or a cache of it) at this base
    /// URL when `snp_vcek` is not given (e.g. `https://kdsintf.amd.com`).
    pub snp_kds_url: Option<String>,
    /// SNP: the lowest TCB accepted (each component of the report's `reported_tcb` at least
    /// this). Default: none.
    pub min_snp_tcb: Option<SnpTcb>,
    /// Accepted TCB statuses (default: `UpToDate` only).
    pub accepted_tcb_statuses: Vec<String>,
    /// Accept debug TDs / SNP guests with debugging allowed (never in production).
    pub allow_debug: bool,
    /// TDX: expected MRTD (48 bytes).
    pub expected_mrtd: Option<Vec<u8>>,
    /// TDX: expected RTMR0..3 (48 bytes each).
    pub expected_rtmrs: [Option<Vec<u8>>; 4],
    /// SNP: expected launch measurement (48 bytes).
    pub expected_snp_measurement: Option<Vec<u8>>,
    /// Accepted SHA-256s of the host binary (see `hypervisor-client measure`): the claimed
    /// one must be one of them. An extra filter only: the host writes this value itself, so
    /// pinning it alone is refused ([`VerifyError::HostPinOnly`]).
    pub expected_host_measurements: Vec<[u8; 32]>,
    /// The reference value sets accepted: the evidence's platform measurements must match one
    /// ([`hypervisor_protocol::reference`]). The only pin that says what runs.
    pub reference_values: Vec<ReferenceValues>,
    /// Accept a host whatever it runs when no reference set is pinned. Off by default:
    /// verifying without one fails with [`VerifyError::NoExpectedMeasurement`], since evidence
    /// of an unknown program proves nothing about what runs.
    pub accept_any_measurement: bool,
    /// Verification time, Unix seconds (default: now).
    pub now: Option<u64>,
    /// The deployment expected behind an `https://` URL: its audience (`GET /host`), which the
    /// TLS channel binding signs (PROTOCOL §19). Without it any deployment whose evidence
    /// passes is accepted, so a relay that passes TLS through could lead the client to another
    /// genuine host of the same build; with it, only this one.
    pub expected_audience: Option<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            allow_simulated: false,
            tdx_collateral: None,
            pccs_url: None,
            snp_vcek: None,
            snp_kds_url: None,
            min_snp_tcb: None,
            accepted_tcb_statuses: vec!["UpToDate".into()],
            allow_debug: false,
            expected_mrtd: None,
            expected_rtmrs: [None, None, None, None],
            expected_snp_measurement: None,
            expected_host_measurements: Vec::new(),
            reference_values: Vec::new(),
            accept_any_measurement: false,
            now: None,
            expected_audience: None,
        }
    }
}

impl Policy {
    fn now(&self) -> u64 {
        self.now.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        })
    }
}

/// A signing key whose evidence chain verified. `tee` and `simulated` describe the evidence
/// format that was verified, never the server's claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedKey {
    /// The attested key.
    pub signing_key: EncodedPublicKey,
    /// `tdx`, `sev-snp` or `simulated`: from the verified evidence's format.
    pub tee: String,
    /// Whether the evidence was simulated (only with `allow_simulated`): from the verified
    /// evidence's format.
    pub simulated: bool,
    /// SHA-256 of the host binary.
    pub host_measurement: [u8; 32],
    /// TDX/SNP TCB status, when the evidence reports one.
    pub tcb_status: Option<String>,
    /// MRTD (TDX) or launch measurement (SNP), hex.
    pub platform_measurement: Option<String>,
    /// SHA-256 of the evidence that was verified (receipts name it: `evidence_sha256`).
    pub evidence_sha256: [u8; 32],
    /// TDX: the Intel security advisories that apply to the platform's TCB (reported, not
    /// refused: the TCB status policy decides).
    pub advisory_ids: Vec<String>,
    /// The platform's measurements (registers, replayed application identity, host claim).
    pub measured: Measured,
    /// The name of the reference set that matched (`None` with `accept_any_measurement`).
    pub reference: Option<String>,
}

impl Policy {
    /// The pinned reference sets, decoded and checked.
    ///
    /// # Errors
    /// [`VerifyError::BadReference`] naming the set and field.
    pub fn reference_sets(&self) -> Result<Vec<ReferenceSet>, VerifyError> {
        self.reference_values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.decode(i)
                    .map_err(|e| VerifyError::BadReference(e.to_string()))
            })
            .collect()
    }
}

fn hex_field(name: &str, value: &str) -> Result<Vec<u8>, VerifyError> {
    decode_hex(name, value).map_err(|e| VerifyError::Malformed(e.to_string()))
}

/// Verifies an attestation: the evidence, the policy, and the REPORTDATA binding of the key.
///
/// # Errors
/// The first [`VerifyError`] found.
pub fn verify_attestation(att: &Attestation, policy: &Policy) -> Result<VerifiedKey, VerifyError> {
    verify_evidence_binding(att, policy, signing_key_report_data)
}

/// Verifies `att`'s evidence under `policy` and that its REPORTDATA is
/// `expected(signing_key, host_measurement, key_created_at)`: the signing key's binding, or
/// another one made with the same fields (the RA-TLS certificate's, [`crate::tls`]).
pub(crate) fn verify_evidence_binding(
    att: &Attestation,
    policy: &Policy,
    expected: impl FnOnce(&EncodedPublicKey, &[u8; 32], u64) -> [u8; 64],
) -> Result<VerifiedKey, VerifyError> {
    let evidence = hex_field("evidence", &att.evidence)?;
    // What the evidence is comes from its format, the thing actually verified below; the
    // response's `tee` and `simulated` claims must agree with it and are never trusted.
    let format = EvidenceFormat::parse(&att.evidence_format);
    let simulated = format == Some(EvidenceFormat::Simulated);
    let claims_simulated = att.simulated || att.tee == "simulated";
    // Simulated evidence (or a claim of it) is refused unless allowed; a simulated claim on
    // evidence in a hardware format is refused as simulated even when allowed. Any other
    // disagreement between the claims and the format is a `LabelMismatch`.
    if (simulated && !policy.allow_simulated) || (claims_simulated && !simulated) {
        return Err(VerifyError::Simulated);
    }
    let format = format.ok_or_else(|| {
        VerifyError::Malformed(format!("unknown evidence format `{}`", att.evidence_format))
    })?;
    if att.tee != format.tee() || att.simulated != simulated {
        return Err(VerifyError::LabelMismatch {
            evidence_format: att.evidence_format.clone(),
            claimed_tee: att.tee.clone(),
            claimed_simulated: att.simulated,
        });
    }
    // The pins are checked before the evidence costs anything. A set without TDX statuses of
    // its own takes the policy's; the quote is then verified accepting any status some set
    // accepts, and each set holds the status to its own list when compared.
    let mut sets = policy.reference_sets()?;
    for s in &mut sets {
        if s.tdx_statuses.is_empty() {
            s.tdx_statuses.clone_from(&policy.accepted_tcb_statuses);
        }
    }
    let mut widened;
    let policy = if sets.is_empty() {
        policy
    } else {
        widened = policy.clone();
        widened.accepted_tcb_statuses = sets
            .iter()
            .flat_map(|s| s.tdx_statuses.iter().cloned())
            .collect();
        widened.accepted_tcb_statuses.sort();
        widened.accepted_tcb_statuses.dedup();
        &widened
    };
    if sets.is_empty() && !policy.accept_any_measurement {
        return Err(if policy.expected_host_measurements.is_empty() {
            VerifyError::NoExpectedMeasurement
        } else {
            VerifyError::HostPinOnly
        });
    }
    let mut advisory_ids = Vec::new();
    let mut measured = Measured {
        tee: format.tee().to_string(),
        ..Measured::default()
    };
    let event_log = att.event_log.as_deref();
    let (report_data, tcb_status, platform_measurement) = match format {
        EvidenceFormat::Simulated => {
            let doc: serde_json::Value = serde_json::from_slice(&evidence)
                .map_err(|_| VerifyError::Malformed("simulated evidence".into()))?;
            let platform = platform::simulated_registers(&doc)?;
            if let Some((mrtd, rtmrs)) = platform {
                measured.mrtd = Some(mrtd);
                measured.rtmrs = Some(rtmrs);
                measured = platform::replay_into(measured, &rtmrs, event_log)?;
            }
            (
                simulated_report_data(&doc)?,
                None,
                platform.map(|(mrtd, _)| hex::encode(mrtd)),
            )
        }
        EvidenceFormat::Tdx => {
            let c = match (&policy.tdx_collateral, &policy.pccs_url) {
                (Some(collateral), _) => verify_tdx_quote(&evidence, collateral, policy)?,
                (None, Some(pccs)) => {
                    let collateral = fetch_tdx_collateral(pccs, &evidence)?;
                    verify_tdx_quote_with(&evidence, &collateral, policy)?
                }
                (None, None) => {
                    return Err(VerifyError::MissingInput(
                        "TDX collateral (--collateral FILE, or --pccs URL to fetch it)".into(),
                    ));
                }
            };
            advisory_ids = c.advisory_ids;
            measured.mrtd = Some(c.mrtd);
            measured.rtmrs = Some(c.rtmrs);
            measured.tcb_status = Some(c.tcb_status.clone());
            measured = platform::replay_into(measured, &c.rtmrs, event_log)?;
            (c.report_data, Some(c.tcb_status), Some(hex::encode(c.mrtd)))
        }
        EvidenceFormat::SevSnp => {
            let vcek = match (&policy.snp_vcek, &policy.snp_kds_url) {
                (Some(vcek), _) => vcek.clone(),
                (None, Some(kds)) => fetch_vcek(kds, &evidence)?,
                (None, None) => {
                    return Err(VerifyError::MissingInput(
                        "SNP VCEK certificate (--vcek FILE, or --kds URL to fetch it)".into(),
                    ));
                }
            };
            let c = verify_snp_report(&evidence, &vcek, policy)?;
            measured.snp_measurement = Some(c.measurement);
            measured.host_data = Some(c.host_data);
            measured.id_key_digest = Some(c.id_key_digest);
            let t = c.reported_tcb;
            measured.snp_tcb = Some([t.bootloader, t.tee, t.snp, t.microcode]);
            (
                c.report_data,
                Some(format!("reported TCB {}", c.reported_tcb)),
                Some(hex::encode(c.measurement)),
            )
        }
    };

    // The binding: recompute REPORTDATA from the claimed key, measurement and time.
    let signing_key = EncodedPublicKey::from_hex("signing_key", &att.signing_key)
        .map_err(|e| VerifyError::Malformed(e.to_string()))?;
    let measurement: [u8; 32] = hex_field("host_measurement", &att.host_measurement)?
        .try_into()
        .map_err(|_| VerifyError::Malformed("host_measurement (expected 32 bytes)".into()))?;
    let expected = expected(&signing_key, &measurement, att.key_created_at);
    if !ct_eq(&expected, &report_data)
        || !ct_eq(&expected, &hex_field("report_data", &att.report_data)?)
    {
        return Err(VerifyError::Binding);
    }
    if !policy.expected_host_measurements.is_empty()
        && !policy
            .expected_host_measurements
            .iter()
            .any(|want| ct_eq(want, &measurement))
    {
        return Err(VerifyError::Measurement(format!(
            "host measurement {}",
            hex::encode(measurement)
        )));
    }
    measured.host_measurement = measurement;
    let reference = if sets.is_empty() {
        None
    } else {
        Some(match_any(&sets, &measured).map_err(VerifyError::Reference)?)
    };
    Ok(VerifiedKey {
        signing_key,
        tee: format.tee().to_string(),
        simulated,
        host_measurement: measurement,
        tcb_status,
        platform_measurement,
        evidence_sha256: hypervisor_protocol::sha256(&evidence),
        advisory_ids,
        measured,
        reference,
    })
}

/// The evidence formats this verifier knows: the one source of a verified key's `tee` and
/// `simulated` labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EvidenceFormat {
    Simulated,
    Tdx,
    SevSnp,
}

impl EvidenceFormat {
    pub(crate) fn parse(format: &str) -> Option<Self> {
        match format {
            "simulated-not-for-production" => Some(Self::Simulated),
            "tdx-dcap-quote" => Some(Self::Tdx),
            "sev-snp-report" => Some(Self::SevSnp),
            _ => None,
        }
    }

    pub(crate) fn tee(self) -> &'static str {
        match self {
            Self::Simulated => "simulated",
            Self::Tdx => "tdx",
            Self::SevSnp => "sev-snp",
        }
    }
}

/// The REPORTDATA of simulated evidence (a labelled JSON document).
fn simulated_report_data(doc: &serde_json::Value) -> Result<[u8; 64], VerifyError> {
    let rd = doc["report_data"]
        .as_str()
        .ok_or_else(|| VerifyError::Malformed("simulated evidence".into()))?;
    hex_field("report_data", rd)?
        .try_into()
        .map_err(|_| VerifyError::Malformed("simulated report_data".into()))
}

#[cfg(test)]
mod tests;
