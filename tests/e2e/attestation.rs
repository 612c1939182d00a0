//! Verifiable sessions and executions over real HTTP. Without hardware here, the chain is
//! exercised with the simulated provider (compiled in with the `simulated-attestation` feature,
//! switched on per server), which every verifier must refuse unless explicitly allowed.

use hypervisor_client::verify::{
    Policy, VerifyError, verify_attestation, verify_component_statement, verify_session,
};
use hypervisor_client::{ClientError, ExecuteInput};
use hypervisor_protocol::wire::{Attestation, ExitStatus, Limits};
use hypervisor_protocol::{ClientSecret, sha256};
use serde_json::json;

use crate::harness::{TestServer, code, get_json, session, wasm, wasm_path};

const SIMULATED: &str = "[attestation]\nprovider = \"simulated\"\n";

/// Simulated evidence of the host binary under test, pinned by its SHA-256 as
/// `hypervisor-client measure` prints it.
fn dev_policy() -> Policy {
    Policy {
        allow_simulated: true,
        reference_values: vec![crate::harness::simulated_reference()],
        ..Policy::default()
    }
}

/// A client and a verifiable session on `server`, its chain checked under [`dev_policy`].
fn verifiable_session(
    server: &TestServer,
) -> (hypervisor_client::Client, hypervisor_client::Session) {
    let client = server.client();
    let key = ClientSecret::generate().unwrap();
    let session = client
        .create_verifiable_session(&key, &dev_policy())
        .unwrap();
    (client, session)
}

#[test]
fn verifiable_execution_round_trip_with_a_checked_receipt() {
    let server = TestServer::start_with(SIMULATED);
    let (client, session) = verifiable_session(&server);
    let (_, verified) = session.verified.as_ref().unwrap();
    assert!(verified.simulated);
    assert_eq!(verified.tee, "simulated");

    let program = wasm("hello");
    let run = client
        .execute_verifiable(&session, &ExecuteInput::new(&program).args(["attested"]))
        .unwrap();
    assert_eq!(run.stdout().unwrap(), b"Hello attested\n");
    let receipt = run.receipt.as_ref().unwrap();
    assert_eq!(receipt.sequence, 1);
    assert_eq!(receipt.route, "/verifiable/execute/wasm");
    assert_eq!(receipt.program_sha256, hex::encode(sha256(&program)));
    assert_eq!(
        receipt.argument_sha256,
        vec![hex::encode(sha256(b"attested"))]
    );
    assert_eq!(receipt.result_commitment, hex::encode(run.commitment));
    // The admission decision is signed into the receipt: which policy, which rules.
    assert_eq!(
        receipt.policy.as_deref(),
        Some(&*format!(
            "allow component={} rules={}",
            hex::encode(sha256(&std::fs::read(wasm_path("policy-python")).unwrap())),
            hex::encode(sha256(b"{}"))
        ))
    );
    assert_eq!(receipt.payment, None);

    let again = client
        .execute_verifiable(&session, &ExecuteInput::new(&program))
        .unwrap();
    assert_eq!(again.receipt.unwrap().sequence, 2);

    // A stopped guest still gets a signed receipt for what it produced.
    let spin = wasm("endless-loop");
    let stopped = client
        .execute_verifiable(
            &session,
            &ExecuteInput::new(&spin).limits(Limits {
                time_ms: Some(300),
                ..Limits::default()
            }),
        )
        .unwrap();
    assert_eq!(stopped.result.status, ExitStatus::TimeLimitExceeded);
    assert_eq!(
        stopped.receipt.unwrap().status,
        ExitStatus::TimeLimitExceeded
    );

    // Receipts are recorded, without plaintext.
    let log_path = server.data_dir.join("receipts/receipts.jsonl");
    let mut text = String::new();
    for _ in 0..50 {
        text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if text.lines().count() >= 3 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.contains(&receipt.signature));
    assert!(
        !text.contains("attested") && !text.contains("Hello"),
        "no plaintext in the receipt log"
    );
}

#[test]
fn simulated_evidence_is_refused_unless_allowed() {
    let server = TestServer::start_with(SIMULATED);
    let key = ClientSecret::generate().unwrap();
    match server
        .client()
        .create_verifiable_session(&key, &Policy::default())
    {
        Err(ClientError::Verify(VerifyError::Simulated)) => {}
        other => panic!(
            "expected a refusal of simulated evidence, got {:?}",
            other.map(|s| s.id)
        ),
    }
    // Every answer of such a host says so, errors included.
    let (_, headers, _) = server
        .client()
        .post_json_with("/encrypt/create_keypair", &json!({"pubkey": "zz"}), &[])
        .unwrap();
    assert_eq!(
        crate::payments::header(&headers, "x-attestation"),
        Some("simulated-not-for-production")
    );
    // And the attestation document says what it is.
    let (status, body) = get_json(&server, "/attestation");
    assert_eq!(status, 200);
    assert_eq!(body["provider"], "simulated");
    assert_eq!(body["attestation"]["simulated"], true);
    let evidence = hex::decode(body["attestation"]["evidence"].as_str().unwrap()).unwrap();
    assert!(
        String::from_utf8(evidence)
            .unwrap()
            .contains("NOT FOR PRODUCTION")
    );
}

#[test]
fn tampering_with_receipt_commitment_session_or_key_is_detected() {
    let server = TestServer::start_with(SIMULATED);
    let (client, session) = verifiable_session(&server);
    let program = wasm("hello");
    let input = ExecuteInput::new(&program).args(["x"]);
    let (status, json, digests) = client
        .execute_raw("/verifiable/execute/wasm", &session, &input)
        .unwrap();
    assert_eq!(status, 200);
    session
        .check_response(status, json.clone(), &digests)
        .unwrap();

    // Receipt fields are signed.
    for (field, value) in [
        ("sequence", json!(99)),
        ("program_sha256", json!("00".repeat(32))),
        ("status", json!("trapped")),
        ("issued_at", json!(1)),
        ("route", json!("/test/execute/wasm")),
    ] {
        let mut forged = json.clone();
        forged["result_quote"][field] = value;
        match session.check_response(status, forged, &digests) {
            Err(ClientError::Verify(VerifyError::Signature("receipt"))) => {}
            other => panic!("{field}: {:?}", other.map(|_| ())),
        }
    }
    // The response's commitment must match the plaintext.
    let mut forged = json.clone();
    forged["result_commitment"] = json!("11".repeat(32));
    assert!(matches!(
        session.check_response(status, forged, &digests),
        Err(ClientError::CommitmentMismatch)
    ));
    // A receipt for other inputs (re-signed correctly by the host, but not for what we sent).
    let other_inputs = hypervisor_protocol::InputDigests::compute(&program, &[b"y"], b"");
    assert!(
        session
            .check_response(status, json.clone(), &other_inputs)
            .is_err()
    );

    // The session statement binds the session id and keys.
    let (quote, _) = session.verified.as_ref().unwrap();
    let other_id = uuid::Uuid::now_v7();
    assert_eq!(
        verify_session(
            quote,
            &other_id,
            &session.server_public,
            &session.client_public,
            &dev_policy()
        )
        .unwrap_err(),
        VerifyError::Signature("session")
    );
    let stranger = ClientSecret::generate().unwrap().public_key();
    assert_eq!(
        verify_session(
            quote,
            &session.id,
            &session.server_public,
            &stranger,
            &dev_policy()
        )
        .unwrap_err(),
        VerifyError::Signature("session")
    );
    // The evidence binds the signing key, the measurement and the creation time.
    let mut swapped: Attestation = quote.attestation.clone();
    swapped.signing_key = stranger.to_hex();
    assert_eq!(
        verify_attestation(&swapped, &dev_policy()).unwrap_err(),
        VerifyError::Binding
    );
    let mut swapped = quote.attestation.clone();
    swapped.host_measurement = "22".repeat(32);
    assert_eq!(
        verify_attestation(&swapped, &dev_policy()).unwrap_err(),
        VerifyError::Binding
    );
    let mut swapped = quote.attestation.clone();
    swapped.key_created_at += 1;
    assert_eq!(
        verify_attestation(&swapped, &dev_policy()).unwrap_err(),
        VerifyError::Binding
    );
    // Pinning the host measurement works both ways.
    let pin = |m: [u8; 32]| Policy {
        expected_host_measurements: vec![m],
        ..dev_policy()
    };
    let real: [u8; 32] = hex::decode(&quote.attestation.host_measurement)
        .unwrap()
        .try_into()
        .unwrap();
    verify_attestation(&quote.attestation, &pin(real)).unwrap();
    assert!(matches!(
        verify_attestation(&quote.attestation, &pin([0; 32])),
        Err(VerifyError::Measurement(_))
    ));
    // Simulated evidence presented as hardware evidence is refused even when simulation is allowed.
    let mut disguised = quote.attestation.clone();
    disguised.evidence_format = "tdx-dcap-quote".into();
    assert_eq!(
        verify_attestation(&disguised, &dev_policy()).unwrap_err(),
        VerifyError::Simulated
    );
}

#[test]
fn without_a_provider_verifiable_routes_answer_503_and_plain_sessions_are_not_verifiable() {
    let server = TestServer::start();
    let client = server.client();
    let key = ClientSecret::generate().unwrap();
    let (status, body) = client
        .post_json(
            "/verifiable/encrypt/create_keypair",
            &json!({"pubkey": key.public_key().to_hex()}),
        )
        .unwrap();
    assert_eq!(
        (status, code(&body)),
        (503, "attestation_unavailable"),
        "{body}"
    );
    let (status, body) = get_json(&server, "/attestation");
    assert_eq!((status, body["provider"].as_str()), (200, Some("none")));
    assert!(body["attestation"].is_null());
    let (_, headers, _) = client
        .post_json_with("/encrypt/create_keypair", &json!({"pubkey": "zz"}), &[])
        .unwrap();
    assert_eq!(crate::payments::header(&headers, "x-attestation"), None);

    let sim = TestServer::start_with(SIMULATED);
    let (client, _key, plain) = session(&sim);
    let program = wasm("hello");
    let (status, json, _) = client
        .execute_raw(
            "/verifiable/execute/wasm",
            &plain,
            &ExecuteInput::new(&program),
        )
        .unwrap();
    assert_eq!(
        (status, code(&json)),
        (400, "session_not_verifiable"),
        "{json}"
    );
}

#[test]
fn a_component_statement_is_signed_by_the_attested_key_and_names_the_component() {
    let server = TestServer::start_with(SIMULATED);
    let (status, body) = get_json(&server, "/attestation");
    assert_eq!(status, 200);
    let att: Attestation = serde_json::from_value(body["attestation"].clone()).unwrap();
    let key = verify_attestation(&att, &dev_policy()).unwrap();

    let (client, _k, s) = session(&server);
    let program = wasm("host-crypto");
    let out = client
        .execute(&s, &ExecuteInput::new(&program))
        .unwrap()
        .stdout()
        .unwrap();
    let out = String::from_utf8(out).unwrap();
    let line = out.lines().find(|l| l.starts_with("attest: ")).expect(&out);
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .map(|h| hex::decode(h).unwrap())
            .unwrap()
    };
    assert!(
        line.starts_with("attest: simulated-not-for-production"),
        "{line}"
    );
    let component: [u8; 32] = field("component").try_into().unwrap();
    assert_eq!(
        component,
        sha256(&program),
        "the statement names the component's code hash"
    );
    assert_eq!(field("key"), key.signing_key.as_bytes().to_vec());
    // The statement carries the event log, so a third party can replay the platform as for
    // the host's own attestation.
    assert_eq!(
        String::from_utf8(field("event_log")).unwrap(),
        att.event_log
            .clone()
            .expect("simulated evidence has an event log")
    );
    let signature = field("signature");
    verify_component_statement(&key, &component, &[0x42; 64], &signature).unwrap();
    assert!(verify_component_statement(&key, &component, &[0x43; 64], &signature).is_err());
    assert!(verify_component_statement(&key, &sha256(b"other"), &[0x42; 64], &signature).is_err());
}

#[test]
fn python_scripts_on_the_attested_route_get_checked_receipts() {
    let server = TestServer::start_with(SIMULATED);
    let (client, session) = verifiable_session(&server);
    let script = b"def main(args):\n    return sorted(args)\n";
    let run = client
        .execute_python(&session, &ExecuteInput::new(script).args(["b", "a"]))
        .unwrap();
    assert_eq!(run.result.returned, Some(json!(["a", "b"])));
    let receipt = run.receipt.unwrap();
    assert_eq!(receipt.route, "/test/policy/unsafe/python/attest");
    assert_eq!(receipt.program_sha256, hex::encode(sha256(script)));
    assert!(receipt.policy.unwrap().starts_with("allow component="));

    // Without a policy, the receipt says so.
    let server = TestServer::start_with(&format!("{SIMULATED}[policy]\nenabled = false\n"));
    let (client, session) = verifiable_session(&server);
    let run = client
        .execute_python(&session, &ExecuteInput::new(b"print(1)"))
        .unwrap();
    assert_eq!(run.receipt.unwrap().policy, None);
}

#[test]
fn a_sealed_invocation_on_a_verifiable_session_gets_a_receipt_naming_the_agents_code() {
    let server = TestServer::start_with(SIMULATED);
    let (client, session) = verifiable_session(&server);
    let owner = ClientSecret::generate().unwrap();
    let component = wasm("text-stats");
    let agent = client
        .deploy_agent(
            &owner,
            &hypervisor_client::agents::Deployment {
                name: "stats",
                component: &component,
                ..Default::default()
            },
        )
        .unwrap();
    let code_hash = agent["latest"]["code_hash"].as_str().unwrap();
    let event = br#"{"text": "attested words"}"#;
    let run = client
        .invoke_sealed(&session, "stats", code_hash, event)
        .unwrap();
    let result: serde_json::Value = serde_json::from_slice(&run.stdout().unwrap()).unwrap();
    assert_eq!(result["words"], 2);
    let receipt = run
        .receipt
        .as_ref()
        .expect("a receipt on a verifiable session");
    assert_eq!(
        receipt.route, "/agents/stats/invoke",
        "the receipt names the agent"
    );
    assert_eq!(receipt.program_sha256, hex::encode(sha256(&component)));
    assert_eq!(receipt.stdin_sha256, hex::encode(sha256(event)));
    assert_eq!(receipt.result_commitment, hex::encode(run.commitment));
}

#[test]
fn an_agents_receipt_binds_the_calls_its_run_made_and_links_to_the_callees_record() {
    use hypervisor_protocol::attest::{StatementKind, as_refs, verify_statement};
    use hypervisor_protocol::grants::{AgentRef, Grants};
    let server = TestServer::start_with(SIMULATED);
    let (client, session) = verifiable_session(&server);
    let owner = ClientSecret::generate().unwrap();
    let deploy = |name: &str, guest: &str, grants: Option<Grants>| {
        client
            .deploy_agent(
                &owner,
                &hypervisor_client::agents::Deployment {
                    name,
                    component: &wasm(guest),
                    grants,
                    ..Default::default()
                },
            )
            .unwrap()
    };
    deploy("stats", "text-stats", None);
    let buyer = deploy(
        "buyer",
        "caller",
        Some(Grants {
            agents: vec![AgentRef {
                name: "stats".into(),
                owner_key: owner.public_key().to_hex(),
            }],
            ..Grants::default()
        }),
    );
    let code_hash = buyer["latest"]["code_hash"].as_str().unwrap();
    let event = br#"{"target": "stats", "body": {"event": {"text": "three small words"}}}"#;
    // The client checks the receipt's signature over every signed field, the calls included.
    let run = client
        .invoke_sealed(&session, "buyer", code_hash, event)
        .unwrap();
    let result: serde_json::Value = serde_json::from_slice(&run.stdout().unwrap()).unwrap();
    assert_eq!(
        result["responses"][0]["body"]["result"]["words"], 3,
        "{result}"
    );
    let receipt = run.receipt.clone().expect("a receipt");
    let calls = receipt.calls.clone().expect("the receipt names the calls");
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].callee, "stats");
    assert_eq!(calls[0].transaction, None);
    // Down the tree: the callee's record commits to exactly what the caller received.
    let callee_run = calls[0].callee_execution.clone().unwrap();
    let record = client.execution(&owner, &callee_run).unwrap();
    assert_eq!(record["commitment"], calls[0].response_sha256.as_str());
    assert_eq!(
        result["responses"][0]["body"]["execution_id"],
        callee_run.as_str()
    );
    // A receipt whose calls were altered (or dropped) no longer verifies.
    let key = hypervisor_protocol::EncodedPublicKey::from_hex("signing_key", &receipt.signing_key)
        .unwrap();
    let signature = hex::decode(&receipt.signature).unwrap();
    let verifies = |r: &hypervisor_protocol::wire::Receipt| {
        let fields = r.signed_fields().unwrap();
        verify_statement(&key, StatementKind::Receipt, &as_refs(&fields), &signature).is_ok()
    };
    assert!(verifies(&receipt));
    let mut altered = receipt.clone();
    altered.calls.as_mut().unwrap()[0].response_sha256 = "00".repeat(32);
    assert!(!verifies(&altered));
    let dropped = hypervisor_protocol::wire::Receipt {
        calls: None,
        ..receipt.clone()
    };
    assert!(!verifies(&dropped));
}
