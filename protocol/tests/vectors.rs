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
}
