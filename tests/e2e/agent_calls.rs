//! Agent-to-agent calls (issue 15): an agent reaches other agents on the same host through
//! `http://NAME.agents.internal/…` and the host's search through
//! `http://hypervisor.internal/search`, with the standard `wasi:http/outgoing-handler`, only as
//! far as its signed grants allow; each call runs the callee through the pipeline in a fresh
//! sandbox; depth and fan-out are bounded; every call is in the caller's ledger and links the
//! caller's execution record to the callee's.
//!
//! The caller is `guests/caller` (a handler agent that calls what its event names and returns
//! what came back); callees are `text-stats` and `http-hello`.

use hypervisor_client::Client;
use hypervisor_client::agents::Deployment;
use hypervisor_protocol::ClientSecret;
use hypervisor_protocol::grants::{AgentRef, Grants};
use serde_json::{Value, json};

use crate::agents::refused;
use crate::harness::{TestServer, get_json, wasm};

fn reference(name: &str, owner: &ClientSecret) -> AgentRef {
    AgentRef {
        name: name.into(),
        owner_key: owner.public_key().to_hex(),
    }
}

fn deploy(
    client: &Client,
    owner: &ClientSecret,
    name: &str,
    guest: &str,
    description: &str,
    grants: Option<Grants>,
) {
    client
        .deploy_agent(
            owner,
            &Deployment {
                name,
                description,
                component: &wasm(guest),
                grants,
                ..Deployment::default()
            },
        )
        .unwrap();
}

/// Invokes the caller agent `name` with `event`; returns its result (the calls' responses).
fn call(client: &Client, name: &str, event: Value) -> Value {
    let out = client.invoke(name, event).unwrap();
    assert!(out.ok, "{out:?}");
    out.result_json().unwrap()
}

#[test]
fn an_agent_finds_a_granted_agent_by_search_calls_it_and_the_records_link_up() {
    let server = TestServer::start();
    let client = server.client();
    let seller_owner = ClientSecret::generate().unwrap();
    let buyer_owner = ClientSecret::generate().unwrap();
    deploy(
        &client,
        &seller_owner,
        "word-seller",
        "text-stats",
        "counts words and sentences of a text",
        None,
    );
    deploy(
        &client,
        &buyer_owner,
        "buyer",
        "caller",
        "buys word counts from other agents",
        Some(Grants {
            agents: vec![reference("word-seller", &seller_owner)],
            search: true,
            ..Grants::default()
        }),
    );

    let text = "One two three. Four!";
    let out = client
        .invoke(
            "buyer",
            json!({"find": "count words sentences", "body": {"event": {"text": text}}}),
        )
        .unwrap();
    assert!(out.ok, "{out:?}");
    let result = out.result_json().unwrap();
    assert_eq!(result["target"], "word-seller", "{result}");
    assert_eq!(result["url"], "http://word-seller.agents.internal/invoke");
    let answer = &result["responses"][0];
    assert_eq!(answer["status"], 200, "{answer}");
    // The callee ran in its own sandbox as an invocation of its own.
    assert_eq!(answer["body"]["agent"], "word-seller");
    assert_eq!(answer["body"]["result"]["words"], 4);
    assert_eq!(answer["body"]["result"]["sentences"], 2);
    let callee_run = answer["body"]["execution_id"].as_str().unwrap().to_string();

    // The owner's ledger: the search, then the call; the call links to the callee's record,
    // whose commitment is the hash of the body the caller got.
    let calls = client.agent_calls(&buyer_owner, "buyer").unwrap();
    assert_eq!(calls.len(), 2, "{calls:?}");
    let (invoke, search) = (&calls[0], &calls[1]);
    assert_eq!(search.callee, "hypervisor.internal");
    assert_eq!(search.path, "/search");
    assert_eq!(search.status, 200);
    assert_eq!(invoke.callee, "word-seller");
    assert_eq!(invoke.path, "/invoke");
    assert_eq!(invoke.status, 200);
    assert_eq!(invoke.caller_execution, out.execution_id);
    assert_eq!(
        invoke.callee_execution.as_deref(),
        Some(callee_run.as_str())
    );
    // Records are the caller's key's and the agent owner's to read.
    let callee_record = client.execution(&seller_owner, &callee_run).unwrap();
    assert_eq!(callee_record["agent"], "word-seller");
    assert_eq!(
        callee_record["commitment"].as_str(),
        invoke.response_sha256.as_deref(),
        "the callee's commitment is the hash of what the caller received"
    );
    // The caller's record lists its calls in the order made.
    let caller_record = client.execution(&buyer_owner, &out.execution_id).unwrap();
    let linked = caller_record["calls"].as_array().unwrap();
    assert_eq!(linked.len(), 2);
    assert_eq!(linked[1]["callee_execution"], callee_run.as_str());

    // Only the owner reads the ledger.
    let stranger = ClientSecret::generate().unwrap();
    assert_eq!(
        refused(client.agent_calls(&stranger, "buyer")),
        (403, "not_owner".into())
    );
}

#[test]
fn calls_outside_the_grants_are_refused_with_a_clear_error() {
    let server = TestServer::start();
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    let other_owner = ClientSecret::generate().unwrap();
    deploy(&client, &owner, "stats", "text-stats", "word counts", None);
    deploy(&client, &owner, "open", "text-stats", "word counts", None);
    deploy(
        &client,
        &owner,
        "picky",
        "text-stats",
        "word counts",
        Some(Grants {
            callers: Some(vec![reference("someone-else", &owner)]),
            ..Grants::default()
        }),
    );
    deploy(
        &client,
        &owner,
        "caller",
        "caller",
        "calls",
        Some(Grants {
            agents: vec![
                reference("stats", &owner),
                // Granted under another owner's key: not the agent deployed as `open`.
                reference("open", &other_owner),
                reference("picky", &owner),
            ],
            ..Grants::default()
        }),
    );
    deploy(
        &client,
        &owner,
        "island",
        "caller",
        "no grants at all",
        None,
    );
    let event = json!({"text": "a b"});

    let refusal = |agent: &str, target: &str| {
        let result = call(
            &client,
            agent,
            json!({"target": target, "body": {"event": event}}),
        );
        let r = &result["responses"][0];
        (
            r["status"].as_u64().unwrap(),
            r["body"]["error"]["code"].clone(),
        )
    };
    // Granted: runs.
    let ok = call(
        &client,
        "caller",
        json!({"target": "stats", "body": {"event": event}}),
    );
    assert_eq!(ok["responses"][0]["body"]["result"]["words"], 2, "{ok}");
    // Not named in the grants.
    assert_eq!(refusal("island", "stats"), (403, json!("call_not_granted")));
    assert_eq!(
        refusal("caller", "text-stats"),
        (403, json!("call_not_granted"))
    );
    // Named, but owned by another key than the grant's.
    assert_eq!(refusal("caller", "open"), (403, json!("call_not_granted")));
    // The callee's owner accepts only other callers.
    assert_eq!(
        refusal("caller", "picky"),
        (403, json!("caller_not_allowed"))
    );
    // Search is a grant too.
    let out = client.invoke("caller", json!({"find": "word"})).unwrap();
    assert!(!out.ok);
    let e = out.error.unwrap();
    assert_eq!(e.code, "search_failed", "{e:?}");
    assert!(e.message.contains("403"), "{e:?}");
    // A remote origin not granted never leaves the host: the standard wasi:http error.
    let out = client
        .invoke("caller", json!({"url": "http://127.0.0.1:9/x"}))
        .unwrap();
    let e = out.error.unwrap();
    assert_eq!(e.code, "request_failed");
    assert!(e.message.contains("HttpRequestDenied"), "{e:?}");
    // Refusals are not calls: nothing reached a callee, nothing is in the ledger but the run
    // that went through.
    let calls = client.agent_calls(&owner, "caller").unwrap();
    assert_eq!(
        calls.iter().filter(|c| c.status == 200).count(),
        1,
        "{calls:?}"
    );
}

#[test]
fn a_cycle_of_agents_stops_at_the_depth_limit() {
    let server = TestServer::start();
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    for (name, peer) in [("ping", "pong"), ("pong", "ping")] {
        deploy(
            &client,
            &owner,
            name,
            "caller",
            "calls its peer",
            Some(Grants {
                agents: vec![reference(peer, &owner)],
                ..Grants::default()
            }),
        );
    }
    let result = call(&client, "ping", json!({"cycle": ["ping", "pong"]}));
    // Walk down the nested answers: ping (depth 0) → pong (1) → ping (2) → pong (3) → ping (4),
    // whose call to pong would be depth 5 > 4.
    let mut level = &result;
    let mut depth = 0;
    let refusal = loop {
        let r = &level["responses"][0];
        if r["status"] != 200 {
            break r;
        }
        level = &r["body"]["result"];
        depth += 1;
        assert!(depth <= 10, "no end: {result}");
    };
    assert_eq!(depth, 4, "{result}");
    assert_eq!(refusal["status"], 508, "{refusal}");
    assert_eq!(refusal["body"]["error"]["code"], "call_depth_exceeded");
}

#[test]
fn fan_out_is_bounded_per_run() {
    let server = TestServer::start_with("[egress]\nmax_calls_per_run = 3\n");
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    deploy(&client, &owner, "web", "http-hello", "greets", None);
    deploy(
        &client,
        &owner,
        "fan",
        "caller",
        "calls many times",
        Some(Grants {
            agents: vec![reference("web", &owner)],
            ..Grants::default()
        }),
    );
    // An HTTP agent is called at its own paths.
    let result = call(
        &client,
        "fan",
        json!({"target": "web", "path": "/", "method": "GET", "times": 5}),
    );
    let statuses: Vec<u64> = result["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 200, 200, 429, 429], "{result}");
    assert_eq!(
        result["responses"][0]["body"],
        "Hello from a WASM Hypervisor agent\n"
    );
    assert_eq!(
        result["responses"][3]["body"]["error"]["code"],
        "call_fan_out_exceeded"
    );
}

#[test]
fn grants_are_signed_read_back_and_replaced_only_by_the_owner() {
    let server = TestServer::start();
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    deploy(&client, &owner, "stats", "text-stats", "word counts", None);
    let granted = Grants {
        agents: vec![reference("stats", &owner)],
        ..Grants::default()
    };
    deploy(&client, &owner, "caller", "caller", "calls", None);
    // Nothing granted at first; grants are not in the public listing.
    assert_eq!(
        client.agent_grants(&owner, "caller").unwrap(),
        Grants::default()
    );
    let (_, shown) = get_json(&server, "/agents/caller");
    assert!(shown.get("grants").is_none(), "{shown}");
    let status_of = |client: &Client| {
        call(
            client,
            "caller",
            json!({"target": "stats", "body": {"event": {"text": "x"}}}),
        )["responses"][0]["status"]
            .clone()
    };
    assert_eq!(status_of(&client), 403);

    // A stranger cannot grant, or read.
    let stranger = ClientSecret::generate().unwrap();
    assert_eq!(
        refused(client.set_agent_grants(&stranger, "caller", &granted)),
        (403, "not_owner".into())
    );
    assert_eq!(
        refused(client.agent_grants(&stranger, "caller")),
        (403, "not_owner".into())
    );
    // The owner grants; the next run may call.
    assert_eq!(
        client.set_agent_grants(&owner, "caller", &granted).unwrap(),
        granted
    );
    assert_eq!(client.agent_grants(&owner, "caller").unwrap(), granted);
    assert_eq!(status_of(&client), 200);

    // Bad grants are refused before anything is stored.
    let remote_http = Grants {
        origins: vec!["http://example.com".into()],
        ..Grants::default()
    };
    assert_eq!(
        refused(client.set_agent_grants(&owner, "caller", &remote_http)),
        (400, "invalid_request".into())
    );
    // A signature over other grants than those sent does not verify.
    let body = json!({
        "grants": {"agents": [], "search": true},
        "signature": "00".repeat(64),
        "signed_at": 1,
        "sequence": 1,
    });
    let (status, _, refusal) = client
        .put_json_with(
            "/agents/caller/grants",
            &body,
            &[("x-agent-owner", owner.public_key().to_hex())],
        )
        .unwrap();
    assert_eq!(status, 403, "{refusal}");
    assert_eq!(refusal["error"]["code"], "owner_signature_invalid");
    assert_eq!(client.agent_grants(&owner, "caller").unwrap(), granted);
}

/// The configuration of a host taking payments through the local chain's facilitator, paying
/// `chain`'s operator.
fn paying_config(chain: &crate::local_chain::LocalChain) -> String {
    format!(
        "[payments]\nenabled = true\ncomponent = {:?}\nmode = \"facilitator\"\nfacilitator_url = {:?}\n\
         [payments.price]\namount = \"10000\"\npay_to = {:?}\nasset = {:?}\n",
        crate::harness::wasm_path("payments").display().to_string(),
        chain.facilitator_url,
        chain.accounts.pay_to,
        chain.accounts.token,
    )
}

/// Deploys `text-stats` as `word-seller` at 0.01 USDC a call.
fn deploy_seller(client: &Client, owner: &ClientSecret) {
    client
        .deploy_agent(
            owner,
            &Deployment {
                name: "word-seller",
                description: "counts words and sentences of a text",
                component: &wasm("text-stats"),
                price: Some("10000".into()),
                ..Deployment::default()
            },
        )
        .unwrap();
}

/// Asserts the first response of `result` is a paid 200 whose handler counted `words`, and
/// that exactly the price (10000) moved from the payer to the payee since `before`.
fn assert_paid(
    chain: &crate::local_chain::LocalChain,
    result: &Value,
    words: u64,
    before: (u128, u128),
) {
    let answer = &result["responses"][0];
    assert_eq!(
        answer["status"],
        200,
        "{result}\n{}",
        chain.facilitator_log()
    );
    assert_eq!(answer["body"]["result"]["words"], words, "{answer}");
    assert!(answer["payment_response"].is_string(), "{answer}");
    let a = &chain.accounts;
    assert_eq!(chain.balance(&a.payer), before.0 - 10_000);
    assert_eq!(chain.balance(&a.pay_to), before.1 + 10_000);
}

/// Deploys `guests/caller` as `buyer` with `grants`, attaches the local chain's payer key as its
/// wallet (USDC on the local chain, to the operator, 0.01 a call and a day); returns the payer's
/// and the payee's balances before any call.
fn buyer_with_wallet(
    client: &Client,
    owner: &ClientSecret,
    session: &hypervisor_client::Session,
    chain: &crate::local_chain::LocalChain,
    grants: Grants,
) -> (u128, u128) {
    deploy(client, owner, "buyer", "caller", "buys", Some(grants));
    client
        .attach_wallet(
            owner,
            session,
            "buyer",
            &chain.accounts.payer_key,
            &policy(chain, "eip155:84532", "10000"),
        )
        .unwrap();
    let a = &chain.accounts;
    (chain.balance(&a.payer), chain.balance(&a.pay_to))
}

fn policy(
    chain: &crate::local_chain::LocalChain,
    network: &str,
    per_day: &str,
) -> hypervisor_protocol::wallet::SpendingPolicy {
    hypervisor_protocol::wallet::SpendingPolicy {
        networks: vec![network.into()],
        assets: vec![chain.accounts.token.clone()],
        max_per_call: "10000".into(),
        max_per_day: per_day.into(),
        max_total: "1000000".into(),
        payees: Some(vec![chain.accounts.pay_to.clone()]),
    }
}

#[test]
fn a_buyer_agent_finds_pays_and_gets_the_sellers_answer_within_its_wallets_budget() {
    let chain = crate::local_chain::LocalChain::start();
    let a = chain.accounts.clone();
    let server = TestServer::start_with(&paying_config(&chain));
    let client = server.client();
    let seller_owner = ClientSecret::generate().unwrap();
    deploy_seller(&client, &seller_owner);
    let (_, buyer_owner, session) = crate::harness::session(&server);
    let grants = Grants {
        agents: vec![reference("word-seller", &seller_owner)],
        search: true,
        ..Grants::default()
    };
    for name in ["buyer", "broke-buyer", "wrong-network-buyer"] {
        deploy(
            &client,
            &buyer_owner,
            name,
            "caller",
            "buys",
            Some(grants.clone()),
        );
    }
    // Without a wallet the buyer gets the seller's 402 itself: nothing signed.
    let unpaid = call(
        &client,
        "broke-buyer",
        json!({"target": "word-seller", "body": {"event": {"text": "a"}}}),
    );
    assert_eq!(unpaid["responses"][0]["status"], 402, "{unpaid}");

    // The owner attaches the payer's key (sealed to a session) with a policy: USDC on the
    // local chain, to the operator only, at most 0.01 per call and 0.015 a day.
    let info = client
        .attach_wallet(
            &buyer_owner,
            &session,
            "buyer",
            &a.payer_key,
            &policy(&chain, "eip155:84532", "15000"),
        )
        .unwrap();
    assert!(info.address.eq_ignore_ascii_case(&a.payer), "{info:?}");
    assert_eq!(info.spent_total, "0");
    // Another key cannot attach or read it; the key never comes back.
    let stranger = ClientSecret::generate().unwrap();
    assert_eq!(
        refused(client.agent_wallet(&stranger, "buyer")),
        (403, "not_owner".into())
    );
    let shown =
        serde_json::to_string(&client.agent_wallet(&buyer_owner, "buyer").unwrap()).unwrap();
    assert!(
        !shown.contains(a.payer_key.trim_start_matches("0x")),
        "{shown}"
    );

    let (payer0, pay_to0) = (chain.balance(&a.payer), chain.balance(&a.pay_to));
    let text = "Buy these words. Now!";
    let out = client
        .invoke(
            "buyer",
            json!({"find": "count words sentences", "body": {"event": {"text": text}}}),
        )
        .unwrap();
    assert!(out.ok, "{out:?}");
    let result = out.result_json().unwrap();
    // A paid answer, and exactly the price moved from the buyer's wallet to the seller's payee.
    assert_paid(&chain, &result, 4, (payer0, pay_to0));
    // The spend is recorded; the ledger links the call, its transaction and the callee's run.
    let info = client.agent_wallet(&buyer_owner, "buyer").unwrap();
    assert_eq!(
        (info.spent_last_day.as_str(), info.spent_total.as_str()),
        ("10000", "10000")
    );
    let calls = client.agent_calls(&buyer_owner, "buyer").unwrap();
    let paid = calls.iter().find(|c| c.callee == "word-seller").unwrap();
    let tx = paid.settlement.as_ref().unwrap()["transaction"]
        .as_str()
        .unwrap();
    assert!(tx.starts_with("0x") && tx.len() == 66, "{paid:?}");
    let seller_run = client
        .execution(&seller_owner, paid.callee_execution.as_deref().unwrap())
        .unwrap();
    assert!(seller_run["payment"].is_string(), "{seller_run}");

    // The next call would pass the day's budget: refused, nothing signed, nothing moved.
    let over = call(
        &client,
        "buyer",
        json!({"target": "word-seller", "body": {"event": {"text": "more"}}}),
    );
    let refusal = &over["responses"][0];
    assert_eq!(refusal["status"], 403, "{over}");
    assert_eq!(refusal["body"]["error"]["code"], "spending_refused");
    assert!(
        refusal["body"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_per_day"),
        "{refusal}"
    );
    assert_eq!(chain.balance(&a.payer), payer0 - 10_000);
    let info = client.agent_wallet(&buyer_owner, "buyer").unwrap();
    assert_eq!(info.spent_total, "10000");

    // A wallet whose policy names another network signs nothing for this seller.
    client
        .attach_wallet(
            &buyer_owner,
            &session,
            "wrong-network-buyer",
            &a.payer_key,
            &policy(&chain, "eip155:1", "15000"),
        )
        .unwrap();
    let wrong = call(
        &client,
        "wrong-network-buyer",
        json!({"target": "word-seller", "body": {"event": {"text": "a"}}}),
    );
    assert_eq!(
        wrong["responses"][0]["body"]["error"]["code"], "spending_refused",
        "{wrong}"
    );
    assert_eq!(chain.balance(&a.payer), payer0 - 10_000);
}

#[test]
fn killing_the_host_mid_payment_leaves_the_spend_counted_and_nothing_paid_twice() {
    let chain = crate::local_chain::LocalChain::start();
    let a = chain.accounts.clone();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let config = paying_config(&chain);
    let server = TestServer::start_in(&data, &config);
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    deploy_seller(&client, &owner);
    let grants = Grants {
        agents: vec![reference("word-seller", &owner)],
        ..Grants::default()
    };
    deploy(&client, &owner, "buyer", "caller", "buys", Some(grants));
    let session = client.create_session(&owner).unwrap();
    // A budget of exactly one payment.
    let once = hypervisor_protocol::wallet::SpendingPolicy {
        max_total: "10000".into(),
        ..policy(&chain, "eip155:84532", "10000")
    };
    client
        .attach_wallet(&owner, &session, "buyer", &a.payer_key, &once)
        .unwrap();
    let (payer0, pay_to0) = (chain.balance(&a.payer), chain.balance(&a.pay_to));
    let event = json!({"target": "word-seller", "body": {"event": {"text": "a b"}}});

    // The facilitator is paused: the seller's check of the payment hangs after the buyer's
    // wallet has reserved and signed it. Then the host dies.
    crate::settlement::signal("-STOP", chain.facilitator_pid());
    std::thread::scope(|scope| {
        let call = scope.spawn(|| server.client().invoke("buyer", event.clone()));
        crate::settlement::wait_until("the buyer's spend is reserved", || {
            client
                .agent_wallet(&owner, "buyer")
                .is_ok_and(|w| w.spent_total == "10000")
        });
        std::thread::sleep(std::time::Duration::from_millis(300));
        crate::settlement::signal("-9", server.pid());
        assert!(
            call.join().unwrap().is_err(),
            "the host died under the call"
        );
    });
    crate::settlement::signal("-CONT", chain.facilitator_pid());
    std::thread::sleep(std::time::Duration::from_secs(2));

    // After a restart the spend still counts: the next call is over the budget, and nothing
    // more is signed.
    let restarted = TestServer::start_in(&data, &config);
    let client = restarted.client();
    assert_eq!(
        client.agent_wallet(&owner, "buyer").unwrap().spent_total,
        "10000"
    );
    let again = call(&client, "buyer", event);
    assert_eq!(
        again["responses"][0]["body"]["error"]["code"], "spending_refused",
        "{again}"
    );
    let charged = payer0 - chain.balance(&a.payer);
    assert!(charged == 0 || charged == 10_000, "charged {charged}");
    assert_eq!(chain.balance(&a.pay_to) - pay_to0, charged);
    drop(server);
}

/// A call to an agent on another hypervisor: sent only after the remote's attestation checks
/// out against the grant (simulated evidence only where the grant allows it), sealed to a
/// session with it, and answered with its checked receipt.
#[cfg(feature = "simulated-attestation")]
#[test]
fn a_remote_hypervisor_is_called_only_when_its_platform_matches_what_the_grant_names() {
    let remote = TestServer::start_with("[attestation]\nprovider = \"simulated\"\n");
    let remote_client = remote.client();
    let owner = ClientSecret::generate().unwrap();
    deploy(
        &remote_client,
        &owner,
        "stats",
        "text-stats",
        "word counts",
        None,
    );
    let (_, attestation) = get_json(&remote, "/attestation");
    let measurement = attestation["attestation"]["host_measurement"]
        .as_str()
        .unwrap()
        .to_string();

    let host = TestServer::start_with("[egress]\nallow_loopback_http = true\n");
    let client = host.client();
    let grant = |allow_simulated: bool, mrtd: &str| {
        // The remote's own binary, so the right claimed host_measurement, on the platform
        // whose MRTD is `mrtd`.
        let mut set = crate::harness::simulated_reference();
        set.tdx.as_mut().unwrap().mrtd = mrtd.to_string();
        Grants {
            hypervisors: vec![hypervisor_protocol::grants::HypervisorGrant {
                origin: remote.url.clone(),
                reference_values: vec![set],
                measurements: Vec::new(),
                allow_simulated,
            }],
            ..Grants::default()
        }
    };
    let remote_mrtd = crate::harness::simulated_register("MRTD");
    deploy(
        &client,
        &owner,
        "buyer",
        "caller",
        "",
        Some(grant(true, &remote_mrtd)),
    );
    deploy(
        &client,
        &owner,
        "strict",
        "caller",
        "",
        Some(grant(false, &remote_mrtd)),
    );
    // The right claimed binary, but the grant pins another platform.
    deploy(
        &client,
        &owner,
        "other",
        "caller",
        "",
        Some(grant(true, &"00".repeat(48))),
    );
    // The old form (host-binary measurements only) is refused when the grant is made.
    let old = Grants {
        hypervisors: vec![hypervisor_protocol::grants::HypervisorGrant {
            origin: remote.url.clone(),
            reference_values: Vec::new(),
            measurements: vec![measurement.clone()],
            allow_simulated: true,
        }],
        ..Grants::default()
    };
    let refused = client
        .deploy_agent(
            &owner,
            &Deployment {
                name: "old-form",
                component: &wasm("caller"),
                grants: Some(old),
                ..Deployment::default()
            },
        )
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("invalid_request") && refused.contains("no longer accepted"),
        "{refused}"
    );
    let event = json!({
        "url": format!("{}/agents/stats/invoke", remote.url),
        "body": {"event": {"text": "three remote words"}},
    });
    let remote_runs = || remote_client.executions(&owner, 0, 1000).unwrap().len();

    let result = call(&client, "buyer", event.clone());
    let answer = &result["responses"][0];
    assert_eq!(answer["status"], 200, "{result}");
    assert_eq!(answer["body"]["ok"], true, "{answer}");
    assert_eq!(answer["body"]["result"]["words"], 3);
    assert_eq!(answer["body"]["receipt"]["route"], "/agents/stats/invoke");
    assert_eq!(answer["body"]["attested"]["simulated"], true);
    assert_eq!(
        answer["body"]["attested"]["host_measurement"],
        measurement.as_str()
    );
    let ran = remote_runs();
    assert_eq!(ran, 1);

    // Simulated evidence not allowed by the grant, or another platform: nothing is sent.
    for agent in ["strict", "other"] {
        let result = call(&client, agent, event.clone());
        let refusal = &result["responses"][0];
        assert_eq!(refusal["status"], 502, "{result}");
        assert_eq!(refusal["body"]["error"]["code"], "remote_not_attested");
        if agent == "other" {
            let message = refusal["body"]["error"]["message"].as_str().unwrap();
            assert!(message.contains("MRTD differs"), "{message}");
        }
    }
    assert_eq!(
        remote_runs(),
        ran,
        "the remote ran nothing for unverified calls"
    );
}

/// A loopback TCP relay to `target` (`http://host:port`) keeping a copy of every byte sent
/// through it towards the target: what an observer of the network between two hosts sees.
struct Tap {
    url: String,
    seen: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Tap {
    fn to(target: &str) -> Self {
        use std::io::{Read, Write};
        use std::net::{Shutdown, TcpListener, TcpStream};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let target = target.trim_start_matches("http://").to_string();
        let kept = seen.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let (Ok(client), Ok(server)) = (client, TcpStream::connect(&target)) else {
                    continue;
                };
                let (mut from_client, mut to_server) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let kept = kept.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 8192];
                    while let Ok(n) = from_client.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        kept.lock().unwrap().extend_from_slice(&buf[..n]);
                        if to_server.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to_server.shutdown(Shutdown::Write);
                });
                let (mut from_server, mut to_client) = (server, client);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from_server, &mut to_client);
                    let _ = to_client.shutdown(Shutdown::Write);
                });
            }
        });
        Self { url, seen }
    }

    /// The value of header `name` in what went through, if any.
    fn header(&self, name: &str) -> Option<String> {
        let seen = String::from_utf8_lossy(&self.seen.lock().unwrap()).into_owned();
        seen.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

#[test]
fn a_granted_x402_server_elsewhere_is_paid_from_the_wallet_and_refuses_a_replay() {
    let chain = crate::local_chain::LocalChain::start();
    let a = chain.accounts.clone();
    // The seller is any x402 server; here another host, reached as a plain granted origin,
    // through a relay that sees the traffic.
    let seller_host = TestServer::start_with(&paying_config(&chain));
    let seller_owner = ClientSecret::generate().unwrap();
    deploy_seller(&seller_host.client(), &seller_owner);
    let tap = Tap::to(&seller_host.url);

    let host = TestServer::start_with("[egress]\nallow_loopback_http = true\n");
    let client = host.client();
    let (_, owner, session) = crate::harness::session(&host);
    let grants = Grants {
        origins: vec![tap.url.clone()],
        ..Grants::default()
    };
    let (payer0, pay_to0) = buyer_with_wallet(&client, &owner, &session, &chain, grants);
    let result = call(
        &client,
        "buyer",
        json!({
            "url": format!("{}/agents/word-seller/invoke", tap.url),
            "body": {"event": {"text": "two words"}},
        }),
    );
    // A paid answer, and exactly the price moved from the buyer's wallet to the seller's payee.
    assert_paid(&chain, &result, 2, (payer0, pay_to0));
    let calls = client.agent_calls(&owner, "buyer").unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].callee, tap.url, "{calls:?}");
    assert!(calls[0].settlement.as_ref().unwrap()["transaction"].is_string());

    // Whoever saw the payment on the way replays it to the seller: refused, nothing moves.
    let payment = tap
        .header("payment-signature")
        .or_else(|| tap.header("x-payment"))
        .expect("the payment went through the relay");
    let name = if tap.header("payment-signature").is_some() {
        "payment-signature"
    } else {
        "x-payment"
    };
    let (status, _, refusal) = seller_host
        .client()
        .post_json_with(
            "/agents/word-seller/invoke",
            &json!({"event": {"text": "replayed"}}),
            &[(name, payment)],
        )
        .unwrap();
    assert_eq!(status, 402, "{refusal}");
    // Refused as a spent authorization (the seller's durable ledger, or the facilitator).
    assert_eq!(
        refusal["error"], "invalid_exact_evm_nonce_already_used",
        "{refusal}"
    );
    assert_eq!(chain.balance(&a.payer), payer0 - 10_000);
    assert_eq!(chain.balance(&a.pay_to), pay_to0 + 10_000);
}

/// A priced agent on another hypervisor: attested first, then paid from the caller's wallet on
/// its sealed route, within the policy; over the budget nothing is signed.
#[cfg(feature = "simulated-attestation")]
#[test]
fn a_priced_agent_on_another_hypervisor_is_paid_after_it_attests() {
    let chain = crate::local_chain::LocalChain::start();
    let a = chain.accounts.clone();
    let remote = TestServer::start_with(&format!(
        "{}[attestation]\nprovider = \"simulated\"\n",
        paying_config(&chain)
    ));
    let seller_owner = ClientSecret::generate().unwrap();
    deploy_seller(&remote.client(), &seller_owner);

    let host = TestServer::start_with("[egress]\nallow_loopback_http = true\n");
    let client = host.client();
    let (_, owner, session) = crate::harness::session(&host);
    let grants = crate::harness::simulated_remote_grant(&remote.url);
    let (payer0, pay_to0) = buyer_with_wallet(&client, &owner, &session, &chain, grants);
    let event = json!({
        "url": format!("{}/agents/word-seller/invoke", remote.url),
        "body": {"event": {"text": "paid remote words"}},
    });
    let result = call(&client, "buyer", event.clone());
    let answer = &result["responses"][0];
    assert_eq!(
        answer["status"],
        200,
        "{result}\n{}",
        chain.facilitator_log()
    );
    assert_eq!(answer["body"]["result"]["words"], 3, "{answer}");
    assert!(
        answer["body"]["settlement"]["transaction"].is_string(),
        "{answer}"
    );
    assert!(answer["body"]["receipt"]["payment"].is_string(), "{answer}");
    assert_eq!(chain.balance(&a.payer), payer0 - 10_000);
    assert_eq!(chain.balance(&a.pay_to), pay_to0 + 10_000);
    let info = client.agent_wallet(&owner, "buyer").unwrap();
    assert_eq!(info.spent_total, "10000");

    // The day's budget is spent: refused before anything is signed.
    let over = call(&client, "buyer", event);
    assert_eq!(
        over["responses"][0]["body"]["error"]["code"], "spending_refused",
        "{over}"
    );
    assert_eq!(chain.balance(&a.payer), payer0 - 10_000);
}

/// A grant stored in the old form (host-binary measurements, from before reference value
/// sets) still reads back after an upgrade, and a call through it is refused before anything
/// is sent: `403 remote_grant_outdated`, the remote runs nothing.
#[cfg(feature = "simulated-attestation")]
#[test]
fn a_grant_stored_in_the_old_form_is_refused_at_call_time() {
    let remote = TestServer::start_with("[attestation]\nprovider = \"simulated\"\n");
    let remote_client = remote.client();
    let owner = ClientSecret::generate().unwrap();
    deploy(&remote_client, &owner, "stats", "text-stats", "", None);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = "[egress]\nallow_loopback_http = true\n";
    let host = TestServer::start_in(&data, config);
    let grants = crate::harness::simulated_remote_grant(&remote.url);
    deploy(&host.client(), &owner, "buyer", "caller", "", Some(grants));
    host.stop();
    // What an older host stored: the measurements form, no reference sets.
    let old = json!({
        "agents": [], "origins": [], "search": false,
        "hypervisors": [{
            "origin": remote.url,
            "measurements": [hex::encode(crate::harness::host_measurement())],
            "allow_simulated": true,
        }],
    });
    let db = rusqlite::Connection::open(data.join("hypervisor.sqlite")).unwrap();
    let changed = db
        .execute(
            "UPDATE agents SET grants = ?1 WHERE name = 'buyer'",
            [old.to_string()],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(db);
    let host = TestServer::start_in(&data, config);
    let event = json!({
        "url": format!("{}/agents/stats/invoke", remote.url),
        "body": {"event": {"text": "three remote words"}},
    });
    let result = call(&host.client(), "buyer", event);
    let refusal = &result["responses"][0];
    assert_eq!(refusal["status"], 403, "{result}");
    assert_eq!(refusal["body"]["error"]["code"], "remote_grant_outdated");
    let message = refusal["body"]["error"]["message"].as_str().unwrap();
    assert!(message.contains("reference_values"), "{message}");
    assert!(
        remote_client.executions(&owner, 0, 100).unwrap().is_empty(),
        "the remote ran nothing"
    );
}
