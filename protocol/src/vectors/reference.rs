//! Vectors of §12b–12c: a reference value set, its canonical JSON and digest (as grants sign
//! it), and a small RTMR3 event log with each runtime event's digest and the replayed RTMR3.

use hypervisor_eventlog::{Event, HOST_EVENT, SYSTEM_READY, replay, to_json};
use serde_json::{Value, json};
use sha2::{Digest, Sha384};

use crate::reference::{AppReference, ReferenceValues, TcbReference, TdxReference};
use crate::sha256;

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

/// The vectors.
pub fn vectors() -> Value {
    let set = example_set();
    let canonical = serde_json_canonicalizer::to_string(&set).expect("canonical JSON");
    let compose = sha256(b"example app-compose.json");
    let host = sha256(b"example host binary");
    let events = [
        Event::runtime(HOST_EVENT, &host),
        Event::runtime("system-preparing", b""),
        Event::runtime("app-id", &compose[..20]),
        Event::runtime("compose-hash", &compose),
        Event::runtime(SYSTEM_READY, b""),
    ];
    let rtmr3 = replay(&events).expect("runtime events replay")[3];
    let log: Value = serde_json::from_str(&to_json(&events)).expect("JSON");
    // The same set as a person might write it: uppercase hex, defaults spelled out. It decodes
    // to the same set and has the same digest (§12b: hex lowercased, defaults left out).
    // Written out by hand, so that its text does not depend on a JSON map's key order.
    let t = set.tdx.as_ref().expect("tdx");
    let written = format!(
        r#"{{"version":1,"tee":"tdx","name":{name:?},"host_measurements":["{host}"],"tdx":{{"mrtd":"{mrtd}","rtmr0":"{r0}","rtmr1":"{r1}","rtmr2":"{r2}","app":{{"host_event":false,"compose_hash":"{compose}"}}}},"tcb":{{"tdx_statuses":["UpToDate"]}}}}"#,
        name = set.name,
        host = set.host_measurements[0].to_ascii_uppercase(),
        mrtd = t.mrtd.to_ascii_uppercase(),
        r0 = t.rtmr0,
        r1 = t.rtmr1,
        r2 = t.rtmr2,
        compose = t.app.compose_hash.as_deref().unwrap_or_default(),
    );
    let as_written: ReferenceValues = serde_json::from_str(&written).expect("a set");
    assert_eq!(as_written.digest(), set.digest(), "one digest per set");
    json!({
        "set": set,
        "set_as_written": written,
        "canonical": canonical,
        "digest": hex::encode(sha256(canonical.as_bytes())),
        "event_log": log,
        "rtmr3": hex::encode(rtmr3),
    })
}
