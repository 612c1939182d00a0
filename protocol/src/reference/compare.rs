//! Comparing a reference set with what a verifier measured: the first value that differs,
//! named, in a fixed order.

use super::ReferenceSet;
use crate::attest::ct_eq;

/// What a verifier read from evidence whose signature chain it verified (and from the event
/// log it replayed against that evidence). Nothing here is the host's own claim, except
/// `host_measurement`, which is compared, never trusted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Measured {
    /// `tdx`, `sev-snp` or `simulated` (from the evidence format).
    pub tee: String,
    /// TDX / simulated MRTD.
    pub mrtd: Option<[u8; 48]>,
    /// TDX / simulated RTMR0..3.
    pub rtmrs: Option<[[u8; 48]; 4]>,
    /// `compose-hash` from the replayed RTMR3 log.
    pub compose_hash: Option<Vec<u8>>,
    /// `app-id` from the replayed RTMR3 log.
    pub app_id: Option<Vec<u8>>,
    /// The launcher's `hypervisor-host-sha256` event from the replayed RTMR3 log.
    pub host_event: Option<[u8; 32]>,
    /// SNP launch measurement.
    pub snp_measurement: Option<[u8; 48]>,
    /// SNP HOST_DATA.
    pub host_data: Option<[u8; 32]>,
    /// SNP ID key digest.
    pub id_key_digest: Option<[u8; 48]>,
    /// TDX TCB status (from the collateral).
    pub tcb_status: Option<String>,
    /// SNP reported TCB `[bootloader, tee, snp, microcode]`.
    pub snp_tcb: Option<[u8; 4]>,
    /// The host's claimed binary SHA-256 (bound in REPORTDATA, written by the host itself).
    pub host_measurement: [u8; 32],
}

/// The first value of a set that the evidence does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The register or value (`MRTD`, `RTMR1`, `compose-hash`, `host_measurement`, …).
    pub register: String,
    /// What the set expects (hex or words).
    pub expected: String,
    /// What the evidence has.
    pub found: String,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} differs: expected {}, the evidence has {}",
            self.register, self.expected, self.found
        )
    }
}

fn differs(register: &str, expected: &[u8], found: Option<&[u8]>) -> Option<Mismatch> {
    match found {
        Some(f) if ct_eq(expected, f) => None,
        found => Some(Mismatch {
            register: register.to_string(),
            expected: hex::encode(expected),
            found: found.map_or_else(|| "none".to_string(), hex::encode),
        }),
    }
}

impl ReferenceSet {
    /// The first value of this set that `m` does not have, in the order tee, platform
    /// registers, application identity, host claim, TCB; `None` when `m` matches.
    pub fn mismatch(&self, m: &Measured) -> Option<Mismatch> {
        if self.tee != m.tee {
            return Some(Mismatch {
                register: "tee".into(),
                expected: self.tee.clone(),
                found: m.tee.clone(),
            });
        }
        if let Some(t) = &self.tdx {
            let rtmrs = m.rtmrs.as_ref();
            differs("MRTD", &t.mrtd, m.mrtd.as_ref().map(|v| v.as_slice()))
                .or_else(|| {
                    (0..3).find_map(|i| {
                        differs(
                            &format!("RTMR{i}"),
                            &t.rtmrs[i],
                            rtmrs.map(|r| r[i].as_slice()),
                        )
                    })
                })
                .or_else(|| {
                    t.compose_hash.and_then(|want| {
                        differs(
                            "compose-hash (RTMR3 event log)",
                            &want,
                            m.compose_hash.as_deref(),
                        )
                    })
                })
                .or_else(|| {
                    t.app_id.as_ref().and_then(|want| {
                        differs("app-id (RTMR3 event log)", want, m.app_id.as_deref())
                    })
                })
                .or_else(|| {
                    t.host_event
                        .then(|| {
                            differs(
                                "hypervisor-host-sha256 (RTMR3 event log) vs the claimed host_measurement",
                                &m.host_measurement,
                                m.host_event.as_ref().map(|v| v.as_slice()),
                            )
                        })
                        .flatten()
                })
        } else {
            None
        }
        .or_else(|| {
            self.snp.as_ref().and_then(|s| {
                differs(
                    "SNP launch measurement",
                    &s.measurement,
                    m.snp_measurement.as_ref().map(|v| v.as_slice()),
                )
                .or_else(|| {
                    s.host_data.and_then(|want| {
                        differs(
                            "SNP HOST_DATA",
                            &want,
                            m.host_data.as_ref().map(|v| v.as_slice()),
                        )
                    })
                })
                .or_else(|| {
                    s.id_key_digest.and_then(|want| {
                        differs(
                            "SNP ID key digest",
                            &want,
                            m.id_key_digest.as_ref().map(|v| v.as_slice()),
                        )
                    })
                })
            })
        })
        .or_else(|| {
            (!self
                .host_measurements
                .iter()
                .any(|h| ct_eq(h, &m.host_measurement)))
            .then(|| Mismatch {
                register: "host_measurement (claimed by the host)".into(),
                expected: format!(
                    "one of {}",
                    self.host_measurements
                        .iter()
                        .map(hex::encode)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                found: hex::encode(m.host_measurement),
            })
        })
        .or_else(|| {
            // Only TDX evidence has a TCB status (from Intel's collateral).
            // Only TDX evidence has a TCB status (from Intel's collateral); an empty list
            // accepts none (verifiers fill a set's empty list with their policy's first).
            (self.tee == "tdx").then_some(()).and_then(|()| {
                let status = m.tcb_status.clone().unwrap_or_default();
                (!self.tdx_statuses.contains(&status)).then(|| Mismatch {
                    register: "TDX TCB status".into(),
                    expected: format!("one of {}", self.tdx_statuses.join(", ")),
                    found: status,
                })
            })
        })
        .or_else(|| {
            self.snp_minimum.and_then(|min| {
                let tcb = m.snp_tcb.unwrap_or_default();
                (!tcb.iter().zip(min.iter()).all(|(a, b)| a >= b)).then(|| Mismatch {
                    register: "SNP reported TCB".into(),
                    expected: format!("at least {min:?}"),
                    found: format!("{tcb:?}"),
                })
            })
        })
    }
}

/// Which of `sets` `m` matches: the first matching set's name, or, when none does, each set's
/// first difference (`set: mismatch`), joined, for the error message.
///
/// # Errors
/// The differences, in words.
pub fn match_any(sets: &[ReferenceSet], m: &Measured) -> Result<String, String> {
    let mut why = Vec::new();
    for s in sets {
        match s.mismatch(m) {
            None => return Ok(s.name.clone()),
            Some(d) => why.push(format!("reference set `{}`: {d}", s.name)),
        }
    }
    Err(why.join("; "))
}
