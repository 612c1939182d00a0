//! Deployments cannot be forged from what an observer saw, end to end: an execution request's
//! program ciphertext is not a deployment (its own envelope role, and no owner signature), a
//! sealed deployment does not deploy under another name, and no signed deployment or deletion
//! can be replayed (to roll an agent back or bring a deleted one back), nor its settings
//! (`public`, `price`, `ttl_seconds`, `limits`) changed on the way. Sealed events use their own
//! role too.

use hypervisor_client::ExecuteInput;
use hypervisor_client::agents::{
    Deployment, owner_signature, sealed_deploy_request, sign_deploy_request,
};
use hypervisor_protocol::agents::{DeployRequest, InvokeRequest, OwnerAction, deploy_detail};
use hypervisor_protocol::wire::Limits;
use hypervisor_protocol::{ClientSecret, Role, sha256};
use serde_json::{Value, json};

use crate::agents::refused;
use crate::harness::{TestServer, code, get_json, session, wasm};

const SIGNATURE_INVALID: (u16, &str) = (403, "owner_signature_invalid");

fn post(client: &hypervisor_client::Client, body: &Value) -> (u16, Value) {
    client.post_json("/agent/deploy", body).unwrap()
}

#[test]
fn an_execution_requests_program_ciphertext_is_not_a_deployment() {
    let server = TestServer::start();
    let (client, victim, victim_session) = session(&server);
    let program = wasm("hello");
    // The victim's confidential execution, as an observer sees it on the wire.
    let (req, _) = victim_session
        .encrypt_execution(&ExecuteInput::new(&program).args(["secret-input"]))
        .unwrap();
    let seen = serde_json::to_value(&req).unwrap();
    let (status, out) = client.post_json("/test/execute/wasm", &seen).unwrap();
    assert_eq!(status, 200, "{out}");

    // Copied into a deployment, public, without a signature: refused (as a clear deployment
    // without one is), and nothing is deployed.
    let replay = json!({
        "name": "stolen",
        "public_key": seen["public_key"],
        "session_id": seen["session_id"],
        "encrypted_component": seen["encrypted_wasm"],
        "public": true,
    });
    let (status, body) = post(&client, &replay);
    assert_eq!((status, code(&body)), SIGNATURE_INVALID, "{body}");

    // With a signature: by the observer's own key (which the host would check against the
    // victim's, the key the component is sealed to), or even the victim's own valid one (over
    // this very request's settings). The envelope is opened first, and a program envelope is
    // not an agent component (role program, not agent-component): refused either way.
    let observer = ClientSecret::generate().unwrap();
    let as_sent: DeployRequest = serde_json::from_value(replay.clone()).unwrap();
    for signer in [&observer, &victim] {
        let by = owner_signature(
            signer,
            &client.audience().unwrap(),
            OwnerAction::Deploy,
            "stolen",
            &deploy_detail(&hex::encode(sha256(&program)), &as_sent),
        )
        .unwrap();
        let mut signed = replay.clone();
        signed["signature"] = json!(by.signature);
        signed["signed_at"] = json!(by.signed_at);
        signed["sequence"] = json!(by.sequence);
        let (status, body) = post(&client, &signed);
        assert_eq!((status, code(&body)), (400, "decryption_failed"), "{body}");
    }

    let (status, body) = get_json(&server, "/agents/stolen");
    assert_eq!((status, code(&body)), (404, "agent_not_found"), "{body}");

    // The other way round: a deployment's component is not an execution's program.
    let deploy = sealed_deploy_request(
        &victim,
        &client.audience().unwrap(),
        &victim_session,
        &Deployment {
            name: "private-hello",
            component: &program,
            ..Deployment::default()
        },
    )
    .unwrap();
    let mut execute = seen.clone();
    execute["encrypted_wasm"] = json!(deploy.encrypted_component);
    let (status, body) = client.post_json("/test/execute/wasm", &execute).unwrap();
    assert_eq!((status, code(&body)), (400, "decryption_failed"), "{body}");
}

#[test]
fn a_sealed_deployment_does_not_deploy_under_another_name_or_twice() {
    let server = TestServer::start();
    let (client, owner, owner_session) = session(&server);
    let component = wasm("text-stats");
    let req = sealed_deploy_request(
        &owner,
        &client.audience().unwrap(),
        &owner_session,
        &Deployment {
            name: "vault",
            description: "private statistics",
            component: &component,
            ..Deployment::default()
        },
    )
    .unwrap();
    let seen = serde_json::to_value(&req).unwrap();
    let (status, deployed) = post(&client, &seen);
    assert_eq!(status, 201, "{deployed}");
    assert_eq!(deployed["public"], false);

    // Replayed under another name, public: the signature covers the name.
    let mut renamed = seen.clone();
    renamed["name"] = json!("vault-copy");
    renamed["public"] = json!(true);
    let (status, body) = post(&client, &renamed);
    assert_eq!((status, code(&body)), SIGNATURE_INVALID, "{body}");
    assert_eq!(get_json(&server, "/agents/vault-copy").0, 404);

    // Replayed under its own name, made public: the signature covers `public` (and, unchanged,
    // it is signed no later than the deployment the host already accepted).
    let mut public = seen.clone();
    public["public"] = json!(true);
    let (status, body) = post(&client, &public);
    assert_eq!((status, code(&body)), SIGNATURE_INVALID, "{body}");
    let (_, agent) = get_json(&server, "/agents/vault");
    assert_eq!(
        (
            agent["public"].as_bool(),
            agent["latest"]["version"].as_u64()
        ),
        (Some(false), Some(1)),
        "{agent}"
    );

    // An encrypted deployment without a signature is refused like a clear one.
    let mut unsigned = seen.clone();
    unsigned.as_object_mut().unwrap().remove("signature");
    unsigned.as_object_mut().unwrap().remove("signed_at");
    let (status, body) = post(&client, &unsigned);
    assert_eq!((status, code(&body)), SIGNATURE_INVALID, "{body}");

    // The owner's own next deployment (signed later) goes through.
    let v2 = client
        .deploy_agent_sealed(
            &owner,
            &owner_session,
            &Deployment {
                name: "vault",
                description: "private statistics v2",
                component: &component,
                ..Deployment::default()
            },
        )
        .unwrap();
    assert_eq!(v2["latest"]["version"], 2);
}

#[test]
fn a_sealed_deployments_settings_cannot_be_changed_in_transit() {
    // A priced agent needs a host that takes payments.
    let server = TestServer::start_with(&crate::payments::payments_table(""));
    let (client, owner, owner_session) = session(&server);
    let component = wasm("text-stats");
    let req = sealed_deploy_request(
        &owner,
        &client.audience().unwrap(),
        &owner_session,
        &Deployment {
            name: "priced-vault",
            description: "private statistics",
            component: &component,
            public: Some(false),
            price: Some("5000".into()),
            ttl_seconds: Some(3600),
            limits: Some(Limits {
                time_ms: Some(2000),
                ..Limits::default()
            }),
            ..Deployment::default()
        },
    )
    .unwrap();
    let seen = serde_json::to_value(&req).unwrap();

    // What a man in the middle might change: make the private agent public (anyone could then
    // invoke it in the clear), or change its price, lifetime or limits, or drop one of them.
    // The signature covers every one of them as sent: refused, and nothing is deployed.
    let altered: [(&str, Value); 7] = [
        ("public", json!(true)),
        ("price", json!("1")),
        ("price", Value::Null),
        ("public", Value::Null),
        ("ttl_seconds", json!(7200)),
        ("limits", json!({"time_ms": 1000})),
        ("limits", Value::Null),
    ];
    for (field, value) in altered {
        let mut changed = seen.clone();
        if value.is_null() {
            changed.as_object_mut().unwrap().remove(field);
        } else {
            changed[field] = value.clone();
        }
        assert_ne!(changed, seen);
        let (status, body) = post(&client, &changed);
        assert_eq!(
            (status, code(&body)),
            SIGNATURE_INVALID,
            "{field} = {value}: {body}"
        );
        assert_eq!(get_json(&server, "/agents/priced-vault").0, 404);
    }

    // Search metadata is not signed; the deployment as the owner signed it goes through, with
    // the settings the owner chose.
    let mut relabelled = seen.clone();
    relabelled["description"] = json!("private statistics, relabelled");
    let (status, deployed) = post(&client, &relabelled);
    assert_eq!(status, 201, "{deployed}");
    assert_eq!(
        (
            deployed["public"].as_bool(),
            deployed["price"].as_str(),
            deployed["latest"]["version"].as_u64()
        ),
        (Some(false), Some("5000"), Some(1)),
        "{deployed}"
    );
    let limits: Value =
        serde_json::from_str(deployed["latest"]["limits"].as_str().unwrap()).unwrap();
    assert_eq!(limits, json!({"time_ms": 2000}), "{deployed}");
    let lifetime =
        deployed["expires_at"].as_u64().unwrap() - deployed["updated_at"].as_u64().unwrap();
    assert!((3599..=3601).contains(&lifetime), "{deployed}");

    // Once accepted, a changed copy is refused all the same (signature first, then order).
    let mut public = seen.clone();
    public["public"] = json!(true);
    let (status, body) = post(&client, &public);
    assert_eq!((status, code(&body)), SIGNATURE_INVALID, "{body}");
    let (_, agent) = get_json(&server, "/agents/priced-vault");
    assert_eq!(agent["public"], false, "{agent}");
}

#[test]
fn signed_deployments_and_deletions_cannot_be_replayed() {
    let server = TestServer::start();
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    let (v1_component, v2_component) = (wasm("hello"), wasm("text-stats"));
    let audience = client.audience().unwrap();
    let clear = |component: &[u8], description: &str| -> Value {
        let mut req = DeployRequest {
            name: "roll".into(),
            description: description.into(),
            tags: Vec::new(),
            public_key: owner.public_key().to_hex(),
            component: Some(base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                component,
            )),
            encrypted_component: None,
            program_kind: None,
            js: None,
            encrypted_js: None,
            session_id: None,
            public: None,
            limits: None,
            price: None,
            ttl_seconds: None,
            charge: None,
            tariff: None,
            content_type: None,
            grants: None,
            schemas: None,
            signature: None,
            signed_at: None,
            sequence: None,
        };
        sign_deploy_request(&owner, &audience, &mut req, component).unwrap();
        serde_json::to_value(&req).unwrap()
    };
    let v1 = clear(&v1_component, "v1");
    let v2 = clear(&v2_component, "v2");
    assert!(v1["sequence"].as_u64() < v2["sequence"].as_u64());
    assert_eq!(post(&client, &v1).0, 201);
    assert_eq!(post(&client, &v2).0, 201);

    // Replaying v1 to roll the agent back: refused; v2 stays in force.
    let (status, body) = post(&client, &v1);
    assert_eq!((status, code(&body)), SIGNATURE_INVALID, "{body}");
    let (_, agent) = get_json(&server, "/agents/roll");
    assert_eq!(
        (
            agent["latest"]["version"].as_u64(),
            agent["latest"]["kind"].as_str()
        ),
        (Some(2), Some("handler")),
        "{agent}"
    );

    // A deletion, replayed after a redeployment, is refused.
    let signed = owner_signature(&owner, &audience, OwnerAction::Delete, "roll", "").unwrap();
    let delete = || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let resp = agent
            .delete(format!("{}/agents/roll", server.url))
            .header("x-agent-signature", &signed.signature)
            .header("x-agent-signed-at", &signed.signed_at.to_string())
            .header("x-agent-sequence", &signed.sequence.to_string())
            .call()
            .unwrap();
        let status = resp.status().as_u16();
        let body: Value =
            serde_json::from_str(&resp.into_body().read_to_string().unwrap()).unwrap();
        (status, body)
    };
    assert_eq!(delete().0, 200);
    // The deleted agent is not brought back by replaying its last deployment.
    let (status, body) = post(&client, &v2);
    assert_eq!((status, code(&body)), SIGNATURE_INVALID, "{body}");
    assert_eq!(get_json(&server, "/agents/roll").0, 404);
    // A new deployment, signed later, is accepted; the old deletion does not remove it.
    let v3 = clear(&v2_component, "v3");
    assert_eq!(post(&client, &v3).0, 201);
    let (status, body) = delete();
    assert_eq!((status, code(&body)), SIGNATURE_INVALID, "{body}");
    assert_eq!(get_json(&server, "/agents/roll").1["description"], "v3");
    // The owner's own next deletion (signed later) goes through.
    client.delete_agent(&owner, "roll").unwrap();
}

#[test]
fn sealed_events_use_the_event_role() {
    let server = TestServer::start();
    let (client, owner, owner_session) = session(&server);
    let component = wasm("text-stats");
    let deployed = client
        .deploy_agent_sealed(
            &owner,
            &owner_session,
            &Deployment {
                name: "events",
                component: &component,
                ..Deployment::default()
            },
        )
        .unwrap();
    let code_hash = deployed["latest"]["code_hash"].as_str().unwrap();
    let caller = ClientSecret::generate().unwrap();
    let caller_session = client.create_session(&caller).unwrap();
    let event = br#"{"text": "one two three four"}"#;
    let run = client
        .invoke_sealed(&caller_session, "events", code_hash, event)
        .unwrap();
    let result: Value = serde_json::from_slice(&run.stdout().unwrap()).unwrap();
    assert_eq!(result["words"], 4, "{result}");

    // An event sealed as stdin (the role of an execution's or CLI agent's input) is refused.
    let as_stdin = InvokeRequest {
        encrypted_event: Some(hex::encode(
            caller_session.envelope().seal(Role::Stdin, event).unwrap(),
        )),
        public_key: Some(caller.public_key().to_hex()),
        session_id: Some(caller_session.id),
        ..InvokeRequest::default()
    };
    let (status, body) = client
        .post_json("/agents/events/invoke", &as_stdin)
        .unwrap();
    assert_eq!((status, code(&body)), (400, "decryption_failed"), "{body}");

    // Clear events to a public agent are unchanged.
    crate::agents::deploy(&client, &owner, "open-stats", "text-stats", "public", &[]);
    let run = client.invoke("open-stats", json!({"text": "a b"})).unwrap();
    assert_eq!(run.result_json().unwrap()["words"], 2);

    // No event, either way: a clear invocation without `event` and a sealed one whose event
    // is empty give the same code the same `null` (and the sealed answer's commitment, which
    // the client checks, binds SHA-256("null")).
    let (status, _, clear) = client
        .post_json_with("/agents/open-stats/invoke", &json!({}), &[])
        .unwrap();
    assert_eq!(status, 200, "{clear}");
    let sealed = client
        .invoke_sealed(&caller_session, "events", code_hash, b"")
        .expect("a sealed invocation without an event");
    // text-stats refuses a null event the same way both times (an empty one would fail to
    // parse instead: "EOF while parsing").
    let said = clear["error"]["message"].as_str().unwrap().to_string();
    assert!(said.contains("invalid type: null"), "{clear}");
    let sealed_result = serde_json::to_string(&sealed.result).unwrap();
    assert!(
        sealed_result.contains("invalid type: null"),
        "clear {clear}, sealed {sealed_result}"
    );
    assert_eq!(
        refused(client.invoke("events", json!({"text": "x"}))),
        (403, "agent_not_public".to_string())
    );
}
