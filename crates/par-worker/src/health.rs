//! Is a worker still answering? Every frame it sends counts as a sign of life; PING asks
//! for one (the worker's event loop answers PONG even while its threads run handlers),
//! so a worker that is stopped (SIGSTOP), wedged in its event loop or swapping to death
//! goes silent, and its pool replaces it.

use std::sync::atomic::{AtomicU64, Ordering};
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

impl Worker {
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
}
