//! What outside users hit when paying agents: a paid agent charges only a successful run unless
//! its owner deployed it to charge every run, and its 402 says which; an HTTP agent's challenge
//! names the URL requested and the media type its owner declared; a price is refused at deploy
//! on a host that takes no payments; search takes `description` as well as `query`.

use hypervisor_client::agents::Deployment;
use hypervisor_client::x402::{Offer, PaymentLimit, Wallet};
use hypervisor_client::{Client, ClientError};
use hypervisor_protocol::ClientSecret;
use hypervisor_protocol::agents::ChargeRule;
use serde_json::{Value, json};

use crate::agents::refused;
use crate::harness::{TestServer, wasm};
use crate::payments::{b64_json, header, now, payments_table};

/// Sends `POST path` (an HTTP agent's path) with an optional payment header.
fn post(
    client: &Client,
    path: &str,
    pay: Option<&(&str, String)>,
) -> (u16, Vec<(String, String)>, Value) {
    let headers: Vec<(&str, String)> = pay.map(|(n, v)| (*n, v.clone())).into_iter().collect();
    client.post_json_with(path, &json!({}), &headers).unwrap()
}

/// The challenge of `path` and a fresh wallet's v2 payment for it.
fn challenge_and_payment(client: &Client, path: &str) -> (Value, (&'static str, String)) {
    let (status, headers, challenge) = post(client, path, None);
    assert_eq!(status, 402, "{challenge}");
    let offer = Offer::from_402(header(&headers, "payment-required"), &challenge).unwrap();
    let wallet = Wallet::random().unwrap();
    let payment = wallet
        .pay(&offer, &PaymentLimit::new(7_000), now())
        .unwrap();
    (challenge, payment)
}

#[test]
fn paid_agents_charge_successful_runs_unless_deployed_to_charge_every_run() {
    let server = TestServer::start_with(&payments_table(""));
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    let web = wasm("http-hello");
    for (name, charge, content_type) in [
        ("web", None, Some("text/plain")),
        ("web-always", Some(ChargeRule::Always), None),
    ] {
        client
            .deploy_agent(
                &owner,
                &Deployment {
                    name,
                    component: &web,
                    price: Some("7000".into()),
                    charge,
                    content_type: content_type.map(str::to_string),
                    ..Deployment::default()
                },
            )
            .unwrap();
    }

    // The challenge names the agent (never the path or query requested, which may carry the
    // caller's data and would go to a facilitator), the declared media type, and when the run
    // is charged.
    let (challenge, payment) = challenge_and_payment(&client, "/agents/web/missing?page=2");
    let offered = &challenge["accepts"][0];
    assert!(
        offered["resource"]
            .as_str()
            .unwrap()
            .ends_with("/agents/web/"),
        "{challenge}"
    );
    assert_eq!(offered["mimeType"], "text/plain");
    assert!(
        offered["description"]
            .as_str()
            .unwrap()
            .contains("only if the run succeeds"),
        "{challenge}"
    );

    // The agent answers 404: not charged, no settlement, and the same payment pays for the
    // next request, once.
    let (status, headers, _) = post(&client, "/agents/web/missing?page=2", Some(&payment));
    assert_eq!(status, 404);
    assert!(
        header(&headers, "payment-response").is_none(),
        "a 404 was settled"
    );
    let (status, headers, _) = post(&client, "/agents/web/echo", Some(&payment));
    assert_eq!(status, 200);
    let settlement = b64_json(header(&headers, "payment-response").expect("PAYMENT-RESPONSE"));
    assert_eq!(settlement["success"], true);
    let (status, _, out) = post(&client, "/agents/web/echo", Some(&payment));
    assert_eq!(status, 402, "{out}");
    assert_eq!(out["code"], "invalid_exact_evm_nonce_already_used");

    // An agent deployed to charge every run says so, declares no type, and charges its 404.
    let (challenge, payment) = challenge_and_payment(&client, "/agents/web-always/missing");
    let offered = &challenge["accepts"][0];
    assert_eq!(offered["mimeType"], "application/octet-stream");
    assert!(
        offered["description"]
            .as_str()
            .unwrap()
            .contains("every run"),
        "{challenge}"
    );
    let (status, headers, _) = post(&client, "/agents/web-always/missing", Some(&payment));
    assert_eq!(status, 404);
    assert!(
        header(&headers, "payment-response").is_some(),
        "charge = always settles the 404"
    );
    let (status, _, _) = post(&client, "/agents/web-always/echo", Some(&payment));
    assert_eq!(status, 402, "the payment was used");

    // A handler that fails is not charged either: its payment pays the next invocation.
    client
        .deploy_agent(
            &owner,
            &Deployment {
                name: "stats",
                component: &wasm("text-stats"),
                price: Some("7000".into()),
                ..Deployment::default()
            },
        )
        .unwrap();
    let path = "/agents/stats/invoke";
    let (status, headers, challenge) = client
        .post_json_with(path, &json!({"event": {"text": "x"}}), &[])
        .unwrap();
    assert_eq!(status, 402);
    let offer = Offer::from_402(header(&headers, "payment-required"), &challenge).unwrap();
    let pay = Wallet::random()
        .unwrap()
        .pay(&offer, &PaymentLimit::new(7_000), now())
        .unwrap();
    // text-stats answers an event without `text` with a handler error.
    let (status, headers, out) = client
        .post_json_with(
            path,
            &json!({"event": {"no": "text"}}),
            std::slice::from_ref(&pay),
        )
        .unwrap();
    assert_eq!((status, out["ok"].as_bool()), (200, Some(false)), "{out}");
    assert!(header(&headers, "payment-response").is_none(), "{out}");
    let (status, headers, out) = client
        .post_json_with(path, &json!({"event": {"text": "a b"}}), &[pay])
        .unwrap();
    assert_eq!((status, out["ok"].as_bool()), (200, Some(true)), "{out}");
    assert!(header(&headers, "payment-response").is_some());
}

#[test]
fn a_price_is_refused_at_deploy_on_a_host_without_payments_and_search_takes_a_description() {
    let server = TestServer::start();
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    let stats = wasm("text-stats");
    let priced = client.deploy_agent(
        &owner,
        &Deployment {
            name: "priced",
            component: &stats,
            price: Some("10".into()),
            ..Deployment::default()
        },
    );
    let (status, code) = refused(priced);
    assert_eq!((status, code.as_str()), (400, "invalid_request"));
    assert!(matches!(
        client.get_json("/agents/priced"),
        Err(ClientError::Server { status: 404, .. })
    ));

    client
        .deploy_agent(
            &owner,
            &Deployment {
                name: "counter",
                description: "counts the words of a text",
                component: &stats,
                ..Deployment::default()
            },
        )
        .unwrap();
    let (status, _, found) = client
        .post_json_with("/search", &json!({"description": "words of a text"}), &[])
        .unwrap();
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["results"][0]["name"], "counter");
    let (status, _, both) = client
        .post_json_with(
            "/search",
            &json!({"description": "words", "query": "words"}),
            &[],
        )
        .unwrap();
    assert_eq!(
        (status, both["error"]["code"].as_str()),
        (400, Some("invalid_request")),
        "{both}"
    );
}
