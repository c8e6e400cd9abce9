//! The egress proxy's counters (`par-egress` reports through these).

use super::egress_calls::{CallUsage, EgressCallGuard, EGRESS_DOWN_KEY, EGRESS_UP_KEY};
use super::labels::{EgressBytesLabels, EgressLabels};
use super::Metrics;

impl Metrics {
    /// `par_egress_connections_total{package, outcome}`: one connection through the
    /// egress proxy ended. `outcome` is one of the proxy's fixed outcome names, never
    /// client input.
    pub fn egress_connection(&self, package: &str, outcome: &str) {
        let labels = EgressLabels {
            package: package.to_owned(),
            outcome: outcome.to_owned(),
        };
        self.families().egress_connections.get(&labels).inc();
    }

    /// `par_egress_bytes_total{package, direction}`, `direction` `up` (to upstreams) or
    /// `down` (from them).
    pub fn egress_bytes(&self, package: &str, direction: &str, n: u64) {
        let labels = EgressBytesLabels {
            package: package.to_owned(),
            direction: direction.to_owned(),
        };
        self.families().egress_bytes.get(&labels).inc_by(n);
        let key = if direction == "up" {
            EGRESS_UP_KEY
        } else {
            EGRESS_DOWN_KEY
        };
        self.inner.egress_calls.attribute(package, key, n);
    }

    /// Registers a call of `package` whose usage map receives the package's egress bytes
    /// while it is the package's only call in flight; until the guard is dropped.
    pub fn egress_call(&self, package: &str, usage: CallUsage) -> EgressCallGuard {
        self.inner.egress_calls.register(package, usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_connections_and_bytes_by_package() {
        let metrics = Metrics::new();
        metrics.egress_connection("kit", "ok");
        metrics.egress_connection("kit", "refused");
        metrics.egress_connection("kit", "refused");
        metrics.egress_bytes("kit", "up", 10);
        metrics.egress_bytes("kit", "up", 5);
        metrics.egress_bytes("kit", "down", 7);
        let text = metrics.encode();
        for line in [
            r#"par_egress_connections_total{package="kit",outcome="ok"} 1"#,
            r#"par_egress_connections_total{package="kit",outcome="refused"} 2"#,
            r#"par_egress_bytes_total{package="kit",direction="up"} 15"#,
            r#"par_egress_bytes_total{package="kit",direction="down"} 7"#,
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }
}
