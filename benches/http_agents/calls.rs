//! The agent-to-agent section: what a local call costs over invoking the callee directly,
//! in-process through the HTTP front (`Host::front`, the router the server serves; no socket),
//! one request at a time, unpaid and paid.
//!
//! Three requests, interleaved round by round so that drift hits all alike:
//! - **direct**: `POST /agents/stats/invoke` (the `text-stats` handler);
//! - **via caller**: `POST /agents/buyer/invoke` where `buyer` (`guests/caller`) calls
//!   `http://stats.agents.internal/invoke` with the same event and returns the answer;
//! - **caller alone**: `buyer` sending a request its grants refuse (`http://127.0.0.1:9/`):
//!   the caller's own instance, event parsing and `wasi:http` round trip, without a callee.
//!
//! The overhead of a local call is *via caller − direct − caller alone* (at p50 and p99 of
//! each), the cost the egress layer and the in-process dispatch add. The paid variant runs on a
//! host in `verify-only` payments mode with `stats` priced and `buyer` holding a wallet: the
//! 402, the policy check, the durable spend, the signature and the paid retry.

use std::time::{Duration, Instant};

use axum::body::Body;
use http::Request;
use http_body_util::BodyExt;
use hypervisor::server::Host;
use hypervisor_protocol::ClientSecret;
use hypervisor_protocol::grants::{AgentRef, Grants};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::EVENT_TEXT;
use crate::common::stats::{percentile, report, us};
use crate::common::{self, in_process, wasm};

fn deploy(
    rt: &tokio::runtime::Runtime,
    host: &Host,
    owner: &ClientSecret,
    name: &str,
    guest: &str,
    price: Option<&str>,
    grants: Option<Grants>,
) {
    let component = wasm::read(guest);
    in_process::deploy(rt, host.pipeline(), owner, name, &component, price, grants);
}

/// One `POST` through the front; returns the time and the JSON answer.
async fn post(front: &axum::Router, path: &str, body: &Value) -> (Duration, Value) {
    let request = Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let t = Instant::now();
    let response = front.clone().oneshot(request).await.unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (t.elapsed(), serde_json::from_slice(&bytes).unwrap())
}

/// Builds a host with `stats` (priced when `paid`) and `buyer` granted it; returns it and the
/// agents' owner.
fn build_host(
    rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
    paid: bool,
) -> (Host, ClientSecret) {
    let mut config = in_process::config(dir);
    if paid {
        config.payments.enabled = true;
        config.payments.price.pay_to = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C".into();
    }
    let host = rt.block_on(Host::build(config)).unwrap();
    let owner = ClientSecret::generate().unwrap();
    deploy(
        rt,
        &host,
        &owner,
        "stats",
        "text-stats",
        paid.then_some("1"),
        None,
    );
    let grants = Grants {
        agents: vec![AgentRef {
            name: "stats".into(),
            owner_key: owner.public_key().to_hex(),
        }],
        ..Grants::default()
    };
    deploy(rt, &host, &owner, "buyer", "caller", None, Some(grants));
    (host, owner)
}

/// The agent-to-agent section (see the module header).
pub fn run() {
    let iterations = common::iterations(2000);
    let rt = common::runtime();
    println!();
    let event = json!({ "text": EVENT_TEXT });
    let direct = json!({ "event": event });
    let via = json!({ "event": {"target": "stats", "body": {"event": event}} });
    let alone = json!({ "event": {"url": "http://127.0.0.1:9/"} });

    let tmp = tempfile::tempdir().unwrap();
    let (host, _) = build_host(&rt, tmp.path(), false);
    let front = host.front();
    let (mut d, mut v, mut a) = (Vec::new(), Vec::new(), Vec::new());
    rt.block_on(async {
        for i in 0..iterations + 100 {
            let (td, rd) = post(&front, "/agents/stats/invoke", &direct).await;
            let (tv, rv) = post(&front, "/agents/buyer/invoke", &via).await;
            let (ta, ra) = post(&front, "/agents/buyer/invoke", &alone).await;
            assert_eq!(rd["ok"], true, "{rd}");
            assert_eq!(rv["result"]["responses"][0]["status"], 200, "{rv}");
            assert_eq!(ra["error"]["code"], "request_failed", "{ra}");
            if i >= 100 {
                d.push(td);
                v.push(tv);
                a.push(ta);
            }
        }
    });
    overhead("unpaid", d, v, a);

    // Paid: verify-only payments, `stats` at 1 atomic unit, `buyer` with a wallet.
    let tmp = tempfile::tempdir().unwrap();
    let (host, owner) = build_host(&rt, tmp.path(), true);
    let front = host.front();
    attach_wallet(&host, &owner);
    let paid_iterations = iterations.min(500);
    let samples = rt.block_on(async {
        let mut samples = Vec::with_capacity(paid_iterations);
        for i in 0..paid_iterations + 20 {
            let (t, r) = post(&front, "/agents/buyer/invoke", &via).await;
            let answer = &r["result"]["responses"][0];
            assert_eq!(answer["status"], 200, "{r}");
            assert!(answer["payment_response"].is_string(), "{r}");
            if i >= 20 {
                samples.push(t);
            }
        }
        samples
    });
    report(
        "paid local call end to end (402, spend, sign, retry, settle)",
        samples,
    );
}

/// Attaches a fresh wallet to `buyer`, as `PUT /agents/buyer/wallet` does (sealed to a session
/// of the owner, signed by the owner), paying the host's asset on its network.
fn attach_wallet(host: &Host, owner: &ClientSecret) {
    use hypervisor_client::agents::owner_signature;
    use hypervisor_protocol::agents::OwnerAction;
    use hypervisor_protocol::wallet::{SpendingPolicy, WalletUpload, wallet_detail};
    let secret = [0x42u8; 32];
    let address = x402_payer::Wallet::from_bytes(&secret)
        .unwrap()
        .address()
        .to_checksum(None);
    let price = &host.pipeline().config().payments.price;
    let policy = SpendingPolicy {
        networks: vec![price.network.clone()],
        assets: vec![price.asset.clone()],
        max_per_call: "1".into(),
        max_per_day: "1000000000".into(),
        max_total: "1000000000".into(),
        payees: None,
    };
    let session = in_process::session(host.pipeline(), owner);
    let signed = owner_signature(
        owner,
        host.pipeline().audience(),
        OwnerAction::Wallet,
        "buyer",
        &wallet_detail(&address, &policy),
    )
    .unwrap();
    let upload = WalletUpload {
        public_key: owner.public_key().to_hex(),
        session_id: Some(session.id),
        encrypted_key: hex::encode(
            session
                .envelope()
                .seal(hypervisor_protocol::Role::WalletKey, &secret)
                .unwrap(),
        ),
        address,
        policy,
        signature: signed.signature,
        signed_at: signed.signed_at,
        sequence: signed.sequence,
    };
    host.pipeline().attach_wallet("buyer", upload).unwrap();
}

/// Prints the three series and the overhead at p50 and p99.
fn overhead(label: &str, direct: Vec<Duration>, via: Vec<Duration>, alone: Vec<Duration>) {
    let sorted = |mut v: Vec<Duration>| {
        v.sort();
        v
    };
    let (direct, via, alone) = (sorted(direct), sorted(via), sorted(alone));
    report(&format!("{label}: callee invoked directly"), direct.clone());
    report(
        &format!("{label}: caller -> callee (local call)"),
        via.clone(),
    );
    report(
        &format!("{label}: caller alone (refused request)"),
        alone.clone(),
    );
    for p in [0.5, 0.99] {
        let o = us(percentile(&via, p)) - us(percentile(&direct, p)) - us(percentile(&alone, p));
        println!(
            "{label}: local call overhead at p{:<2}                           {o:>9.1} µs",
            (p * 100.0) as u32
        );
    }
}
