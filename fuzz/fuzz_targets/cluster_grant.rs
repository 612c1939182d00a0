//! A cluster key grant as a joining replica receives it through the database, which it does
//! not trust (`protocol/src/cluster.rs`, docs/PROTOCOL.md §22.1): arbitrary bytes as the sealed
//! key (opened with the test vectors' joiner key, from their responder key and run) and as a
//! grant statement's signature and fields. Every input must be refused with an error (or, for
//! the vector's own grant, opened), never panic.
#![no_main]

use std::sync::LazyLock;

use hypervisor_protocol::attest::{StatementKind, verify_statement};
use hypervisor_protocol::cluster::{grant_fields, unwrap_key};
use hypervisor_protocol::{ClientSecret, EncodedPublicKey};
use libfuzzer_sys::fuzz_target;

struct Fixed {
    joiner: ClientSecret,
    joiner_key: EncodedPublicKey,
    responder_key: EncodedPublicKey,
    signing_key: EncodedPublicKey,
}

// docs/test-vectors.json: `cluster.joiner_exchange_secret`, `cluster.responder_exchange_secret`
// (its public key), `attestation.signing_key`.
static FIXED: LazyLock<Fixed> = LazyLock::new(|| {
    let joiner = ClientSecret::from_bytes(&[0x31u8; 32]).expect("scalar");
    let responder = ClientSecret::from_bytes(&[0x32u8; 32]).expect("scalar");
    Fixed {
        joiner_key: joiner.public_key(),
        joiner,
        responder_key: responder.public_key(),
        signing_key: EncodedPublicKey::from_hex(
            "fixture",
            "04e266ddfdc12668db30d4ca3e8f7749432c416044f2d2b8c10bf3d4012aeffa8abfa86404a2e9ffe67d47c587ef7a97a7f456b863b4d02cfc6928973ab5b1cb39",
        )
        .expect("test-vector key"),
    }
});

const RUN: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";

fuzz_target!(|data: &[u8]| {
    let f = &*FIXED;
    let _ = unwrap_key(&f.joiner, &f.responder_key, RUN, data);
    if data.len() >= 64 {
        let (sig, sealed) = data.split_at(64);
        let fields = grant_fields(RUN, &f.joiner_key, &f.responder_key, sealed);
        let _ = verify_statement(&f.signing_key, StatementKind::ClusterGrant, &fields, sig);
    }
    // An exchange key from the database: a point, or refused.
    if let Ok(key) = EncodedPublicKey::from_sec1(data) {
        let _ = unwrap_key(&f.joiner, &key, RUN, &[0u8; 60]);
    }
});
