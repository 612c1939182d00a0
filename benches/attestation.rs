//! What checking the platform costs a verifier: `cargo bench -p hypervisor-client --bench
//! attestation` (a client benchmark: no host, no wasmtime).
//!
//! On a real dstack TDX quote (`../shared/attestation-samples/dstack/near-mpc/`, 29 events),
//! side by side in one run:
//! - the DCAP verification alone (dcap-qvl, what a verifier did before reference sets);
//! - the event log parsed and replayed to RTMR0-3, the identity read (`measured_unverified`);
//! - the reference set compared (`match_any`);
//! - the whole `verify_attestation` with a reference set (which stops at the binding on this
//!   sample: its REPORTDATA is the app's, not ours), against the same with no set
//!   (`accept_any_measurement`).
//!
//! `BENCH_ITERATIONS` sets the sample count (default 300).

use std::time::Instant;

#[path = "common/stats.rs"]
#[allow(dead_code)]
mod stats;

use hypervisor_client::verify::{
    Policy, measured_unverified, verify_attestation, verify_tdx_quote,
};
use hypervisor_protocol::reference::{
    AppReference, ReferenceValues, TcbReference, TdxReference, match_any,
};
use hypervisor_protocol::wire::Attestation;
use hypervisor_protocol::{ClientSecret, sha256};
use stats::report;

/// 2026-08-13T12:00:00Z: inside the sample's collateral window.
const NOW: u64 = 1_786_622_400;

fn read(rel: &str) -> Vec<u8> {
    let p = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/attestation-samples/dstack/near-mpc")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn main() {
    let quote: Vec<u8> = serde_json::from_slice(&read("quote.json")).unwrap();
    let tcb: serde_json::Value = serde_json::from_slice(&read("tcb_info.json")).unwrap();
    let compose = read("app_compose.json");
    let collateral = String::from_utf8(read("collateral.json")).unwrap();
    let s = |k: &str| tcb[k].as_str().unwrap().to_string();
    let claim = [1u8; 32];
    let set = ReferenceValues {
        version: 1,
        name: "near-mpc".into(),
        tee: "tdx".into(),
        tdx: Some(TdxReference {
            mrtd: s("mrtd"),
            rtmr0: s("rtmr0"),
            rtmr1: s("rtmr1"),
            rtmr2: s("rtmr2"),
            app: AppReference {
                compose_hash: Some(hex::encode(sha256(&compose))),
                app_id: None,
                host_event: false,
            },
        }),
        sev_snp: None,
        host_measurements: vec![hex::encode(claim)],
        tcb: TcbReference::default(),
    };
    let att = Attestation {
        tee: "tdx".into(),
        simulated: false,
        evidence_format: "tdx-dcap-quote".into(),
        evidence: hex::encode(&quote),
        report_data: hex::encode(&quote[568..632]),
        signing_key: ClientSecret::generate().unwrap().public_key().to_hex(),
        host_measurement: hex::encode(claim),
        key_created_at: 0,
        event_log: Some(tcb["event_log"].to_string()),
    };
    let any = Policy {
        tdx_collateral: Some(collateral),
        now: Some(NOW),
        accept_any_measurement: true,
        ..Policy::default()
    };
    let pinned = Policy {
        accept_any_measurement: false,
        reference_values: vec![set.clone()],
        ..any.clone()
    };
    // As the verifier uses it: no TDX statuses of its own, so the policy's.
    let mut decoded = set.decode(0).unwrap();
    decoded.tdx_statuses = vec!["UpToDate".into()];
    let sets = vec![decoded];
    let n = std::env::var("BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let time = |f: &dyn Fn()| {
        (0..n)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect::<Vec<_>>()
    };
    println!("near-mpc dstack quote, {n} samples each");
    report(
        "DCAP verification (dcap-qvl) alone",
        time(&|| {
            verify_tdx_quote(&quote, any.tdx_collateral.as_deref().unwrap(), &any).unwrap();
        }),
    );
    report(
        "event log parsed, replayed to RTMR0-3, identity read",
        time(&|| {
            measured_unverified(&att).unwrap();
        }),
    );
    let measured = measured_unverified(&att).unwrap();
    let m = hypervisor_protocol::reference::Measured {
        tcb_status: Some("UpToDate".into()),
        ..measured
    };
    report(
        "reference set compared",
        time(&|| {
            match_any(&sets, &m).unwrap();
        }),
    );
    report(
        "verify_attestation, no reference set (accept any)",
        time(&|| {
            verify_attestation(&att, &any).unwrap_err();
        }),
    );
    report(
        "verify_attestation, reference set pinned",
        time(&|| {
            verify_attestation(&att, &pinned).unwrap_err();
        }),
    );
}
