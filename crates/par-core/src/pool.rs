//! A package's workers under supervision: a dead worker is replaced with capped
//! exponential backoff, repeated crashes put the pool in a crash loop (no more restarts),
//! and a worker over its memory limit is killed alone. With [`Scaling`] (`--workers
//! auto`) the pool also grows while busy and shrinks back when idle (`scaling.rs`).

mod health;
mod scaling;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use par_telemetry::Metrics;
use par_worker::{Worker, WorkerError, WorkerSpec, Zygote};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use health::{replace_stuck, watch_worker, Ended};
use scaling::CrashWindow;
pub use scaling::Scaling;

/// How a pool restarts and limits its workers.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Workers always running (while awake); at least one.
    pub workers: usize,
    /// `Some`: an elastic pool (`--workers auto`) that adds workers while busy.
    pub scaling: Option<Scaling>,
    /// Delay before the second restart in a row; doubles each time up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// This many crashes within `crash_window` and the pool stops restarting.
    pub crash_loop_threshold: usize,
    pub crash_window: Duration,
    pub memory_limit_bytes: Option<u64>,
    pub memory_check_interval: Duration,
    /// How often a worker is asked for a sign of life (PING).
    pub health_interval: Duration,
    /// A worker silent this long (no PONG, no frame) is killed and replaced.
    pub health_timeout: Duration,
    /// A worker holding a sync call the runtime abandoned this long is replaced (`None`:
    /// only when abandoned calls hold every thread).
    pub abandoned_call_grace: Option<Duration>,
    /// Fork workers from a zygote of the package (one pre-imported interpreter in the
    /// package's jail) instead of starting each one fresh.
    pub fork_workers: bool,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            workers: crate::defaults::WORKERS_PER_PACKAGE,
            scaling: None,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
            crash_loop_threshold: crate::defaults::CRASH_LOOP_THRESHOLD,
            crash_window: Duration::from_secs(60),
            memory_limit_bytes: None,
            memory_check_interval: Duration::from_millis(500),
            health_interval: crate::defaults::WORKER_HEALTH_INTERVAL,
            health_timeout: crate::defaults::WORKER_HEALTH_TIMEOUT,
            abandoned_call_grace: Some(crate::defaults::ABANDONED_CALL_GRACE),
            fork_workers: crate::defaults::FORK_WORKERS,
        }
    }
}

/// Why no worker could take a call.
#[derive(Debug)]
pub(crate) enum PickError {
    /// Crashed too often; the pool no longer restarts.
    CrashLoop,
    /// Still restarting after the wait allowed.
    Unavailable,
}

pub(crate) struct WorkerPool {
    shared: Arc<Shared>,
}

struct Shared {
    spec: WorkerSpec,
    /// The package name, as metrics label it.
    package: String,
    metrics: Metrics,
    settings: PoolSettings,
    /// The fixed slots first (always filled while awake), then the extra ones an elastic
    /// pool fills while busy.
    slots: Vec<ArcSwapOption<Worker>>,
    /// How many slots are fixed.
    fixed: usize,
    /// When each slot last got a call (ms since `born`): extra workers idle long go.
    last_used: Vec<AtomicU64>,
    born: Instant,
    /// An extra worker is starting.
    growing: AtomicBool,
    /// Between `sleep` and a successful `wake` (idle timeout): no extra worker starts.
    asleep: AtomicBool,
    /// Held by `sleep`, `wake`, `stop` and while an extra worker starts, so none starts
    /// into a pool that is going to sleep or stopping.
    lifecycle: tokio::sync::Mutex<()>,
    /// Deaths and failed starts of extra workers (never a crash loop: they stop growth).
    extra_crashes: std::sync::Mutex<CrashWindow>,
    /// Bumped whenever a slot changes, so waiting callers look again.
    generation: watch::Sender<u64>,
    stop: watch::Sender<bool>,
    restarts: AtomicU64,
    crashes: AtomicU64,
    crash_looped: AtomicBool,
    /// This pool's share of `par_workers{package}`, as last reported.
    reported_live: AtomicI64,
    /// One supervisor per filled slot while the pool is awake; aborted when it goes to
    /// sleep.
    supervisors: std::sync::Mutex<Vec<JoinHandle<()>>>,
    /// The package's zygote while the pool is awake (with `fork_workers`).
    zygote: tokio::sync::Mutex<Option<Arc<Zygote>>>,
    /// The kernel's memory-limit kills in the zygote's jail group, as last seen.
    oom_kills: AtomicU64,
}

impl WorkerPool {
    /// Starts every worker; fails if any cannot start (the package then fails to load).
    pub(crate) async fn start(
        spec: WorkerSpec,
        settings: PoolSettings,
        package: &str,
        metrics: Metrics,
    ) -> Result<WorkerPool, WorkerError> {
        let fixed = settings.workers.max(1);
        let capacity = settings.scaling.map_or(fixed, |s| s.max_workers.max(fixed));
        let shared = Arc::new(Shared {
            spec,
            package: package.to_string(),
            metrics,
            settings,
            slots: (0..capacity).map(|_| ArcSwapOption::empty()).collect(),
            fixed,
            last_used: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
            born: Instant::now(),
            growing: AtomicBool::new(false),
            asleep: AtomicBool::new(false),
            lifecycle: Default::default(),
            extra_crashes: Default::default(),
            generation: watch::channel(0).0,
            stop: watch::channel(false).0,
            restarts: AtomicU64::new(0),
            crashes: AtomicU64::new(0),
            crash_looped: AtomicBool::new(false),
            reported_live: AtomicI64::new(0),
            supervisors: Default::default(),
            zygote: Default::default(),
            oom_kills: AtomicU64::new(0),
        });
        for slot in shared.fixed_slots() {
            match shared.spawn_worker().await {
                Ok(worker) => slot.store(Some(Arc::new(worker))),
                Err(e) => {
                    shared.stop_all(Duration::ZERO).await;
                    return Err(e);
                }
            }
            shared.metrics.worker_started(package);
        }
        shared.report_live();
        shared.supervise_all();
        Ok(WorkerPool { shared })
    }

    /// Stops every worker (extra ones too) but keeps the pool: supervision ends first (so
    /// nothing is restarted), then the workers get SHUTDOWN, SIGTERM, SIGKILL. `wake`
    /// undoes it.
    pub(crate) async fn sleep(&self, grace: Duration) {
        let _lifecycle = self.shared.lifecycle.lock().await;
        self.shared.asleep.store(true, Ordering::Release);
        let supervisors = std::mem::take(&mut *self.shared.supervisors.lock().expect("poisoned"));
        for supervisor in &supervisors {
            supervisor.abort();
        }
        futures_util::future::join_all(supervisors).await;
        let workers: Vec<_> = self
            .shared
            .slots
            .iter()
            .filter_map(|s| s.swap(None))
            .collect();
        self.shared.generation.send_modify(|g| *g += 1);
        self.shared.report_live();
        futures_util::future::join_all(workers.iter().map(|w| w.stop(grace))).await;
        // An idle package keeps no process at all: its zygote goes too.
        self.shared.stop_zygote(grace).await;
    }

    /// Starts every fixed slot's worker again (all at once) and resumes supervision;
    /// fails if any cannot start, leaving the pool asleep. A stopped pool stays stopped.
    pub(crate) async fn wake(&self) -> Result<(), String> {
        let shared = &self.shared;
        let _lifecycle = shared.lifecycle.lock().await;
        if *shared.stop.borrow() {
            return Err("the package was stopped".into());
        }
        let spawns = shared.fixed_slots().iter().map(|_| shared.spawn_worker());
        let started = futures_util::future::join_all(spawns).await;
        if let Some(error) = started.iter().find_map(|r| r.as_ref().err()) {
            let error = error.to_string();
            let live: Vec<_> = started.into_iter().filter_map(Result::ok).collect();
            futures_util::future::join_all(live.iter().map(|w| w.stop(Duration::ZERO))).await;
            shared.stop_zygote(Duration::ZERO).await;
            return Err(error);
        }
        for (slot, worker) in shared
            .fixed_slots()
            .iter()
            .zip(started.into_iter().flatten())
        {
            slot.store(Some(Arc::new(worker)));
            shared.metrics.worker_started(&shared.package);
        }
        shared.asleep.store(false, Ordering::Release);
        shared.report_live();
        shared.supervise_all();
        shared.generation.send_modify(|g| *g += 1);
        Ok(())
    }

    /// The live worker with the fewest calls in flight, waiting up to `wait` for a
    /// restart when none is alive. An elastic pool whose live workers are all busy
    /// starts one more meanwhile (for the calls after this one).
    pub(crate) async fn pick(&self, wait: Duration) -> Result<Arc<Worker>, PickError> {
        let mut changes = self.shared.generation.subscribe();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let live = self.live();
            let loads: Vec<usize> = live.iter().map(|(_, w)| load(w)).collect();
            let least_busy = (0..live.len()).min_by_key(|&i| loads[i]);
            if let Some((index, worker)) = least_busy.map(|i| live[i].clone()) {
                self.shared.touch(index);
                self.shared.grow_if_busy(&loads);
                return Ok(worker);
            }
            if self.shared.crash_looped.load(Ordering::Acquire) {
                return Err(PickError::CrashLoop);
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => continue,
                _ => return Err(PickError::Unavailable),
            }
        }
    }

    /// The live workers with their slots.
    fn live(&self) -> Vec<(usize, Arc<Worker>)> {
        let slots = self.shared.slots.iter().enumerate();
        slots
            .filter_map(|(i, slot)| Some((i, slot.load_full()?)))
            .filter(|(_, w)| w.is_alive())
            .collect()
    }

    pub(crate) fn pids(&self) -> Vec<u32> {
        self.live().iter().map(|(_, w)| w.pid()).collect()
    }

    pub(crate) fn restarts(&self) -> u64 {
        self.shared.restarts.load(Ordering::Relaxed)
    }

    pub(crate) fn crashes(&self) -> u64 {
        self.shared.crashes.load(Ordering::Relaxed)
    }

    pub(crate) fn crash_looped(&self) -> bool {
        self.shared.crash_looped.load(Ordering::Acquire)
    }

    /// Ends supervision and stops every worker, extra ones too (SHUTDOWN, SIGTERM, then
    /// SIGKILL).
    pub(crate) async fn stop(&self, grace: Duration) {
        self.shared.stop.send_replace(true);
        self.shared.report_live();
        let _lifecycle = self.shared.lifecycle.lock().await;
        self.shared.stop_all(grace).await;
    }
}

/// A worker's calls in flight; threads held by abandoned calls are busy too.
fn load(worker: &Worker) -> usize {
    worker.inflight() + worker.abandoned_calls().0
}

impl Shared {
    /// A new worker: forked from the package's zygote (started first if there is none,
    /// or if it died), or started fresh without `fork_workers`.
    async fn spawn_worker(&self) -> Result<Worker, WorkerError> {
        if !self.settings.fork_workers {
            return Worker::spawn(&self.spec).await;
        }
        let zygote = self.zygote().await?;
        match zygote.fork(&self.spec).await {
            Err(_) if !zygote.is_alive() => self.zygote().await?.fork(&self.spec).await,
            forked => forked,
        }
    }

    /// The live zygote, started now if there is none (a dead one is replaced).
    async fn zygote(&self) -> Result<Arc<Zygote>, WorkerError> {
        let mut slot = self.zygote.lock().await;
        if let Some(zygote) = slot.as_ref().filter(|z| z.is_alive()) {
            return Ok(zygote.clone());
        }
        if let Some(dead) = slot.take() {
            let status = dead.exited().await;
            tracing::warn!(package = %self.spec.program.label, status = %status, "zygote died: starting a new one");
        }
        let zygote = Arc::new(Zygote::spawn(&self.spec).await?);
        *slot = Some(zygote.clone());
        Ok(zygote)
    }

    /// `reason`, saying so when the kernel killed for the jail's memory limit: forked
    /// workers share their zygote's jail group (a fresh worker's own launcher says it).
    async fn kernel_part(&self, reason: String) -> String {
        let Some(zygote) = self.zygote.lock().await.clone() else {
            return reason;
        };
        let kills = par_sandbox::cgroup::oom_kills_of(zygote.pid());
        if kills <= self.oom_kills.swap(kills, Ordering::AcqRel) {
            return reason;
        }
        format!("{reason}; killed by the kernel: the jail reached its cgroup memory limit")
    }

    async fn stop_zygote(&self, grace: Duration) {
        let zygote = self.zygote.lock().await.take();
        if let Some(zygote) = zygote {
            zygote.stop(grace).await;
        }
    }

    /// Stops every worker, then the zygote.
    async fn stop_all(&self, grace: Duration) {
        let workers: Vec<_> = self
            .slots
            .iter()
            .filter_map(ArcSwapOption::load_full)
            .collect();
        futures_util::future::join_all(workers.iter().map(|w| w.stop(grace))).await;
        self.stop_zygote(grace).await;
    }

    fn fixed_slots(&self) -> &[ArcSwapOption<Worker>] {
        &self.slots[..self.fixed]
    }

    fn supervise_all(self: &Arc<Self>) {
        let handles = (0..self.fixed).map(|index| tokio::spawn(supervise(self.clone(), index)));
        *self.supervisors.lock().expect("poisoned") = handles.collect();
    }

    /// Adds an extra slot's supervisor (forgetting those that ended).
    fn add_supervisor(&self, handle: JoinHandle<()>) {
        let mut supervisors = self.supervisors.lock().expect("poisoned");
        supervisors.retain(|h| !h.is_finished());
        supervisors.push(handle);
    }

    /// Brings this pool's share of the live-worker gauge up to date.
    fn report_live(&self) {
        let live = if *self.stop.borrow() {
            0
        } else {
            i64::try_from(self.live_count()).unwrap_or(i64::MAX)
        };
        let before = self.reported_live.swap(live, Ordering::AcqRel);
        self.metrics.add_workers(&self.package, live - before);
    }

    fn live_count(&self) -> usize {
        self.slots
            .iter()
            .filter_map(ArcSwapOption::load_full)
            .filter(|w| w.is_alive())
            .count()
    }
}

/// One slot's supervisor: waits for its worker to exit (or to outgrow its memory limit),
/// then restarts it after a backoff, until the pool stops or crash-loops.
async fn supervise(shared: Arc<Shared>, index: usize) {
    let mut stop = shared.stop.subscribe();
    let mut recent = CrashWindow::default();
    loop {
        if let Some(worker) = shared.slots[index].load_full() {
            let ended = tokio::select! {
                ended = watch_worker(&shared, &worker) => ended,
                _ = stop.wait_for(|s| *s) => return,
            };
            let reason = match ended {
                Ended::Stuck(reason) => match replace_stuck(&shared, index, &worker, &reason).await
                {
                    Ok(()) => continue,
                    Err(failed) => failed,
                },
                Ended::Exited(reason) => shared.kernel_part(reason).await,
            };
            shared.slots[index].store(None);
            shared.generation.send_modify(|g| *g += 1);
            shared.crashes.fetch_add(1, Ordering::Relaxed);
            shared.metrics.worker_crashed(&shared.package);
            shared.report_live();
            tracing::warn!(package = %shared.spec.program.label, pid = worker.pid(), reason = %reason, "worker died");
        }
        let crashes = recent.record(Instant::now(), shared.settings.crash_window);
        if crashes >= shared.settings.crash_loop_threshold {
            shared.crash_looped.store(true, Ordering::Release);
            shared.generation.send_modify(|g| *g += 1);
            tracing::error!(package = %shared.spec.program.label, crashes, "worker crash loop: not restarting");
            return;
        }
        let delay = backoff(&shared.settings, crashes);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        match shared.spawn_worker().await {
            Ok(worker) => {
                tracing::info!(package = %shared.spec.program.label, pid = worker.pid(), "worker restarted");
                shared.slots[index].store(Some(Arc::new(worker)));
                shared.restarts.fetch_add(1, Ordering::Relaxed);
                shared.metrics.worker_started(&shared.package);
                shared.metrics.worker_restarted(&shared.package);
                shared.report_live();
                shared.generation.send_modify(|g| *g += 1);
            }
            Err(e) => {
                tracing::warn!(package = %shared.spec.program.label, error = %e, "worker restart failed")
            }
        }
    }
}

/// No delay for the first restart; then base, 2×base, 4×base... capped.
fn backoff(settings: &PoolSettings, crashes_in_window: usize) -> Duration {
    if crashes_in_window <= 1 {
        return Duration::ZERO;
    }
    let factor = 1u32 << (crashes_in_window - 2).min(16);
    (settings.backoff_base * factor).min(settings.backoff_max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_second_restart_and_is_capped() {
        let s = PoolSettings::default();
        assert_eq!(backoff(&s, 1), Duration::ZERO);
        assert_eq!(backoff(&s, 2), Duration::from_millis(100));
        assert_eq!(backoff(&s, 3), Duration::from_millis(200));
        assert_eq!(backoff(&s, 5), Duration::from_millis(800));
        assert_eq!(backoff(&s, 40), Duration::from_secs(30));
    }
}
