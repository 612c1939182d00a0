//! Code identity measured by the platform, not claimed by the code (docs/PROTOCOL.md §12b):
//! a verifier pins a reference value set, and a host that claims the right `host_measurement`
//! on another platform, with a tampered event log, or under a bare host pin, is refused.
//! Simulated platforms stand in for hardware here; the same checks run on real TDX quotes in
//! `client/tests/dstack_samples.rs`.

use hypervisor_client::verify::{Policy, VerifyError, verify_attestation};
use hypervisor_protocol::wire::Attestation;

use crate::harness::{TestServer, get_json, host_measurement, simulated_reference};

const SIMULATED: &str = "[attestation]\nprovider = \"simulated\"\n";

fn attestation(server: &TestServer) -> Attestation {
    let (status, body) = get_json(server, "/attestation");
    assert_eq!(status, 200, "{body}");
    serde_json::from_value(body["attestation"].clone()).expect("an attestation")
}

fn pinned() -> Policy {
    Policy {
        allow_simulated: true,
        reference_values: vec![simulated_reference()],
        ..Policy::default()
    }
}

#[cfg(feature = "simulated-attestation")]
#[test]
fn the_default_simulated_platform_matches_its_reference_set_through_the_replayed_log() {
    let server = TestServer::start_with(SIMULATED);
    let att = attestation(&server);
    let log = att
        .event_log
        .as_deref()
        .expect("simulated evidence carries an event log");
    assert!(log.contains("hypervisor-host-sha256"), "{log}");
    let key = verify_attestation(&att, &pinned()).expect("verifies");
    assert_eq!(
        key.reference.as_deref(),
        Some("the host under test, simulated")
    );
    assert_eq!(key.measured.host_event, Some(host_measurement()));
    assert!(key.simulated);
    // Still refused without the explicit opt-in, reference set or not.
    let strict = Policy {
        allow_simulated: false,
        ..pinned()
    };
    assert_eq!(
        verify_attestation(&att, &strict).unwrap_err(),
        VerifyError::Simulated
    );
}

#[cfg(feature = "simulated-attestation")]
#[test]
fn a_host_pin_alone_is_refused_with_the_reason() {
    let server = TestServer::start_with(SIMULATED);
    let att = attestation(&server);
    let host_only = Policy {
        allow_simulated: true,
        expected_host_measurements: vec![host_measurement()],
        ..Policy::default()
    };
    let e = verify_attestation(&att, &host_only).unwrap_err();
    assert_eq!(e, VerifyError::HostPinOnly);
    assert!(e.to_string().contains("writes that value itself"), "{e}");
    // The CLI says the same and exits non-zero.
    let client = std::path::PathBuf::from(env!("CARGO_BIN_EXE_hypervisor"))
        .with_file_name("hypervisor-client");
    let out = std::process::Command::new(client)
        .args(["--server", &server.url, "attestation", "--allow-simulated"])
        .args([
            "--expect-host-measurement",
            &hex::encode(host_measurement()),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("only the host binary's SHA-256 is pinned"),
        "{stderr}"
    );
}

#[cfg(feature = "simulated-attestation")]
#[test]
fn the_same_claimed_binary_on_another_platform_is_refused_naming_the_register() {
    // Another machine: the same host binary (so the same claimed host_measurement and the same
    // launcher event), a different firmware (MRTD).
    let other = TestServer::start_with(&format!(
        "{SIMULATED}[attestation.simulated_platform]\nmrtd = \"{}\"\n",
        "ab".repeat(48)
    ));
    let att = attestation(&other);
    assert_eq!(att.host_measurement, hex::encode(host_measurement()));
    match verify_attestation(&att, &pinned()).unwrap_err() {
        VerifyError::Reference(why) => {
            assert!(why.contains("MRTD differs"), "{why}");
            assert!(why.contains(&"ab".repeat(48)), "{why}");
        }
        e => panic!("{e:?}"),
    }
    // A platform without the launcher's event names no binary: refused on the event.
    let no_event = TestServer::start_with(&format!(
        "{SIMULATED}[attestation.simulated_platform]\nno_host_event = true\n"
    ));
    match verify_attestation(&attestation(&no_event), &pinned()).unwrap_err() {
        VerifyError::Reference(why) => assert!(why.contains("hypervisor-host-sha256"), "{why}"),
        e => panic!("{e:?}"),
    }
}

#[cfg(feature = "simulated-attestation")]
#[test]
fn a_tampered_event_log_does_not_replay() {
    let server = TestServer::start_with(&format!(
        "{SIMULATED}[attestation.simulated_platform]\ncompose_hash = \"{}\"\n",
        "cd".repeat(32)
    ));
    let att = attestation(&server);
    let mut reference = simulated_reference();
    reference.tdx.as_mut().unwrap().app.compose_hash = Some("cd".repeat(32));
    let policy = Policy {
        reference_values: vec![reference.clone()],
        ..pinned()
    };
    let key = verify_attestation(&att, &policy).expect("verifies");
    assert_eq!(key.measured.compose_hash, Some(vec![0xcd; 32]));

    // The compose-hash event's payload changed: its supplied digest no longer matches; and
    // with the digest left out (recomputed by the verifier), RTMR3 no longer replays.
    let tamper = |digest: Option<&str>| {
        let mut tampered = att.clone();
        let mut events: serde_json::Value =
            serde_json::from_str(tampered.event_log.as_deref().unwrap()).unwrap();
        for e in events.as_array_mut().unwrap() {
            if e["event"] == "compose-hash" {
                e["event_payload"] = "ce".repeat(32).into();
                if let Some(d) = digest {
                    e["digest"] = d.into();
                }
            }
        }
        tampered.event_log = Some(events.to_string());
        verify_attestation(&tampered, &policy).unwrap_err()
    };
    match tamper(None) {
        VerifyError::EventLog(why) => assert!(why.contains("compose-hash"), "{why}"),
        e => panic!("{e:?}"),
    }
    match tamper(Some("")) {
        VerifyError::EventLog(why) => assert!(why.contains("replays RTMR3"), "{why}"),
        e => panic!("{e:?}"),
    }
    // Two events swapped: refused too.
    let mut swapped = att.clone();
    let mut events: serde_json::Value =
        serde_json::from_str(swapped.event_log.as_deref().unwrap()).unwrap();
    events.as_array_mut().unwrap().swap(1, 2);
    swapped.event_log = Some(events.to_string());
    assert!(matches!(
        verify_attestation(&swapped, &policy),
        Err(VerifyError::EventLog(_))
    ));
    // `system-ready` relabelled as another event type (its supplied digest kept, so RTMR3 still
    // replays): refused, or an app-emitted `compose-hash` after it could stand as identity.
    let mut relabelled = att.clone();
    let mut events: serde_json::Value =
        serde_json::from_str(relabelled.event_log.as_deref().unwrap()).unwrap();
    for e in events.as_array_mut().unwrap() {
        if e["event"] == "system-ready" {
            e["event_type"] = 1.into();
        }
    }
    relabelled.event_log = Some(events.to_string());
    match verify_attestation(&relabelled, &policy).unwrap_err() {
        VerifyError::EventLog(why) => assert!(why.contains("not a runtime event"), "{why}"),
        e => panic!("{e:?}"),
    }
    // The log dropped: no identity, so the set's compose hash is not found.
    let mut dropped = att.clone();
    dropped.event_log = None;
    assert!(matches!(
        verify_attestation(&dropped, &policy),
        Err(VerifyError::Reference(_))
    ));
    // A pinned compose hash the log does not name.
    reference.tdx.as_mut().unwrap().app.compose_hash = Some("ce".repeat(32));
    let other = Policy {
        reference_values: vec![reference],
        ..pinned()
    };
    match verify_attestation(&att, &other).unwrap_err() {
        VerifyError::Reference(why) => assert!(why.contains("compose-hash"), "{why}"),
        e => panic!("{e:?}"),
    }
}

#[test]
fn launch_extends_rtmr3_with_the_binarys_digest_and_records_the_event_before_serving() {
    let dir = tempfile::tempdir().unwrap();
    // A stand-in for the kernel's TSM-MR file: it receives the 48-byte extend.
    let extend = dir.path().join("rtmr3:sha384");
    std::fs::write(&extend, b"").unwrap();
    let log = dir.path().join("run/rtmr3-events.log");
    let server = TestServer::launch_with(&format!(
        "[attestation]\nrtmr3_extend_file = {:?}\nruntime_event_log = {:?}\n",
        extend.display().to_string(),
        log.display().to_string()
    ));
    let (status, _) = get_json(&server, "/host");
    assert_eq!(status, 200);
    let measurement = host_measurement();
    let written = std::fs::read(&extend).unwrap();
    assert_eq!(
        written,
        hypervisor_eventlog::runtime_digest_v1(hypervisor_eventlog::HOST_EVENT, &measurement)
    );
    let line = std::fs::read_to_string(&log).unwrap();
    let event: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(event["event"], "hypervisor-host-sha256");
    assert_eq!(event["payload"], hex::encode(measurement));
}

#[test]
fn an_old_cluster_configuration_refuses_to_start_and_says_what_replaces_it() {
    let log = TestServer::start_expecting_failure(&format!(
        "[cluster]\nallowed_measurements = [{:?}]\n",
        hex::encode(host_measurement())
    ));
    assert!(
        log.contains("cluster.allowed_measurements is no longer accepted")
            && log.contains("cluster.allowed_reference_values"),
        "{log}"
    );
}
