//! The recording methods the runtime and the HTTP layer call.

use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;

use super::labels::{
    AgentLabels, InvocationLabels, LoadOutcome, LoadPhase, OutcomeLabels, PackageLabels,
    PhaseLabels, PollResult, ReasonLabels, ResultLabels, RouteLabels,
};
use super::{AgentLabel, Metrics, UNKNOWN_AGENT, UNMATCHED_ROUTE};
use crate::otlp::OtlpCounters;
use crate::usage::{ShipCounters, UsageCounters};

/// Holds a gauge up by one until dropped; see [`Metrics::track_inflight`].
#[must_use = "the gauge goes back down when the guard is dropped"]
#[derive(Debug)]
pub struct GaugeGuard(Gauge);

impl GaugeGuard {
    fn hold(gauge: Gauge) -> Self {
        gauge.inc();
        GaugeGuard(gauge)
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

fn agent_labels(agent: &AgentLabel) -> AgentLabels {
    AgentLabels {
        agent: agent.as_str().to_owned(),
    }
}

fn package_labels(package: &str) -> PackageLabels {
    PackageLabels {
        package: package.to_owned(),
    }
}

impl Metrics {
    /// One finished call: `par_invocations_total{agent, version, code}` (code `ok` or the
    /// error code) and `par_invocation_duration_seconds{agent}`. The version of an unknown
    /// agent is recorded as unknown too, since it came from the caller.
    pub fn invocation_finished(
        &self,
        agent: &AgentLabel,
        version: &str,
        code: &str,
        elapsed: Duration,
    ) {
        let version = if agent.is_known() {
            version
        } else {
            UNKNOWN_AGENT
        };
        let labels = InvocationLabels {
            agent: agent.as_str().to_owned(),
            version: version.to_owned(),
            code: code.to_owned(),
        };
        self.families().invocations.get(&labels).inc();
        let histogram = self
            .families()
            .invocation_duration
            .get(&agent_labels(agent));
        histogram.observe(elapsed.as_secs_f64());
    }

    /// Counts a call in `par_inflight_invocations{agent}` until the guard is dropped.
    pub fn track_inflight(&self, agent: &AgentLabel) -> GaugeGuard {
        GaugeGuard::hold(self.families().inflight.get(&agent_labels(agent)))
    }

    /// Counts a call in `par_queued_invocations{agent}` until the guard is dropped.
    pub fn track_queued(&self, agent: &AgentLabel) -> GaugeGuard {
        GaugeGuard::hold(self.families().queued.get(&agent_labels(agent)))
    }

    /// `par_worker_starts_total{package}`.
    pub fn worker_started(&self, package: &str) {
        self.families()
            .worker_starts
            .get(&package_labels(package))
            .inc();
    }

    /// `par_worker_crashes_total{package}`.
    pub fn worker_crashed(&self, package: &str) {
        self.families()
            .worker_crashes
            .get(&package_labels(package))
            .inc();
    }

    /// `par_worker_stuck_replacements_total{package}`: a worker whose threads were held
    /// by abandoned sync calls, replaced.
    pub fn worker_stuck_replaced(&self, package: &str) {
        self.families()
            .worker_stuck
            .get(&package_labels(package))
            .inc();
    }

    /// `par_log_lines_dropped_total{package}`: lines over the package's log rate.
    pub fn log_lines_dropped(&self, package: &str, lines: u64) {
        self.families()
            .log_lines_dropped
            .get(&package_labels(package))
            .inc_by(lines);
    }

    /// `par_worker_restarts_total{package}`.
    pub fn worker_restarted(&self, package: &str) {
        self.families()
            .worker_restarts
            .get(&package_labels(package))
            .inc();
    }

    /// `par_package_wakes_total{package}` and `par_package_wake_seconds`: an idle
    /// package's processes started again for a call.
    pub fn package_woken(&self, package: &str, elapsed: Duration) {
        let families = self.families();
        families.package_wakes.get(&package_labels(package)).inc();
        families.package_wake.observe(elapsed.as_secs_f64());
    }

    /// `par_workers{package}`: the live worker count, changed by `delta`. Several pools
    /// can run one package at once (two versions during a hot swap), so each adds its
    /// own changes instead of setting the total.
    pub fn add_workers(&self, package: &str, delta: i64) {
        let gauge = self.families().workers.get(&package_labels(package));
        gauge.inc_by(delta);
    }

    /// `par_package_loads_total{outcome}`.
    pub fn package_loaded(&self, outcome: LoadOutcome) {
        let labels = OutcomeLabels {
            outcome: outcome.as_str(),
        };
        self.families().package_loads.get_or_create(&labels).inc();
    }

    /// `par_package_load_phase_seconds{phase}`.
    pub fn load_phase_finished(&self, phase: LoadPhase, elapsed: Duration) {
        let labels = PhaseLabels {
            phase: phase.as_str(),
        };
        let histogram = self.families().load_phase.get_or_create_owned(&labels);
        histogram.observe(elapsed.as_secs_f64());
    }

    /// `par_cache_hits_total`.
    pub fn cache_hit(&self) {
        self.families().cache_hits.inc();
    }

    /// `par_cache_misses_total`.
    pub fn cache_miss(&self) {
        self.families().cache_misses.inc();
    }

    /// `par_cache_bytes`: bytes the cache holds now.
    pub fn set_cache_bytes(&self, bytes: u64) {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        self.families().cache_bytes.set(bytes);
    }

    /// `par_cache_evictions_total`, by `entries` evicted at once.
    pub fn cache_evicted(&self, entries: u64) {
        self.families().cache_evictions.inc_by(entries);
    }

    /// `par_registry_polls_total{result}`.
    pub fn registry_polled(&self, result: PollResult) {
        let labels = ResultLabels {
            result: result.as_str(),
        };
        self.families().registry_polls.get_or_create(&labels).inc();
    }

    /// `par_auth_rejections_total{reason}`; pass a short fixed reason such as
    /// `missing_token`, `invalid_token` or `forbidden`, never caller input.
    pub fn auth_rejected(&self, reason: &str) {
        let labels = ReasonLabels {
            reason: reason.to_owned(),
        };
        self.families().auth_rejections.get(&labels).inc();
    }

    /// `par_http_requests_total{route, status}`. `route` is the matched route template
    /// (axum's `MatchedPath`, e.g. `/agents/{id}/invoke`), or `None` when no route matched;
    /// never the raw path.
    pub fn http_request(&self, route: Option<&str>, status: u16) {
        let labels = RouteLabels {
            route: route.unwrap_or(UNMATCHED_ROUTE).to_owned(),
            status: status.to_string(),
        };
        self.families().http_requests.get(&labels).inc();
    }

    /// The ledger's written and dropped counters, registered here as
    /// `par_usage_records_written_total` and `par_usage_records_dropped_total`; pass them
    /// in [`crate::usage::UsageConfig::counters`].
    pub fn usage_counters(&self) -> UsageCounters {
        UsageCounters {
            written: self.families().usage_written.clone(),
            dropped: self.families().usage_dropped.clone(),
        }
    }

    /// The OTLP exporter's counters, registered here as `par_otlp_spans_exported_total`
    /// and `par_otlp_spans_dropped_total`; pass them in [`crate::otlp::OtlpConfig::counters`].
    pub fn otlp_counters(&self) -> OtlpCounters {
        OtlpCounters {
            exported: self.families().otlp_exported.clone(),
            dropped: self.families().otlp_dropped.clone(),
        }
    }

    /// The PostgreSQL shipper's counters, registered here as
    /// `par_usage_records_shipped_total`, `par_usage_ship_failures_total` and
    /// `par_usage_ship_lag_records`; pass them in [`crate::usage::ShipConfig::counters`].
    pub fn ship_counters(&self) -> ShipCounters {
        ShipCounters {
            shipped: self.families().usage_shipped.clone(),
            failures: self.families().usage_ship_failures.clone(),
            lag: self.families().usage_ship_lag.clone(),
        }
    }
}
