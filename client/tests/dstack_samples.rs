//! Real dstack TDX evidence (`../shared/attestation-samples/dstack/`): the quotes' REPORTDATA,
//! their event logs replayed to RTMR3, the compose hash checked against the exact
//! `app-compose.json` bytes, and reference value sets matched and refused on real registers.
//! These quotes carry their apps' REPORTDATA, not ours, so a full `verify_attestation` stops at
//! the binding check, after everything this issue is about has passed.

use std::path::PathBuf;

use hypervisor_client::verify::{
    Policy, VerifyError, measured_unverified, verify_attestation, verify_tdx_quote,
};
use hypervisor_protocol::reference::{
    AppReference, ReferenceValues, TcbReference, TdxReference, match_any,
};
use hypervisor_protocol::sha256;
use hypervisor_protocol::wire::Attestation;
use serde_json::Value;

fn read(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/attestation-samples/dstack")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn json(rel: &str) -> Value {
    serde_json::from_slice(&read(rel)).unwrap()
}

/// 2026-08-13T12:00:00Z: inside near-mpc's collateral window (UpToDate).
const NEAR_TIME: u64 = 1_786_622_400;

/// The claim the samples' hosts would make (they are not ours: any fixed value).
const CLAIM: [u8; 32] = [1; 32];

fn attestation(quote: &[u8], event_log: Option<String>) -> Attestation {
    Attestation {
        tee: "tdx".into(),
        simulated: false,
        evidence_format: "tdx-dcap-quote".into(),
        evidence: hex::encode(quote),
        report_data: hex::encode(&quote[568..632]),
        // Any key: these hosts bound their own in REPORTDATA, not one of ours.
        signing_key: hypervisor_protocol::ClientSecret::generate()
            .unwrap()
            .public_key()
            .to_hex(),
        host_measurement: hex::encode(CLAIM),
        key_created_at: 0,
        event_log,
    }
}

fn near() -> (Vec<u8>, String, Value) {
    let quote: Vec<u8> = serde_json::from_value(json("near-mpc/quote.json")).unwrap();
    let tcb = json("near-mpc/tcb_info.json");
    let log = tcb["event_log"].to_string();
    (quote, log, tcb)
}

/// The reference set near/mpc would publish for this node: the registers of its OS image and
/// VM shape (from the guest agent's tcb_info), and the hash of its exact compose file.
fn near_reference(compose: &[u8]) -> ReferenceValues {
    let tcb = near().2;
    let s = |k: &str| tcb[k].as_str().unwrap().to_string();
    ReferenceValues {
        version: 1,
        name: "near-mpc localnet on dstack-dev-0.5.8".into(),
        tee: "tdx".into(),
        tdx: Some(TdxReference {
            mrtd: s("mrtd"),
            rtmr0: s("rtmr0"),
            rtmr1: s("rtmr1"),
            rtmr2: s("rtmr2"),
            app: AppReference {
                compose_hash: Some(hex::encode(sha256(compose))),
                app_id: None,
                host_event: false,
            },
        }),
        sev_snp: None,
        host_measurements: vec![hex::encode(CLAIM)],
        tcb: TcbReference {
            tdx_statuses: vec!["UpToDate".into()],
            snp_minimum: None,
        },
    }
}

#[test]
fn near_mpc_quote_verifies_its_log_replays_and_its_compose_hash_is_the_files() {
    let (quote, log, _) = near();
    let collateral = String::from_utf8(read("near-mpc/collateral.json")).unwrap();
    let policy = Policy {
        tdx_collateral: Some(collateral),
        now: Some(NEAR_TIME),
        ..Policy::default()
    };
    let claims = verify_tdx_quote(&quote, policy.tdx_collateral.as_deref().unwrap(), &policy)
        .expect("DCAP verification");
    assert_eq!(claims.tcb_status, "UpToDate");
    // REPORTDATA is the app's (near binds its node keys): `0001e4fa…` then 14 zero bytes.
    assert_eq!(hex::encode(&claims.report_data[..4]), "0001e4fa");
    assert_eq!(&claims.report_data[50..], &[0u8; 14]);

    let measured = measured_unverified(&attestation(&quote, Some(log.clone()))).unwrap();
    assert_eq!(
        measured.rtmrs,
        Some(claims.rtmrs),
        "the log replays to the quote"
    );
    assert_eq!(
        hex::encode(claims.rtmrs[3]),
        "86f1808cffc050f3c0c09d29da2bfcec7eba3e8fa52016a7341f28884230f9ca8b56400413d57bce00b578e36790b555"
    );
    let compose = read("near-mpc/app_compose.json");
    assert_eq!(
        measured.compose_hash.as_deref(),
        Some(&sha256(&compose)[..])
    );
    assert_eq!(
        hex::encode(sha256(&compose)),
        "2911e1f733466216dedb862d6d669e11256ee7a34ce4dbc66c4b807ba7a9c895"
    );
    assert_eq!(measured.app_id.as_deref(), Some(&sha256(&compose)[..20]));
    // MRCONFIGID = 01 || compose hash || zeros (dstack MrConfig V1).
    assert_eq!(quote[232], 1);
    assert_eq!(&quote[233..265], &sha256(&compose));

    // The set made from the exact file bytes matches; one made from a re-serialised copy of
    // the same JSON (sorted keys, compact) does not, and says so.
    let mut m = measured.clone();
    m.tcb_status = Some(claims.tcb_status.clone());
    let set = near_reference(&compose).decode(0).unwrap();
    assert_eq!(
        match_any(std::slice::from_ref(&set), &m),
        Ok(set.name.clone())
    );
    let parsed: Value = serde_json::from_slice(&compose).unwrap();
    let reserialised = serde_json::to_vec(&parsed).unwrap();
    assert_ne!(reserialised, compose);
    let other = near_reference(&reserialised).decode(0).unwrap();
    let why = match_any(&[other], &m).unwrap_err();
    assert!(why.contains("compose-hash"), "{why}");

    // Through the whole verifier: evidence, replay and reference set pass; the binding is
    // the app's, not ours, so that is where it stops.
    let full = Policy {
        reference_values: vec![near_reference(&compose)],
        ..policy.clone()
    };
    assert_eq!(
        verify_attestation(&attestation(&quote, Some(log.clone())), &full).unwrap_err(),
        VerifyError::Binding
    );
    // A log with one RTMR3 event changed, or two events swapped, does not replay.
    let mut events: Value = serde_json::from_str(&log).unwrap();
    let list = events.as_array_mut().unwrap();
    let i = list
        .iter()
        .position(|e| e["event"] == "mpc-image-digest")
        .unwrap();
    list[i]["event_payload"] = "00".into();
    list[i]["digest"] = "".into();
    assert!(matches!(
        verify_attestation(&attestation(&quote, Some(events.to_string())), &full),
        Err(VerifyError::EventLog(_))
    ));
    let mut events: Value = serde_json::from_str(&log).unwrap();
    let list = events.as_array_mut().unwrap();
    let a = list.iter().position(|e| e["event"] == "app-id").unwrap();
    let b = list
        .iter()
        .position(|e| e["event"] == "compose-hash")
        .unwrap();
    list.swap(a, b);
    assert!(matches!(
        verify_attestation(&attestation(&quote, Some(events.to_string())), &full),
        Err(VerifyError::EventLog(_))
    ));
    // The same quote under a bare host pin is refused before anything is verified.
    let host_only = Policy {
        expected_host_measurements: vec![CLAIM],
        ..policy
    };
    assert_eq!(
        verify_attestation(&attestation(&quote, Some(log)), &host_only).unwrap_err(),
        VerifyError::HostPinOnly
    );
}

#[test]
fn the_getquote_samples_carry_unhashed_report_data_and_replay_to_their_rtmr3() {
    let r = json("quote-report.json");
    let quote = hex::decode(r["quote"].as_str().unwrap()).unwrap();
    let mut want = vec![0x12, 0x34];
    want.resize(64, 0);
    assert_eq!(
        &quote[568..632],
        &want[..],
        "GetQuote pads, it does not hash"
    );
    let log = r["event_log"].as_str().unwrap().to_string();
    let m = measured_unverified(&attestation(&quote, Some(log))).unwrap();
    assert_eq!(
        hex::encode(m.rtmrs.unwrap()[3]),
        "0f787c3877f3e95095d5a4d13dd0fe0233803b30120d8469866719dc28f519ce021fe1e53459121e7a5a4443147185a8"
    );
    assert_eq!(
        hex::encode(m.compose_hash.unwrap()),
        "3763bc34552cf3a27ff71ad5f7a90471562a1a2df552dfc1998cba2d60da27e7"
    );

    // The lite sample's runtime digests are empty: recomputed, they still replay.
    let r = json("tdx-lite-getquote.json");
    let quote = hex::decode(r["quote"].as_str().unwrap()).unwrap();
    let log = r["event_log"].as_str().unwrap().to_string();
    let m = measured_unverified(&attestation(&quote, Some(log))).unwrap();
    assert_eq!(
        hex::encode(m.rtmrs.unwrap()[3]),
        "6f24c170d0fd63fc2b1b53202eea47b013978437fa6982cf5e0438ff95c208994aaa0f4ebab2e3a66824b5b56869137e"
    );
    let compose = m.compose_hash.unwrap();
    assert_eq!(
        hex::encode(&compose),
        "86b0e55f2fa8e4fb69d890f14f54d5612707646e2573d54e0d2ddaaade77caa9"
    );
    assert_eq!(quote[232], 1);
    assert_eq!(&quote[233..265], &compose[..]);
}
