//! The client library, given only what a server sends, reproduces the protocol vectors in
//! `docs/test-vectors.json`: it derives the same session key, opens every envelope, and
//! accepts the result only with the right commitment.

use hypervisor_client::{ClientError, Session};
use hypervisor_protocol::wire::{CreateKeypairResponse, EncryptedResult};
use hypervisor_protocol::{ClientSecret, InputDigests, Role};

fn vectors() -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/test-vectors.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn s(v: &serde_json::Value) -> &str {
    v.as_str().unwrap()
}

#[test]
fn client_session_matches_the_vectors() {
    let v = vectors();
    let secret = ClientSecret::from_bytes(&hex::decode(s(&v["client_secret"])).unwrap()).unwrap();
    assert_eq!(secret.public_key().to_hex(), s(&v["client_public"]));
    let resp = CreateKeypairResponse {
        session_pubkey: s(&v["server_public"]).to_string(),
        session_id: s(&v["session_id"]).parse().unwrap(),
        expires_in_seconds: 3600,
    };
    let session = Session::from_response(&secret, &resp).unwrap();
    let env = session.envelope();
    let roles = [
        Role::Program,
        Role::Argument(0),
        Role::Argument(1),
        Role::Stdin,
        Role::Result,
        Role::Event,
        Role::AgentComponent,
        Role::WalletKey,
        Role::AgentConfig,
        Role::StateExport,
        Role::AgentJs,
        Role::StateImport,
    ];
    let envelopes = v["envelopes"].as_array().unwrap();
    assert_eq!(envelopes.len(), roles.len());
    for (e, role) in envelopes.iter().zip(roles) {
        assert_eq!(s(&e["role"]), role.name());
        let sealed = hex::decode(s(&e["envelope"])).unwrap();
        assert_eq!(
            hex::encode(env.open(role, &sealed).unwrap()),
            s(&e["plaintext"]),
            "{}",
            s(&e["role"])
        );
        let nonce: [u8; 12] = hex::decode(s(&e["nonce"])).unwrap().try_into().unwrap();
        let plain = hex::decode(s(&e["plaintext"])).unwrap();
        assert_eq!(
            hex::encode(env.seal_with_nonce(role, &nonce, &plain).unwrap()),
            s(&e["envelope"])
        );
    }

    let plain = |i: usize| hex::decode(s(&v["envelopes"][i]["plaintext"])).unwrap();
    let digests = InputDigests::compute(&plain(0), &[plain(1), plain(2)], &plain(3));
    let result = EncryptedResult {
        session_id: session.id,
        encrypted_result: s(&v["envelopes"][4]["envelope"]).to_string(),
        result_nonce: s(&v["envelopes"][4]["nonce"]).to_string(),
        result_commitment: s(&v["commitment"]["result_commitment"]).to_string(),
    };
    let (doc, bytes) = session.open_result(&result, &digests).unwrap();
    assert_eq!(hex::encode(bytes), s(&v["commitment"]["result_plaintext"]));
    assert_eq!(
        doc.stdout_bytes().unwrap(),
        "Hello world \u{3b2}eta\n".as_bytes()
    );

    // A result whose commitment does not match is refused.
    let mut forged = result.clone();
    forged.result_commitment = "00".repeat(32);
    assert!(matches!(
        session.open_result(&forged, &digests),
        Err(ClientError::CommitmentMismatch)
    ));
    // So is the right result checked against different inputs.
    let other_inputs = InputDigests::compute(&plain(0), &[plain(2), plain(1)], &plain(3));
    assert!(matches!(
        session.open_result(&result, &other_inputs),
        Err(ClientError::CommitmentMismatch)
    ));
}

/// The verifier accepts the attestation vectors (binding, session statement, receipt,
/// component statement) and rejects them when any bound value changes.
#[test]
fn verifier_accepts_the_attestation_vectors_and_nothing_else() {
    use hypervisor_client::verify::{
        Policy, VerifyError, verify_attestation, verify_component_statement, verify_receipt,
        verify_session,
    };
    use hypervisor_protocol::EncodedPublicKey;
    use hypervisor_protocol::wire::{Attestation, Receipt, SessionQuote};

    let v = vectors();
    let a = &v["attestation"];
    // The vector's simulated evidence carries the vector REPORTDATA, so the binding check runs
    // end to end (and the receipts name its SHA-256).
    let evidence = String::from_utf8(hex::decode(s(&a["evidence"])).unwrap()).unwrap();
    let att = Attestation {
        tee: "simulated".into(),
        simulated: true,
        evidence_format: "simulated-not-for-production".into(),
        evidence: hex::encode(evidence),
        report_data: s(&a["report_data"]).into(),
        signing_key: s(&a["signing_key"]).into(),
        host_measurement: s(&a["host_measurement"]).into(),
        key_created_at: a["key_created_at"].as_u64().unwrap(),
        event_log: None,
    };
    // The vector's simulated evidence simulates no platform, so no reference set can match:
    // this checks the binding and the signatures, with the host claim as an extra filter.
    let policy = Policy {
        allow_simulated: true,
        accept_any_measurement: true,
        expected_host_measurements: vec![
            hex::decode(s(&a["host_measurement"]))
                .unwrap()
                .try_into()
                .unwrap(),
        ],
        ..Policy::default()
    };
    let key = verify_attestation(&att, &policy).unwrap();
    assert_eq!(
        verify_attestation(&att, &Policy::default()).unwrap_err(),
        VerifyError::Simulated
    );

    let st = &a["session_statement"];
    let quote = SessionQuote {
        attestation: att.clone(),
        session_created_at: st["created_at"].as_u64().unwrap(),
        session_expires_at: st["expires_at"].as_u64().unwrap(),
        session_signature: s(&st["signature"]).into(),
    };
    let sid: uuid::Uuid = s(&v["session_id"]).parse().unwrap();
    let server = EncodedPublicKey::from_hex("s", s(&v["server_public"])).unwrap();
    let client = EncodedPublicKey::from_hex("c", s(&v["client_public"])).unwrap();
    verify_session(&quote, &sid, &server, &client, &policy).unwrap();
    assert!(
        verify_session(&quote, &sid, &client, &server, &policy).is_err(),
        "keys swapped"
    );

    let receipt: Receipt = serde_json::from_value(a["receipt"].clone()).unwrap();
    let commitment: [u8; 32] = hex::decode(s(&v["commitment"]["result_commitment"]))
        .unwrap()
        .try_into()
        .unwrap();
    verify_receipt(&receipt, &key, &sid, &commitment).unwrap();
    assert!(verify_receipt(&receipt, &key, &sid, &[0; 32]).is_err());
    let mut later = receipt.clone();
    later.sequence = 2;
    assert_eq!(
        verify_receipt(&later, &key, &sid, &commitment).unwrap_err(),
        VerifyError::Signature("receipt")
    );

    let c = &a["component_statement"];
    let component: [u8; 32] = hex::decode(s(&c["component_sha256"]))
        .unwrap()
        .try_into()
        .unwrap();
    let sig = hex::decode(s(&c["signature"])).unwrap();
    verify_component_statement(&key, &component, &[0x42; 64], &sig).unwrap();
    assert!(verify_component_statement(&key, &component, &[0x41; 64], &sig).is_err());
}
