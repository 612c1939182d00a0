//! x402 payment benchmarks: `cargo bench -p hypervisor --bench payments`.
//!
//! - `parts`: one verification by the payments component (warm instance: decode, EIP-712 hash,
//!   secp256k1 recovery), direct;
//! - its parts on a paid request's path: a settlement (verify-only) and the ledger's writes;
//! - the execute pipeline for a cached `hello` on the paid route (verify, durable ledger
//!   reservation, settle) against the unpaid route, interleaved on one host; every paid request
//!   carries a new authorization (signed before timing starts);
//! - `throughput`: paid against unpaid execution of a cached `hello`, requests per second with
//!   `BENCH_CONCURRENCY` (16) callers in this process for `BENCH_SECONDS` (3) a round, rounds
//!   interleaved (`BENCH_ROUNDS`, 3), every paid request with a new authorization signed
//!   beforehand: the host's own cost, no HTTP and no client work on the cores. Measured in
//!   verify-only mode, then in facilitator mode against a stand-in facilitator on loopback
//!   (answers `/verify` and `/settle` at once, no chain) with `verify = "local"`, settled before
//!   the response and then after it (`settle_after_response_up_to`), and verify-only with the
//!   payment reserved before the run (`payments.reserve_before_run`), its `settled` mark after
//!   the response or before it. `BENCH_PAYMENT_MODES` picks modes by index (0: fresh
//!   instances, 1: verify-only (recorded once, after the run), 2: facilitator before,
//!   3: facilitator after, 4: verify-only reserved, settled after the response, 5: verify-only
//!   reserved, settled before it); `BENCH_PAID_HEADERS` (60000) authorizations are signed per
//!   mode.
//!
//! - `metered`: agent invocations unpaid, at a fixed price and metered (x402 `upto`), interleaved
//!   ([`metered`]).
//!
//! Needs `scripts/build-programs.sh`. `BENCH_ITERATIONS` sets the sample count; `BENCH_ONLY`
//! (`parts`, `throughput`, `metered`) picks sections.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;
#[path = "payments/metered.rs"]
mod metered;

use common::stats::report;
use common::{in_process, unix_now as now, wasm};
use hypervisor::pipeline::RouteKind;
use hypervisor::plugins::payments::{self, PaidResource, PaymentHeader, Payments, ProtocolVersion};
use hypervisor::server::Host;
use hypervisor_client::ExecuteInput;
use hypervisor_client::x402::{Offer, PaymentLimit, Wallet};
use hypervisor_protocol::ClientSecret;

fn main() {
    common::run_sections(
        "BENCH_ONLY",
        &[
            ("parts", parts),
            ("throughput", throughput),
            ("metered", metered::metered),
        ],
    );
}

/// A host with the paid routes on (verify-only, or `tune`d), and its data directory.
fn paid_host(
    rt: &tokio::runtime::Runtime,
    tune: impl FnOnce(&mut hypervisor::config::Config),
) -> (Host, hypervisor::config::Config, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = in_process::config(tmp.path());
    c.payments.enabled = true;
    c.payments.component = wasm::path("payments");
    c.payments.price.pay_to = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C".into();
    tune(&mut c);
    let host = rt.block_on(Host::build(c.clone())).unwrap();
    (host, c, tmp)
}

/// A stand-in x402 facilitator on loopback: `/verify` says valid, `/settle` says settled with a
/// made-up transaction hash, both at once. It measures what settling through a facilitator
/// costs the host (a `wasi:http` round trip from the payments component), not a chain.
fn stand_in_facilitator(rt: &tokio::runtime::Runtime) -> String {
    use axum::routing::post;
    let settled = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let app = axum::Router::new()
        .route(
            "/verify",
            // Each reads the request's body, as a facilitator does, before it answers.
            post(|_: axum::body::Bytes| async { axum::Json(serde_json::json!({"isValid": true})) }),
        )
        .route(
            "/settle",
            post(move |_: axum::body::Bytes| {
                let n = settled.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                async move {
                    axum::Json(serde_json::json!({
                        "success": true,
                        "transaction": format!("0x{n:064x}"),
                        "network": "eip155:84532",
                    }))
                }
            }),
        );
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    rt.spawn(async move { axum::serve(listener, app).await });
    url
}

/// A payments component of `host`'s configuration, the paid test route's resource and price,
/// the offer a client reads from its challenge, and a wallet paying it.
struct Paying {
    component: Payments,
    resource: PaidResource,
    price: payments::Price,
    offer: Offer,
    wallet: Wallet,
}

impl Paying {
    fn new(rt: &tokio::runtime::Runtime, host: &Host, c: &hypervisor::config::Config) -> Self {
        let engine = host.pipeline().engine_arc().clone();
        let component = rt.block_on(Payments::load(engine, &c.payments)).unwrap();
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
        Self {
            component,
            resource,
            price,
            offer,
            wallet: Wallet::random().unwrap(),
        }
    }

    /// A payment header carrying a new authorization.
    fn header(&self) -> PaymentHeader {
        let (_, value) = self
            .wallet
            .pay(&self.offer, &PaymentLimit::new(10_000), now())
            .unwrap();
        PaymentHeader {
            version: ProtocolVersion::V2,
            value,
        }
    }
}

/// `n` payment headers for the paid test route of `host`, each a new authorization.
fn sign_headers(
    rt: &tokio::runtime::Runtime,
    host: &Host,
    c: &hypervisor::config::Config,
    n: usize,
) -> Vec<PaymentHeader> {
    let paying = Paying::new(rt, host, c);
    (0..n).map(|_| paying.header()).collect()
}

/// Requests per second of `concurrency` callers executing `req` on `route` for `seconds`; paid
/// requests take their headers from `headers`.
fn rate(
    rt: &tokio::runtime::Runtime,
    pipeline: &Arc<hypervisor::pipeline::Pipeline>,
    req: &hypervisor_protocol::wire::ExecuteRequest,
    route: RouteKind,
    headers: Option<&Arc<Mutex<Vec<PaymentHeader>>>>,
    concurrency: usize,
    seconds: f64,
) -> (f64, Duration) {
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let cpu = common::process::cpu_time_of("self");
    let done: usize = rt.block_on(async {
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let (pipeline, req) = (pipeline.clone(), req.clone());
                let headers = headers.cloned();
                tokio::spawn(async move {
                    let mut n = 0usize;
                    while Instant::now() < end {
                        let header = headers.as_ref().map(|h| {
                            h.lock()
                                .unwrap()
                                .pop()
                                .expect("BENCH_PAID_HEADERS too small for this run")
                        });
                        pipeline
                            .execute_wasm(req.clone(), None, route, header)
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
    let cpu = common::process::cpu_time_of("self").saturating_sub(cpu);
    let per_request = cpu / u32::try_from(done.max(1)).unwrap_or(u32::MAX);
    (done as f64 / started.elapsed().as_secs_f64(), per_request)
}

/// A change to the benchmark host's configuration.
type Tune<'a> = Box<dyn Fn(&mut hypervisor::config::Config) + 'a>;

/// Paid against unpaid throughput, interleaved rounds on one host, for each payments setting.
fn throughput() {
    let rt = common::runtime();
    let _guard = rt.enter();
    let facilitator = stand_in_facilitator(&rt);
    let modes: [(&str, Tune<'_>); 6] = [
        (
            "verify-only, fresh component instances",
            Box::new(|c| c.payments.warm_instances = 0),
        ),
        ("verify-only", Box::new(|_| {})),
        (
            "facilitator (stand-in), verify local, settle before response",
            Box::new(|c| {
                c.payments.mode = hypervisor::config::SettlementMode::Facilitator;
                c.payments.facilitator_url = Some(facilitator.clone());
                c.payments.verify = hypervisor::config::VerifyAt::Local;
            }),
        ),
        (
            "facilitator (stand-in), verify local, settle after response",
            Box::new(|c| {
                c.payments.mode = hypervisor::config::SettlementMode::Facilitator;
                c.payments.facilitator_url = Some(facilitator.clone());
                c.payments.verify = hypervisor::config::VerifyAt::Local;
                c.payments.settle_after_response_up_to = Some(c.payments.price.amount.clone());
            }),
        ),
        (
            "verify-only, reserved before the run, settled after response",
            Box::new(|c| {
                c.payments.reserve_before_run = true;
                c.payments.settle_after_response_up_to = Some(c.payments.price.amount.clone());
            }),
        ),
        (
            "verify-only, reserved before the run (the default before 2026-11-29)",
            Box::new(|c| c.payments.reserve_before_run = true),
        ),
    ];
    let wanted = std::env::var("BENCH_PAYMENT_MODES").ok();
    for (i, (name, tune)) in modes.iter().enumerate() {
        if wanted
            .as_deref()
            .is_some_and(|w| !w.split(',').any(|m| m.trim() == i.to_string()))
        {
            continue;
        }
        let (host, c, _tmp) = paid_host(&rt, tune);
        throughput_of(&rt, &host, &c, name);
    }
}

/// Paid against unpaid throughput on `host`, interleaved rounds.
fn throughput_of(
    rt: &tokio::runtime::Runtime,
    host: &Host,
    c: &hypervisor::config::Config,
    mode: &str,
) {
    let pipeline = host.pipeline().clone();
    let concurrency = common::env_or("BENCH_CONCURRENCY", 16);
    let seconds = common::env_or("BENCH_SECONDS", 3.0);
    let rounds = common::env_or("BENCH_ROUNDS", 3);
    let signed = common::env_or("BENCH_PAID_HEADERS", 60_000);
    let headers = Arc::new(Mutex::new(sign_headers(rt, host, c, signed)));
    let secret = ClientSecret::generate().unwrap();
    let session = in_process::session(&pipeline, &secret);
    let (req, _) = session
        .encrypt_execution(&ExecuteInput::new(&wasm::read("hello")))
        .unwrap();
    let unpaid_for = |seconds| {
        rate(
            rt,
            &pipeline,
            &req,
            RouteKind::TEST,
            None,
            concurrency,
            seconds,
        )
    };
    let paid_for = |seconds| {
        let route = RouteKind::PAID_TEST;
        rate(
            rt,
            &pipeline,
            &req,
            route,
            Some(&headers),
            concurrency,
            seconds,
        )
    };
    // warm-up: the component compiled and cached, pool slots touched
    unpaid_for(0.5);
    paid_for(0.5);
    let (mut paid, mut unpaid, mut cpu) = (Vec::new(), Vec::new(), Vec::new());
    // BENCH_PAID_ONLY=1: paid rounds alone (to profile them)
    let paid_only = std::env::var_os("BENCH_PAID_ONLY").is_some();
    for _ in 0..rounds {
        let (u, u_cpu) = if paid_only {
            (f64::NAN, Duration::ZERO)
        } else {
            unpaid_for(seconds)
        };
        let (p, p_cpu) = paid_for(seconds);
        unpaid.push(u);
        paid.push(p);
        cpu.push(format!("{} / {} µs", u_cpu.as_micros(), p_cpu.as_micros()));
    }
    let ratios: Vec<String> = paid
        .iter()
        .zip(&unpaid)
        .map(|(p, u)| format!("{:.2}", p / u))
        .collect();
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (u, p) = (median(&mut unpaid), median(&mut paid));
    println!(
        "paid/unpaid, {mode}: unpaid {u:.0} req/s, paid {p:.0} req/s: {:.2}× (rounds {}; {concurrency} callers; CPU per request unpaid / paid: {})",
        p / u,
        ratios.join(", "),
        cpu.join(", ")
    );
}

/// The parts of a paid request, measured one at a time, and the paid pipeline against the
/// unpaid one, sequentially.
fn parts() {
    let rt = common::runtime();
    let _guard = rt.enter();
    let iterations = common::iterations(1000);
    let (host, c, tmp) = paid_host(&rt, |_| {});
    let pipeline = host.pipeline().clone();
    // The offer, as a client sees it, from the component's own challenge.
    let paying = Paying::new(&rt, &host, &c);
    let (component, resource, price) = (&paying.component, &paying.resource, &paying.price);
    let header = |_: usize| paying.header();

    // 1. One verification, direct.
    let headers: Vec<_> = (0..iterations).map(header).collect();
    let samples = rt.block_on(async {
        let mut out = Vec::with_capacity(iterations);
        for h in &headers {
            let t = Instant::now();
            component
                .verify(h, resource, price, now())
                .await
                .unwrap()
                .unwrap();
            out.push(t.elapsed());
        }
        out
    });
    report("payment verification (component, warm instance)", samples);

    // Where the rest of a paid request goes: settlement (fresh instance, no recovery) and the
    // two durable ledger writes.
    let samples = rt.block_on(async {
        let mut out = Vec::with_capacity(iterations);
        for h in &headers {
            let t = Instant::now();
            component.settle(h, resource, price).await.unwrap().unwrap();
            out.push(t.elapsed());
        }
        out
    });
    report("payment settlement (component, verify-only)", samples);
    use hypervisor::storage::payments::PaymentLedger as _;
    let ledger = hypervisor::storage::sqlite::SqlitePayments::open(tmp.path()).unwrap();
    let samples: Vec<_> = rt.block_on(async {
        let mut out = Vec::with_capacity(iterations);
        for i in 0..iterations {
            let key = format!("bench-{i}");
            let t = Instant::now();
            let payment = hypervisor::storage::payments::NewPayment {
                replay_key: &key,
                payer: "0x0",
                amount: "1",
                network: "eip155:84532",
                route: "/bench",
                owner: "bench",
                sealed: b"sealed",
                at: now(),
                identifier: None,
            };
            assert!(ledger.reserve(&payment).await.unwrap());
            assert!(ledger.settling(&key, "bench", now()).await.unwrap());
            ledger.settled(&key, "", now()).await.unwrap();
            out.push(t.elapsed());
        }
        out
    });
    report(
        "ledger reserve + settling + settled (three group-committed writes, one caller)",
        samples,
    );

    // 2. Paid vs unpaid pipeline, interleaved.
    let secret = ClientSecret::generate().unwrap();
    let session = in_process::session(&pipeline, &secret);
    let hello = wasm::read("hello");
    let (req, _) = session
        .encrypt_execution(&ExecuteInput::new(&hello))
        .unwrap();
    // The same on a second host whose payments are reserved before the run (the default
    // before 2026-11-29), interleaved with the first.
    let (reserving, _, _tmp2) = paid_host(&rt, |c| c.payments.reserve_before_run = true);
    let reserving = reserving.pipeline().clone();
    let session2 = in_process::session(&reserving, &secret);
    let (req2, _) = session2
        .encrypt_execution(&ExecuteInput::new(&hello))
        .unwrap();
    let mut headers: Vec<_> = (0..2 * (iterations + 50)).map(header).collect();
    let (mut paid, mut unpaid, mut reserved) = (Vec::new(), Vec::new(), Vec::new());
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
            let h = headers.pop();
            reserving
                .execute_wasm(req2.clone(), None, RouteKind::PAID_TEST, h)
                .await
                .unwrap();
        }
        for _ in 0..iterations {
            let (r, h) = (req2.clone(), headers.pop());
            let t = Instant::now();
            reserving
                .execute_wasm(r, None, RouteKind::PAID_TEST, h)
                .await
                .unwrap();
            reserved.push(t.elapsed());
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
        "execute cached hello, paid route (verify, run, one recording write)",
        paid,
    );
    report(
        "execute cached hello, paid route reserved before the run (two writes)",
        reserved,
    );
    let u = report("execute cached hello, unpaid route", unpaid);
    println!(
        "{:<58} Δp50 = {:.1} µs",
        "payment cost per request (pipeline)",
        (p.as_secs_f64() - u.as_secs_f64()) * 1e6
    );
}
