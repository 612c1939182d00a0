//! The Prometheus text exposition format (version 0.0.4): [`Metrics::render`] and the
//! writers of its `# HELP`/`# TYPE` headers, samples, gauges and histograms.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use super::primitives::{BUCKETS, Histogram};
use super::{Metrics, PaymentOutcome, Snapshot};

impl Metrics {
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
            "hypervisor_http_connections",
            "HTTP connections open now (at most http.max_connections).",
            self.connections.load(Ordering::Relaxed),
        );
        gauge(
            o,
            "hypervisor_live_sessions",
            "Sessions open now.",
            s.live_sessions,
        );
        let evicted = "hypervisor_sessions_evicted_total";
        header(
            o,
            evicted,
            "counter",
            "Sessions dropped, least recently used first, to make room in a full table.",
        );
        sample(o, evicted, "", s.sessions_evicted);
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
        header(
            o,
            "hypervisor_plugin_loads_total",
            "counter",
            "Plug-in loads by source: precompiled beside the binary, the sealed disk cache, compiled.",
        );
        for (source, n) in [
            ("precompiled", s.plugins_precompiled),
            ("disk", s.plugins_from_disk),
            ("compiled", s.plugins_compiled),
        ] {
            sample(
                o,
                "hypervisor_plugin_loads_total",
                &format!("source=\"{source}\""),
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
    use std::time::Duration;

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
    fn methods_outside_the_standard_set_share_one_series() {
        let m = Metrics::default();
        for method in ["FOO1", "FOO2", "BAR"] {
            let method = http::Method::from_bytes(method.as_bytes()).unwrap();
            m.http_request("unmatched", &method, 405, Duration::from_micros(5));
        }
        m.http_request("/ping", &http::Method::GET, 200, Duration::from_micros(5));
        let text = m.render(&Snapshot::default());
        assert!(
            text.contains(
                "hypervisor_http_requests_total{route=\"unmatched\",method=\"OTHER\",status=\"405\"} 3\n"
            ),
            "{text}"
        );
        assert!(!text.contains("FOO1"), "{text}");
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
