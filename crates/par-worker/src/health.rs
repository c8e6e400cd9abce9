//! Is a worker still answering? Every frame it sends counts as a sign of life; PING asks
//! for one (the worker's event loop answers PONG even while its threads run handlers),
//! so a worker that is stopped (SIGSTOP), wedged in its event loop or swapping to death
//! goes silent, and its pool replaces it. PONG also says how many of its threads are
//! held by sync calls the runtime abandoned (timed out, cancelled): a thread cannot be
//! cancelled, so a worker whose threads are all held that way answers PING yet can run
//! nothing; its pool replaces it too.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::protocol::{self, to_worker};
use crate::worker::Worker;

/// When the worker was last heard from.
pub(crate) struct Heartbeat {
    born: Instant,
    last_heard_ms: AtomicU64,
}

impl Heartbeat {
    pub(crate) fn new() -> Self {
        Heartbeat {
            born: Instant::now(),
            last_heard_ms: AtomicU64::new(0),
        }
    }

    pub(crate) fn heard(&self) {
        let now = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_heard_ms.store(now, Ordering::Relaxed);
    }

    fn silent_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_heard_ms.load(Ordering::Relaxed));
        self.born.elapsed().saturating_sub(last)
    }
}

/// What the last PONG said about abandoned sync calls still running.
#[derive(Default)]
pub(crate) struct Abandoned {
    count: AtomicUsize,
    oldest_ms: AtomicU64,
}

#[derive(serde::Deserialize)]
struct PongReport {
    abandoned: usize,
    oldest_s: f64,
}

impl Abandoned {
    /// Notes a PONG's payload (an older worker program sends none: nothing known).
    pub(crate) fn note(&self, payload: &[u8]) {
        let Ok(report) = serde_json::from_slice::<PongReport>(payload) else {
            return;
        };
        let oldest = Duration::try_from_secs_f64(report.oldest_s).unwrap_or_default();
        let oldest_ms = u64::try_from(oldest.as_millis()).unwrap_or(u64::MAX);
        self.count.store(report.abandoned, Ordering::Relaxed);
        self.oldest_ms.store(oldest_ms, Ordering::Relaxed);
    }
}

impl Worker {
    /// Sync calls the runtime abandoned that still hold a thread, and how long the oldest
    /// of them has, as of the last PONG.
    pub fn abandoned_calls(&self) -> (usize, Duration) {
        let abandoned = &self.shared.abandoned;
        let oldest = Duration::from_millis(abandoned.oldest_ms.load(Ordering::Relaxed));
        (abandoned.count.load(Ordering::Relaxed), oldest)
    }

    /// Asks the worker for a sign of life (a PONG frame). Never waits: a full outbox
    /// already means the worker is not reading, which its silence will show.
    pub fn ping(&self) {
        let _ = self
            .shared
            .outbox
            .try_send(protocol::encode(to_worker::PING, 0, &[]));
    }

    /// How long since the worker last sent any frame.
    pub fn silent_for(&self) -> Duration {
        self.shared.heartbeat.silent_for()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heartbeat_is_silent_until_heard() {
        let beat = Heartbeat::new();
        std::thread::sleep(Duration::from_millis(20));
        assert!(beat.silent_for() >= Duration::from_millis(20));
        beat.heard();
        assert!(beat.silent_for() < Duration::from_millis(20));
    }

    #[test]
    fn a_pong_report_is_noted_and_a_bare_pong_ignored() {
        let abandoned = Abandoned::default();
        abandoned.note(br#"{"abandoned": 3, "oldest_s": 1.5}"#);
        assert_eq!(abandoned.count.load(Ordering::Relaxed), 3);
        assert_eq!(abandoned.oldest_ms.load(Ordering::Relaxed), 1500);
        abandoned.note(b"");
        assert_eq!(abandoned.count.load(Ordering::Relaxed), 3);
    }
}
