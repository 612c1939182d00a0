//! Prometheus metrics: counters and histograms kept in atomics, rendered in the Prometheus text
//! exposition format (version 0.0.4) at `GET /metrics`.
//!
//! What is counted where:
//! - HTTP requests by route template, method and status, and their durations: the HTTP
//!   middleware ([`crate::http`]);
//! - executions and invocations by kind and status, and their durations: where their records
//!   are written ([`crate::pipeline`]);
//! - payments (verified, refused, replayed, settled, settlement failed, unavailable) and policy
//!   denials by rule: the pipeline's admission and payment steps;
//! - HTTP connections open now: the accept loop ([`crate::server`]);
//! - gauges read when scraped (live sessions, live instances, compile-cache counters,
//!   attestation provider and key age): [`Snapshot`], filled by the caller.
//!
//! Label values come from fixed sets (route templates, not paths; outcome names, not
//! facilitator messages), so a client cannot grow the number of series.
//!
//! Layout: `primitives` holds the counters and histograms, `render` the text format; this
//! module holds what the host counts.

mod primitives;
mod render;

use std::sync::{PoisonError, RwLock};
use std::time::Duration;

pub use self::primitives::{Counter, Family, Histogram};

/// The longest label value kept (longer ones are cut): policy rule names come from the
/// operator's policy component.
const MAX_LABEL: usize = 64;

/// What happened to a payment (the `outcome` label of `hypervisor_payments_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentOutcome {
    /// A paid route was called without a payment (402).
    Missing,
    /// Verified (offline and, in facilitator mode, by the facilitator).
    Verified,
    /// Refused at verification (402).
    Refused,
    /// A replay of a recorded payment (402).
    Replayed,
    /// Settled after the work ran.
    Settled,
    /// Settlement refused (402, result withheld).
    SettlementFailed,
    /// The payments component or facilitator could not judge or settle it (503).
    Unavailable,
}

impl PaymentOutcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Verified => "verified",
            Self::Refused => "refused",
            Self::Replayed => "replayed",
            Self::Settled => "settled",
            Self::SettlementFailed => "settlement_failed",
            Self::Unavailable => "unavailable",
        }
    }

    const ALL: [Self; 7] = [
        Self::Missing,
        Self::Verified,
        Self::Refused,
        Self::Replayed,
        Self::Settled,
        Self::SettlementFailed,
        Self::Unavailable,
    ];
}

/// `(route template, method, status)`. Route templates are interned (a router has a few
/// dozen), so counting a request allocates nothing.
type RequestLabels = (&'static str, http::Method, u16);
/// `(kind, status)`: kind is `execution`, `invocation` or `http_agent`.
type RunLabels = (&'static str, String);

/// Every metric the host keeps.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<(&'static str, http::Method), Histogram>,
    routes: RwLock<std::collections::HashSet<&'static str>>,
    runs: Family<RunLabels, Counter>,
    run_seconds: Family<&'static str, Histogram>,
    payments: [Counter; PaymentOutcome::ALL.len()],
    policy_denials: Family<String, Counter>,
    /// HTTP connections open now (kept by the accept loop, [`crate::server`]).
    connections: std::sync::atomic::AtomicU64,
}

/// Values read when scraped (they live elsewhere).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Sessions in the session table.
    pub live_sessions: u64,
    /// Sessions dropped to make room in a full table, since start.
    pub sessions_evicted: u64,
    /// Instances running now (execution slots taken).
    pub live_instances: u64,
    /// Execution slots in all.
    pub instance_slots: u64,
    /// Compiled components served from memory.
    pub cache_memory_hits: u64,
    /// Compiled components loaded from the sealed disk cache.
    pub cache_disk_hits: u64,
    /// Components compiled.
    pub cache_misses: u64,
    /// Plug-ins loaded from the precompiled artifacts beside the binary, since start.
    pub plugins_precompiled: u64,
    /// Plug-ins loaded from the sealed disk cache, since start.
    pub plugins_from_disk: u64,
    /// Plug-ins compiled, since start.
    pub plugins_compiled: u64,
    /// Agents deployed.
    pub agents: u64,
    /// The attestation provider (`none`, `tdx`, `sev-snp`, `simulated`).
    pub attestation_provider: String,
    /// Age of the attested signing key, seconds (`None` without attestation).
    pub attestation_key_age_seconds: Option<u64>,
    /// Seconds since the process started.
    pub uptime_seconds: u64,
}

impl Metrics {
    /// Counts one HTTP request on `route` (the router's template, e.g. `/agents/{name}/invoke`;
    /// `unmatched` for the fallback).
    ///
    /// A method outside the standard set counts as `OTHER`: clients choose methods, and each
    /// distinct label value would be a new series, kept forever.
    pub fn http_request(&self, route: &str, method: &http::Method, status: u16, took: Duration) {
        let route = self.intern(route);
        let method = standard_method(method);
        self.requests.get(&(route, method.clone(), status)).inc();
        self.request_seconds.get(&(route, method)).observe(took);
    }

    /// The one `'static` copy of a route template (created once per template: the router's
    /// templates are a fixed set, so the leak is bounded).
    fn intern(&self, route: &str) -> &'static str {
        if let Some(r) = self
            .routes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(route)
        {
            return r;
        }
        let mut routes = self.routes.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(r) = routes.get(route) {
            return r;
        }
        let r: &'static str = Box::leak(route.to_string().into_boxed_str());
        routes.insert(r);
        r
    }

    /// Counts one finished execution or invocation.
    pub fn run(&self, kind: &'static str, status: &str, took: Duration) {
        self.runs.get(&(kind, status.to_string())).inc();
        self.run_seconds.get(&kind).observe(took);
    }

    /// Counts a payment event.
    pub fn payment(&self, outcome: PaymentOutcome) {
        if let Some(i) = PaymentOutcome::ALL.iter().position(|o| *o == outcome) {
            self.payments[i].inc();
        }
    }

    /// Counts a policy denial by the rule that denied.
    pub fn policy_denial(&self, rule: &str) {
        let rule: String = rule.chars().take(MAX_LABEL).collect();
        self.policy_denials.get(&rule).inc();
    }

    /// Counts an accepted HTTP connection (until [`Metrics::connection_closed`]).
    pub fn connection_opened(&self) {
        self.connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Counts the end of a connection counted by [`Metrics::connection_opened`].
    pub fn connection_closed(&self) {
        self.connections
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// `method` if it is one of HTTP's standard methods, else `OTHER`.
fn standard_method(method: &http::Method) -> http::Method {
    use http::Method as M;
    const STANDARD: [M; 9] = [
        M::GET,
        M::POST,
        M::PUT,
        M::DELETE,
        M::HEAD,
        M::OPTIONS,
        M::PATCH,
        M::CONNECT,
        M::TRACE,
    ];
    if STANDARD.contains(method) {
        method.clone()
    } else {
        http::Method::from_bytes(b"OTHER").unwrap_or(M::GET)
    }
}
