//! Reference value sets (`docs/PROTOCOL.md` §12b): what a verifier pins for one deployable
//! build, in values the **platform** measured, never values the host wrote about itself.
//!
//! A set names a TEE and, for it, the registers the hardware or firmware measured:
//! - TDX (and simulated evidence, which simulates a TDX platform): MRTD and RTMR0–2 exactly, and
//!   the application identity that RTMR3's event log (replayed by the verifier, checked against
//!   the quote's RTMR3) carries: dstack's `compose-hash` (which pins the image digest, so the
//!   binary), optionally its `app-id`, and/or the launcher's `hypervisor-host-sha256` event;
//! - SEV-SNP: the launch measurement, and `host_data` / the ID key digest where the launch
//!   used them;
//! - the TCB minimums (TDX statuses accepted, SNP's lowest reported TCB).
//!
//! `host_measurements` lists the host binaries this build may claim: the attestation's
//! `host_measurement` (a value the host computes itself) must be one of them, and must equal
//! the launcher's event when the set pins one. The claim alone proves nothing, so a set must
//! pin an application identity measured by the platform.
//!
//! This module is pure: it decodes and checks sets, and compares them with [`Measured`], the
//! values a verifier read from evidence it verified (`hypervisor-client`'s `verify` module
//! produces it).

use serde::{Deserialize, Serialize};

mod compare;

pub use compare::{Measured, Mismatch, match_any};

/// The only format version.
pub const REFERENCE_VALUES_VERSION: u32 = 1;

/// Most sets in one file (or one grant, or one configuration key).
pub const MAX_REFERENCE_SETS: usize = 32;

/// A reference value set as written in files, configuration and grants (all hex lowercase or
/// uppercase, no prefix).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceValues {
    /// Always [`REFERENCE_VALUES_VERSION`].
    pub version: u32,
    /// A name for people (shown in errors); not compared.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `tdx`, `sev-snp` or `simulated`: the evidence format it accepts.
    pub tee: String,
    /// TDX (and simulated) registers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tdx: Option<TdxReference>,
    /// SEV-SNP values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sev_snp: Option<SnpReference>,
    /// SHA-256s (hex) of the host binaries this build may claim (at least one).
    pub host_measurements: Vec<String>,
    /// TCB minimums.
    #[serde(default, skip_serializing_if = "TcbReference::is_default")]
    pub tcb: TcbReference,
}

/// TDX registers of one build on one VM shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TdxReference {
    /// MRTD (48 bytes, hex): the firmware image.
    pub mrtd: String,
    /// RTMR0 (48 bytes, hex): firmware configuration, ACPI tables (vCPUs, memory, devices).
    pub rtmr0: String,
    /// RTMR1 (48 bytes, hex): the kernel.
    pub rtmr1: String,
    /// RTMR2 (48 bytes, hex): kernel command line and initrd.
    pub rtmr2: String,
    /// The application identity replayed from RTMR3's event log.
    pub app: AppReference,
}

/// The application identity in RTMR3's event log (read from the first occurrence of each
/// event, before `system-ready`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppReference {
    /// dstack: SHA-256 (hex) of the exact `app-compose.json` bytes (the `compose-hash` event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compose_hash: Option<String>,
    /// dstack: the `app-id` event's payload (hex), when it is pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// A plain TDX guest's launcher extended RTMR3 with the host binary's SHA-256
    /// (`hypervisor-host-sha256` event): it must be present and equal the claimed
    /// `host_measurement`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub host_event: bool,
}

/// SEV-SNP launch values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnpReference {
    /// The launch measurement (48 bytes, hex): firmware, kernel, initrd, command line, vCPUs.
    pub measurement: String,
    /// HOST_DATA (32 bytes, hex) the launch set, when pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_data: Option<String>,
    /// SHA-384 of the ID public key (48 bytes, hex) of the launch's ID block, when pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_key_digest: Option<String>,
}

/// TCB minimums.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcbReference {
    /// TDX TCB statuses accepted (empty: the verifier's own policy, by default `UpToDate`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tdx_statuses: Vec<String>,
    /// SEV-SNP: the lowest reported TCB, `BOOTLOADER,TEE,SNP,MICROCODE` (decimal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snp_minimum: Option<String>,
}

impl TcbReference {
    fn is_default(&self) -> bool {
        self == &Self::default()
    }
}

/// Why a reference value set is not usable.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ReferenceError {
    /// Not JSON of the right shape.
    #[error("reference values: {0}")]
    Malformed(String),
    /// A field is wrong (the message names it).
    #[error("reference set `{set}`: {why}")]
    Invalid {
        /// The set's name (or its index).
        set: String,
        /// What is wrong.
        why: String,
    },
}

/// Registers of a TDX (or simulated) platform, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdxSet {
    /// MRTD.
    pub mrtd: [u8; 48],
    /// RTMR0..2.
    pub rtmrs: [[u8; 48]; 3],
    /// `compose-hash` pinned.
    pub compose_hash: Option<[u8; 32]>,
    /// `app-id` pinned.
    pub app_id: Option<Vec<u8>>,
    /// The launcher's host event required.
    pub host_event: bool,
}

/// SEV-SNP values, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnpSet {
    /// Launch measurement.
    pub measurement: [u8; 48],
    /// HOST_DATA.
    pub host_data: Option<[u8; 32]>,
    /// ID key digest.
    pub id_key_digest: Option<[u8; 48]>,
}

/// A checked, decoded reference value set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceSet {
    /// Its name (or `#index` when unnamed).
    pub name: String,
    /// `tdx`, `sev-snp` or `simulated`.
    pub tee: String,
    /// TDX or simulated registers.
    pub tdx: Option<TdxSet>,
    /// SNP values.
    pub snp: Option<SnpSet>,
    /// Host binaries this build may claim.
    pub host_measurements: Vec<[u8; 32]>,
    /// TDX TCB statuses accepted (empty: the verifier's policy decides).
    pub tdx_statuses: Vec<String>,
    /// SNP lowest TCB `[bootloader, tee, snp, microcode]`.
    pub snp_minimum: Option<[u8; 4]>,
}

/// Hex as §1 writes it: digits only (either case), no `0x` prefix, so that one value has one
/// accepted spelling up to case (the digest lowercases).
fn plain_hex(value: &str) -> Option<Vec<u8>> {
    if value.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(value).ok()
    } else {
        None
    }
}

fn fixed<const N: usize>(set: &str, field: &str, value: &str) -> Result<[u8; N], ReferenceError> {
    let invalid = |why: String| ReferenceError::Invalid {
        set: set.to_string(),
        why,
    };
    let bytes = plain_hex(value).ok_or_else(|| invalid(format!("`{field}` is not hex")))?;
    <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| {
        invalid(format!(
            "`{field}` must be {N} bytes ({} hex digits)",
            N * 2
        ))
    })
}

fn parse_tcb(set: &str, s: &str) -> Result<[u8; 4], ReferenceError> {
    let parts: Result<Vec<u8>, _> = s.split(',').map(|p| p.trim().parse::<u8>()).collect();
    match parts.as_deref() {
        Ok([a, b, c, d]) => Ok([*a, *b, *c, *d]),
        _ => Err(ReferenceError::Invalid {
            set: set.to_string(),
            why: format!("`tcb.snp_minimum` {s:?}: expected BOOTLOADER,TEE,SNP,MICROCODE"),
        }),
    }
}

impl ReferenceValues {
    /// Decodes and checks the set (`index` names it in errors when it has no name).
    ///
    /// # Errors
    /// [`ReferenceError::Invalid`] naming the field.
    pub fn decode(&self, index: usize) -> Result<ReferenceSet, ReferenceError> {
        let name = if self.name.is_empty() {
            format!("#{index}")
        } else {
            self.name.clone()
        };
        let invalid = |why: &str| ReferenceError::Invalid {
            set: name.clone(),
            why: why.to_string(),
        };
        if self.version != REFERENCE_VALUES_VERSION {
            return Err(invalid(&format!(
                "version {} (this verifier reads version {REFERENCE_VALUES_VERSION})",
                self.version
            )));
        }
        if self.name.len() > 200 || self.name.chars().any(char::is_control) {
            return Err(invalid(
                "`name` is at most 200 bytes (UTF-8) with no control characters",
            ));
        }
        let (tdx, snp) = match self.tee.as_str() {
            "tdx" | "simulated" => {
                if self.sev_snp.is_some() {
                    return Err(invalid("a TDX or simulated set has no `sev_snp` section"));
                }
                let t = self
                    .tdx
                    .as_ref()
                    .ok_or_else(|| invalid("a TDX or simulated set needs its `tdx` registers"))?;
                let compose_hash = t
                    .app
                    .compose_hash
                    .as_deref()
                    .map(|h| fixed::<32>(&name, "tdx.app.compose_hash", h))
                    .transpose()?;
                let app_id = t
                    .app
                    .app_id
                    .as_deref()
                    .map(|h| match plain_hex(h) {
                        Some(b) if (1..=64).contains(&b.len()) => Ok(b),
                        _ => Err(invalid("`tdx.app.app_id` is 1 to 64 bytes of hex")),
                    })
                    .transpose()?;
                if compose_hash.is_none() && !t.app.host_event {
                    return Err(invalid(
                        "`tdx.app` pins no application identity: set `compose_hash` (dstack) or \
                         `host_event` (a launcher in the image pinned by RTMR1-2 extends RTMR3 \
                         with the host binary); MRTD and RTMR0-2 alone measure the VM, not the \
                         code it runs",
                    ));
                }
                (
                    Some(TdxSet {
                        mrtd: fixed(&name, "tdx.mrtd", &t.mrtd)?,
                        rtmrs: [
                            fixed(&name, "tdx.rtmr0", &t.rtmr0)?,
                            fixed(&name, "tdx.rtmr1", &t.rtmr1)?,
                            fixed(&name, "tdx.rtmr2", &t.rtmr2)?,
                        ],
                        compose_hash,
                        app_id,
                        host_event: t.app.host_event,
                    }),
                    None,
                )
            }
            "sev-snp" => {
                if self.tdx.is_some() {
                    return Err(invalid("an SEV-SNP set has no `tdx` section"));
                }
                let s = self
                    .sev_snp
                    .as_ref()
                    .ok_or_else(|| invalid("an SEV-SNP set needs its `sev_snp` values"))?;
                (
                    None,
                    Some(SnpSet {
                        measurement: fixed(&name, "sev_snp.measurement", &s.measurement)?,
                        host_data: s
                            .host_data
                            .as_deref()
                            .map(|h| fixed(&name, "sev_snp.host_data", h))
                            .transpose()?,
                        id_key_digest: s
                            .id_key_digest
                            .as_deref()
                            .map(|h| fixed(&name, "sev_snp.id_key_digest", h))
                            .transpose()?,
                    }),
                )
            }
            other => {
                return Err(invalid(&format!(
                    "`tee` is `{other}`: expected tdx, sev-snp or simulated"
                )));
            }
        };
        if self.host_measurements.is_empty() || self.host_measurements.len() > MAX_REFERENCE_SETS {
            return Err(invalid(
                "`host_measurements` lists 1 to 32 host binaries (SHA-256) this build may claim",
            ));
        }
        let host_measurements = self
            .host_measurements
            .iter()
            .map(|m| fixed::<32>(&name, "host_measurements", m))
            .collect::<Result<_, _>>()?;
        let statuses = &self.tcb.tdx_statuses;
        if !statuses.is_empty() && self.tee != "tdx" {
            return Err(invalid("`tcb.tdx_statuses` applies to TDX sets only"));
        }
        if statuses.len() > 8
            || statuses.iter().any(|s| {
                s.is_empty() || s.len() > 64 || !s.bytes().all(|b| b.is_ascii_alphanumeric())
            })
        {
            return Err(invalid(
                "`tcb.tdx_statuses` lists at most 8 TCB statuses (letters, e.g. UpToDate)",
            ));
        }
        if self.tcb.snp_minimum.is_some() && self.tee != "sev-snp" {
            return Err(invalid("`tcb.snp_minimum` applies to SEV-SNP sets only"));
        }
        Ok(ReferenceSet {
            name: name.clone(),
            tee: self.tee.clone(),
            tdx,
            snp,
            host_measurements,
            tdx_statuses: self.tcb.tdx_statuses.clone(),
            snp_minimum: self
                .tcb
                .snp_minimum
                .as_deref()
                .map(|s| parse_tcb(&name, s))
                .transpose()?,
        })
    }

    /// SHA-256 of the RFC 8785 (JCS) canonical JSON of the set with every hex value in
    /// lowercase: how grants' signed text and logs name a set (one digest per set, whatever
    /// case its file used).
    pub fn digest(&self) -> [u8; 32] {
        // Strings, integers, booleans, lists and structs only (no floats, no maps with
        // non-string keys): serialisation cannot fail, and a fallback value would make two
        // sets share a digest, so there is none.
        #[allow(clippy::expect_used)]
        let json = serde_json_canonicalizer::to_vec(&self.lowercased())
            .expect("a reference set always serialises");
        crate::sha256(&json)
    }

    /// The set with its hex values in lowercase (names and TCB values as they are).
    fn lowercased(&self) -> Self {
        let low = |s: &String| s.to_ascii_lowercase();
        let mut v = self.clone();
        if let Some(t) = &mut v.tdx {
            for r in [&mut t.mrtd, &mut t.rtmr0, &mut t.rtmr1, &mut t.rtmr2] {
                *r = low(r);
            }
            t.app.compose_hash = t.app.compose_hash.as_ref().map(low);
            t.app.app_id = t.app.app_id.as_ref().map(low);
        }
        if let Some(s) = &mut v.sev_snp {
            s.measurement = low(&s.measurement);
            s.host_data = s.host_data.as_ref().map(low);
            s.id_key_digest = s.id_key_digest.as_ref().map(low);
        }
        v.host_measurements = v.host_measurements.iter().map(low).collect();
        v
    }

    /// The set that accepts exactly the platform `m` describes (MRTD, RTMR0-2 and the
    /// application identity of a TDX or simulated platform; the launch values of an SNP one)
    /// and its host claim: how a replica admits peers "equal to itself".
    pub fn from_measured(name: &str, m: &Measured) -> Self {
        let h = |b: &[u8]| hex::encode(b);
        let tdx = match (m.tee.as_str(), m.mrtd, m.rtmrs) {
            ("tdx" | "simulated", Some(mrtd), Some(r)) => Some(TdxReference {
                mrtd: h(&mrtd),
                rtmr0: h(&r[0]),
                rtmr1: h(&r[1]),
                rtmr2: h(&r[2]),
                app: AppReference {
                    compose_hash: m.compose_hash.as_deref().map(h),
                    app_id: m.app_id.as_deref().map(h),
                    host_event: m.host_event.is_some(),
                },
            }),
            _ => None,
        };
        let sev_snp = m.snp_measurement.map(|measurement| SnpReference {
            measurement: h(&measurement),
            host_data: m.host_data.map(|d| h(&d)),
            id_key_digest: m.id_key_digest.map(|d| h(&d)),
        });
        Self {
            version: REFERENCE_VALUES_VERSION,
            name: name.to_string(),
            tee: m.tee.clone(),
            tdx,
            sev_snp,
            host_measurements: vec![h(&m.host_measurement)],
            // SNP: no peer below this platform's own reported TCB (TDX has its status policy).
            tcb: TcbReference {
                tdx_statuses: Vec::new(),
                snp_minimum: m
                    .snp_tcb
                    .filter(|_| m.tee == "sev-snp")
                    .map(|[a, b, c, d]| format!("{a},{b},{c},{d}")),
            },
        }
    }
}

/// Parses a reference-values document: one set (a JSON object) or a list of sets, each
/// checked.
///
/// # Errors
/// [`ReferenceError`].
pub fn parse_document(text: &str) -> Result<Vec<ReferenceValues>, ReferenceError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| ReferenceError::Malformed(e.to_string()))?;
    let sets: Vec<ReferenceValues> = if value.is_array() {
        serde_json::from_value(value).map_err(|e| ReferenceError::Malformed(e.to_string()))?
    } else {
        vec![serde_json::from_value(value).map_err(|e| ReferenceError::Malformed(e.to_string()))?]
    };
    if sets.is_empty() || sets.len() > MAX_REFERENCE_SETS {
        return Err(ReferenceError::Malformed(format!(
            "a document holds 1 to {MAX_REFERENCE_SETS} reference sets"
        )));
    }
    for (i, s) in sets.iter().enumerate() {
        s.decode(i)?;
    }
    Ok(sets)
}

#[cfg(test)]
mod tests;
