//! Unit tests of the verifier: policies, labels against evidence formats, sessions, receipts.

use hypervisor_protocol::attest::{StatementKind, as_refs, sign_statement};
use hypervisor_protocol::wire::{AppliedLimits, ExitStatus, Receipt};
use p256::ecdsa::SigningKey;
use uuid::Uuid;

use super::*;

fn signing_key() -> (SigningKey, EncodedPublicKey) {
    let key = SigningKey::from_slice(&[7u8; 32]).unwrap();
    let public = EncodedPublicKey::from_key(&p256::PublicKey::from(key.verifying_key()));
    (key, public)
}

/// A simulated attestation whose binding is correct, labelled honestly.
fn simulated_attestation() -> Attestation {
    let (_, public) = signing_key();
    let measurement = [3u8; 32];
    let report_data = hex::encode(signing_key_report_data(&public, &measurement, 1_000));
    let evidence = serde_json::json!({"report_data": report_data, "warning": "test"});
    Attestation {
        tee: "simulated".into(),
        simulated: true,
        evidence_format: "simulated-not-for-production".into(),
        evidence: hex::encode(evidence.to_string()),
        report_data,
        signing_key: public.to_hex(),
        host_measurement: hex::encode(measurement),
        key_created_at: 1_000,
        event_log: None,
    }
}

/// Simulated evidence, any measurement (each test that is about measurements pins its own).
fn dev() -> Policy {
    Policy {
        allow_simulated: true,
        accept_any_measurement: true,
        ..Policy::default()
    }
}

#[test]
fn the_labels_come_from_the_verified_evidence_format() {
    let key = verify_attestation(&simulated_attestation(), &dev()).unwrap();
    assert_eq!((key.tee.as_str(), key.simulated), ("simulated", true));
}

/// Evidence of an unknown program proves nothing: without a pinned reference set, verification
/// fails unless the caller opts out; a host pin alone is refused (the host writes that value
/// itself); as an extra filter beside the opt-out, a pinned host measurement must match.
#[test]
fn no_measurement_is_accepted_by_default() {
    let att = simulated_attestation();
    let unpinned = Policy {
        accept_any_measurement: false,
        ..dev()
    };
    assert_eq!(
        verify_attestation(&att, &unpinned).unwrap_err(),
        VerifyError::NoExpectedMeasurement
    );
    let measurement: [u8; 32] = hex::decode(&att.host_measurement)
        .unwrap()
        .try_into()
        .unwrap();
    let host_only = Policy {
        expected_host_measurements: vec![[9; 32], measurement],
        ..unpinned.clone()
    };
    assert_eq!(
        verify_attestation(&att, &host_only).unwrap_err(),
        VerifyError::HostPinOnly
    );
    let pinned = Policy {
        expected_host_measurements: vec![[9; 32], measurement],
        ..dev()
    };
    assert!(verify_attestation(&att, &pinned).is_ok());
    let wrong = Policy {
        expected_host_measurements: vec![[9; 32]],
        ..dev()
    };
    assert!(matches!(
        verify_attestation(&att, &wrong).unwrap_err(),
        VerifyError::Measurement(_)
    ));
}

#[test]
fn claims_that_disagree_with_the_evidence_format_are_refused() {
    // Simulated evidence claiming to be hardware evidence, in every combination.
    for (tee, simulated) in [("tdx", false), ("sev-snp", false), ("tdx", true)] {
        let mut att = simulated_attestation();
        att.tee = tee.into();
        att.simulated = simulated;
        assert_eq!(
            verify_attestation(&att, &dev()).unwrap_err(),
            VerifyError::LabelMismatch {
                evidence_format: "simulated-not-for-production".into(),
                claimed_tee: tee.into(),
                claimed_simulated: simulated,
            },
            "{tee} {simulated}"
        );
        // Without the development policy, simulated evidence is refused as such.
        assert_eq!(
            verify_attestation(&att, &Policy::default()).unwrap_err(),
            VerifyError::Simulated
        );
    }
    let mut att = simulated_attestation();
    att.simulated = false;
    assert!(matches!(
        verify_attestation(&att, &dev()).unwrap_err(),
        VerifyError::LabelMismatch { .. }
    ));
    // Hardware formats: a wrong TEE label is refused before the evidence is even parsed.
    for (format, tee) in [("tdx-dcap-quote", "sev-snp"), ("sev-snp-report", "tdx")] {
        let mut att = simulated_attestation();
        att.evidence_format = format.into();
        att.tee = tee.into();
        att.simulated = false;
        assert!(
            matches!(
                verify_attestation(&att, &Policy::default()).unwrap_err(),
                VerifyError::LabelMismatch { .. }
            ),
            "{format}"
        );
        // The matching label gets as far as the evidence (no collateral here).
        att.tee = if tee == "tdx" { "sev-snp" } else { "tdx" }.into();
        let any = Policy {
            accept_any_measurement: true,
            ..Policy::default()
        };
        assert!(
            matches!(
                verify_attestation(&att, &any).unwrap_err(),
                VerifyError::MissingInput(_)
            ),
            "{format}"
        );
        // Claiming simulation on hardware-format evidence is refused as simulated.
        att.simulated = true;
        assert_eq!(
            verify_attestation(&att, &dev()).unwrap_err(),
            VerifyError::Simulated
        );
    }
}

fn signed_receipt(arguments: &[[u8; 32]]) -> (Receipt, VerifiedKey) {
    let (signing, public) = signing_key();
    let mut receipt = Receipt {
        calls: None,
        version: hypervisor_protocol::wire::RECEIPT_VERSION,
        tee: "simulated".into(),
        evidence_sha256: hex::encode([5u8; 32]),
        replica: String::new(),
        session_id: Uuid::nil(),
        sequence: 1,
        route: "/verifiable/execute/wasm".into(),
        program_sha256: hex::encode([1u8; 32]),
        argument_sha256: arguments.iter().map(hex::encode).collect(),
        stdin_sha256: hex::encode([2u8; 32]),
        result_commitment: hex::encode([9u8; 32]),
        status: ExitStatus::Exited,
        limits: AppliedLimits {
            time_ms: 1,
            memory_bytes: 1,
            fuel: None,
        },
        issued_at: 1,
        policy: None,
        payment: None,
        signing_key: public.to_hex(),
        signature: String::new(),
    };
    let fields = receipt.signed_fields().unwrap();
    receipt.signature = hex::encode(sign_statement(
        &signing,
        StatementKind::Receipt,
        &as_refs(&fields),
    ));
    let key = VerifiedKey {
        signing_key: public,
        tee: "simulated".into(),
        simulated: true,
        host_measurement: [0; 32],
        tcb_status: None,
        platform_measurement: None,
        evidence_sha256: [5u8; 32],
        advisory_ids: Vec::new(),
        measured: Default::default(),
        reference: None,
    };
    (receipt, key)
}

/// A receipt names the TEE and the evidence its signing key stands on, in the signed part: a
/// receipt for other evidence, another TEE, or an old version is refused.
#[test]
fn a_receipt_must_name_the_verified_evidence() {
    let (receipt, key) = signed_receipt(&[]);
    verify_receipt(&receipt, &key, &Uuid::nil(), &[9u8; 32]).unwrap();
    let other_evidence = VerifiedKey {
        evidence_sha256: [6u8; 32],
        ..key.clone()
    };
    assert_eq!(
        verify_receipt(&receipt, &other_evidence, &Uuid::nil(), &[9u8; 32]),
        Err(VerifyError::Mismatch("receipt evidence"))
    );
    let other_tee = VerifiedKey {
        tee: "tdx".into(),
        ..key.clone()
    };
    assert_eq!(
        verify_receipt(&receipt, &other_tee, &Uuid::nil(), &[9u8; 32]),
        Err(VerifyError::Mismatch("receipt TEE"))
    );
    // Changing the claim breaks the signature: it is inside the signed part.
    let mut relabelled = receipt.clone();
    relabelled.evidence_sha256 = hex::encode([6u8; 32]);
    assert_eq!(
        verify_receipt(&relabelled, &other_evidence, &Uuid::nil(), &[9u8; 32]),
        Err(VerifyError::Signature("receipt"))
    );
    let mut old = receipt;
    old.version = 1;
    assert!(matches!(
        verify_receipt(&old, &key, &Uuid::nil(), &[9u8; 32]),
        Err(VerifyError::Malformed(m)) if m.contains("version 1")
    ));
}

#[test]
fn receipt_argument_hashes_must_be_exactly_32_bytes() {
    let (receipt, key) = signed_receipt(&[[0xaa; 32], [0xbb; 32]]);
    verify_receipt(&receipt, &key, &Uuid::nil(), &[9u8; 32]).unwrap();
    // The same concatenated bytes, split differently: the signature alone would not tell.
    let joined = receipt.argument_sha256.concat();
    for split in [48, 0, 62, 66, 128] {
        let mut moved = receipt.clone();
        moved.argument_sha256 = vec![joined[..split].into(), joined[split..].into()];
        assert!(
            matches!(
                verify_receipt(&moved, &key, &Uuid::nil(), &[9u8; 32]),
                Err(VerifyError::Malformed(m)) if m.contains("32 bytes")
            ),
            "split at {split}"
        );
    }
    let mut one = receipt.clone();
    one.argument_sha256 = vec![joined];
    assert!(matches!(
        verify_receipt(&one, &key, &Uuid::nil(), &[9u8; 32]),
        Err(VerifyError::Malformed(_))
    ));
}
