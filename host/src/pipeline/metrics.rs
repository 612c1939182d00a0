//! The pipeline's side of `/metrics`: the counters it keeps, and the values read when scraped.

use std::time::Duration;

use super::Pipeline;
use crate::attestation::TeeKind;
use crate::clock::unix_seconds;
use crate::metrics::{Metrics, Snapshot};
use crate::storage::records::ExecutionRecord;

impl Pipeline {
    /// The host's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Counts a finished execution or invocation from its record.
    pub(super) fn count_run(&self, record: &ExecutionRecord) {
        let kind = match (&record.agent, record.route.ends_with("/invoke")) {
            (None, _) => "execution",
            (Some(_), true) => "invocation",
            (Some(_), false) => "http_agent",
        };
        self.metrics.run(
            kind,
            &record.status,
            Duration::from_micros(record.duration_us),
        );
    }

    /// Every metric in Prometheus text format, with the gauges read now.
    pub fn render_metrics(&self) -> String {
        let cache = self.engine.cache_stats();
        let plugins = self.engine.plugin_stats();
        let (taken, slots) = self.engine.slots_in_use();
        let key_age = (self.attestor.kind() != TeeKind::None)
            .then(|| self.attestor.current())
            .flatten()
            .map(|key| unix_seconds().saturating_sub(key.created_at));
        let snapshot = Snapshot {
            live_sessions: self.sessions.len() as u64,
            sessions_evicted: self.sessions.evicted(),
            live_instances: taken,
            instance_slots: slots,
            cache_memory_hits: cache.memory_hits,
            cache_disk_hits: cache.disk_hits,
            cache_misses: cache.compiles,
            plugins_precompiled: plugins.precompiled,
            plugins_from_disk: plugins.disk_hits,
            plugins_compiled: plugins.compiles,
            agents: self.agent_count(),
            attestation_provider: self.attestor.kind().name().to_string(),
            attestation_key_age_seconds: key_age,
            uptime_seconds: self.started.elapsed().as_secs(),
        };
        self.metrics.render(&snapshot)
    }
}
