//! The committed vectors in `docs/test-vectors.json` are exactly what this crate computes.
//! Regenerate with `UPDATE_TEST_VECTORS=1 cargo test -p hypervisor-protocol --test vectors`
//! (only when the protocol version changes).

use std::path::PathBuf;

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/test-vectors.json")
}

#[test]
fn committed_vectors_match_the_implementation() {
    let computed = hypervisor_protocol::vectors::generate();
    if std::env::var_os("UPDATE_TEST_VECTORS").is_some() {
        let text = serde_json::to_string_pretty(&computed).unwrap() + "\n";
        std::fs::write(path(), text).unwrap();
    }
    let committed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path()).expect("docs/test-vectors.json"))
            .unwrap();
    assert_eq!(committed, computed);
}

#[test]
fn envelopes_open_and_are_bound_to_their_role_and_session() {
    use hypervisor_protocol::{Envelope, Role, SessionKey};
    let v = hypervisor_protocol::vectors::generate();
    let key: [u8; 32] = hex::decode(v["session_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let key = SessionKey::from_bytes(key);
    let id = uuid::Uuid::parse_str(v["session_id"].as_str().unwrap()).unwrap();
    let env = Envelope::new(&key, id);
    let program = hex::decode(v["envelopes"][0]["envelope"].as_str().unwrap()).unwrap();
    assert!(env.open(Role::Program, &program).is_ok());
    assert!(env.open(Role::Argument(0), &program).is_err());
    assert!(env.open(Role::Stdin, &program).is_err());
    let other = Envelope::new(&key, uuid::Uuid::now_v7());
    assert!(other.open(Role::Program, &program).is_err());
    let arg1 = hex::decode(v["envelopes"][2]["envelope"].as_str().unwrap()).unwrap();
    assert!(env.open(Role::Argument(1), &arg1).is_ok());
    assert!(
        env.open(Role::Argument(0), &arg1).is_err(),
        "argument index is bound"
    );
    // The event and the deployed component have roles of their own: neither opens as stdin or
    // as a program, and the program does not open as a deployed component.
    let event = hex::decode(v["envelopes"][5]["envelope"].as_str().unwrap()).unwrap();
    assert_eq!(v["envelopes"][5]["role"], "event");
    assert!(env.open(Role::Event, &event).is_ok());
    assert!(env.open(Role::Stdin, &event).is_err());
    let component = hex::decode(v["envelopes"][6]["envelope"].as_str().unwrap()).unwrap();
    assert_eq!(v["envelopes"][6]["role"], "agent-component");
    assert_eq!(v["envelopes"][6]["role_byte"], 6);
    assert_eq!(
        env.open(Role::AgentComponent, &component).unwrap(),
        env.open(Role::Program, &program).unwrap(),
        "the vector program, deployed"
    );
    assert!(env.open(Role::Program, &component).is_err());
    assert!(env.open(Role::AgentComponent, &program).is_err());
    // Its plaintext is what the owner's deploy signature covers.
    assert_eq!(
        hex::encode(hypervisor_protocol::sha256(
            &env.open(Role::AgentComponent, &component).unwrap()
        )),
        v["agents"]["component_sha256"].as_str().unwrap()
    );
}

#[test]
fn the_high_s_owner_signature_is_the_low_s_ones_twin_and_not_normalised() {
    use p256::ecdsa::signature::Verifier;
    let v = hypervisor_protocol::vectors::generate();
    let a = &v["agents"];
    let sig = |hex_sig: &str| {
        p256::ecdsa::Signature::from_slice(&hex::decode(hex_sig).unwrap()).expect("r || s")
    };
    let low = sig(a["deploy_signature"].as_str().unwrap());
    let twin = &a["deploy_signature_high_s"];
    assert_eq!(twin["message"], "deploy_message");
    assert_eq!(twin["must_refuse"], true);
    let high = sig(twin["signature"].as_str().unwrap());
    // Same r; s and n - s: normalising the high one gives the low one, which is already normal.
    assert_eq!(high.r(), low.r());
    assert_ne!(high, low);
    assert_eq!(low.normalize_s(), low, "the vector signature is low-s");
    assert_ne!(high.normalize_s(), high, "its twin is high-s");
    assert_eq!(high.normalize_s(), low);
    // Both verify as plain ECDSA: refusing the twin is the low-s rule, not the arithmetic.
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(
        &hex::decode(v["client_public"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    let message = hex::decode(a["deploy_message"].as_str().unwrap()).unwrap();
    assert!(key.verify(&message, &low).is_ok());
    assert!(key.verify(&message, &high).is_ok());
}

/// The TLS vectors (`docs/PROTOCOL.md` §19): the channel statement verifies under the signing
/// key only with its own exporter, and the certificate extension decodes to what binds it.
#[test]
fn tls_channel_and_certificate_vectors_verify_and_decode() {
    use hypervisor_protocol::EncodedPublicKey;
    use hypervisor_protocol::attest::{StatementKind, verify_statement};
    use hypervisor_protocol::tls::{CertificateEvidence, channel_fields};
    let v = hypervisor_protocol::vectors::generate();
    let h = |x: &serde_json::Value| hex::decode(x.as_str().unwrap()).unwrap();
    let key =
        EncodedPublicKey::from_hex("k", v["attestation"]["signing_key"].as_str().unwrap()).unwrap();
    let c = &v["tls"]["channel"];
    let exporter: [u8; 32] = h(&c["exporter"]).try_into().unwrap();
    let nonce: [u8; 32] = h(&c["nonce"]).try_into().unwrap();
    let cert: [u8; 32] = h(&c["certificate_sha256"]).try_into().unwrap();
    let audience = c["audience"].as_str().unwrap();
    let signature = h(&c["signature"]);
    verify_statement(
        &key,
        StatementKind::TlsChannel,
        &channel_fields(&exporter, &nonce, &cert, audience),
        &signature,
    )
    .unwrap();
    let other = [0u8; 32];
    assert!(
        verify_statement(
            &key,
            StatementKind::TlsChannel,
            &channel_fields(&other, &nonce, &cert, audience),
            &signature
        )
        .is_err()
    );
    // Another deployment's audience does not verify either.
    assert!(
        verify_statement(
            &key,
            StatementKind::TlsChannel,
            &channel_fields(&exporter, &nonce, &cert, "0123456789abcdef0123456789abcdef"),
            &signature
        )
        .is_err()
    );
    let t = &v["tls"]["certificate"];
    let evidence = CertificateEvidence::from_extension_value(&h(&t["extension_value"])).unwrap();
    assert_eq!(evidence.signing_key, key);
    assert_eq!(evidence.evidence, b"example evidence");
    let spki: [u8; 32] = h(&t["spki_sha256"]).try_into().unwrap();
    assert_eq!(
        evidence.expected_report_data(&spki).to_vec(),
        h(&t["report_data"])
    );
    // Malformed values are errors, never panics.
    for bad in [&b""[..], b"\x0c\x02[]", b"\x0c\x05[1,2]", b"\x04\x00"] {
        assert!(CertificateEvidence::from_extension_value(bad).is_err());
    }
}
