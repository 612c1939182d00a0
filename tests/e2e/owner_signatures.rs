//! Owner signatures name the host they are for and are ordered by sequence number, end to end:
//! a deployment signed for one host is refused by another (its audience, `GET /host`, is in
//! the signed statement), and two operations signed within the same second are both accepted
//! in the order of their sequence numbers, a replay of either refused.

use base64::Engine as _;
use hypervisor_protocol::ClientSecret;
use hypervisor_protocol::agents::{DeployRequest, OwnerAction, OwnerStatement, deploy_detail};
use hypervisor_protocol::host::HostInfo;
use p256::ecdsa::signature::Signer;
use serde_json::Value;

use crate::harness::{TestServer, code, get_json, wasm};

/// A clear deployment of `component` as `name` (description `description`), signed by
/// `owner` for `audience` at `signed_at` with `sequence`.
fn deployment(
    owner: &ClientSecret,
    audience: &str,
    name: &str,
    component: &[u8],
    description: &str,
    (signed_at, sequence): (u64, u64),
) -> Value {
    let mut req: DeployRequest = serde_json::from_value(serde_json::json!({
        "name": name,
        "description": description,
        "public_key": owner.public_key().to_hex(),
        "component": base64::engine::general_purpose::STANDARD.encode(component),
    }))
    .unwrap();
    let detail = deploy_detail(&hex::encode(hypervisor_protocol::sha256(component)), &req);
    let statement = OwnerStatement {
        audience,
        action: OwnerAction::Deploy,
        name,
        signed_at,
        sequence,
        detail: &detail,
    };
    req.signature = Some(sign(owner, &statement));
    req.signed_at = Some(signed_at);
    req.sequence = Some(sequence);
    serde_json::to_value(&req).unwrap()
}

fn sign(owner: &ClientSecret, statement: &OwnerStatement<'_>) -> String {
    let key = p256::ecdsa::SigningKey::from_slice(owner.to_bytes().as_slice()).unwrap();
    let signature: p256::ecdsa::Signature = key.sign(&statement.message());
    hex::encode(signature.normalize_s().to_bytes())
}

fn audience(server: &TestServer) -> String {
    let (status, body) = get_json(server, "/host");
    assert_eq!(status, 200, "{body}");
    let info: HostInfo = serde_json::from_value(body).unwrap();
    assert_eq!(info.audience.len(), 32, "{info:?}");
    assert!(info.audience.bytes().all(|b| b.is_ascii_hexdigit()));
    info.audience
}

/// `403 owner_signature_invalid`, its message saying `why`.
fn assert_signature_refused((status, body): &(u16, Value), why: &str) {
    assert_eq!(
        (*status, code(body)),
        (403, "owner_signature_invalid"),
        "{body}"
    );
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(why), "{body}");
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn a_deployment_signed_for_one_host_is_refused_by_another() {
    let (here, there) = (TestServer::start(), TestServer::start());
    let (here_audience, there_audience) = (audience(&here), audience(&there));
    assert_ne!(here_audience, there_audience);
    // The same host keeps its audience.
    assert_eq!(audience(&here), here_audience);
    let owner = ClientSecret::generate().unwrap();
    let signed_here = deployment(
        &owner,
        &here_audience,
        "portable",
        &wasm("hello"),
        "made for here",
        (now(), 1),
    );
    // Taken to the other host, the signed deployment is refused, and nothing is deployed.
    let refusal = there
        .client()
        .post_json("/agent/deploy", &signed_here)
        .unwrap();
    assert_signature_refused(&refusal, "audience");
    assert_eq!(get_json(&there, "/agents/portable").0, 404);
    // Where it was meant to go, it deploys.
    let (status, body) = here
        .client()
        .post_json("/agent/deploy", &signed_here)
        .unwrap();
    assert_eq!(status, 201, "{body}");
}

#[test]
fn two_operations_in_the_same_second_are_ordered_by_sequence() {
    let server = TestServer::start();
    let client = server.client();
    let audience = audience(&server);
    let owner = ClientSecret::generate().unwrap();
    let second = now();
    let v1 = deployment(
        &owner,
        &audience,
        "quick",
        &wasm("hello"),
        "v1",
        (second, 10),
    );
    let v2 = deployment(
        &owner,
        &audience,
        "quick",
        &wasm("text-stats"),
        "v2",
        (second, 11),
    );
    // A deployment and its update signed in the same second: both accepted, in order.
    assert_eq!(client.post_json("/agent/deploy", &v1).unwrap().0, 201);
    let (status, body) = client.post_json("/agent/deploy", &v2).unwrap();
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["latest"]["version"], 2, "{body}");
    // Either one again is a replay, told the last sequence accepted.
    for replay in [&v1, &v2] {
        let refusal = client.post_json("/agent/deploy", replay).unwrap();
        assert_signature_refused(&refusal, "not greater than 11");
    }
    assert_eq!(get_json(&server, "/agents/quick").1["description"], "v2");
    // A deletion in the same second, next in sequence, goes through.
    let delete = OwnerStatement {
        audience: &audience,
        action: OwnerAction::Delete,
        name: "quick",
        signed_at: second,
        sequence: 12,
        detail: "",
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let resp = agent
        .delete(format!("{}/agents/quick", server.url))
        .header("x-agent-signature", &sign(&owner, &delete))
        .header("x-agent-signed-at", &second.to_string())
        .header("x-agent-sequence", "12")
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(get_json(&server, "/agents/quick").0, 404);
}
