//! Registration of every metric family, with its final exposed name in a comment.
//! prometheus-client appends `_total` to counters and the unit to names registered with
//! one, so names are registered without them.

use std::hash::Hash;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry, Unit};

use super::bounded::{Bounded, Overflow};
use super::labels::{
    AgentLabels, EgressBytesLabels, EgressLabels, InvocationLabels, LoadOutcome, LoadPhase,
    OutcomeLabels, PackageLabels, PhaseLabels, PollResult, ReasonLabels, ResultLabels, RouteLabels,
};

/// Upper bounds of the latency buckets: half a millisecond to five minutes.
pub(crate) const LATENCY_BUCKETS: [f64; 18] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 120.0, 300.0,
];

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Registers families into one registry with one series cap.
struct Registrar<'a> {
    registry: &'a mut Registry,
    cap: usize,
}

impl Registrar<'_> {
    fn add<M: Metric + Clone>(&mut self, name: &str, help: &str, unit: Option<Unit>, m: M) -> M {
        match unit {
            Some(unit) => self
                .registry
                .register_with_unit(name, help, unit, m.clone()),
            None => self.registry.register(name, help, m.clone()),
        }
        m
    }

    /// A family of counters or gauges with free-text labels, capped.
    fn bounded<L, M>(&mut self, name: &str, help: &str) -> Bounded<L, M>
    where
        L: Clone + Hash + Eq + Overflow,
        M: Default + Clone,
        Family<L, M>: Metric,
    {
        Bounded::new(self.add(name, help, None, Family::default()), self.cap)
    }

    /// A family of latency histograms with free-text labels, capped.
    fn bounded_seconds<L>(
        &mut self,
        name: &str,
        help: &str,
    ) -> Bounded<L, Histogram, fn() -> Histogram>
    where
        L: Clone + Hash + Eq + Overflow,
        HistogramFamily<L>: Metric,
    {
        let family = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        Bounded::new(self.add(name, help, Some(Unit::Seconds), family), self.cap)
    }

    /// A family whose labels take a closed set of values; no cap needed.
    fn closed<L, M>(&mut self, name: &str, help: &str) -> Family<L, M>
    where
        L: Clone + Hash + Eq,
        M: Default,
        Family<L, M>: Metric,
    {
        self.add(name, help, None, Family::default())
    }

    fn closed_seconds<L>(&mut self, name: &str, help: &str) -> HistogramFamily<L>
    where
        L: Clone + Hash + Eq,
        HistogramFamily<L>: Metric,
    {
        let family = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        self.add(name, help, Some(Unit::Seconds), family)
    }
}

pub(crate) struct Families {
    pub(crate) invocations: Bounded<InvocationLabels, Counter>,
    pub(crate) invocation_duration: Bounded<AgentLabels, Histogram, fn() -> Histogram>,
    pub(crate) inflight: Bounded<AgentLabels, Gauge>,
    pub(crate) queued: Bounded<AgentLabels, Gauge>,
    pub(crate) worker_starts: Bounded<PackageLabels, Counter>,
    pub(crate) worker_crashes: Bounded<PackageLabels, Counter>,
    pub(crate) worker_restarts: Bounded<PackageLabels, Counter>,
    pub(crate) worker_stuck: Bounded<PackageLabels, Counter>,
    pub(crate) log_lines_dropped: Bounded<PackageLabels, Counter>,
    pub(crate) workers: Bounded<PackageLabels, Gauge>,
    pub(crate) package_wakes: Bounded<PackageLabels, Counter>,
    pub(crate) package_wake: Histogram,
    pub(crate) package_loads: Family<OutcomeLabels, Counter>,
    pub(crate) load_phase: HistogramFamily<PhaseLabels>,
    pub(crate) cache_hits: Counter,
    pub(crate) cache_misses: Counter,
    pub(crate) cache_bytes: Gauge,
    pub(crate) cache_evictions: Counter,
    pub(crate) registry_polls: Family<ResultLabels, Counter>,
    pub(crate) auth_rejections: Bounded<ReasonLabels, Counter>,
    pub(crate) http_requests: Bounded<RouteLabels, Counter>,
    pub(crate) usage_written: Counter,
    pub(crate) usage_dropped: Counter,
    pub(crate) usage_shipped: Counter,
    pub(crate) usage_ship_failures: Counter,
    pub(crate) usage_ship_lag: Gauge,
    pub(crate) otlp_exported: Counter,
    pub(crate) otlp_dropped: Counter,
    pub(crate) egress_connections: Bounded<EgressLabels, Counter>,
    pub(crate) egress_bytes: Bounded<EgressBytesLabels, Counter>,
}

impl Families {
    #[rustfmt::skip] // one family per line reads as the table it is
    pub(crate) fn register(registry: &mut Registry, cap: usize) -> Self {
        let mut r = Registrar { registry, cap };
        let families = Families {
            // par_invocations_total{agent, version, code}
            invocations: r.bounded("par_invocations", "Agent invocations by outcome code"),
            // par_invocation_duration_seconds{agent}
            invocation_duration: r.bounded_seconds("par_invocation_duration", "Invocation latency"),
            // par_inflight_invocations{agent}
            inflight: r.bounded("par_inflight_invocations", "Invocations running now"),
            // par_queued_invocations{agent}
            queued: r.bounded("par_queued_invocations", "Invocations waiting for a worker"),
            // par_worker_starts_total{package}
            worker_starts: r.bounded("par_worker_starts", "Worker processes started"),
            // par_worker_crashes_total{package}
            worker_crashes: r.bounded("par_worker_crashes", "Worker processes that exited unexpectedly"),
            // par_worker_restarts_total{package}
            worker_restarts: r.bounded("par_worker_restarts", "Worker processes restarted after a crash"),
            // par_worker_stuck_replacements_total{package}
            worker_stuck: r.bounded("par_worker_stuck_replacements", "Workers replaced because abandoned sync calls held their threads"),
            // par_log_lines_dropped_total{package}
            log_lines_dropped: r.bounded("par_log_lines_dropped", "Package log lines dropped over the package's log rate"),
            // par_workers{package}
            workers: r.bounded("par_workers", "Live worker processes"),
            // par_package_wakes_total{package}
            package_wakes: r.bounded("par_package_wakes", "Idle packages woken by a call"),
            // par_package_wake_seconds
            package_wake: r.add("par_package_wake", "Time from a call finding its package idle to its processes answering", Some(Unit::Seconds), latency_histogram()),
            // par_package_loads_total{outcome}
            package_loads: r.closed("par_package_loads", "Package loads by outcome"),
            // par_package_load_phase_seconds{phase}
            load_phase: r.closed_seconds("par_package_load_phase", "Time spent in each package load phase"),
            // par_cache_hits_total
            cache_hits: r.add("par_cache_hits", "Package cache hits", None, Counter::default()),
            // par_cache_misses_total
            cache_misses: r.add("par_cache_misses", "Package cache misses", None, Counter::default()),
            // par_cache_bytes
            cache_bytes: r.add("par_cache", "Bytes held in the package cache", Some(Unit::Bytes), Gauge::default()),
            // par_cache_evictions_total
            cache_evictions: r.add("par_cache_evictions", "Package cache entries evicted", None, Counter::default()),
            // par_registry_polls_total{result}
            registry_polls: r.closed("par_registry_polls", "Registry index polls by result"),
            // par_auth_rejections_total{reason}
            auth_rejections: r.bounded("par_auth_rejections", "Requests rejected by authentication or authorisation"),
            // par_http_requests_total{route, status}
            http_requests: r.bounded("par_http_requests", "HTTP requests by matched route template and status"),
            // par_usage_records_written_total
            usage_written: r.add("par_usage_records_written", "Usage records committed to the ledger", None, Counter::default()),
            // par_usage_records_dropped_total
            usage_dropped: r.add("par_usage_records_dropped", "Usage records dropped: queue full, ledger closed or sink failing", None, Counter::default()),
            // par_usage_records_shipped_total
            usage_shipped: r.add("par_usage_records_shipped", "Usage records copied to the shared PostgreSQL database", None, Counter::default()),
            // par_usage_ship_failures_total
            usage_ship_failures: r.add("par_usage_ship_failures", "Failed passes of the PostgreSQL shipper", None, Counter::default()),
            // par_usage_ship_lag_records
            usage_ship_lag: r.add("par_usage_ship_lag_records", "Usage records committed locally and not yet in PostgreSQL", None, Gauge::default()),
            // par_otlp_spans_exported_total
            otlp_exported: r.add("par_otlp_spans_exported", "Call spans the OTLP collector accepted", None, Counter::default()),
            // par_otlp_spans_dropped_total
            otlp_dropped: r.add("par_otlp_spans_dropped", "Call spans that will not reach the OTLP collector (queue full, undeliverable, rejected)", None, Counter::default()),
            // par_egress_connections_total{package, outcome}
            egress_connections: r.bounded("par_egress_connections", "Connections through the egress proxy by package and outcome"),
            // par_egress_bytes_total{package, direction}
            egress_bytes: r.bounded("par_egress_bytes", "Bytes through the egress proxy: up to upstreams, down from them"),
        };
        families.precreate_closed_sets();
        families
    }

    /// Series with a closed set of label values exist from the start at zero, so rates and
    /// alerts work before the first event.
    fn precreate_closed_sets(&self) {
        for outcome in LoadOutcome::ALL {
            let _ = self.package_loads.get_or_create_owned(&OutcomeLabels {
                outcome: outcome.as_str(),
            });
        }
        for phase in LoadPhase::ALL {
            let _ = self.load_phase.get_or_create_owned(&PhaseLabels {
                phase: phase.as_str(),
            });
        }
        for result in PollResult::ALL {
            let _ = self.registry_polls.get_or_create_owned(&ResultLabels {
                result: result.as_str(),
            });
        }
    }
}
