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
//! - gauges read when scraped (live sessions, live instances, compile-cache counters,
//!   attestation provider and key age): [`Snapshot`], filled by the caller.
//!
//! Label values come from fixed sets (route templates, not paths; outcome names, not
//! facilitator messages), so a client cannot grow the number of series.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

/// Upper bounds of the duration histograms, seconds: from 100 µs (a cached execution) to 60 s
/// (the longest time limit).
const BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
    15.0, 60.0,
];

/// The longest label value kept (longer ones are cut): policy rule names come from the
/// operator's policy component.
const MAX_LABEL: usize = 64;

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// The current count.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A histogram of durations with the fixed [`BUCKETS`].
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations per bucket (not cumulative; summed when rendered); the last is `+Inf`.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    /// Sum of the observations, nanoseconds.
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// Records one duration.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }
}

/// Series of one metric, one per label set, created on first use.
#[derive(Debug)]
pub struct Family<K, V> {
    series: RwLock<HashMap<K, Arc<V>>>,
}

impl<K, V> Default for Family<K, V> {
    fn default() -> Self {
        Self {
            series: RwLock::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone, V: Default> Family<K, V> {
    /// The series for `labels`, created if needed.
    pub fn get(&self, labels: &K) -> Arc<V> {
        if let Some(v) = self
            .series
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(labels)
        {
            return v.clone();
        }
        self.series
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(labels.clone())
            .or_default()
            .clone()
    }

    /// Every series with its labels rendered by `labels`, sorted by them (stable output).
    fn sorted(&self, labels: impl Fn(&K) -> String) -> Vec<(String, Arc<V>)> {
        let mut all: Vec<_> = self
            .series
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (labels(k), v.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

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
}

/// Values read when scraped (they live elsewhere).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Sessions in the session table.
    pub live_sessions: u64,
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
    pub fn http_request(&self, route: &str, method: &http::Method, status: u16, took: Duration) {
        let route = self.intern(route);
        self.requests.get(&(route, method.clone(), status)).inc();
        self.request_seconds
            .get(&(route, method.clone()))
            .observe(took);
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

    /// The text exposition of every metric (Prometheus text format 0.0.4).
    pub fn render(&self, s: &Snapshot) -> String {
        let mut out = String::with_capacity(8192);
        let o = &mut out;

        header(
            o,
            "hypervisor_http_requests_total",
            "counter",
            "HTTP requests by route template, method and status.",
        );
        let requests = self.requests.sorted(|(route, method, status)| {
            format!(
                "route=\"{}\",method=\"{}\",status=\"{status}\"",
                escape(route),
                escape(method.as_str())
            )
        });
        for (labels, c) in requests {
            sample(o, "hypervisor_http_requests_total", &labels, c.get());
        }
        header(
            o,
            "hypervisor_http_request_duration_seconds",
            "histogram",
            "Time from request head to response head, by route template and method.",
        );
        let durations = self.request_seconds.sorted(|(route, method)| {
            format!(
                "route=\"{}\",method=\"{}\"",
                escape(route),
                escape(method.as_str())
            )
        });
        for (labels, h) in durations {
            histogram(o, "hypervisor_http_request_duration_seconds", &labels, &h);
        }

        header(
            o,
            "hypervisor_runs_total",
            "counter",
            "Finished executions (execution), agent invocations (invocation) and HTTP agent \
             requests (http_agent), by how they ended.",
        );
        for (labels, c) in self
            .runs
            .sorted(|(kind, status)| format!("kind=\"{kind}\",status=\"{}\"", escape(status)))
        {
            sample(o, "hypervisor_runs_total", &labels, c.get());
        }
        header(
            o,
            "hypervisor_run_duration_seconds",
            "histogram",
            "Time an execution or invocation ran (instantiate + run), by kind.",
        );
        for (labels, h) in self.run_seconds.sorted(|kind| format!("kind=\"{kind}\"")) {
            histogram(o, "hypervisor_run_duration_seconds", &labels, &h);
        }

        header(
            o,
            "hypervisor_payments_total",
            "counter",
            "x402 payments by outcome.",
        );
        for (outcome, c) in PaymentOutcome::ALL.iter().zip(&self.payments) {
            let labels = format!("outcome=\"{}\"", outcome.as_str());
            sample(o, "hypervisor_payments_total", &labels, c.get());
        }
        header(
            o,
            "hypervisor_policy_denials_total",
            "counter",
            "Requests the policy denied, by rule.",
        );
        for (labels, c) in self
            .policy_denials
            .sorted(|rule| format!("rule=\"{}\"", escape(rule)))
        {
            sample(o, "hypervisor_policy_denials_total", &labels, c.get());
        }

        gauge(
            o,
            "hypervisor_live_sessions",
            "Sessions open now.",
            s.live_sessions,
        );
        gauge(
            o,
            "hypervisor_live_instances",
            "WebAssembly instances running now (execution slots taken).",
            s.live_instances,
        );
        gauge(
            o,
            "hypervisor_instance_slots",
            "Execution slots in all (engine.max_concurrent_executions).",
            s.instance_slots,
        );
        header(
            o,
            "hypervisor_compile_cache_total",
            "counter",
            "Compiled-component lookups: memory and disk hits, and misses (compilations).",
        );
        for (result, n) in [
            ("memory_hit", s.cache_memory_hits),
            ("disk_hit", s.cache_disk_hits),
            ("miss", s.cache_misses),
        ] {
            sample(
                o,
                "hypervisor_compile_cache_total",
                &format!("result=\"{result}\""),
                n,
            );
        }
        gauge(o, "hypervisor_agents", "Agents deployed.", s.agents);
        header(
            o,
            "hypervisor_attestation_info",
            "gauge",
            "The attestation provider in use (always 1; the provider is the label).",
        );
        sample(
            o,
            "hypervisor_attestation_info",
            &format!("provider=\"{}\"", escape(&s.attestation_provider)),
            1,
        );
        if let Some(age) = s.attestation_key_age_seconds {
            gauge(
                o,
                "hypervisor_attestation_key_age_seconds",
                "Age of the attested signing key.",
                age,
            );
        }
        gauge(
            o,
            "hypervisor_uptime_seconds",
            "Seconds since the process started.",
            s.uptime_seconds,
        );
        out
    }
}

fn header(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} {kind}");
}

fn sample(o: &mut String, name: &str, labels: &str, value: u64) {
    if labels.is_empty() {
        let _ = writeln!(o, "{name} {value}");
    } else {
        let _ = writeln!(o, "{name}{{{labels}}} {value}");
    }
}

fn gauge(o: &mut String, name: &str, help: &str, value: u64) {
    header(o, name, "gauge", help);
    sample(o, name, "", value);
}

fn histogram(o: &mut String, name: &str, labels: &str, h: &Histogram) {
    let mut cumulative = 0u64;
    for (i, bound) in BUCKETS.iter().enumerate() {
        cumulative += h.buckets[i].load(Ordering::Relaxed);
        let _ = writeln!(o, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
    }
    cumulative += h.buckets[BUCKETS.len()].load(Ordering::Relaxed);
    let _ = writeln!(o, "{name}_bucket{{{labels},le=\"+Inf\"}} {cumulative}");
    let sum = h.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
    let _ = writeln!(o, "{name}_sum{{{labels}}} {sum}");
    let _ = writeln!(o, "{name}_count{{{labels}}} {cumulative}");
}

/// Escapes a label value (backslash, double quote, newline).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_counted() {
        let m = Metrics::default();
        m.run("execution", "exited", Duration::from_micros(80));
        m.run("execution", "exited", Duration::from_millis(3));
        m.run("execution", "time_limit_exceeded", Duration::from_secs(120));
        let text = m.render(&Snapshot::default());
        assert!(text.contains("hypervisor_runs_total{kind=\"execution\",status=\"exited\"} 2\n"));
        assert!(text.contains(
            "hypervisor_run_duration_seconds_bucket{kind=\"execution\",le=\"0.0001\"} 1\n"
        ));
        assert!(text.contains(
            "hypervisor_run_duration_seconds_bucket{kind=\"execution\",le=\"0.005\"} 2\n"
        ));
        assert!(
            text.contains(
                "hypervisor_run_duration_seconds_bucket{kind=\"execution\",le=\"60\"} 2\n"
            )
        );
        assert!(text.contains(
            "hypervisor_run_duration_seconds_bucket{kind=\"execution\",le=\"+Inf\"} 3\n"
        ));
        assert!(text.contains("hypervisor_run_duration_seconds_count{kind=\"execution\"} 3\n"));
    }

    #[test]
    fn label_values_are_escaped_and_cut() {
        let m = Metrics::default();
        m.policy_denial(&format!("a\"b\\c\n{}", "x".repeat(100)));
        let text = m.render(&Snapshot::default());
        let line = text
            .lines()
            .find(|l| l.starts_with("hypervisor_policy_denials_total{"))
            .unwrap();
        assert!(line.starts_with("hypervisor_policy_denials_total{rule=\"a\\\"b\\\\c\\n"));
        assert!(line.len() < 64 + 60, "{line}");
    }

    #[test]
    fn every_sample_line_is_well_formed() {
        let m = Metrics::default();
        m.http_request("/ping", &http::Method::GET, 200, Duration::from_micros(50));
        m.payment(PaymentOutcome::Settled);
        let text = m.render(&Snapshot {
            attestation_key_age_seconds: Some(5),
            attestation_provider: "none".into(),
            ..Snapshot::default()
        });
        for line in text.lines() {
            if line.starts_with('#') {
                assert!(line.starts_with("# HELP ") || line.starts_with("# TYPE "));
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
            assert!(series.starts_with("hypervisor_"), "{line}");
        }
        assert!(text.contains("hypervisor_payments_total{outcome=\"settled\"} 1\n"));
        assert!(text.contains(
            "hypervisor_http_requests_total{route=\"/ping\",method=\"GET\",status=\"200\"} 1\n"
        ));
    }
}
