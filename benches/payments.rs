//! x402 payment benchmarks: `cargo bench -p hypervisor --bench payments`.
//!
//! - one verification by the payments component (fresh instance, configure, decode, EIP-712
//!   hash, secp256k1 recovery), direct;
//! - its parts on a paid request's path: a settlement (verify-only) and the ledger's writes;
//! - the execute pipeline for a cached `hello` on the paid route (verify, durable ledger
//!   reservation, settle) against the unpaid route, interleaved on one host; every paid request
//!   carries a new authorization (signed before timing starts).
//!
//! Needs `scripts/build-wasm.sh`. `BENCH_ITERATIONS` sets the sample count.

use std::time::Instant;

mod common;

use common::stats::report;
use common::{in_process, unix_now as now, wasm};
use hypervisor::pipeline::RouteKind;
use hypervisor::plugins::payments::{self, PaidResource, PaymentHeader, Payments, ProtocolVersion};
use hypervisor::server::Host;
use hypervisor_client::ExecuteInput;
use hypervisor_client::x402::{Offer, PaymentLimit, Wallet};
use hypervisor_protocol::ClientSecret;

fn main() {
    let rt = common::runtime();
    let _guard = rt.enter();
    let iterations = common::iterations(1000);
    let tmp = tempfile::tempdir().unwrap();
    let mut c = in_process::config(tmp.path());
    c.payments.enabled = true;
    c.payments.component = wasm::path("payments");
    c.payments.price.pay_to = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C".into();
    let host = rt.block_on(Host::build(c.clone())).unwrap();
    let pipeline = host.pipeline().clone();
    let wallet = Wallet::random().unwrap();

    // The offer, as a client sees it, from the component's own challenge.
    let component = rt
        .block_on(Payments::load(pipeline.engine_arc().clone(), &c.payments))
        .unwrap();
    let resource = PaidResource {
        url: format!("http://localhost{}", RouteKind::PAID_TEST.path),
        description: "bench".into(),
        mime_type: "application/json".into(),
    };
    let price = payments::price(&c.payments.price, &c.payments.price.amount);
    let challenge = rt
        .block_on(component.challenge(&resource, &price, "payment required"))
        .unwrap()
        .unwrap();
    let offer =
        Offer::from_402(Some(&challenge.payment_required), &serde_json::Value::Null).unwrap();
    let header = |_: usize| {
        let (_, value) = wallet
            .pay(&offer, &PaymentLimit::new(10_000), now())
            .unwrap();
        PaymentHeader {
            version: ProtocolVersion::V2,
            value,
        }
    };

    // 1. One verification, direct.
    let headers: Vec<_> = (0..iterations).map(header).collect();
    let samples = rt.block_on(async {
        let mut out = Vec::with_capacity(iterations);
        for h in &headers {
            let t = Instant::now();
            component
                .verify(h, &resource, &price, now())
                .await
                .unwrap()
                .unwrap();
            out.push(t.elapsed());
        }
        out
    });
    report("payment verification (component, fresh instance)", samples);

    // Where the rest of a paid request goes: settlement (fresh instance, no recovery) and the
    // two durable ledger writes.
    let samples = rt.block_on(async {
        let mut out = Vec::with_capacity(iterations);
        for h in &headers {
            let t = Instant::now();
            component
                .settle(h, &resource, &price)
                .await
                .unwrap()
                .unwrap();
            out.push(t.elapsed());
        }
        out
    });
    report("payment settlement (component, verify-only)", samples);
    use hypervisor::storage::payments::PaymentLedger as _;
    let ledger = hypervisor::storage::sqlite::SqlitePayments::open(tmp.path()).unwrap();
    let samples: Vec<_> = (0..iterations)
        .map(|i| {
            let key = format!("bench-{i}");
            let t = Instant::now();
            assert!(
                ledger
                    .reserve(&hypervisor::storage::payments::NewPayment {
                        replay_key: &key,
                        payer: "0x0",
                        amount: "1",
                        network: "eip155:84532",
                        route: "/bench",
                        owner: "bench",
                        sealed: b"sealed",
                        at: now(),
                    })
                    .unwrap()
            );
            assert!(ledger.settling(&key, "bench", now()).unwrap());
            ledger.settled(&key, "", now()).unwrap();
            t.elapsed()
        })
        .collect();
    report(
        "ledger reserve + settling + settled (one durable write, two relaxed)",
        samples,
    );

    // 2. Paid vs unpaid pipeline, interleaved.
    let secret = ClientSecret::generate().unwrap();
    let session = in_process::session(&pipeline, &secret);
    let hello = wasm::read("hello");
    let (req, _) = session
        .encrypt_execution(&ExecuteInput::new(&hello))
        .unwrap();
    let mut headers: Vec<_> = (0..iterations + 50).map(header).collect();
    let (mut paid, mut unpaid) = (Vec::new(), Vec::new());
    rt.block_on(async {
        for _ in 0..50 {
            pipeline
                .execute_wasm(req.clone(), None, RouteKind::TEST, None)
                .await
                .unwrap();
            let h = headers.pop();
            pipeline
                .execute_wasm(req.clone(), None, RouteKind::PAID_TEST, h)
                .await
                .unwrap();
        }
        for _ in 0..iterations {
            let r = req.clone();
            let t = Instant::now();
            pipeline
                .execute_wasm(r, None, RouteKind::TEST, None)
                .await
                .unwrap();
            unpaid.push(t.elapsed());
            let (r, h) = (req.clone(), headers.pop());
            let t = Instant::now();
            pipeline
                .execute_wasm(r, None, RouteKind::PAID_TEST, h)
                .await
                .unwrap();
            paid.push(t.elapsed());
        }
    });
    let p = report(
        "execute cached hello, paid route (verify+record+settle)",
        paid,
    );
    let u = report("execute cached hello, unpaid route", unpaid);
    println!(
        "{:<58} Δp50 = {:.1} µs",
        "payment cost per request (pipeline)",
        (p.as_secs_f64() - u.as_secs_f64()) * 1e6
    );
}
