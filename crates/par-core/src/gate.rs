//! Per-package admission: at most `max_concurrent` calls run, at most `max_queued` wait,
//! and anything beyond is refused at once with `overloaded` (503 + Retry-After) rather
//! than piling up. The in-flight count also tells a draining package when it is idle.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::error::{ErrorCode, InvokeError};

pub struct CallGate {
    shared: Arc<GateShared>,
}

struct GateShared {
    permits: Arc<Semaphore>,
    max_queued: usize,
    queued: AtomicUsize,
    inflight: AtomicUsize,
    idle: Notify,
}

/// Held for the whole call, streams included.
pub struct CallPermit {
    _permit: OwnedSemaphorePermit,
    shared: Arc<GateShared>,
}

impl Drop for CallPermit {
    fn drop(&mut self) {
        if self.shared.inflight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.shared.idle.notify_waiters();
        }
    }
}

impl CallGate {
    pub fn new(max_concurrent: usize, max_queued: usize) -> Self {
        CallGate {
            shared: Arc::new(GateShared {
                permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
                max_queued,
                queued: AtomicUsize::new(0),
                inflight: AtomicUsize::new(0),
                idle: Notify::new(),
            }),
        }
    }

    /// Admits a call, queueing up to `wait` when all slots are busy; a call that has to
    /// queue holds what `while_queued` returns until it leaves the queue (a metrics gauge
    /// guard, say).
    pub async fn enter<G>(
        &self,
        wait: Duration,
        while_queued: impl FnOnce() -> G,
    ) -> Result<CallPermit, InvokeError> {
        let shared = &self.shared;
        let permit = match shared.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => self.queue(wait, while_queued).await?,
        };
        shared.inflight.fetch_add(1, Ordering::SeqCst);
        Ok(CallPermit {
            _permit: permit,
            shared: shared.clone(),
        })
    }

    async fn queue<G>(
        &self,
        wait: Duration,
        while_queued: impl FnOnce() -> G,
    ) -> Result<OwnedSemaphorePermit, InvokeError> {
        let shared = &self.shared;
        if shared.queued.fetch_add(1, Ordering::AcqRel) >= shared.max_queued {
            shared.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(overloaded());
        }
        let _queued = while_queued();
        let acquired = tokio::time::timeout(wait, shared.permits.clone().acquire_owned()).await;
        shared.queued.fetch_sub(1, Ordering::AcqRel);
        match acquired {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(overloaded()),
        }
    }

    pub fn inflight(&self) -> usize {
        self.shared.inflight.load(Ordering::SeqCst)
    }

    pub fn queued(&self) -> usize {
        self.shared.queued.load(Ordering::Acquire)
    }

    /// Waits until no call is in flight, up to `limit`; true when idle.
    pub async fn drained(&self, limit: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.shared.idle.notified();
                if self.inflight() == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }
}

fn overloaded() -> InvokeError {
    InvokeError::new(
        ErrorCode::Overloaded,
        "too many calls in flight for this agent; retry later",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_beyond_running_plus_queued() {
        let gate = CallGate::new(1, 1);
        let first = gate.enter(Duration::from_secs(5), || ()).await.unwrap();
        let queued = tokio::spawn({
            let gate = CallGate {
                shared: gate.shared.clone(),
            };
            async move { gate.enter(Duration::from_secs(5), || ()).await.map(|_| ()) }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(gate.queued(), 1);
        let refused = gate
            .enter(Duration::from_secs(5), || ())
            .await
            .err()
            .unwrap();
        assert_eq!(refused.code, ErrorCode::Overloaded);
        drop(first);
        assert!(queued.await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn drained_waits_for_the_last_call() {
        let gate = CallGate::new(4, 0);
        let permit = gate.enter(Duration::ZERO, || ()).await.unwrap();
        assert!(!gate.drained(Duration::from_millis(50)).await);
        let releaser = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(permit);
        });
        assert!(gate.drained(Duration::from_secs(5)).await);
        releaser.await.unwrap();
    }
}
