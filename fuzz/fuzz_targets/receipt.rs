//! Receipts, session quotes and attestations as a client receives them (`protocol/src/wire.rs`,
//! `protocol/src/attest.rs`, `client/src/verify/mod.rs`): the same bytes are parsed as each
//! JSON type, and what parses goes through the offline verifier against fixed expectations (the
//! test-vector signing key, session, session keys and commitment; simulated evidence allowed so
//! that the binding and signature checks are reached). Every input must be accepted or refused
//! with an error, never panic.
#![no_main]

use std::sync::LazyLock;

use hypervisor_client::verify::{
    Policy, VerifiedKey, verify_attestation, verify_component_statement, verify_receipt,
    verify_session,
};
use hypervisor_protocol::attest::{StatementKind, verify_statement};
use hypervisor_protocol::wire::{Attestation, Receipt, SessionQuote};
use hypervisor_protocol::{EncodedPublicKey, vectors};
use libfuzzer_sys::fuzz_target;
use uuid::Uuid;

struct Fixed {
    key: VerifiedKey,
    session_id: Uuid,
    session_pub: EncodedPublicKey,
    client_pub: EncodedPublicKey,
    commitment: [u8; 32],
    simulated: Policy,
    strict: Policy,
}

fn pubkey(hex_str: &str) -> EncodedPublicKey {
    EncodedPublicKey::from_hex("fixture", hex_str).expect("test-vector key")
}

// docs/test-vectors.json: `attestation.signing_key`, `server_public`, `client_public`,
// `commitment.result_commitment`, `attestation.host_measurement`.
static FIXED: LazyLock<Fixed> = LazyLock::new(|| Fixed {
    key: VerifiedKey {
        signing_key: pubkey(
            "04e266ddfdc12668db30d4ca3e8f7749432c416044f2d2b8c10bf3d4012aeffa8abfa86404a2e9ffe67d47c587ef7a97a7f456b863b4d02cfc6928973ab5b1cb39",
        ),
        tee: "simulated".into(),
        simulated: true,
        host_measurement: hex::decode(
            "2c50954e496cdc1f16ccbd259efda09e26222aedc467f058a9fb56a31214e80f",
        )
        .expect("hex")
        .try_into()
        .expect("32 bytes"),
        tcb_status: None,
        platform_measurement: None,
        // `attestation.evidence`'s SHA-256, which the vector receipts name.
        evidence_sha256: hex::decode(
            "5c4780619a804bd7e1ac04414bd2fc9bd641be17f47c6aa88426224dfbc5b5e3",
        )
        .expect("hex")
        .try_into()
        .expect("32 bytes"),
        advisory_ids: Vec::new(),
        measured: Default::default(),
        reference: None,
    },
    session_id: Uuid::parse_str(vectors::SESSION_ID).expect("uuid"),
    session_pub: pubkey(
        "041ccbe91c075fc7f4f033bfa248db8fccd3565de94bbfb12f3c59ff46c271bf83ce4014c68811f9a21a1fdb2c0e6113e06db7ca93b7404e78dc7ccd5ca89a4ca9",
    ),
    client_pub: pubkey(
        "0460fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb67903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299",
    ),
    commitment: hex::decode("b7c72a743bf46bae7bdf66a26e24bc750013e8b8c8fa4210adf1a4369a7f963c")
        .expect("hex")
        .try_into()
        .expect("32 bytes"),
    simulated: Policy {
        allow_simulated: true,
        // The vector's simulated evidence simulates no platform, so no reference set can
        // match: the host claim stays an extra filter and the binding and signatures are
        // what this target reaches.
        accept_any_measurement: true,
        now: Some(vectors::KEY_CREATED_AT + 60),
        expected_host_measurements: vec![
            hex::decode("2c50954e496cdc1f16ccbd259efda09e26222aedc467f058a9fb56a31214e80f")
                .expect("hex")
                .try_into()
                .expect("32 bytes"),
        ],
        ..Policy::default()
    },
    strict: Policy {
        now: Some(vectors::KEY_CREATED_AT + 60),
        ..Policy::default()
    },
});

fuzz_target!(|data: &[u8]| {
    let f = &*FIXED;
    if let Ok(receipt) = serde_json::from_slice::<Receipt>(data) {
        let _ = receipt.signed_fields();
        let _ = verify_receipt(&receipt, &f.key, &f.session_id, &f.commitment);
    }
    if let Ok(quote) = serde_json::from_slice::<SessionQuote>(data) {
        for policy in [&f.simulated, &f.strict] {
            let _ = verify_session(&quote, &f.session_id, &f.session_pub, &f.client_pub, policy);
        }
    }
    if let Ok(att) = serde_json::from_slice::<Attestation>(data) {
        // No collateral or VCEK in these policies: TDX/SNP evidence stops at MissingInput
        // (the `evidence` target fuzzes the hardware formats themselves).
        for policy in [&f.simulated, &f.strict] {
            let _ = verify_attestation(&att, policy);
        }
    }
    // Raw statement signatures (64 bytes r || s, any length accepted as input) over the bytes.
    if data.len() >= 64 {
        let (sig, rest) = data.split_at(64);
        let _ = verify_statement(&f.key.signing_key, StatementKind::Receipt, &[rest], sig);
        if rest.len() >= 96 {
            let sha: [u8; 32] = rest[..32].try_into().expect("32");
            let user: [u8; 64] = rest[32..96].try_into().expect("64");
            let _ = verify_component_statement(&f.key, &sha, &user, sig);
        }
    }
});
