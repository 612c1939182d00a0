//! Hex fields, SEC1 public keys and ciphertext envelopes (`protocol/src/{wire,keys,envelope}.rs`).
//!
//! Input layout: byte 0 picks the role, byte 1 the argument index, the rest is the envelope
//! (nonce || ciphertext || tag) opened under the test-vector session key and session id. The
//! same bytes are also tried as a SEC1 public key, as hex text, and as hex text of an envelope.
//! Opening must fail cleanly (or, for a genuine envelope, re-seal to the same bytes).
#![no_main]

use std::sync::LazyLock;

use hypervisor_protocol::envelope::nonce_of;
use hypervisor_protocol::wire::decode_hex;
use hypervisor_protocol::{EncodedPublicKey, Envelope, NONCE_LEN, Role, SessionKey, vectors};
use libfuzzer_sys::fuzz_target;
use uuid::Uuid;

static KEY: LazyLock<SessionKey> = LazyLock::new(|| {
    // docs/test-vectors.json `session_key`.
    let bytes: [u8; 32] =
        hex::decode("9d50cd3152f946cd5fb6e0d1f3a2d2653f3d45254d00f25ba89d0fbf7f5c1ff9")
            .expect("hex")
            .try_into()
            .expect("32 bytes");
    SessionKey::from_bytes(bytes)
});
static SESSION: LazyLock<Uuid> =
    LazyLock::new(|| Uuid::parse_str(vectors::SESSION_ID).expect("uuid"));

fn role(code: u8, index: u8) -> Role {
    match code % 6 {
        0 => Role::Program,
        1 => Role::Argument(u32::from(index)),
        2 => Role::Stdin,
        3 => Role::Result,
        4 => Role::Event,
        _ => Role::AgentComponent,
    }
}

fn open(env: &Envelope<'_>, role: Role, ct: &[u8]) {
    match env.open(role, ct) {
        Ok(plaintext) => {
            // Only a genuine envelope opens: sealing its plaintext under its nonce gives it back.
            let nonce: [u8; NONCE_LEN] = ct[..NONCE_LEN].try_into().expect("nonce");
            let again = env
                .seal_with_nonce(role, &nonce, &plaintext)
                .expect("re-seal");
            assert_eq!(again, ct, "an opened envelope re-seals to itself");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    let _ = nonce_of(ct);
}

fuzz_target!(|data: &[u8]| {
    let env = Envelope::new(&KEY, *SESSION);
    if data.len() >= 2 {
        open(&env, role(data[0], data[1]), &data[2..]);
    }

    // The whole input as SEC1 bytes.
    if let Ok(k) = EncodedPublicKey::from_sec1(data) {
        assert_eq!(
            EncodedPublicKey::from_sec1(k.as_bytes()).expect("canonical"),
            k
        );
    }

    // The whole input as a hex field (text), as a hex public key, and as a hex envelope.
    let text = String::from_utf8_lossy(data);
    let _ = EncodedPublicKey::from_hex("public_key", &text);
    if let Ok(bytes) = decode_hex("encrypted_wasm", &text) {
        assert_eq!(hex::decode(hex::encode(&bytes)).expect("hex"), bytes);
        open(&env, Role::Program, &bytes);
    }
});
