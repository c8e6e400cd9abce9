//! `--workers auto`: an elastic pool. The package keeps its fixed workers (one) and
//! starts extra ones, one at a time, while every live worker is busy, up to a cap (the
//! machine's cores by default); an extra worker without a call for `shrink_after` stops.
//!
//! Extra workers start exactly like the fixed ones ([`Shared::spawn_worker`]: forked from
//! the package's zygote, in the package's jail). They are never restarted: one that dies
//! counts as a worker crash (reports, `par_worker_crashes_total`) but not toward the
//! package's crash loop; after `crash_loop_threshold` such deaths (or failed starts)
//! within the crash window the pool stops growing until the window has passed.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use par_worker::Worker;

use super::health::{replace_stuck, watch_worker, Ended};
use super::Shared;

/// Time an idle extra worker gets to exit on SHUTDOWN before SIGTERM, then SIGKILL.
const RETIRE_GRACE: Duration = Duration::from_secs(5);

/// How far an elastic pool grows and when it shrinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scaling {
    /// Most workers the pool runs at once, fixed ones included.
    pub max_workers: usize,
    /// An extra worker without a call in flight for this long is stopped.
    pub shrink_after: Duration,
}

impl Default for Scaling {
    fn default() -> Self {
        Scaling {
            max_workers: crate::defaults::auto_max_workers(),
            shrink_after: crate::defaults::WORKER_IDLE_SHRINK,
        }
    }
}

/// What the pool looks like to a call arriving now (before the call is counted).
#[derive(Debug, Clone, Copy)]
pub(super) struct Demand<'a> {
    /// Calls in flight on each live worker (threads held by abandoned calls included).
    pub loads: &'a [usize],
    /// An extra slot is free: the pool is below its cap.
    pub room: bool,
    /// An extra worker is starting already.
    pub starting: bool,
    /// Extra workers crashed too often lately, or the package is in a crash loop.
    pub crash_blocked: bool,
}

/// The growth rule: one more worker when a call arrives while every live worker already
/// has a call in flight, the pool is below its cap, no extra worker is starting and
/// extra workers are not crashing. The call itself goes to the least busy worker at
/// once; the new worker takes the calls after it.
pub(super) fn should_grow(demand: Demand<'_>) -> bool {
    !demand.starting
        && !demand.crash_blocked
        && demand.room
        && !demand.loads.is_empty()
        && demand.loads.iter().all(|&load| load > 0)
}

/// The shrink rule: an extra worker goes once it has had no call in flight for
/// `shrink_after`.
pub(super) fn should_shrink(inflight: usize, idle_for: Duration, shrink_after: Duration) -> bool {
    inflight == 0 && idle_for >= shrink_after
}

/// Recent crashes, forgotten once older than the window.
#[derive(Debug, Default)]
pub(super) struct CrashWindow(VecDeque<Instant>);

impl CrashWindow {
    /// Notes a crash at `now`; returns the crashes within `window`, this one included.
    pub(super) fn record(&mut self, now: Instant, window: Duration) -> usize {
        self.0.push_back(now);
        self.count(now, window)
    }

    /// The crashes within `window` before `now`.
    pub(super) fn count(&mut self, now: Instant, window: Duration) -> usize {
        while self
            .0
            .front()
            .is_some_and(|t| now.duration_since(*t) > window)
        {
            self.0.pop_front();
        }
        self.0.len()
    }
}

impl Shared {
    /// Starts one extra worker in the background if the growth rule says so.
    pub(super) fn grow_if_busy(self: &Arc<Self>, loads: &[usize]) {
        // A free worker (the common case) settles it without taking any lock.
        if self.settings.scaling.is_none() || loads.contains(&0) {
            return;
        }
        let demand = Demand {
            loads,
            room: self.free_extra_slot().is_some(),
            starting: self.growing.load(Ordering::Acquire),
            crash_blocked: self.extras_crash_blocked() || self.crash_looped.load(Ordering::Acquire),
        };
        if should_grow(demand) && !self.growing.swap(true, Ordering::AcqRel) {
            tokio::spawn(grow(self.clone()));
        }
    }

    fn free_extra_slot(&self) -> Option<usize> {
        (self.fixed..self.slots.len()).find(|&i| self.slots[i].load().is_none())
    }

    fn extras_crash_blocked(&self) -> bool {
        let mut crashes = self.extra_crashes.lock().expect("poisoned");
        crashes.count(Instant::now(), self.settings.crash_window)
            >= self.settings.crash_loop_threshold
    }

    fn note_extra_crash(&self) {
        let mut crashes = self.extra_crashes.lock().expect("poisoned");
        crashes.record(Instant::now(), self.settings.crash_window);
    }

    /// Milliseconds since the pool was made, the clock of `last_used`.
    pub(super) fn now_ms(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Notes that slot `index` got or has a call now.
    pub(super) fn touch(&self, index: usize) {
        self.last_used[index].store(self.now_ms(), Ordering::Relaxed);
    }

    fn idle_for(&self, index: usize) -> Duration {
        let last = self.last_used[index].load(Ordering::Relaxed);
        Duration::from_millis(self.now_ms().saturating_sub(last))
    }
}

/// Starts one extra worker, unless the pool stopped or fell asleep meanwhile (the
/// lifecycle lock keeps `sleep`, `wake` and `stop` out while it starts).
async fn grow(shared: Arc<Shared>) {
    let lifecycle = shared.lifecycle.lock().await;
    let index = shared.free_extra_slot();
    let stopped = *shared.stop.borrow() || shared.asleep.load(Ordering::Acquire);
    if let (Some(index), false) = (index, stopped) {
        match shared.spawn_worker().await {
            Ok(worker) => {
                tracing::info!(package = %shared.spec.program.label, pid = worker.pid(), slot = index, "pool busy: extra worker started");
                shared.touch(index);
                shared.slots[index].store(Some(Arc::new(worker)));
                shared.metrics.worker_started(&shared.package);
                shared.report_live();
                shared.generation.send_modify(|g| *g += 1);
                shared.add_supervisor(tokio::spawn(supervise_extra(shared.clone(), index)));
            }
            Err(e) => {
                tracing::warn!(package = %shared.spec.program.label, error = %e, "extra worker failed to start");
                shared.note_extra_crash();
            }
        }
    }
    drop(lifecycle);
    shared.growing.store(false, Ordering::Release);
}

/// An extra slot's supervisor: stops its worker once idle for `shrink_after`, replaces
/// it when abandoned calls hold it, and lets it go (no restart) when it dies.
async fn supervise_extra(shared: Arc<Shared>, index: usize) {
    let mut stop = shared.stop.subscribe();
    let shrink_after = shared.settings.scaling.unwrap_or_default().shrink_after;
    while let Some(worker) = shared.slots[index].load_full() {
        let ended = tokio::select! {
            ended = watch_worker(&shared, &worker) => Some(ended),
            () = idle_until_due(&shared, index, &worker, shrink_after) => None,
            _ = stop.wait_for(|s| *s) => return,
        };
        let Some(ended) = ended else {
            retire(&shared, index, &worker, &mut stop).await;
            return;
        };
        let reason = match ended {
            Ended::Stuck(reason) => match replace_stuck(&shared, index, &worker, &reason).await {
                Ok(()) => continue,
                Err(failed) => failed,
            },
            Ended::Exited(reason) => reason,
        };
        shared.slots[index].store(None);
        shared.generation.send_modify(|g| *g += 1);
        shared.crashes.fetch_add(1, Ordering::Relaxed);
        shared.metrics.worker_crashed(&shared.package);
        shared.report_live();
        shared.note_extra_crash();
        tracing::warn!(package = %shared.spec.program.label, pid = worker.pid(), reason = %reason, "extra worker died (not restarted)");
        return;
    }
}

/// Resolves once the worker has had no call in flight for `shrink_after`.
async fn idle_until_due(shared: &Shared, index: usize, worker: &Worker, shrink_after: Duration) {
    let tick = (shrink_after / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    loop {
        tokio::time::sleep(tick).await;
        let inflight = worker.inflight() + worker.abandoned_calls().0;
        if inflight > 0 {
            shared.touch(index);
        }
        if should_shrink(inflight, shared.idle_for(index), shrink_after) {
            return;
        }
    }
}

/// Takes the worker out of its slot (no new call reaches it), lets a call that was
/// handed to it just before finish, then stops it.
async fn retire(
    shared: &Shared,
    index: usize,
    worker: &Worker,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) {
    shared.slots[index].store(None);
    shared.generation.send_modify(|g| *g += 1);
    shared.report_live();
    tracing::info!(package = %shared.spec.program.label, pid = worker.pid(), slot = index, "pool idle: extra worker stopped");
    let drained = async {
        while worker.inflight() > 0 && worker.is_alive() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::select! {
        () = drained => {}
        _ = stop.wait_for(|s| *s) => {}
    }
    worker.stop(RETIRE_GRACE).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demand(loads: &[usize]) -> Demand<'_> {
        Demand {
            loads,
            room: true,
            starting: false,
            crash_blocked: false,
        }
    }

    #[test]
    fn a_call_grows_the_pool_only_when_every_live_worker_is_busy() {
        assert!(!should_grow(demand(&[0])), "an idle worker takes the call");
        assert!(should_grow(demand(&[1])));
        assert!(should_grow(demand(&[3, 1])));
        assert!(!should_grow(demand(&[3, 0])), "one worker is free");
        assert!(
            !should_grow(demand(&[])),
            "no live worker: a restart is due, not growth"
        );
    }

    #[test]
    fn the_pool_grows_one_worker_at_a_time_up_to_its_cap() {
        let full = Demand {
            room: false,
            ..demand(&[2, 2])
        };
        assert!(!should_grow(full), "at the cap");
        let starting = Demand {
            starting: true,
            ..demand(&[2, 2])
        };
        assert!(!should_grow(starting), "one extra worker starting already");
    }

    #[test]
    fn crashing_extra_workers_stop_the_growth() {
        let blocked = Demand {
            crash_blocked: true,
            ..demand(&[5])
        };
        assert!(!should_grow(blocked));
    }

    #[test]
    fn an_extra_worker_shrinks_after_staying_idle_long_enough() {
        let after = Duration::from_secs(30);
        assert!(!should_shrink(0, Duration::from_secs(29), after));
        assert!(should_shrink(0, Duration::from_secs(30), after));
        assert!(!should_shrink(1, Duration::from_secs(300), after), "busy");
    }

    #[test]
    fn the_crash_window_forgets_old_crashes() {
        let window = Duration::from_secs(60);
        let mut crashes = CrashWindow::default();
        let start = Instant::now();
        assert_eq!(crashes.record(start, window), 1);
        assert_eq!(crashes.record(start + Duration::from_secs(30), window), 2);
        assert_eq!(crashes.count(start + Duration::from_secs(61), window), 1);
        assert_eq!(crashes.count(start + Duration::from_secs(91), window), 0);
    }
}
