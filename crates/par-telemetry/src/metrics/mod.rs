//! Prometheus metrics for the runtime, exposed in the OpenMetrics text format.
//!
//! Every family is registered once in [`Metrics::new`]; callers use the small recording
//! methods and never see the registry. Two rules keep the label sets bounded when clients
//! send random ids:
//!
//! * agent ids enter only as an [`AgentLabel`], which [`Metrics::agent_label`] builds from
//!   the set of mounted agents ([`Metrics::register_agent`]); any other id becomes
//!   [`UNKNOWN_AGENT`];
//! * every family with free-text labels admits at most
//!   [`MetricsConfig::max_series_per_family`] distinct label sets; later ones are folded
//!   into one series whose labels are all [`OVERFLOW`].

mod agents;
mod bounded;
mod egress;
mod egress_calls;
mod families;
mod labels;
mod record;

use std::fmt;
use std::sync::Arc;

use prometheus_client::encoding::text;
use prometheus_client::registry::Registry;

pub use agents::AgentLabel;
pub use egress_calls::{CallUsage, EgressCallGuard, EGRESS_DOWN_KEY, EGRESS_UP_KEY};
pub use labels::{LoadOutcome, LoadPhase, PollResult};
pub use record::GaugeGuard;

use agents::AgentSet;
use families::Families;

/// The content type of [`Metrics::encode`]'s output. Prometheus (2.5 and later) and other
/// standard scrapers negotiate and parse OpenMetrics; the text 0.0.4 type would be wrong
/// here because counters' `# TYPE` lines name the family without `_total`.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Label value for an agent id that names no mounted agent.
pub const UNKNOWN_AGENT: &str = "unknown";

/// Label value that replaces every label of a series past a family's cap.
pub const OVERFLOW: &str = "other";

/// Route label for requests that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Default for [`MetricsConfig::max_series_per_family`].
pub const DEFAULT_MAX_SERIES_PER_FAMILY: usize = 10_000;

/// Tunables for [`Metrics`].
#[derive(Debug, Clone)]
pub struct MetricsConfig {
    /// Distinct label sets a family admits before folding new ones into [`OVERFLOW`].
    pub max_series_per_family: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            max_series_per_family: DEFAULT_MAX_SERIES_PER_FAMILY,
        }
    }
}

/// The runtime's metrics. Cloning is cheap and every clone records into the same registry.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    families: Families,
    agents: AgentSet,
    egress_calls: Arc<egress_calls::EgressCalls>,
}

impl Metrics {
    /// Metrics with the default configuration.
    pub fn new() -> Self {
        Self::with_config(MetricsConfig::default())
    }

    /// Metrics with an explicit configuration.
    pub fn with_config(config: MetricsConfig) -> Self {
        let mut registry = Registry::default();
        let families = Families::register(&mut registry, config.max_series_per_family);
        let agents = AgentSet::default();
        Metrics {
            inner: Arc::new(Inner {
                registry,
                families,
                agents,
                egress_calls: Arc::default(),
            }),
        }
    }

    /// The whole exposition, ending in `# EOF`; serve it with [`CONTENT_TYPE`].
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // Writing to a String cannot fail, and none of our metric types is rejected by the
        // text encoder, so an error here is a bug worth a log line, not a failed scrape.
        if let Err(error) = text::encode(&mut out, &self.inner.registry) {
            tracing::error!(%error, "metrics encoding failed");
        }
        out
    }

    fn families(&self) -> &Families {
        &self.inner.families
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
