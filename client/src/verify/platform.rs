//! The platform's measurements, as a verifier reads them: registers from verified evidence,
//! and the application identity from the event log **replayed** against those registers (the
//! log is the host's to send and is never trusted on its own: a log that does not replay to
//! the evidence's RTMRs is refused).

use hypervisor_eventlog as eventlog;
use hypervisor_protocol::reference::Measured;
use hypervisor_protocol::wire::Attestation;

use super::{EvidenceFormat, VerifyError, hex_field};

/// Replays `event_log` (dstack's JSON form) against `rtmrs`: RTMR3 must equal the replay
/// (its application identity is read from the log), and so must each of RTMR0-2 the log has
/// events for. Returns `m` with the identity filled in. Without a log, no identity is read
/// (a reference set that pins one then does not match).
pub(crate) fn replay_into(
    mut m: Measured,
    rtmrs: &[[u8; 48]; 4],
    event_log: Option<&str>,
) -> Result<Measured, VerifyError> {
    let Some(text) = event_log else {
        return Ok(m);
    };
    let bad = |e: eventlog::EventLogError| VerifyError::EventLog(e.to_string());
    let events = eventlog::parse_json(text).map_err(bad)?;
    let replayed = eventlog::replay(&events).map_err(bad)?;
    let covered = eventlog::covered(&events);
    for i in 0..4 {
        if (i == 3 || covered[i]) && replayed[i] != rtmrs[i] {
            return Err(VerifyError::EventLog(format!(
                "the event log replays RTMR{i} to {}, but the evidence's RTMR{i} is {} \
                 (the log was altered, reordered or is another machine's)",
                hex::encode(replayed[i]),
                hex::encode(rtmrs[i])
            )));
        }
    }
    let id = eventlog::identity(&events).map_err(bad)?;
    m.compose_hash = id.compose_hash;
    m.app_id = id.app_id;
    m.host_event = id.host_sha256;
    Ok(m)
}

/// MRTD and RTMR0..3.
pub(crate) type Registers = ([u8; 48], [[u8; 48]; 4]);

/// The registers of simulated evidence: `{"platform": {"mrtd", "rtmr0".."rtmr3"}}` (48 bytes
/// each, hex). Evidence from before simulated platforms has none.
pub(crate) fn simulated_registers(
    doc: &serde_json::Value,
) -> Result<Option<Registers>, VerifyError> {
    let Some(p) = doc.get("platform") else {
        return Ok(None);
    };
    let reg = |name: &str| -> Result<[u8; 48], VerifyError> {
        let v = p[name]
            .as_str()
            .ok_or_else(|| VerifyError::Malformed(format!("simulated platform `{name}`")))?;
        hex_field(name, v)?
            .try_into()
            .map_err(|_| VerifyError::Malformed(format!("simulated platform `{name}`")))
    };
    Ok(Some((
        reg("mrtd")?,
        [reg("rtmr0")?, reg("rtmr1")?, reg("rtmr2")?, reg("rtmr3")?],
    )))
}

/// The platform measurements of `att`'s evidence **without verifying its signatures**: for a
/// host reading its own evidence (a replica admitting peers equal to itself), or for drafting
/// a reference set from evidence a person has verified otherwise. The event log is still
/// replayed against the registers. Never use the result to trust a remote party.
///
/// # Errors
/// [`VerifyError::Malformed`] for evidence that does not parse; [`VerifyError::EventLog`].
pub fn measured_unverified(att: &Attestation) -> Result<Measured, VerifyError> {
    let evidence = hex_field("evidence", &att.evidence)?;
    let format = EvidenceFormat::parse(&att.evidence_format).ok_or_else(|| {
        VerifyError::Malformed(format!("unknown evidence format `{}`", att.evidence_format))
    })?;
    let host_measurement: [u8; 32] = hex_field("host_measurement", &att.host_measurement)?
        .try_into()
        .map_err(|_| VerifyError::Malformed("host_measurement (expected 32 bytes)".into()))?;
    let base = Measured {
        tee: format.tee().to_string(),
        host_measurement,
        ..Measured::default()
    };
    match format {
        EvidenceFormat::Simulated => {
            let doc: serde_json::Value = serde_json::from_slice(&evidence)
                .map_err(|_| VerifyError::Malformed("simulated evidence".into()))?;
            match simulated_registers(&doc)? {
                Some((mrtd, rtmrs)) => replay_into(
                    Measured {
                        mrtd: Some(mrtd),
                        rtmrs: Some(rtmrs),
                        ..base
                    },
                    &rtmrs,
                    att.event_log.as_deref(),
                ),
                None => Ok(base),
            }
        }
        EvidenceFormat::Tdx => {
            let quote = dcap_qvl::quote::Quote::parse(&evidence)
                .map_err(|e| VerifyError::Malformed(format!("TDX quote: {e}")))?;
            let td = quote
                .report
                .as_td10()
                .ok_or_else(|| VerifyError::Malformed("not a TDX quote".into()))?;
            let rtmrs = [td.rt_mr0, td.rt_mr1, td.rt_mr2, td.rt_mr3];
            replay_into(
                Measured {
                    mrtd: Some(td.mr_td),
                    rtmrs: Some(rtmrs),
                    ..base
                },
                &rtmrs,
                att.event_log.as_deref(),
            )
        }
        EvidenceFormat::SevSnp => {
            let r = super::snp::parse_report(&evidence)?;
            let t = &r.reported_tcb;
            Ok(Measured {
                snp_measurement: Some(r.measurement),
                host_data: Some(r.host_data),
                id_key_digest: Some(r.id_key_digest),
                // (A set drafted from it, or a replica's own, then holds this TCB as its
                // minimum, as the verified path does.)
                snp_tcb: Some([t.bootloader, t.tee, t.snp, t.microcode]),
                ..base
            })
        }
    }
}
