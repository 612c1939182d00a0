//! Vectors of §12b–12c: a reference value set, its canonical JSON and digest (as grants sign
//! it), and a small RTMR3 event log with each runtime event's digest and the replayed RTMR3.

use serde_json::{Value, json};
use sha2::{Digest, Sha384};

use crate::reference::{AppReference, ReferenceValues, TcbReference, TdxReference};
use crate::sha256;

/// dstack's runtime event type.
const RUNTIME_EVENT_TYPE: u32 = 0x0800_0001;

/// The example set: a dstack app on TDX.
pub fn example_set() -> ReferenceValues {
    let reg = |name: &str| hex::encode(Sha384::digest(format!("example {name}")));
    ReferenceValues {
        version: 1,
        name: "wasm-hypervisor 0.1.0 on dstack-0.5.8, 2 vCPU 4 GiB".into(),
        tee: "tdx".into(),
        tdx: Some(TdxReference {
            mrtd: reg("MRTD"),
            rtmr0: reg("RTMR0"),
            rtmr1: reg("RTMR1"),
            rtmr2: reg("RTMR2"),
            app: AppReference {
                compose_hash: Some(hex::encode(sha256(b"example app-compose.json"))),
                app_id: None,
                host_event: false,
            },
        }),
        sev_snp: None,
        host_measurements: vec![hex::encode(sha256(b"example host binary"))],
        tcb: TcbReference {
            tdx_statuses: vec!["UpToDate".into()],
            snp_minimum: None,
        },
    }
}

/// `SHA384(le32(type) || ":" || name || ":" || payload)`.
fn runtime_digest(name: &str, payload: &[u8]) -> [u8; 48] {
    let mut h = Sha384::new();
    h.update(RUNTIME_EVENT_TYPE.to_le_bytes());
    h.update(b":");
    h.update(name.as_bytes());
    h.update(b":");
    h.update(payload);
    h.finalize().into()
}

/// The vectors.
pub fn vectors() -> Value {
    let set = example_set();
    let canonical = serde_json_canonicalizer::to_string(&set).expect("canonical JSON");
    let compose = sha256(b"example app-compose.json");
    let host = sha256(b"example host binary");
    let events: Vec<(&str, Vec<u8>)> = vec![
        ("hypervisor-host-sha256", host.to_vec()),
        ("system-preparing", Vec::new()),
        ("app-id", compose[..20].to_vec()),
        ("compose-hash", compose.to_vec()),
        ("system-ready", Vec::new()),
    ];
    let mut rtmr3 = [0u8; 48];
    let log: Vec<Value> = events
        .iter()
        .map(|(name, payload)| {
            let d = runtime_digest(name, payload);
            let mut h = Sha384::new();
            h.update(rtmr3);
            h.update(d);
            rtmr3 = h.finalize().into();
            json!({
                "imr": 3,
                "event_type": RUNTIME_EVENT_TYPE,
                "digest": hex::encode(d),
                "event": name,
                "event_payload": hex::encode(payload),
            })
        })
        .collect();
    json!({
        "set": set,
        "canonical": canonical,
        "digest": hex::encode(sha256(canonical.as_bytes())),
        "event_log": log,
        "rtmr3": hex::encode(rtmr3),
    })
}
