//! Importing key-value state (issue 48; PROTOCOL §23.3): an export goes back into its agent or
//! into another, merged or replacing, sealed to the owner's session and signed over its hash and
//! mode; a replayed or foreign import, a non-export, and one over the quotas change nothing. The
//! agent is `kv-counter` (stock wit-bindgen on the published `wasi:keyvalue` WIT).

use hypervisor_client::Client;
use hypervisor_protocol::agents::{OWNER_KEY_HEADER, OwnerAction, OwnerStatement};
use hypervisor_protocol::state::{StateImportRequest, import_detail};
use hypervisor_protocol::{ClientSecret, Role};
use p256::ecdsa::signature::Signer;

use crate::agent_state::deploy_as;
use crate::harness::TestServer;

fn kv(client: &Client, name: &str, args: &[&str]) -> String {
    let r = client.invoke_cli(name, args, None).expect("invoke");
    assert!(r.ok, "{} {:?}", r.stderr, r.stdout);
    r.stdout.unwrap_or_default().trim().to_string()
}

/// A signed import request of `plain` (as [`Client::import_agent_state`] builds one), to send
/// as it is, twice if need be.
fn signed_import(
    client: &Client,
    owner: &ClientSecret,
    session: &hypervisor_client::Session,
    name: &str,
    plain: &[u8],
    sequence: u64,
) -> StateImportRequest {
    let signed_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let audience = client.audience().unwrap();
    let detail = import_detail(plain, false);
    let statement = OwnerStatement {
        audience: &audience,
        action: OwnerAction::ImportState,
        name,
        signed_at,
        sequence,
        detail: &detail,
    };
    let key = p256::ecdsa::SigningKey::from_slice(owner.to_bytes().as_slice()).unwrap();
    let signature: p256::ecdsa::Signature = key.sign(&statement.message());
    StateImportRequest {
        public_key: owner.public_key().to_hex(),
        session_id: Some(session.id),
        encrypted_state: hex::encode(session.envelope().seal(Role::StateImport, plain).unwrap()),
        replace: false,
        signature: hex::encode(signature.normalize_s().to_bytes()),
        signed_at,
        sequence,
    }
}

#[test]
fn state_goes_back_merged_or_replacing_and_a_bad_import_changes_nothing() {
    let server = TestServer::start_with("[state]\nmax_keys = 6\n");
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    deploy_as(&client, &owner, "counter", "kv-counter", None);
    deploy_as(&client, &owner, "copy", "kv-counter", None);
    assert_eq!(
        kv(&client, "counter", &["cart", "set", "item", "book"]),
        "ok"
    );
    for _ in 0..3 {
        kv(&client, "counter", &["default", "incr", "visits"]);
    }
    let session = client.create_session(&owner).unwrap();
    let export = client
        .export_agent_state(&owner, &session, "counter")
        .unwrap();

    // Wiped, then merged back: the agent reads on where it was.
    client.wipe_agent_state(&owner, "counter").unwrap();
    assert_eq!(kv(&client, "counter", &["cart", "get", "item"]), "(none)");
    let imported = client
        .import_agent_state(&owner, &session, "counter", &export, false)
        .unwrap();
    assert_eq!(
        (imported.keys, imported.keys_removed),
        (2, 0),
        "{imported:?}"
    );
    assert_eq!(kv(&client, "counter", &["cart", "get", "item"]), "book");
    assert_eq!(kv(&client, "counter", &["default", "incr", "visits"]), "4");

    // Into another agent; replacing removes what the export does not name.
    assert_eq!(kv(&client, "copy", &["cart", "set", "extra", "x"]), "ok");
    let imported = client
        .import_agent_state(&owner, &session, "copy", &export, true)
        .unwrap();
    assert_eq!(
        (imported.keys, imported.keys_removed),
        (2, 1),
        "{imported:?}"
    );
    assert_eq!(kv(&client, "copy", &["cart", "get", "extra"]), "(none)");
    assert_eq!(kv(&client, "copy", &["default", "incr", "visits"]), "4");

    // Over the quota (6 keys; 2 held, 5 more merged): refused whole, nothing written.
    let mut big = export.clone();
    let more = big.buckets.entry("more".into()).or_default();
    for i in 0..5 {
        more.insert(format!("k{i}"), "eA==".into());
    }
    let err = client
        .import_agent_state(&owner, &session, "copy", &big, false)
        .unwrap_err();
    assert_eq!(
        err.error_code().map(|c| c.as_str()),
        Some("state_quota_exceeded"),
        "{err}"
    );
    assert_eq!(kv(&client, "copy", &["more", "keys"]), "");

    // A value that is not base64, or a document that is not an export: refused.
    let mut bad = export.clone();
    bad.buckets
        .entry("cart".into())
        .or_default()
        .insert("item".into(), "not base64!".into());
    let err = client
        .import_agent_state(&owner, &session, "copy", &bad, false)
        .unwrap_err();
    assert_eq!(
        err.error_code().map(|c| c.as_str()),
        Some("invalid_request"),
        "{err}"
    );
    assert_eq!(kv(&client, "copy", &["cart", "get", "item"]), "book");

    // The same signed request twice: the replay is refused (imports are ordered).
    let plain = serde_json::to_vec(&export).unwrap();
    let sequence = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros(),
    )
    .unwrap()
        + 10_000_000;
    let req = signed_import(&client, &owner, &session, "counter", &plain, sequence);
    let header = [(OWNER_KEY_HEADER, owner.public_key().to_hex())];
    let (status, _, body) = client
        .post_json_with("/agents/counter/state/import", &req, &header)
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = client
        .post_json_with("/agents/counter/state/import", &req, &header)
        .unwrap();
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "owner_signature_invalid", "{body}");

    // Another key's import, and an export sealed by the host sent back as an import: refused.
    let stranger = ClientSecret::generate().unwrap();
    let theirs = client.create_session(&stranger).unwrap();
    let err = client
        .import_agent_state(&stranger, &theirs, "counter", &export, true)
        .unwrap_err();
    assert_eq!(
        err.error_code().map(|c| c.as_str()),
        Some("not_owner"),
        "{err}"
    );
    let mut req = signed_import(&client, &owner, &session, "counter", &plain, sequence + 1);
    req.encrypted_state = hex::encode(session.envelope().seal(Role::StateExport, &plain).unwrap());
    let (status, _, body) = client
        .post_json_with("/agents/counter/state/import", &req, &header)
        .unwrap();
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "decryption_failed", "{body}");
    assert_eq!(kv(&client, "counter", &["cart", "get", "item"]), "book");
}
