//! Simulated attestation, for development only. Compiled in only with the cargo feature
//! `simulated-attestation`, used only when `attestation.provider = "simulated"` is set
//! explicitly, never as a fallback. Its evidence says what it is in plain words and proves
//! nothing; verifiers reject it unless told `--allow-simulated`.
//!
//! It simulates a platform too, so that verifiers' reference-value checks run end to end
//! without hardware: TDX-like registers (MRTD, RTMR0-2 from `attestation.simulated_platform`,
//! deterministic defaults) and an RTMR3 built from a real event log in dstack's format (a
//! dstack-like boot sequence when a compose hash is configured, and the launcher's
//! `hypervisor-host-sha256` event), which verifiers replay exactly as they replay hardware's.

use hypervisor_eventlog::{self as eventlog, Event, HOST_EVENT, SYSTEM_READY};
use sha2::{Digest, Sha384};

use super::{AttestationError, AttestationProvider, Evidence, TeeKind};

/// The warning embedded in every piece of simulated evidence.
pub const WARNING: &str = "SIMULATED ATTESTATION - NOT FOR PRODUCTION - PROVES NOTHING";

/// The simulated machine: registers and the RTMR3 log.
#[derive(Debug, Clone)]
pub struct SimulatedPlatform {
    /// MRTD.
    pub mrtd: [u8; 48],
    /// RTMR0..2.
    pub rtmrs: [[u8; 48]; 3],
    /// The RTMR3 event log.
    pub events: Vec<Event>,
}

/// The default register `name` of the simulated platform: SHA-384 of
/// `wasm-hypervisor simulated NAME`.
pub fn default_register(name: &str) -> [u8; 48] {
    Sha384::digest(format!("wasm-hypervisor simulated {name}")).into()
}

impl SimulatedPlatform {
    /// A platform with these registers (`None`: the default) whose RTMR3 log holds a
    /// dstack-like boot naming `compose_hash` (when given; with a fresh instance id each time,
    /// as each dstack instance has) and the launcher's event for `host_measurement` (when
    /// `host_event`).
    pub fn new(
        registers: [Option<[u8; 48]>; 4],
        compose_hash: Option<[u8; 32]>,
        host_event: Option<[u8; 32]>,
    ) -> Self {
        let [mrtd, r0, r1, r2] = registers;
        let mut events = Vec::new();
        if let Some(h) = host_event {
            events.push(Event::runtime(HOST_EVENT, &h));
        }
        if let Some(c) = compose_hash {
            let mut instance = [0u8; 20];
            let _ = getrandom::fill(&mut instance);
            events.push(Event::runtime("system-preparing", b""));
            events.push(Event::runtime("app-id", &c[..20]));
            events.push(Event::runtime("compose-hash", &c));
            events.push(Event::runtime("instance-id", &instance));
            events.push(Event::runtime("boot-mr-done", b""));
            events.push(Event::runtime(
                "key-provider",
                br#"{"name":"none","id":""}"#,
            ));
            events.push(Event::runtime(SYSTEM_READY, b""));
        }
        Self {
            mrtd: mrtd.unwrap_or_else(|| default_register("MRTD")),
            rtmrs: [
                r0.unwrap_or_else(|| default_register("RTMR0")),
                r1.unwrap_or_else(|| default_register("RTMR1")),
                r2.unwrap_or_else(|| default_register("RTMR2")),
            ],
            events,
        }
    }
}

/// The development provider.
#[derive(Debug)]
pub struct SimulatedProvider {
    platform: SimulatedPlatform,
}

impl SimulatedProvider {
    /// A provider simulating `platform`.
    pub fn new(platform: SimulatedPlatform) -> Self {
        Self { platform }
    }
}

impl AttestationProvider for SimulatedProvider {
    fn kind(&self) -> TeeKind {
        TeeKind::Simulated
    }

    fn attest(&self, report_data: &[u8; 64]) -> Result<Evidence, AttestationError> {
        let p = &self.platform;
        let rtmr3 = eventlog::replay(&p.events)
            .map_err(|e| AttestationError::ProviderFailed(e.to_string()))?[3];
        let doc = serde_json::json!({
            "warning": WARNING,
            "format": "simulated-not-for-production",
            "report_data": hex::encode(report_data),
            "platform": {
                "warning": WARNING,
                "mrtd": hex::encode(p.mrtd),
                "rtmr0": hex::encode(p.rtmrs[0]),
                "rtmr1": hex::encode(p.rtmrs[1]),
                "rtmr2": hex::encode(p.rtmrs[2]),
                "rtmr3": hex::encode(rtmr3),
            },
        });
        Ok(Evidence {
            tee: TeeKind::Simulated,
            format: "simulated-not-for-production",
            report_data: *report_data,
            evidence: doc.to_string().into_bytes(),
            event_log: Some(eventlog::to_json(&p.events)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_simulated_log_replays_to_the_simulated_rtmr3_and_names_the_host() {
        let p = SimulatedPlatform::new([None; 4], Some([7; 32]), Some([9; 32]));
        let e = SimulatedProvider::new(p).attest(&[1; 64]).unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&e.evidence).unwrap();
        assert_eq!(doc["warning"], WARNING);
        let events = eventlog::parse_json(e.event_log.as_deref().unwrap()).unwrap();
        let rtmr3 = eventlog::replay(&events).unwrap()[3];
        assert_eq!(doc["platform"]["rtmr3"], hex::encode(rtmr3));
        let id = eventlog::identity(&events).unwrap();
        assert_eq!(id.compose_hash.as_deref(), Some(&[7u8; 32][..]));
        assert_eq!(id.host_sha256, Some([9; 32]));
        assert_eq!(
            doc["platform"]["mrtd"],
            hex::encode(default_register("MRTD"))
        );
    }
}
