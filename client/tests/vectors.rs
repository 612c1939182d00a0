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
    ];
    for (e, role) in v["envelopes"].as_array().unwrap().iter().zip(roles) {
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
