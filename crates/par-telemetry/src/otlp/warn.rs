//! Rate-limited warnings: a collector that is down for an hour should leave a few log
//! lines, not one per batch.

use std::time::{Duration, Instant};

/// At most one warning per interval about failed sends, with the count of the ones not
/// logged in between, and one line when sends work again.
pub(crate) struct FailureLog {
    interval: Duration,
    last: Option<Instant>,
    unlogged_batches: u64,
    unlogged_spans: u64,
    failing: bool,
}

impl FailureLog {
    pub(crate) fn new(interval: Duration) -> FailureLog {
        FailureLog {
            interval,
            last: None,
            unlogged_batches: 0,
            unlogged_spans: 0,
            failing: false,
        }
    }

    pub(crate) fn failed(&mut self, endpoint: &str, error: &str, spans: usize) {
        self.failing = true;
        self.unlogged_batches += 1;
        self.unlogged_spans += spans as u64;
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < self.interval)
        {
            return;
        }
        tracing::warn!(
            endpoint,
            error,
            batches = self.unlogged_batches,
            spans = self.unlogged_spans,
            "OTLP trace export failed; spans dropped (next warning in {} s at the earliest)",
            self.interval.as_secs()
        );
        self.last = Some(now);
        self.unlogged_batches = 0;
        self.unlogged_spans = 0;
    }

    pub(crate) fn succeeded(&mut self, endpoint: &str) {
        if self.failing {
            tracing::info!(endpoint, "OTLP trace export works again");
            self.failing = false;
            self.last = None;
            self.unlogged_batches = 0;
            self.unlogged_spans = 0;
        }
    }
}

/// Whether the `n`th drop of a span at the queue should be logged: 1, 2, 4, 8, … so a
/// flood of drops costs a handful of lines (as the usage ledger does).
pub(crate) fn log_queue_drop(n: u64) -> bool {
    n.is_power_of_two()
}
