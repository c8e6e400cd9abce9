//! Byte counts and last activity of one connection, shared by its two directions.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::time::Instant;

use crate::observer::{Direction, EgressObserver};

pub(crate) struct Meter {
    package: Arc<str>,
    observer: Arc<dyn EgressObserver>,
    start: Instant,
    up: AtomicU64,
    down: AtomicU64,
    /// Milliseconds after `start` of the last byte either way.
    last: AtomicU64,
}

impl Meter {
    pub(crate) fn new(package: Arc<str>, observer: Arc<dyn EgressObserver>) -> Self {
        Meter {
            package,
            observer,
            start: Instant::now(),
            up: AtomicU64::new(0),
            down: AtomicU64::new(0),
            last: AtomicU64::new(0),
        }
    }

    /// Counts `n` bytes moved `direction` and reports them.
    pub(crate) fn add(&self, direction: Direction, n: usize) {
        if n == 0 {
            return;
        }
        let n = n as u64;
        let total = match direction {
            Direction::Up => &self.up,
            Direction::Down => &self.down,
        };
        total.fetch_add(n, Ordering::Relaxed);
        self.observer.bytes(&self.package, direction, n);
        self.touch();
    }

    /// Marks activity now.
    pub(crate) fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last.fetch_max(ms, Ordering::Relaxed);
    }

    /// When the last activity was.
    pub(crate) fn last_activity(&self) -> Instant {
        self.start + std::time::Duration::from_millis(self.last.load(Ordering::Relaxed))
    }

    pub(crate) fn start(&self) -> Instant {
        self.start
    }

    pub(crate) fn up(&self) -> u64 {
        self.up.load(Ordering::Relaxed)
    }

    pub(crate) fn down(&self) -> u64 {
        self.down.load(Ordering::Relaxed)
    }
}
