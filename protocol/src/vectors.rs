//! Test vectors: fixed keys, ids and nonces → exact bytes. `docs/test-vectors.json` is
//! generated from [`generate`] and checked against it by the protocol, client and host tests
//! (and by an independent Python implementation in `tests/vectors/`).

use serde_json::{Value, json};
use uuid::Uuid;

use crate::commitment::{InputDigests, result_commitment};
use crate::envelope::{Envelope, Role, associated_data};
use crate::session::SessionKey;
use crate::{ClientSecret, labels};

/// Fixed client private scalar (hex).
pub const CLIENT_SECRET: &str = "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721";
/// Fixed server session private scalar (hex).
pub const SERVER_SECRET: &str = "519b423d715f8b581f4fa8ee59f4771a5b44c8130b4e3eacca54a56dda72b464";
/// Fixed session id.
pub const SESSION_ID: &str = "01936f3a-8c2e-7b4d-9f10-2a3b4c5d6e7f";

fn nonce(first: u8) -> [u8; 12] {
    std::array::from_fn(|i| first.wrapping_add(i as u8))
}

/// Computes every vector from the fixed inputs.
///
/// # Panics
/// Never with the built-in constants.
pub fn generate() -> Value {
    let client =
        ClientSecret::from_bytes(&hex::decode(CLIENT_SECRET).expect("hex")).expect("scalar");
    let server =
        ClientSecret::from_bytes(&hex::decode(SERVER_SECRET).expect("hex")).expect("scalar");
    let session_id = Uuid::parse_str(SESSION_ID).expect("uuid");
    let client_pub = client.public_key();
    let server_pub = server.public_key();
    let shared = client.diffie_hellman(&server_pub);
    let key = SessionKey::for_client(&client, &server_pub, &session_id);
    let env = Envelope::new(&key, session_id);

    let mut salt = labels::HKDF_SALT.to_vec();
    salt.extend_from_slice(session_id.as_bytes());
    let mut info = labels::HKDF_INFO.to_vec();
    info.extend_from_slice(client_pub.as_bytes());
    info.extend_from_slice(server_pub.as_bytes());

    let program = b"\0asm\x0d\0\x01\0 (a component would go here)".to_vec();
    let args: Vec<Vec<u8>> = vec![b"world".to_vec(), "\u{3b2}eta".as_bytes().to_vec()];
    let stdin = b"line one\nline two\n".to_vec();
    let result = br#"{"version":1,"status":"exited","exit_code":0,"stdout":"SGVsbG8gd29ybGQgzrJldGEK","stderr":"","stdout_truncated":false,"stderr_truncated":false,"duration_us":1234,"limits":{"time_ms":10000,"memory_bytes":134217728}}"#.to_vec();

    let seal = |role: Role, first: u8, pt: &[u8]| -> Value {
        let n = nonce(first);
        let sealed = env.seal_with_nonce(role, &n, pt).expect("seal");
        json!({
            "role": role.name(),
            "role_byte": role.code(),
            "index": role.index(),
            "plaintext": hex::encode(pt),
            "nonce": hex::encode(n),
            "aad": hex::encode(associated_data(&session_id, role)),
            "envelope": hex::encode(sealed),
        })
    };
    let envelopes = vec![
        seal(Role::Program, 0x00, &program),
        seal(Role::Argument(0), 0x10, &args[0]),
        seal(Role::Argument(1), 0x20, &args[1]),
        seal(Role::Stdin, 0x30, &stdin),
        seal(Role::Result, 0x40, &result),
    ];
    let digests = InputDigests::compute(&program, &args, &stdin);
    let commitment = result_commitment(&session_id, &digests, &result);
    json!({
        "description": "WASM Hypervisor protocol v1 test vectors; see docs/PROTOCOL.md. All binary values are lowercase hex.",
        "client_secret": CLIENT_SECRET,
        "client_public": client_pub.to_hex(),
        "server_secret": SERVER_SECRET,
        "server_public": server_pub.to_hex(),
        "session_id": SESSION_ID,
        "session_id_bytes": hex::encode(session_id.as_bytes()),
        "ecdh_shared_x": hex::encode(shared.as_ref()),
        "hkdf_salt": hex::encode(&salt),
        "hkdf_info": hex::encode(&info),
        "session_key": hex::encode(key.expose_for_test_vectors()),
        "envelopes": envelopes,
        "commitment": {
            "program_sha256": hex::encode(digests.program),
            "argument_sha256": digests.arguments.iter().map(hex::encode).collect::<Vec<_>>(),
            "stdin_sha256": hex::encode(digests.stdin),
            "result_plaintext": hex::encode(&result),
            "result_commitment": hex::encode(commitment),
        },
    })
}
