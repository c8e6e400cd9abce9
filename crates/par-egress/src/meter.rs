//! Byte counts and last activity of one connection, shared by its two directions. Bytes
//! reach the observer in batches (every 64 KiB or second per direction, and at the end),
//! so a long tunnel is metered while it runs without a metrics update per read.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::observer::{Direction, EgressObserver};

/// Bytes held back before they are reported.
const BATCH_BYTES: u64 = 64 * 1024;
/// Time unreported bytes may wait.
const BATCH_MS: u64 = 1000;

pub(crate) struct Meter {
    package: Arc<str>,
    observer: Arc<dyn EgressObserver>,
    start: Instant,
    up: Count,
    down: Count,
    /// Milliseconds after `start` of the last byte either way.
    last: AtomicU64,
}

#[derive(Default)]
struct Count {
    total: AtomicU64,
    reported: AtomicU64,
    /// Milliseconds after `start` of the last report.
    reported_at: AtomicU64,
}

impl Meter {
    pub(crate) fn new(package: Arc<str>, observer: Arc<dyn EgressObserver>) -> Self {
        Meter {
            package,
            observer,
            start: Instant::now(),
            up: Count::default(),
            down: Count::default(),
            last: AtomicU64::new(0),
        }
    }

    fn count(&self, direction: Direction) -> &Count {
        match direction {
            Direction::Up => &self.up,
            Direction::Down => &self.down,
        }
    }

    /// Counts `n` bytes moved `direction`; reports a batch when it is due.
    pub(crate) fn add(&self, direction: Direction, n: usize) {
        if n == 0 {
            return;
        }
        let count = self.count(direction);
        let total = count.total.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        let now = self.touch();
        let pending = total - count.reported.load(Ordering::Relaxed);
        let waited = now.saturating_sub(count.reported_at.load(Ordering::Relaxed));
        if pending >= BATCH_BYTES || waited >= BATCH_MS {
            self.report(direction, now);
        }
    }

    fn report(&self, direction: Direction, now: u64) {
        let count = self.count(direction);
        let total = count.total.load(Ordering::Relaxed);
        let before = count.reported.swap(total, Ordering::Relaxed);
        count.reported_at.store(now, Ordering::Relaxed);
        if total > before {
            self.observer
                .bytes(&self.package, direction, total - before);
        }
    }

    /// Reports every byte not reported yet.
    pub(crate) fn flush(&self) {
        let now = self.elapsed_ms();
        self.report(Direction::Up, now);
        self.report(Direction::Down, now);
    }

    fn elapsed_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Marks activity now; returns the time in milliseconds after the start.
    pub(crate) fn touch(&self) -> u64 {
        let ms = self.elapsed_ms();
        self.last.fetch_max(ms, Ordering::Relaxed);
        ms
    }

    /// When the last activity was.
    pub(crate) fn last_activity(&self) -> Instant {
        self.start + Duration::from_millis(self.last.load(Ordering::Relaxed))
    }

    pub(crate) fn start(&self) -> Instant {
        self.start
    }

    pub(crate) fn up(&self) -> u64 {
        self.up.total.load(Ordering::Relaxed)
    }

    pub(crate) fn down(&self) -> u64 {
        self.down.total.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::observer::Outcome;

    #[derive(Default)]
    struct Reports(Mutex<Vec<(Direction, u64)>>);

    impl EgressObserver for Reports {
        fn connection(&self, _: &str, _: Outcome) {}
        fn bytes(&self, _: &str, direction: Direction, n: u64) {
            self.0.lock().unwrap().push((direction, n));
        }
    }

    #[test]
    fn batches_reports_and_flushes_the_rest() {
        let reports = Arc::new(Reports::default());
        let meter = Meter::new(Arc::from("p"), reports.clone());
        meter.add(Direction::Up, 10);
        meter.add(Direction::Up, 70_000);
        meter.add(Direction::Down, 5);
        meter.add(Direction::Up, 3);
        assert_eq!(*reports.0.lock().unwrap(), [(Direction::Up, 70_010)]);
        meter.flush();
        meter.flush();
        let all = reports.0.lock().unwrap().clone();
        assert_eq!(all[1..], [(Direction::Up, 3), (Direction::Down, 5)]);
        assert_eq!((meter.up(), meter.down()), (70_013, 5));
    }
}
