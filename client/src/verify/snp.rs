//! AMD SEV-SNP attestation reports, verified offline with the `sev` crate: the VCEK must chain
//! to AMD's built-in roots (Milan, Genoa or Turin) and must have signed the report.

use sev::certs::snp::{Certificate, Chain, Verifiable, builtin, ca};
use sev::firmware::guest::AttestationReport;
use sev::parser::ByteParser;

use super::{Policy, VerifyError};
use hypervisor_protocol::attest::ct_eq;

/// Loads a built-in AMD root certificate (ARK or ASK).
type RootFn = fn() -> std::io::Result<Certificate>;

/// An SNP TCB: the security version numbers of the firmware components, as a report's
/// `reported_tcb` gives them (and as AMD's key distribution service takes them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SnpTcb {
    /// PSP bootloader SVN.
    pub bootloader: u8,
    /// PSP OS (TEE) SVN.
    pub tee: u8,
    /// SNP firmware SVN.
    pub snp: u8,
    /// Lowest microcode patch level of all cores.
    pub microcode: u8,
}

impl SnpTcb {
    /// Whether every component is at least `min`'s.
    pub fn at_least(&self, min: &SnpTcb) -> bool {
        self.bootloader >= min.bootloader
            && self.tee >= min.tee
            && self.snp >= min.snp
            && self.microcode >= min.microcode
    }
}

impl std::fmt::Display for SnpTcb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "bootloader={} tee={} snp={} microcode={}",
            self.bootloader, self.tee, self.snp, self.microcode
        )
    }
}

impl std::str::FromStr for SnpTcb {
    type Err = String;

    /// `BOOTLOADER,TEE,SNP,MICROCODE`, decimal.
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<u8> = s
            .split(',')
            .map(|p| p.trim().parse::<u8>())
            .collect::<Result<_, _>>()
            .map_err(|_| format!("{s:?}: expected BOOTLOADER,TEE,SNP,MICROCODE (0-255 each)"))?;
        match parts[..] {
            [bootloader, tee, snp, microcode] => Ok(Self {
                bootloader,
                tee,
                snp,
                microcode,
            }),
            _ => Err(format!("{s:?}: expected four numbers")),
        }
    }
}

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
    /// The TCB the report was signed at (`reported_tcb`).
    pub reported_tcb: SnpTcb,
    /// HOST_DATA: 32 bytes the hypervisor set at launch (part of the measured launch inputs).
    pub host_data: [u8; 32],
    /// SHA-384 of the ID key that signed the launch's ID block (zero without one).
    pub id_key_digest: [u8; 48],
}

/// Parses a raw SNP report (or its hex text) **without** verifying it.
pub(crate) fn parse_report(report: &[u8]) -> Result<AttestationReport, VerifyError> {
    AttestationReport::from_bytes(&decode_maybe_hex(report))
        .map_err(|e| VerifyError::Malformed(format!("SNP report: {e}")))
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
    let parsed = parse_report(report)?;
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
    vcek_matches(vcek_der, &parsed)?;
    let claims = SnpClaims {
        report_data: parsed.report_data,
        measurement: parsed.measurement,
        debug_allowed: parsed.policy.debug_allowed(),
        product,
        reported_tcb: reported_tcb(&parsed),
        host_data: parsed.host_data,
        id_key_digest: parsed.id_key_digest,
    };
    if let Some(min) = &policy.min_snp_tcb
        && !claims.reported_tcb.at_least(min)
    {
        return Err(VerifyError::TcbStatus(format!(
            "SNP reported TCB {} is below the minimum {min}",
            claims.reported_tcb
        )));
    }
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

fn reported_tcb(report: &AttestationReport) -> SnpTcb {
    let t = &report.reported_tcb;
    SnpTcb {
        bootloader: t.bootloader,
        tee: t.tee,
        snp: t.snp,
        microcode: t.microcode,
    }
}

/// AMD's VCEK extensions (the VCEK certificate specification): the TCB the key was derived for
/// and the chip it belongs to.
const VCEK_BL: &str = "1.3.6.1.4.1.3704.1.3.1";
const VCEK_TEE: &str = "1.3.6.1.4.1.3704.1.3.2";
const VCEK_SNP: &str = "1.3.6.1.4.1.3704.1.3.3";
const VCEK_UCODE: &str = "1.3.6.1.4.1.3704.1.3.8";
const VCEK_FMC: &str = "1.3.6.1.4.1.3704.1.3.9";
const VCEK_HWID: &str = "1.3.6.1.4.1.3704.1.4";

/// Checks that the VCEK (DER) belongs to the report (raw or hex): its TCB extensions equal
/// the report's `reported_tcb`, and its hardware id the report's `chip_id` (unless the guest
/// masked it, all zeros). A signature alone does not say it: a VCEK is derived per TCB, and
/// a key of an old, leaked TCB signs a report that claims a current one just as well.
///
/// # Errors
/// [`VerifyError::Malformed`] for a certificate or report that does not parse;
/// [`VerifyError::Evidence`] naming the first field that differs, or an extension missing.
pub fn check_vcek_matches_report(vcek_der: &[u8], report: &[u8]) -> Result<(), VerifyError> {
    vcek_matches(vcek_der, &parse_report(report)?)
}

fn vcek_matches(vcek_der: &[u8], report: &AttestationReport) -> Result<(), VerifyError> {
    use der::Decode as _;
    let cert = x509_cert::Certificate::from_der(vcek_der)
        .map_err(|e| VerifyError::Malformed(format!("VCEK: {e}")))?;
    let extensions = cert.tbs_certificate.extensions.unwrap_or_default();
    let value = |oid: &str| {
        extensions
            .iter()
            .find(|e| e.extn_id.to_string() == oid)
            .map(|e| e.extn_value.as_bytes().to_vec())
    };
    let svn = |oid: &str, name: &str| -> Result<u8, VerifyError> {
        let raw = value(oid)
            .ok_or_else(|| VerifyError::Evidence(format!("the VCEK has no {name} extension")))?;
        u8::from_der(&raw).map_err(|e| VerifyError::Malformed(format!("the VCEK's {name}: {e}")))
    };
    let t = &report.reported_tcb;
    for (oid, name, reported) in [
        (VCEK_BL, "blSPL", t.bootloader),
        (VCEK_TEE, "teeSPL", t.tee),
        (VCEK_SNP, "snpSPL", t.snp),
        (VCEK_UCODE, "ucodeSPL", t.microcode),
    ] {
        let certified = svn(oid, name)?;
        if certified != reported {
            return Err(VerifyError::Evidence(format!(
                "the report claims {name} {reported}, its VCEK was made for {certified}"
            )));
        }
    }
    if let Some(fmc) = t.fmc
        && value(VCEK_FMC).is_some()
    {
        let certified = svn(VCEK_FMC, "fmcSPL")?;
        if certified != fmc {
            return Err(VerifyError::Evidence(format!(
                "the report claims fmcSPL {fmc}, its VCEK was made for {certified}"
            )));
        }
    }
    if report.chip_id.iter().any(|&b| b != 0) {
        let raw = value(VCEK_HWID)
            .ok_or_else(|| VerifyError::Evidence("the VCEK has no hwID extension".into()))?;
        // The id itself, or wrapped as a DER OCTET STRING.
        let id = match raw.as_slice() {
            [0x04, len, rest @ ..] if usize::from(*len) == rest.len() => rest.to_vec(),
            _ => raw,
        };
        let same = matches!(id.len(), 8 | 64) && ct_eq(&id, &report.chip_id[..id.len()]);
        if !same {
            return Err(VerifyError::Evidence(
                "the report's chip id is not the VCEK's".into(),
            ));
        }
    }
    Ok(())
}

/// Where AMD's key distribution service (KDS, `https://kdsintf.amd.com`, or a cache of it
/// at `base_url`) serves the VCEK that signs `report`: one URL per product line the report
/// may come from (its CPUID family and model when the report carries them, else Milan and
/// Genoa), each `{base}/vcek/v1/{Product}/{hwid}?blSPL=..&teeSPL=..&snpSPL=..&ucodeSPL=..`
/// with the chip id (the first 8 bytes on Turin) and the reported TCB.
///
/// # Errors
/// [`VerifyError::Malformed`] for a report that does not parse.
pub fn vcek_urls(base_url: &str, report: &[u8]) -> Result<Vec<String>, VerifyError> {
    let raw = decode_maybe_hex(report);
    let parsed = AttestationReport::from_bytes(&raw)
        .map_err(|e| VerifyError::Malformed(format!("SNP report: {e}")))?;
    let products: &[&str] = match (parsed.cpuid_fam_id, parsed.cpuid_mod_id) {
        (Some(0x19), Some(m)) if m < 0x10 => &["Milan"],
        (Some(0x19), Some(_)) => &["Genoa"],
        (Some(0x1A), Some(_)) => &["Turin"],
        _ => &["Milan", "Genoa"],
    };
    let t = reported_tcb(&parsed);
    let base = base_url.trim_end_matches('/');
    Ok(products
        .iter()
        .map(|product| {
            let hwid = if *product == "Turin" {
                hex::encode(&parsed.chip_id[..8])
            } else {
                hex::encode(parsed.chip_id)
            };
            let fmc = match (product, parsed.reported_tcb.fmc) {
                (&"Turin", Some(fmc)) => format!("&fmcSPL={fmc:02}"),
                _ => String::new(),
            };
            format!(
                "{base}/vcek/v1/{product}/{hwid}?blSPL={:02}&teeSPL={:02}&snpSPL={:02}&ucodeSPL={:02}{fmc}",
                t.bootloader, t.tee, t.snp, t.microcode
            )
        })
        .collect())
}

/// Fetches the VCEK that signs `report` from AMD's KDS (or a cache of it) at `base_url`
/// ([`vcek_urls`]): the first product line that answers with a certificate. The VCEK is only
/// trusted once it chains to AMD's built-in roots ([`verify_snp_report`]).
///
/// # Errors
/// [`VerifyError::Malformed`] for a report that does not parse; [`VerifyError::MissingInput`]
/// when no URL answers with a certificate.
pub fn fetch_vcek(base_url: &str, report: &[u8]) -> Result<Vec<u8>, VerifyError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(30)))
        .build()
        .into();
    let mut last = String::new();
    for url in vcek_urls(base_url, report)? {
        match agent.get(&url).call() {
            Ok(mut resp) if resp.status() == 200 => {
                let der = resp
                    .body_mut()
                    .with_config()
                    .limit(64 << 10)
                    .read_to_vec()
                    .map_err(|e| VerifyError::MissingInput(format!("VCEK from {url}: {e}")))?;
                return Ok(der);
            }
            Ok(resp) => last = format!("{url} answered {}", resp.status()),
            Err(e) => last = format!("{url}: {e}"),
        }
    }
    Err(VerifyError::MissingInput(format!(
        "the SNP VCEK from the key distribution service ({last})"
    )))
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
