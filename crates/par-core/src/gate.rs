//! Per-package admission: at most `max_concurrent` calls run, at most `max_queued` wait,
//! and anything beyond is refused at once with `overloaded` (503 + Retry-After) rather
//! than piling up. The in-flight count also tells a draining package when it is idle.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::error::{ErrorCode, InvokeError};

pub(crate) struct CallGate {
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
    pub(crate) fn new(max_concurrent: usize, max_queued: usize) -> Self {
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
    pub(crate) async fn enter<G>(
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

    pub(crate) fn inflight(&self) -> usize {
        self.shared.inflight.load(Ordering::SeqCst)
    }

    pub(crate) fn queued(&self) -> usize {
        self.shared.queued.load(Ordering::Acquire)
    }

    /// Waits until no call is in flight, up to `limit`; true when idle.
    pub(crate) async fn drained(&self, limit: Duration) -> bool {
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
    use std::sync::atomic::AtomicUsize;

    use super::*;

    fn handle(gate: &CallGate) -> CallGate {
        CallGate {
            shared: gate.shared.clone(),
        }
    }

    /// Lets spawned tasks run until `done` holds, failing after a deadline.
    async fn until(what: &str, done: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(tokio::time::Instant::now() < deadline, "never: {what}");
            tokio::task::yield_now().await;
        }
    }

    /// A call that may wait an hour must still be refused at once: refused for a full
    /// queue, not queued and timed out.
    async fn refused_at_once(gate: &CallGate) -> InvokeError {
        let entered = gate.enter(Duration::from_secs(3600), || ());
        tokio::time::timeout(Duration::from_secs(5), entered)
            .await
            .expect("refused without queueing")
            .err()
            .expect("refused")
    }

    /// Counts live guards: how many calls hold what `while_queued` returned.
    struct Held(Arc<AtomicUsize>);

    impl Held {
        fn new(count: &Arc<AtomicUsize>) -> Held {
            count.fetch_add(1, Ordering::SeqCst);
            Held(count.clone())
        }
    }

    impl Drop for Held {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn admits_up_to_max_concurrent_at_once_and_refuses_beyond_without_a_queue() {
        let gate = CallGate::new(2, 0);
        let one = gate.enter(Duration::from_secs(5), || ()).await.unwrap();
        let two = gate.enter(Duration::from_secs(5), || ()).await.unwrap();
        assert_eq!(gate.inflight(), 2);
        let refused = refused_at_once(&gate).await;
        assert_eq!(refused.code, ErrorCode::Overloaded);
        assert_eq!(gate.queued(), 0);
        drop(one);
        assert_eq!(gate.inflight(), 1);
        let three = gate.enter(Duration::ZERO, || ()).await;
        assert!(three.is_ok(), "a freed slot is taken at once");
        drop((two, three));
        assert_eq!(gate.inflight(), 0);
    }

    #[tokio::test]
    async fn refuses_beyond_running_plus_queued() {
        let gate = CallGate::new(1, 1);
        let first = gate.enter(Duration::from_secs(5), || ()).await.unwrap();
        let queued = tokio::spawn({
            let gate = handle(&gate);
            async move { gate.enter(Duration::from_secs(5), || ()).await.map(|_| ()) }
        });
        until("one call queued", || gate.queued() == 1).await;
        let refused = refused_at_once(&gate).await;
        assert_eq!(refused.code, ErrorCode::Overloaded);
        assert_eq!(gate.queued(), 1, "the refused call did not stay queued");
        drop(first);
        assert!(queued.await.unwrap().is_ok());
        assert_eq!(gate.queued(), 0);
    }

    #[tokio::test]
    async fn a_queued_call_that_waits_too_long_is_overloaded_and_leaves_the_queue() {
        let gate = CallGate::new(1, 4);
        let _busy = gate.enter(Duration::ZERO, || ()).await.unwrap();
        let started = tokio::time::Instant::now();
        let err = gate
            .enter(Duration::from_millis(30), || ())
            .await
            .err()
            .unwrap();
        assert_eq!(err.code, ErrorCode::Overloaded);
        assert!(
            started.elapsed() >= Duration::from_millis(30),
            "waited its time"
        );
        assert_eq!(gate.queued(), 0);
        assert_eq!(gate.inflight(), 1);
    }

    #[tokio::test]
    async fn a_queued_call_takes_the_slot_its_predecessor_frees() {
        let gate = CallGate::new(1, 1);
        let first = gate.enter(Duration::ZERO, || ()).await.unwrap();
        let second = tokio::spawn({
            let gate = handle(&gate);
            async move {
                let _permit = gate.enter(Duration::from_secs(60), || ()).await?;
                Ok::<usize, InvokeError>(gate.inflight())
            }
        });
        until("the second call queued", || gate.queued() == 1).await;
        drop(first);
        assert_eq!(second.await.unwrap().unwrap(), 1, "admitted and in flight");
        assert_eq!(gate.inflight(), 0);
    }

    #[tokio::test]
    async fn the_queued_guard_is_held_only_while_a_call_waits() {
        let held = Arc::new(AtomicUsize::new(0));
        let gate = CallGate::new(1, 1);
        let first = gate
            .enter(Duration::ZERO, || Held::new(&held))
            .await
            .unwrap();
        assert_eq!(held.load(Ordering::SeqCst), 0, "not queued: no guard");
        let second = tokio::spawn({
            let gate = handle(&gate);
            let held = held.clone();
            async move {
                gate.enter(Duration::from_secs(60), || Held::new(&held))
                    .await
                    .map(|_| ())
            }
        });
        until("the guard is taken", || held.load(Ordering::SeqCst) == 1).await;
        drop(first);
        second.await.unwrap().unwrap();
        assert_eq!(held.load(Ordering::SeqCst), 0, "released on admission");
        let _busy = gate.enter(Duration::ZERO, || ()).await.unwrap();
        let _ = gate
            .enter(Duration::from_millis(10), || Held::new(&held))
            .await;
        assert_eq!(held.load(Ordering::SeqCst), 0, "released on timeout");
    }

    #[tokio::test]
    async fn zero_concurrency_still_admits_one_call() {
        let gate = CallGate::new(0, 0);
        let only = gate.enter(Duration::ZERO, || ()).await;
        assert!(only.is_ok());
        let next = gate.enter(Duration::ZERO, || ()).await;
        assert_eq!(next.err().unwrap().code, ErrorCode::Overloaded);
    }

    #[tokio::test]
    async fn drained_is_true_at_once_when_nothing_is_in_flight() {
        let gate = CallGate::new(1, 0);
        assert!(gate.drained(Duration::ZERO).await);
        drop(gate.enter(Duration::ZERO, || ()).await.unwrap());
        assert!(gate.drained(Duration::ZERO).await);
    }

    #[tokio::test]
    async fn drained_waits_for_the_last_call() {
        let gate = CallGate::new(4, 0);
        let one = gate.enter(Duration::ZERO, || ()).await.unwrap();
        let two = gate.enter(Duration::ZERO, || ()).await.unwrap();
        let started = tokio::time::Instant::now();
        assert!(!gate.drained(Duration::from_millis(30)).await);
        assert!(
            started.elapsed() >= Duration::from_millis(30),
            "gave up at its limit"
        );
        drop(one);
        assert!(
            !gate.drained(Duration::from_millis(30)).await,
            "one call is still in flight"
        );
        let waiter = tokio::spawn({
            let gate = handle(&gate);
            async move { gate.drained(Duration::from_secs(60)).await }
        });
        drop(two);
        assert!(waiter.await.unwrap());
    }
}
