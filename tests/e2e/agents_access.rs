//! Who may invoke an agent, end to end: sealed (private) agents and results bound to their
//! code, and the operator's policy and x402 payment on every invocation.

use hypervisor_client::agents::Deployment;
use hypervisor_protocol::ClientSecret;
use serde_json::{Value, json};

use crate::agents::{deploy, http, refused};
use crate::harness::{TestServer, wasm};

#[test]
fn a_sealed_agent_is_private_and_its_results_are_bound_to_its_code() {
    let server = TestServer::start();
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    let session = client.create_session(&owner).unwrap();
    let component = wasm("text-stats");
    let deployed = client
        .deploy_agent_sealed(
            &owner,
            &session,
            &Deployment {
                name: "secret-stats",
                description: "private statistics",
                component: &component,
                ..Deployment::default()
            },
        )
        .unwrap();
    assert_eq!(deployed["public"], false);
    let code_hash = deployed["latest"]["code_hash"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        code_hash,
        hex::encode(hypervisor_protocol::sha256(&component))
    );

    // No clear invocations of a private agent.
    assert_eq!(
        refused(client.invoke("secret-stats", json!({"text": "a b"}))),
        (403, "agent_not_public".to_string())
    );

    // A caller with a session of its own invokes it sealed; the result checks out against
    // the agent's code hash.
    let caller = ClientSecret::generate().unwrap();
    let caller_session = client.create_session(&caller).unwrap();
    let run = client
        .invoke_sealed(
            &caller_session,
            "secret-stats",
            &code_hash,
            br#"{"text": "alpha beta gamma"}"#,
        )
        .unwrap();
    let result: Value = serde_json::from_slice(&run.stdout().unwrap()).unwrap();
    assert_eq!(result["words"], 3);
    // Checked against another code hash, the same answer is refused.
    let wrong = hex::encode([7u8; 32]);
    assert!(
        client
            .invoke_sealed(&caller_session, "secret-stats", &wrong, br#"{"text": "x"}"#)
            .is_err()
    );
    // What a sealed invocation printed is not in the owner's logs.
    assert!(
        client.agent_logs(&owner, "secret-stats").unwrap()["logs"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn policy_and_payment_run_on_every_invocation() {
    use hypervisor_client::x402::{Offer, PaymentLimit, Wallet};
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules.toml");
    std::fs::write(
        &rules,
        "[routes.\"/agents/blocked/invoke\"]\nenabled = false\n",
    )
    .unwrap();
    let server = TestServer::start_with(&format!(
        "{}{}",
        crate::payments::payments_table(""),
        crate::harness::policy_table(
            "policy-python",
            &format!("rules = {:?}", rules.display().to_string())
        ),
    ));
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    let stats = wasm("text-stats");

    // The operator's policy sees every invocation (route, agent, code hash) and may refuse it.
    deploy(
        &client,
        &owner,
        "blocked",
        "text-stats",
        "refused by policy",
        &[],
    );
    assert_eq!(
        refused(client.invoke("blocked", json!({"text": "x"}))),
        (403, "policy_denied".to_string())
    );

    // A paid agent answers 402 with its own price until paid, like any x402 resource.
    client
        .deploy_agent(
            &owner,
            &Deployment {
                name: "paid",
                component: &stats,
                price: Some("5000".into()),
                ..Deployment::default()
            },
        )
        .unwrap();
    let path = "/agents/paid/invoke";
    let body = json!({"event": {"text": "paid words here"}});
    let (status, headers, challenge) = client.post_json_with(path, &body, &[]).unwrap();
    assert_eq!(status, 402, "{challenge}");
    assert_eq!(challenge["accepts"][0]["maxAmountRequired"], "5000");
    assert!(
        challenge["accepts"][0]["resource"]
            .as_str()
            .unwrap()
            .ends_with(path)
    );
    let required = headers
        .iter()
        .find(|(k, _)| k == "payment-required")
        .map(|(_, v)| v.as_str());
    let offer = Offer::from_402(required, &challenge).unwrap();
    let wallet = Wallet::random().unwrap();
    let now = crate::payments::now();
    let (name, value) = wallet.pay(&offer, &PaymentLimit::new(5_000), now).unwrap();
    let (status, headers, out) = client
        .post_json_with(path, &body, &[(name, value.clone())])
        .unwrap();
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["result"]["words"], 3);
    let settlement = headers
        .iter()
        .find(|(k, _)| k == "payment-response")
        .map(|(_, v)| crate::payments::b64_json(v))
        .expect("PAYMENT-RESPONSE");
    assert_eq!(settlement["success"], true);
    let record = client
        .execution(&owner, out["execution_id"].as_str().unwrap())
        .unwrap();
    assert!(
        record["payment"]
            .as_str()
            .unwrap()
            .starts_with("x402 eip155:84532 5000 payer="),
        "{record}"
    );
    // The same payment again is a replay.
    let (status, _, out) = client
        .post_json_with(path, &body, &[(name, value)])
        .unwrap();
    assert_eq!(
        (status, out["error"].as_str()),
        (402, Some("invalid_exact_evm_nonce_already_used"))
    );

    // A paid HTTP agent too.
    let web = wasm("http-hello");
    client
        .deploy_agent(
            &owner,
            &Deployment {
                name: "paid-web",
                component: &web,
                price: Some("7000".into()),
                ..Deployment::default()
            },
        )
        .unwrap();
    let (status, _, text) = http("GET", &format!("{}/agents/paid-web/", server.url), None);
    assert_eq!(status, 402, "{text}");
    let json: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["accepts"][0]["maxAmountRequired"], "7000");
}
