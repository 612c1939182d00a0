//! The official x402 Python SDK (PyPI `x402`, pinned in `tests/interop/x402-python`) as a second
//! paying client beside the npm one: it pays public paid agents in the clear, in both protocol
//! versions (v2 from `PAYMENT-REQUIRED`, v1 from the JSON body) and through its drop-in
//! `requests` adapter; a replayed payment is refused; an HTTP agent's error answer is not
//! charged, so the same payment pays the next request, once. Verify-only mode, then facilitator
//! mode on a real local chain, where the tokens must move exactly once per charged request.

use hypervisor_client::Client;
use hypervisor_client::agents::Deployment;
use hypervisor_protocol::ClientSecret;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

use crate::harness::{TestServer, wasm};
use crate::local_chain::LocalChain;
use crate::payments::payments_table;

const HANDLER_PRICE: u128 = 10_000;
const WEB_PRICE: u128 = 7_000;

/// `tests/interop/x402-python`.
fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/interop/x402-python")
}

/// The private virtual environment's interpreter, with the pinned SDK installed
/// (`scripts/test.sh` creates `target/py-x402` from `requirements.txt`).
fn python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/py-x402/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run scripts/test.sh, or `python3 -m venv target/py-x402 && \
         target/py-x402/bin/pip install -r tests/interop/x402-python/requirements.txt`",
        python.display()
    );
    python
}

/// Runs `script` (in `tests/interop/x402-python`) with `args`; its one JSON line.
pub(crate) fn run_script(script: &str, args: &[&str]) -> Value {
    let out = std::process::Command::new(python())
        .arg(interop_dir().join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    assert!(
        out.status.success(),
        "{script} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{script} {args:?}: {e}: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Runs `pay.py` with `args`; its one JSON line.
fn pay(args: &[&str]) -> Value {
    run_script("pay.py", args)
}

/// Deploys the paid agents every test pays: `py-stats`, a handler agent (`text-stats`), and
/// `py-web`, an HTTP agent (`http-hello`: 200 on `GET /`, 404 on any unknown path). Both with
/// the default charge rule: only successful runs are charged.
fn deploy_paid_agents(client: &Client) -> ClientSecret {
    let owner = ClientSecret::generate().unwrap();
    for (name, guest, price) in [
        ("py-stats", "text-stats", HANDLER_PRICE),
        ("py-web", "http-hello", WEB_PRICE),
    ] {
        let component = wasm(guest);
        client
            .deploy_agent(
                &owner,
                &Deployment {
                    name,
                    description: "paid by the x402 Python SDK",
                    component: &component,
                    price: Some(price.to_string()),
                    ..Deployment::default()
                },
            )
            .unwrap_or_else(|e| panic!("deploying {name}: {e}"));
    }
    owner
}

fn event() -> String {
    json!({"event": {"text": "paid from python"}}).to_string()
}

/// A paid handler invocation: 200, the handler's result, the settlement of this payer, and the
/// replay refused.
fn assert_paid_invocation(out: &Value, header: &str, network: &str) {
    assert_eq!(out["header"], header, "{out}");
    // Our 402 always carries both forms: the v2 header and the v1 body.
    assert_eq!(out["challenge"]["status"], 402, "{out}");
    assert_eq!(out["challenge"]["payment_required_header"], true, "{out}");
    assert_eq!(out["challenge"]["body_x402Version"], 1, "{out}");
    let paid = &out["paid"];
    assert_eq!(paid["status"], 200, "{out}");
    assert_eq!(paid["body"]["ok"], true, "{out}");
    assert_eq!(paid["body"]["result"]["words"], 3, "{out}");
    assert_eq!(paid["settlement"]["success"], true, "{out}");
    assert_eq!(paid["settlement"]["payer"], out["payer"], "{out}");
    assert_eq!(paid["settlement"]["network"], network, "{out}");
    assert_replay_refused(out);
}

fn assert_replay_refused(out: &Value) {
    let replay = &out["replay"];
    assert_eq!(replay["status"], 402, "{out}");
    assert_eq!(
        replay["body"]["error"], "invalid_exact_evm_nonce_already_used",
        "{out}"
    );
    assert_eq!(replay["settlement"], Value::Null, "{out}");
}

/// The HTTP agent answers 404: nothing is settled (no settlement header), and the same payment
/// pays the next request (200, settled), once.
fn assert_error_not_charged(out: &Value) {
    let paid = &out["paid"];
    assert_eq!(paid["status"], 404, "{out}");
    assert_eq!(paid["body"]["error"], "not_found", "{out}");
    assert_eq!(
        paid["settlement"],
        Value::Null,
        "an error answer was settled: {out}"
    );
    let reuse = &out["reuse"];
    assert_eq!(
        reuse["status"], 200,
        "the unsettled payment was spent: {out}"
    );
    assert_eq!(
        reuse["body"], "Hello from a WASM Hypervisor agent\n",
        "{out}"
    );
    assert_eq!(reuse["settlement"]["success"], true, "{out}");
    assert_eq!(reuse["settlement"]["payer"], out["payer"], "{out}");
    assert_replay_refused(out);
}

#[test]
fn the_official_x402_client_from_pypi_pays_paid_agents() {
    let server = TestServer::start_with(&payments_table(""));
    let client = server.client();
    let owner = deploy_paid_agents(&client);
    let invoke = format!("{}/agents/py-stats/invoke", server.url);
    let body = event();

    // v2: the SDK reads PAYMENT-REQUIRED and answers with PAYMENT-SIGNATURE.
    let out = pay(&[&invoke, "--body", &body, "--version", "2", "--replay"]);
    assert_paid_invocation(&out, "PAYMENT-SIGNATURE", "eip155:84532");
    // The record names the payer and the agent's price.
    let id = out["paid"]["body"]["execution_id"].as_str().unwrap();
    let record = client.execution(&owner, id).unwrap();
    let payer = out["payer"].as_str().unwrap();
    assert!(
        record["payment"]
            .as_str()
            .unwrap()
            .starts_with(&format!("x402 eip155:84532 {HANDLER_PRICE} payer={payer}")),
        "{record}"
    );

    // v1: the SDK reads only the 402's JSON body and answers with X-PAYMENT.
    let out = pay(&[&invoke, "--body", &body, "--version", "1", "--replay"]);
    assert_paid_invocation(&out, "X-PAYMENT", "base-sepolia");

    // The SDK's drop-in `requests` adapter does the whole round trip itself (v2).
    let out = pay(&[&invoke, "--body", &body, "--version", "auto", "--replay"]);
    assert_paid_invocation(&out, "PAYMENT-SIGNATURE", "eip155:84532");

    // A paid HTTP agent, any method and path under its prefix.
    let web = format!("{}/agents/py-web/", server.url);
    let out = pay(&[&web, "--method", "GET", "--version", "2", "--replay"]);
    assert_eq!(out["paid"]["status"], 200, "{out}");
    assert_eq!(
        out["paid"]["body"], "Hello from a WASM Hypervisor agent\n",
        "{out}"
    );
    assert_eq!(out["paid"]["settlement"]["success"], true, "{out}");
    assert_replay_refused(&out);

    // The agent's error answer is not charged, in both versions.
    let missing = format!("{}/agents/py-web/missing", server.url);
    for version in ["2", "1"] {
        let out = pay(&[
            &missing,
            "--method",
            "GET",
            "--version",
            version,
            "--reuse-on",
            &web,
            "--replay",
        ]);
        assert_error_not_charged(&out);
    }
}

#[test]
fn the_official_x402_client_from_pypi_moves_usdc_once_per_charged_request() {
    let chain = LocalChain::start();
    let a = chain.accounts.clone();
    let server = TestServer::start_with(&chain.payments_table());
    let client = server.client();
    deploy_paid_agents(&client);
    let (payer0, pay_to0) = (chain.balance(&a.payer), chain.balance(&a.pay_to));
    let is_tx_hash = |v: &Value| {
        v.as_str().is_some_and(|s| {
            s.len() == 66 && s.starts_with("0x") && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
        })
    };
    // The local token is not one the SDK knows: opt it in, as pay.mjs does.
    let paying = |url: &str, extra: &[&str]| {
        let mut args = vec![
            url,
            "--key",
            a.payer_key.as_str(),
            "--allow-asset",
            a.token.as_str(),
        ];
        args.extend_from_slice(extra);
        pay(&args)
    };

    let invoke = format!("{}/agents/py-stats/invoke", server.url);
    let body = event();
    for (version, header, network) in [
        ("2", "PAYMENT-SIGNATURE", "eip155:84532"),
        ("1", "X-PAYMENT", "base-sepolia"),
    ] {
        let out = paying(
            &invoke,
            &["--body", &body, "--version", version, "--replay"],
        );
        assert_eq!(
            out["payer"].as_str().unwrap().to_lowercase(),
            a.payer.to_lowercase()
        );
        assert_paid_invocation(&out, header, network);
        assert!(
            is_tx_hash(&out["paid"]["settlement"]["transaction"]),
            "{out}"
        );
    }
    assert_eq!(chain.balance(&a.payer), payer0 - 2 * HANDLER_PRICE);
    assert_eq!(chain.balance(&a.pay_to), pay_to0 + 2 * HANDLER_PRICE);

    // The HTTP agent's 404 moves nothing; the same authorization then pays `GET /`, once.
    let web = format!("{}/agents/py-web/", server.url);
    let missing = format!("{}/agents/py-web/missing", server.url);
    let out = paying(
        &missing,
        &[
            "--method",
            "GET",
            "--version",
            "2",
            "--reuse-on",
            &web,
            "--replay",
        ],
    );
    assert_error_not_charged(&out);
    assert!(
        is_tx_hash(&out["reuse"]["settlement"]["transaction"]),
        "{out}"
    );
    assert_eq!(
        chain.balance(&a.payer),
        payer0 - 2 * HANDLER_PRICE - WEB_PRICE
    );
    assert_eq!(
        chain.balance(&a.pay_to),
        pay_to0 + 2 * HANDLER_PRICE + WEB_PRICE
    );
}

/// Runs `sign_in.py` with `args`; its one JSON line.
fn sign_in(args: &[&str]) -> Value {
    run_script("sign_in.py", args)
}

#[test]
fn the_official_python_sign_in_with_x_client_signs_in_after_paying() {
    let chain = LocalChain::start();
    let a = chain.accounts.clone();
    let server = TestServer::start_with(&chain.payments_table());
    let client = server.client();
    client
        .deploy_agent(
            &ClientSecret::generate().unwrap(),
            &Deployment {
                name: "py-members",
                component: &wasm("text-stats"),
                price: Some(HANDLER_PRICE.to_string()),
                grants: Some(hypervisor_protocol::grants::Grants {
                    sign_in: Some(hypervisor_protocol::grants::SignInGrant {
                        wallets: Vec::new(),
                        after_payment_seconds: 600,
                    }),
                    ..Default::default()
                }),
                ..Deployment::default()
            },
        )
        .unwrap();
    let invoke = format!("{}/agents/py-members/invoke", server.url);
    let key = a.payer_key.as_str();

    // Before paying, the SDK's sign-in (EIP-4361 by `signinwithethereum`) is checked and refused.
    let out = sign_in(&[&invoke, "--key", key]);
    assert_eq!(out["status"], 402, "{out}");
    assert_eq!(out["body"]["code"], "siwx_access_denied", "{out}");

    // The SDK pays once, settled on chain; then its sign-in is served without a payment.
    let before = chain.balance(&a.payer);
    let paid = pay(&[
        &invoke,
        "--body",
        &event(),
        "--version",
        "2",
        "--key",
        key,
        "--allow-asset",
        a.token.as_str(),
    ]);
    assert_eq!(paid["paid"]["status"], 200, "{paid}");
    let out = sign_in(&[&invoke, "--key", key]);
    assert_eq!(out["status"], 200, "{out}");
    assert_eq!(out["body"]["result"]["words"], 4, "{out}");
    assert_eq!(out["settlement"], false, "{out}");
    assert_eq!(out["address"], paid["payer"], "{out}");
    assert_eq!(chain.balance(&a.payer), before - HANDLER_PRICE);
}
