//! How many log lines a package may write: one token bucket shared by all of a package's
//! processes (its workers and its HTTP app), so a package printing 100 MB in a second
//! cannot flood the runtime's log. Lines over the budget are read (the process never
//! blocks on a full pipe) and dropped; the count reaches the metrics and one summary line
//! per interval says how many went.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Lines per second and the burst above it; `lines_per_sec == 0` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRate {
    pub lines_per_sec: u32,
    pub burst: u32,
}

impl LogRate {
    pub const UNLIMITED: LogRate = LogRate {
        lines_per_sec: 0,
        burst: 0,
    };
}

/// Told how many lines were dropped (the metric `par_log_lines_dropped_total`).
pub type DropCounter = Arc<dyn Fn(u64) + Send + Sync>;

/// How often dropped lines are summarised in the log and added to the metric.
pub const SUMMARY_INTERVAL: Duration = Duration::from_secs(2);

pub struct LogBudget {
    package: String,
    rate: LogRate,
    bucket: Mutex<Bucket>,
    /// Dropped since the last summary; the first drop after one schedules the next.
    pending: Arc<AtomicU64>,
    counter: Option<DropCounter>,
}

struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl std::fmt::Debug for LogBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogBudget")
            .field("package", &self.package)
            .field("rate", &self.rate)
            .finish_non_exhaustive()
    }
}

impl LogBudget {
    pub fn new(package: &str, rate: LogRate, counter: Option<DropCounter>) -> Arc<LogBudget> {
        let burst = f64::from(rate.burst.max(1));
        Arc::new(LogBudget {
            package: package.to_string(),
            rate,
            bucket: Mutex::new(Bucket {
                tokens: burst,
                refilled: Instant::now(),
            }),
            pending: Arc::new(AtomicU64::new(0)),
            counter,
        })
    }

    /// No limit (tests, tools).
    pub fn unlimited(package: &str) -> Arc<LogBudget> {
        LogBudget::new(package, LogRate::UNLIMITED, None)
    }

    /// May one more line be logged? A refused line is counted.
    pub fn admit(&self) -> bool {
        if self.rate.lines_per_sec == 0 || self.take_token() {
            return true;
        }
        if self.pending.fetch_add(1, Ordering::AcqRel) == 0 {
            self.schedule_summary();
        }
        false
    }

    fn take_token(&self) -> bool {
        let mut bucket = self.bucket.lock().expect("log budget poisoned");
        let now = Instant::now();
        let refill =
            now.duration_since(bucket.refilled).as_secs_f64() * f64::from(self.rate.lines_per_sec);
        let cap = f64::from(self.rate.burst.max(1));
        bucket.tokens = (bucket.tokens + refill).min(cap);
        bucket.refilled = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// After an interval: one warning with the count, and the count onto the metric.
    fn schedule_summary(&self) {
        let pending = self.pending.clone();
        let package = self.package.clone();
        let counter = self.counter.clone();
        let rate = self.rate;
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        handle.spawn(async move {
            tokio::time::sleep(SUMMARY_INTERVAL).await;
            let dropped = pending.swap(0, Ordering::AcqRel);
            if let Some(counter) = &counter {
                counter(dropped);
            }
            tracing::warn!(
                package = %package,
                dropped,
                lines_per_sec = rate.lines_per_sec,
                burst = rate.burst,
                "package log lines over its rate were dropped (--log-lines-per-sec)"
            );
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_passes_then_lines_are_dropped_and_counted() {
        let seen = Arc::new(AtomicU64::new(0));
        let sink = seen.clone();
        let counter: DropCounter = Arc::new(move |n| {
            sink.fetch_add(n, Ordering::Relaxed);
        });
        let rate = LogRate {
            lines_per_sec: 1,
            burst: 10,
        };
        let budget = LogBudget::new("p", rate, Some(counter));
        let admitted = (0..1000).filter(|_| budget.admit()).count();
        assert!((10..=12).contains(&admitted), "{admitted}");
        tokio::time::sleep(SUMMARY_INTERVAL + Duration::from_millis(500)).await;
        let dropped = seen.load(Ordering::Relaxed);
        assert_eq!(dropped, 1000 - admitted as u64);
    }

    #[test]
    fn unlimited_admits_everything() {
        let budget = LogBudget::unlimited("p");
        assert!((0..100_000).all(|_| budget.admit()));
    }
}
