//! `metered`: paid agent invocations against unpaid ones, interleaved rounds on one host
//! (facilitator mode against the stand-in facilitator, verified locally, settled before the
//! response; fuel metering on; metered payments are refused in verify-only mode): the same handler (`text-stats`) deployed free, at a fixed
//! price (x402 `exact`, EIP-3009) and metered (x402 `upto`, Permit2, a tariff). Requests per
//! second with `BENCH_CONCURRENCY` (16) callers in this process for `BENCH_SECONDS` (3) a round,
//! `BENCH_ROUNDS` (3) rounds; every paid request carries a new authorization signed beforehand
//! (`BENCH_PAID_HEADERS`, 80000 per price). A metered request adds the meter, the charge and its
//! durable ledger write (`charged`) to a fixed-price one.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hypervisor::error::ApiError;
use hypervisor::pipeline::Pipeline;
use hypervisor::plugins::payments::{PaymentHeader, ProtocolVersion};
use hypervisor_client::agents::sign_deploy_request;
use hypervisor_client::x402::{Offer, PaymentLimit, Wallet};
use hypervisor_protocol::ClientSecret;
use hypervisor_protocol::agents::{DeployRequest, InvokeRequest};
use hypervisor_protocol::tariff::Tariff;

use super::common::{self, in_process, unix_now as now, wasm};

const PRICE: &str = "10000";

/// Deploys `text-stats` as `name`, at `price` and `tariff` if any.
fn deploy(
    rt: &tokio::runtime::Runtime,
    pipeline: &Pipeline,
    owner: &ClientSecret,
    name: &str,
    price: Option<&str>,
    tariff: Option<Tariff>,
) {
    let component = wasm::read("text-stats");
    let mut request: DeployRequest = serde_json::from_value(serde_json::json!({
        "name": name,
        "public_key": owner.public_key().to_hex(),
        "component": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &component),
    }))
    .unwrap();
    request.price = price.map(str::to_string);
    request.tariff = tariff;
    sign_deploy_request(owner, pipeline.audience(), &mut request, &component).unwrap();
    rt.block_on(pipeline.deploy_agent(request, None)).unwrap();
}

fn event() -> InvokeRequest {
    InvokeRequest {
        event: Some(
            serde_json::value::to_raw_value(&serde_json::json!({"text": "one two three. four"}))
                .unwrap(),
        ),
        ..InvokeRequest::default()
    }
}

/// `n` payment headers for agent `name`, each a new authorization for its challenge's offer.
fn headers(
    rt: &tokio::runtime::Runtime,
    pipeline: &Pipeline,
    name: &str,
    n: usize,
) -> Vec<PaymentHeader> {
    let Err(ApiError::PaymentRequired { challenge, .. }) =
        rt.block_on(pipeline.invoke_agent(name, event(), None, None))
    else {
        panic!("{name} did not ask for a payment");
    };
    let offer =
        Offer::from_402(Some(&challenge.payment_required), &serde_json::Value::Null).unwrap();
    let wallet = Wallet::random().unwrap();
    (0..n)
        .map(|_| PaymentHeader {
            version: ProtocolVersion::V2,
            value: wallet
                .pay(&offer, &PaymentLimit::new(10_000), now())
                .unwrap()
                .1,
        })
        .collect()
}

/// Invocations per second of `name` by `concurrency` callers for `seconds`.
fn rate(
    rt: &tokio::runtime::Runtime,
    pipeline: &Arc<Pipeline>,
    name: &'static str,
    headers: Option<&Arc<Mutex<Vec<PaymentHeader>>>>,
    concurrency: usize,
    seconds: f64,
) -> f64 {
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let done: usize = rt.block_on(async {
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let pipeline = pipeline.clone();
                let headers = headers.cloned();
                tokio::spawn(async move {
                    let mut n = 0usize;
                    while Instant::now() < end {
                        let header = headers.as_ref().map(|h| {
                            h.lock()
                                .unwrap()
                                .pop()
                                .expect("BENCH_PAID_HEADERS too small")
                        });
                        pipeline
                            .invoke_agent(name, event(), header, None)
                            .await
                            .unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        total
    });
    done as f64 / started.elapsed().as_secs_f64()
}

/// Free, fixed-price and metered invocations, interleaved.
pub fn metered() {
    let rt = common::runtime();
    let _guard = rt.enter();
    let facilitator = super::stand_in_facilitator(&rt);
    let tmp = tempfile::tempdir().unwrap();
    let mut c = in_process::config(tmp.path());
    c.engine.fuel = true;
    c.payments.mode = hypervisor::config::SettlementMode::Facilitator;
    c.payments.facilitator_url = Some(facilitator);
    c.payments.verify = hypervisor::config::VerifyAt::Local;
    c.payments.enabled = true;
    c.payments.component = wasm::path("payments");
    c.payments.price.pay_to = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C".into();
    c.payments.facilitator_address = Some("0x70997970C51812dC3A010c7D01b50e20d4DC79c8".into());
    let host = rt.block_on(hypervisor::server::Host::build(c)).unwrap();
    let pipeline = host.pipeline().clone();
    let owner = ClientSecret::generate().unwrap();
    deploy(&rt, &pipeline, &owner, "free", None, None);
    deploy(&rt, &pipeline, &owner, "fixed", Some(PRICE), None);
    let tariff = Tariff {
        fixed: "100".into(),
        per_million_fuel: "50".into(),
        per_ms: "0".into(),
        per_kib_out: "10".into(),
    };
    deploy(&rt, &pipeline, &owner, "metered", Some(PRICE), Some(tariff));
    let concurrency = common::env_or("BENCH_CONCURRENCY", 16);
    let seconds = common::env_or("BENCH_SECONDS", 3.0);
    let rounds = common::env_or("BENCH_ROUNDS", 3);
    let signed = common::env_or("BENCH_PAID_HEADERS", 80_000);
    let fixed = Arc::new(Mutex::new(headers(&rt, &pipeline, "fixed", signed)));
    let metered = Arc::new(Mutex::new(headers(&rt, &pipeline, "metered", signed)));
    // warm-up
    rate(&rt, &pipeline, "free", None, concurrency, 0.5);
    rate(&rt, &pipeline, "fixed", Some(&fixed), concurrency, 0.5);
    rate(&rt, &pipeline, "metered", Some(&metered), concurrency, 0.5);
    let (mut free, mut exact, mut upto) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        free.push(rate(&rt, &pipeline, "free", None, concurrency, seconds));
        exact.push(rate(
            &rt,
            &pipeline,
            "fixed",
            Some(&fixed),
            concurrency,
            seconds,
        ));
        upto.push(rate(
            &rt,
            &pipeline,
            "metered",
            Some(&metered),
            concurrency,
            seconds,
        ));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (f, e, u) = (median(&mut free), median(&mut exact), median(&mut upto));
    println!(
        "agent invocations, facilitator (stand-in), verify local, {concurrency} callers: unpaid {f:.0}/s, fixed price (exact) {e:.0}/s ({:.2}×), metered (upto) {u:.0}/s ({:.2}× unpaid, {:.2}× fixed)",
        e / f,
        u / f,
        u / e
    );
}
