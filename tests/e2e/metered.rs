//! Metered agents (x402 `upto`, PROTOCOL §6c): the payer signs a Permit2 authorization for the
//! agent's maximum, the host meters the run and settles what the signed tariff says it cost,
//! on a local chain with Permit2 and the x402 upto proxy at their canonical addresses, through
//! the official facilitator, paid by the official TypeScript and Python clients.

use hypervisor_client::agents::Deployment;
use hypervisor_protocol::ClientSecret;
use hypervisor_protocol::agents::JsSource;
use hypervisor_protocol::tariff::{Meter, Tariff};
use serde_json::{Value, json};

use crate::harness::TestServer;
use crate::local_chain::LocalChain;
use crate::payments::{b64_json, header};

/// Loops `n` times, then answers `pad` bytes of padding.
const WORK: &str = "export async function handler(event) {\n  let x = 0;\n  \
    for (let i = 0; i < event.n; i++) x = (x + i * 7) % 1000003;\n  \
    return { x, pad: 'y'.repeat(event.pad ?? 0) };\n}\n";

const MAXIMUM: u128 = 50_000;

fn tariff() -> Tariff {
    Tariff {
        fixed: "1000".into(),
        per_million_fuel: "2000".into(),
        per_ms: "0".into(),
        per_kib_out: "100".into(),
    }
}

/// Deploys `guests/caller` as `buyer`, granted to call `callee`, and attaches the wallet of
/// `key` (hex) under `policy`.
fn buyer_with_wallet(
    client: &hypervisor_client::Client,
    owner: &ClientSecret,
    callee: &str,
    key: &str,
    policy: &hypervisor_protocol::wallet::SpendingPolicy,
) {
    let grants = hypervisor_protocol::grants::Grants {
        agents: vec![hypervisor_protocol::grants::AgentRef {
            name: callee.into(),
            owner_key: owner.public_key().to_hex(),
        }],
        ..Default::default()
    };
    client
        .deploy_agent(
            owner,
            &Deployment {
                name: "buyer",
                description: "pays other agents",
                component: &crate::harness::wasm("caller"),
                grants: Some(grants),
                ..Deployment::default()
            },
        )
        .unwrap();
    let session = client.create_session(owner).unwrap();
    client
        .attach_wallet(owner, &session, "buyer", key, policy)
        .unwrap();
}

/// The meter and charge the execution record of a paid run states.
fn recorded(field: &str) -> (Meter, u128) {
    let part = |key: &str| {
        field
            .split(' ')
            .find_map(|p| p.strip_prefix(key))
            .unwrap_or_else(|| panic!("{key} in {field:?}"))
            .to_string()
    };
    let charged = part("charged=").parse().unwrap();
    let meter: Vec<u64> = part("meter=")
        .split(',')
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(part("tariff="), tariff().detail());
    (
        Meter {
            fuel: meter[0],
            ms: meter[1],
            output_bytes: meter[2],
        },
        charged,
    )
}

#[cfg(feature = "simulated-attestation")]
#[test]
fn the_official_client_pays_what_the_meter_says_up_to_the_maximum() {
    let chain = LocalChain::start_upto();
    let a = chain.accounts.clone();
    let config = format!(
        "[engine]\nfuel = true\n[attestation]\nprovider = \"simulated\"\n{}",
        chain.payments_table()
    )
    .replacen(
        "[payments.price]",
        &format!(
            "facilitator_address = {:?}\n[payments.price]",
            chain.facilitator_address()
        ),
        1,
    );
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(data.path(), &config);
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    let source = JsSource {
        engine: Default::default(),
        main: "main.js".into(),
        modules: [("main.js".to_string(), WORK.to_string())].into(),
    };
    client
        .deploy_js(
            &owner,
            &Deployment {
                name: "meter",
                price: Some(MAXIMUM.to_string()),
                tariff: Some(tariff()),
                ..Deployment::default()
            },
            &source,
        )
        .unwrap();
    let path = "/agents/meter/invoke";

    // The challenge offers `upto` for the maximum, with the facilitator and the tariff.
    let (status, headers, body) = client
        .post_json_with(path, &json!({"event": {"n": 1}}), &[])
        .unwrap();
    assert_eq!(status, 402, "{body}");
    let offered = b64_json(header(&headers, "payment-required").unwrap());
    let accepts = &offered["accepts"][0];
    assert_eq!(accepts["scheme"], "upto", "{offered}");
    assert_eq!(accepts["amount"], MAXIMUM.to_string());
    assert_eq!(
        accepts["extra"]["facilitatorAddress"],
        chain.facilitator_address()
    );
    assert_eq!(
        accepts["extra"]["tariff"],
        serde_json::to_value(tariff()).unwrap()
    );

    // The A2A card's skill and the MCP tool say how it charges.
    let (status, card) =
        crate::harness::get_json(&server, "/agents/meter/.well-known/agent-card.json");
    assert_eq!(status, 200, "{card}");
    let described = card["skills"][0]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(
        described.contains(&tariff().describe(&MAXIMUM.to_string())),
        "{card}"
    );
    let (status, tools) = crate::harness::curl_post(
        &server,
        "/mcp",
        &[
            "content-type: application/json",
            "accept: application/json, text/event-stream",
            "mcp-protocol-version: 2025-11-25",
        ],
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#,
    );
    assert_eq!(status, 200, "{tools}");
    let tool = &tools["result"]["tools"][0];
    assert_eq!(tool["name"], "meter", "{tools}");
    assert_eq!(
        tool["_meta"]["x402/upto"],
        json!({"maximum": MAXIMUM.to_string(), "tariff": tariff()})
    );

    let url = format!("{}{path}", server.url);
    let dir = tempfile::tempdir().unwrap();
    let pay = |body: Value, approve: bool| -> (Value, u128) {
        let file = dir.path().join("body.json");
        std::fs::write(&file, body.to_string()).unwrap();
        let before = chain.balance(&a.pay_to);
        let mut args = vec![
            "--url",
            url.as_str(),
            "--body",
            file.to_str().unwrap(),
            "--key",
            a.payer_key.as_str(),
            "--token",
            a.token.as_str(),
        ];
        if approve {
            args.extend(["--rpc", chain.rpc.as_str()]);
        }
        let out = chain.run_script("pay-upto.mjs", &args);
        (out, chain.balance(&a.pay_to) - before)
    };

    // Without the payer's one-time Permit2 approval the facilitator refuses the payment: 412,
    // as the upto scheme says, and nothing runs or moves.
    let (refused, moved) = pay(json!({"event": {"n": 10}}), false);
    assert_eq!(refused["status"], 412, "{refused}");
    assert_eq!(refused["body"]["code"], "permit2_allowance_required");
    assert_eq!(moved, 0);

    // A cheap run charges little: what the record's meter comes to by the signed tariff.
    let (cheap, moved) = pay(json!({"event": {"n": 10}}), true);
    assert_eq!(cheap["status"], 200, "{cheap}");
    let settlement = &cheap["settlement"];
    assert_eq!(settlement["success"], true, "{cheap}");
    let charged: u128 = settlement["amount"].as_str().unwrap().parse().unwrap();
    assert_eq!(moved, charged, "the chain moved what the answer says");
    let record = client
        .execution(
            &owner,
            cheap["body"]["execution_id"]
                .as_str()
                .unwrap_or_else(|| panic!("{cheap}")),
        )
        .unwrap();
    let (meter, recorded_charge) = recorded(record["payment"].as_str().unwrap());
    assert_eq!(recorded_charge, charged);
    assert_eq!(
        tariff().charge(&meter, MAXIMUM).unwrap(),
        charged,
        "{meter:?}"
    );
    assert!(meter.fuel > 0 && meter.output_bytes > 0, "{meter:?}");
    assert!(charged < MAXIMUM / 2, "a cheap run: {charged}");
    // The x402 receipt (offer-and-receipt extension, signed by the attested key) states the
    // meter, the tariff and the maximum; its amount is the charge they come to.
    let jws = settlement["extensions"]["offer-receipt"]["info"]["receipt"]["signature"]
        .as_str()
        .unwrap_or_else(|| panic!("{settlement}"));
    let payload: Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            jws.split('.').nth(1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let run = &payload["hypervisor"];
    assert_eq!(run["amount"], charged.to_string(), "{payload}");
    let m = &run["metered"];
    assert_eq!(m["maximum"], MAXIMUM.to_string());
    assert_eq!(m["tariff"], serde_json::to_value(tariff()).unwrap());
    let signed_meter = Meter {
        fuel: m["fuel"].as_u64().unwrap(),
        ms: m["ms"].as_u64().unwrap(),
        output_bytes: m["outputBytes"].as_u64().unwrap(),
    };
    assert_eq!(signed_meter, meter);

    // A larger answer and more work cost more, still by the formula.
    let (dearer, moved) = pay(json!({"event": {"n": 2_000, "pad": 4096}}), false);
    assert_eq!(dearer["status"], 200, "{dearer}");
    let dear_charge: u128 = dearer["settlement"]["amount"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(moved, dear_charge);
    assert!(dear_charge > charged, "{dear_charge} > {charged}");
    let record = client
        .execution(&owner, dearer["body"]["execution_id"].as_str().unwrap())
        .unwrap();
    let (meter, _) = recorded(record["payment"].as_str().unwrap());
    assert_eq!(tariff().charge(&meter, MAXIMUM).unwrap(), dear_charge);

    // The official Python SDK pays the same way (the payer's Permit2 approval is on chain).
    let before = chain.balance(&a.pay_to);
    let body = json!({"event": {"n": 500}}).to_string();
    let py = crate::x402_python::run_script(
        "pay_upto.py",
        &[
            &url,
            "--key",
            &a.payer_key,
            "--asset",
            &a.token,
            "--body",
            &body,
        ],
    );
    assert_eq!(py["status"], 200, "{py}");
    let py_charge: u128 = py["settlement"]["amount"]
        .as_str()
        .unwrap_or_else(|| panic!("{py}"))
        .parse()
        .unwrap();
    assert_eq!(chain.balance(&a.pay_to) - before, py_charge);
    let record = client
        .execution(&owner, py["body"]["execution_id"].as_str().unwrap())
        .unwrap();
    let (meter, _) = recorded(record["payment"].as_str().unwrap());
    assert_eq!(tariff().charge(&meter, MAXIMUM).unwrap(), py_charge);

    // An agent pays it from its wallet, by the owner's policy: the wallet signs a Permit2
    // authorization for the maximum (within max_per_call), and the spend is lowered to the
    // charge the host settled.
    let policy = hypervisor_protocol::wallet::SpendingPolicy {
        networks: vec!["eip155:84532".into()],
        assets: vec![a.token.clone()],
        max_per_call: MAXIMUM.to_string(),
        max_per_day: "1000000".into(),
        max_total: "1000000".into(),
        payees: Some(vec![a.pay_to.clone()]),
    };
    buyer_with_wallet(&client, &owner, "meter", &a.payer_key, &policy);
    let before = chain.balance(&a.pay_to);
    let out = client
        .invoke(
            "buyer",
            json!({"target": "meter", "body": {"event": {"n": 300}}}),
        )
        .unwrap();
    assert!(out.ok, "{out:?}");
    let result = out.result_json().unwrap();
    let answer = &result["responses"][0];
    assert_eq!(answer["status"], 200, "{result}");
    let settled = crate::payments::b64_json(answer["payment_response"].as_str().unwrap());
    let agent_charge: u128 = settled["amount"].as_str().unwrap().parse().unwrap();
    assert_eq!(chain.balance(&a.pay_to) - before, agent_charge);
    assert!(agent_charge < MAXIMUM, "{agent_charge}");
    let record = client
        .execution(&owner, answer["body"]["execution_id"].as_str().unwrap())
        .unwrap();
    let (meter, _) = recorded(record["payment"].as_str().unwrap());
    assert_eq!(tariff().charge(&meter, MAXIMUM).unwrap(), agent_charge);
    assert_eq!(
        client.agent_wallet(&owner, "buyer").unwrap().spent_total,
        agent_charge.to_string(),
        "the wallet counts what was charged, not the maximum"
    );

    // A run that would cost more than the maximum stops at the maximum's worth of fuel and
    // is charged exactly the maximum, whatever the charge rule says of a stopped run. A lower
    // fuel limit asked by the caller does not count (it would stop the run short of the cap,
    // unpaid under the default charge rule).
    let (capped, moved) = pay(
        json!({"event": {"n": 1_000_000_000u64}, "limits": {"fuel": 1000}}),
        false,
    );
    assert_eq!(capped["status"], 200, "{capped}");
    assert_eq!(capped["body"]["status"], "fuel_exhausted", "{capped}");
    assert_eq!(capped["settlement"]["amount"], MAXIMUM.to_string());
    assert_eq!(moved, MAXIMUM);
    // Nor do a lower time or memory limit (before, a 1-ms limit stopped the run, which was
    // then not charged while its output was answered: the same authorization again and
    // again bought free work).
    let (limited, moved) = pay(
        json!({"event": {"n": 300}, "limits": {"time_ms": 1, "memory_bytes": 65536}}),
        false,
    );
    assert_eq!(limited["status"], 200, "{limited}");
    assert_ne!(
        limited["body"]["status"], "time_limit_exceeded",
        "{limited}"
    );
    assert!(moved > 0, "charged: {limited}");
    // The ledger records each metered payment at its charge, not the signed maximum.
    server.stop();
    let db = rusqlite::Connection::open(data.path().join("payments.sqlite")).unwrap();
    let amounts: Vec<(String, String)> = db
        .prepare("SELECT state, amount FROM payments WHERE replay_key LIKE 'permit2:%'")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        amounts.contains(&("settled".to_string(), charged.to_string())),
        "{amounts:?}"
    );
    assert!(
        amounts.contains(&("settled".to_string(), MAXIMUM.to_string())),
        "{amounts:?}"
    );
}

/// A host that cannot charge by the meter refuses tariffs when they are deployed, and a
/// tariff must make sense; an agent deployed metered is not served at a fixed price (nor for
/// free) by a host restarted without metering.
#[test]
fn tariffs_are_checked_at_deployment_and_at_every_run() {
    let source = JsSource {
        engine: Default::default(),
        main: "main.js".into(),
        modules: [("main.js".to_string(), WORK.to_string())].into(),
    };
    let owner = ClientSecret::generate().unwrap();
    let deploy = |client: &hypervisor_client::Client, tariff: Tariff, price: Option<&str>| {
        client
            .deploy_js(
                &owner,
                &Deployment {
                    name: "meter",
                    price: price.map(str::to_string),
                    tariff: Some(tariff),
                    ..Deployment::default()
                },
                &source,
            )
            .map_err(|e| format!("{e:?}"))
    };

    // Without the address that settles metered payments, or in verify-only mode (where
    // nothing would collect a Permit2 authorization before it expires), a host refuses them.
    for extra in [
        "",
        "facilitator_address = \"0x70997970C51812dC3A010c7D01b50e20d4DC79c8\"",
    ] {
        let server = TestServer::start_with(&crate::payments::payments_table(extra));
        let refused = deploy(&server.client(), tariff(), Some("50000")).unwrap_err();
        assert!(refused.contains("payments_unavailable"), "{refused}");
    }

    // Facilitator mode with the facilitator's address (nothing is asked of it to deploy).
    let dir = tempfile::tempdir().unwrap();
    let metered = format!(
        "[engine]\nfuel = true\n{}",
        crate::payments::payments_table(
            "mode = \"facilitator\"\nfacilitator_url = \"http://127.0.0.1:9\"\n\
             facilitator_address = \"0x70997970C51812dC3A010c7D01b50e20d4DC79c8\""
        )
    );
    let server = TestServer::start_in(dir.path(), &metered);
    let client = server.client();
    for (tariff, price, why) in [
        (tariff(), None, "needs `price`"),
        (
            Tariff {
                fixed: "50000".into(),
                ..tariff()
            },
            Some("50000"),
            "below the price",
        ),
        (
            Tariff {
                per_ms: "01".into(),
                ..tariff()
            },
            Some("50000"),
            "tariff.per_ms",
        ),
        (
            Tariff {
                fixed: "1".into(),
                ..Tariff::default()
            },
            Some("50000"),
            "at least one",
        ),
    ] {
        let refused = deploy(&client, tariff, price).unwrap_err();
        assert!(refused.contains(why), "{why}: {refused}");
    }
    deploy(&client, tariff(), Some("50000")).unwrap();
    server.stop();

    // Restarted without fuel metering: a tariff charging by fuel cannot be served.
    let server = TestServer::start_in(dir.path(), &metered.replace("fuel = true", "fuel = false"));
    let (status, _, body) = server
        .client()
        .post_json_with("/agents/meter/invoke", &json!({"event": {"n": 1}}), &[])
        .unwrap();
    assert_eq!(
        (status, crate::harness::code(&body)),
        (503, "payments_unavailable"),
        "{body}"
    );
    server.stop();

    // Restarted without the facilitator's address: neither challenged at a fixed price nor
    // run for free.
    let server = TestServer::start_in(
        dir.path(),
        &metered.replace(
            "facilitator_address = \"0x70997970C51812dC3A010c7D01b50e20d4DC79c8\"",
            "",
        ),
    );
    let (status, _, body) = server
        .client()
        .post_json_with("/agents/meter/invoke", &json!({"event": {"n": 1}}), &[])
        .unwrap();
    assert_eq!(
        (status, crate::harness::code(&body)),
        (503, "payments_unavailable"),
        "{body}"
    );
}

/// A metered run ends while its Permit2 authorization can still be settled: a payer whose
/// authorization expires in 19 s (the offer's `maxTimeoutSeconds`) gets a run cut to the time
/// left less the settlement's margin (16 s), not the agent's 10 s. (Facilitator mode, verified
/// locally; the run is not charged, so the unreachable facilitator is never asked.)
#[test]
fn a_metered_run_ends_before_its_authorization_expires() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(
        &dir.path().join("data"),
        &format!(
            "{}max_timeout_seconds = 19\n",
            crate::payments::payments_table(
                "mode = \"facilitator\"\nfacilitator_url = \"http://127.0.0.1:9\"\n\
                 verify = \"local\"\n\
                 facilitator_address = \"0x70997970C51812dC3A010c7D01b50e20d4DC79c8\""
            )
        ),
    );
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    let source = JsSource {
        engine: Default::default(),
        main: "main.js".into(),
        modules: [("main.js".to_string(), WORK.to_string())].into(),
    };
    client
        .deploy_js(
            &owner,
            &Deployment {
                name: "slow",
                price: Some(MAXIMUM.to_string()),
                tariff: Some(Tariff {
                    per_ms: "1".into(),
                    ..Tariff::default()
                }),
                ..Deployment::default()
            },
            &source,
        )
        .unwrap();
    let body = dir.path().join("body.json");
    std::fs::write(&body, json!({"event": {"n": 1_000_000_000u64}}).to_string()).unwrap();
    let url = format!("{}/agents/slow/invoke", server.url);
    let started = std::time::Instant::now();
    let paid = LocalChain::run_script_without_chain(
        "pay-upto.mjs",
        &[
            "--url",
            &url,
            "--body",
            body.to_str().unwrap(),
            "--key",
            &format!("0x{}", "43".repeat(32)),
            "--token",
            "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
        ],
    );
    assert_eq!(paid["status"], 200, "{paid}");
    assert_eq!(paid["body"]["status"], "time_limit_exceeded", "{paid}");
    let ran_us = paid["body"]["duration_us"].as_u64().unwrap();
    assert!(
        ran_us < 4_000_000,
        "ran {ran_us} µs, past the authorization's deadline margin"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(9));
    // An authorization too close to its deadline is refused before anything runs.
    let (status, headers, _) = client
        .post_json_with("/agents/slow/invoke", &json!({"event": {"n": 1}}), &[])
        .unwrap();
    assert_eq!(status, 402);
    let offer =
        crate::payments::b64_json(crate::payments::header(&headers, "payment-required").unwrap());
    let mut accepted = offer["accepts"][0].clone();
    accepted["maxTimeoutSeconds"] = json!(10);
    let wallet = hypervisor_client::x402::Wallet::from_bytes(&[0x45; 32]).unwrap();
    let short = hypervisor_client::x402::Offer::from_document(&json!({
        "x402Version": 2,
        "resource": offer["resource"],
        "accepts": [accepted],
    }))
    .unwrap();
    let mut paid = wallet
        .payload(
            &short,
            &hypervisor_client::x402::PaymentLimit::new(MAXIMUM),
            crate::payments::now(),
        )
        .unwrap()
        .1;
    // The payment must copy the offer as made: only the deadline is short.
    paid["accepted"] = offer["accepts"][0].clone();
    let header =
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, paid.to_string());
    let (status, _, body) = client
        .post_json_with(
            "/agents/slow/invoke",
            &json!({"event": {"n": 1}}),
            &[("payment-signature", header)],
        )
        .unwrap();
    assert_eq!(status, 402, "{body}");
    assert_eq!(body["code"], "permit2_deadline_expired", "{body}");

    // The command line deploys a metered agent too (`--tariff`), and says what is wrong.
    let home = tempfile::tempdir().unwrap();
    let key = home.path().join("owner.key");
    let main = home.path().join("main.js");
    std::fs::write(&main, WORK).unwrap();
    let deploy = |tariff: &str| {
        crate::client_cli::run(
            &server,
            home.path(),
            &[
                "--key",
                key.to_str().unwrap(),
                "--json",
                "agent",
                "deploy",
                "cli-meter",
                "--price",
                "5000",
                "--tariff",
                tariff,
                "--js",
                main.to_str().unwrap(),
            ],
            b"",
        )
    };
    let (code, stdout, stderr) = deploy("100,0,2,0");
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (status, headers, body) = client
        .post_json_with("/agents/cli-meter/invoke", &json!({"event": {"n": 1}}), &[])
        .unwrap();
    assert_eq!(status, 402, "{body}");
    let offered =
        crate::payments::b64_json(crate::payments::header(&headers, "payment-required").unwrap());
    assert_eq!(
        offered["accepts"][0]["extra"]["tariff"],
        json!({"fixed": "100", "per_million_fuel": "0", "per_ms": "2", "per_kib_out": "0"})
    );
    let (code, stdout, stderr) = deploy("100,0,2");
    assert_ne!(code, 0, "{stdout}");
    assert!(
        stderr.contains("FIXED,PER_MILLION_FUEL,PER_MS,PER_KIB_OUT"),
        "{stderr}"
    );
}

/// An agent's wallet never lowers a spend on a callee's word: a local HTTP agent that asks for
/// a metered payment and answers that it charged 0 (`guests/charge-forger`, which keeps the
/// authorization) leaves the spend at the maximum signed, so the budgets still hold.
#[test]
fn a_callee_claiming_a_smaller_charge_does_not_lower_the_spend() {
    let server = TestServer::start();
    let client = server.client();
    let owner = ClientSecret::generate().unwrap();
    client
        .deploy_agent(
            &owner,
            &Deployment {
                name: "forger",
                component: &crate::harness::wasm("charge-forger"),
                content_type: Some("application/json".into()),
                ..Deployment::default()
            },
        )
        .unwrap();
    let policy = hypervisor_protocol::wallet::SpendingPolicy {
        networks: vec!["eip155:84532".into()],
        assets: vec!["0x036CbD53842c5426634e7929541eC2318f3dCF7e".into()],
        max_per_call: "10000".into(),
        max_per_day: "10000".into(),
        max_total: "10000".into(),
        payees: Some(vec!["0x209693Bc6afc0C5328bA36FaF03C514EF312287C".into()]),
    };
    buyer_with_wallet(&client, &owner, "forger", &"44".repeat(32), &policy);
    let call = || {
        let out = client
            .invoke(
                "buyer",
                json!({"target": "forger", "path": "/", "body": {}}),
            )
            .unwrap();
        assert!(out.ok, "{out:?}");
        out.result_json().unwrap()
    };
    let first = call();
    let answer = &first["responses"][0];
    assert_eq!(answer["status"], 200, "{first}");
    let claimed = crate::payments::b64_json(answer["payment_response"].as_str().unwrap());
    assert_eq!(
        claimed["amount"], "0",
        "the forger claims it charged nothing"
    );
    assert_eq!(
        client.agent_wallet(&owner, "buyer").unwrap().spent_total,
        "10000",
        "the spend keeps the maximum signed"
    );
    // So the budget of one payment is spent: nothing more is signed.
    let second = call();
    assert_eq!(
        second["responses"][0]["body"]["error"]["code"], "spending_refused",
        "{second}"
    );
}
