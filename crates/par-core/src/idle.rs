//! Idle packages cost nothing: after `idle_timeout` without a call or an app request a
//! package stops its processes (workers and HTTP app) and stays mounted; the next call
//! or request starts them again and waits for them. Concurrent first calls share one
//! wake (a lock around both transitions). A freshly loaded package goes to sleep at once,
//! before it is mounted (`sleep_after_load`), so a load keeps few packages awake.
//!
//! The race between "nothing in flight, stop" and "a call just arrived" is settled with
//! two SeqCst steps on each side: a call counts itself in flight, then reads `asleep`; the
//! sleeper sets `asleep`, then reads the in-flight counts and backs off if any. Either the
//! call sees `asleep` (and wakes the package) or the sleeper sees the call.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use std::sync::{Arc, Weak};

use crate::error::{ErrorCode, InvokeError};
use crate::package::Package;
use crate::runtime::Runtime;

pub(crate) struct Idle {
    timeout: Option<Duration>,
    born: Instant,
    /// Milliseconds after `born` of the last call or app request, begun or finished.
    last_use_ms: AtomicU64,
    /// App requests in flight (calls are counted by the package's gate).
    app_requests: AtomicUsize,
    asleep: AtomicBool,
    switching: tokio::sync::Mutex<()>,
}

/// Held while an app request is proxied, so the package does not fall asleep under it.
pub struct AppVisit<'a> {
    idle: &'a Idle,
}

impl Drop for AppVisit<'_> {
    fn drop(&mut self) {
        self.idle.touch();
        self.idle.app_requests.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Idle {
    pub(crate) fn new(timeout: Option<Duration>) -> Self {
        Idle {
            timeout,
            born: Instant::now(),
            last_use_ms: AtomicU64::new(0),
            app_requests: AtomicUsize::new(0),
            asleep: AtomicBool::new(false),
            switching: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    pub(crate) fn is_asleep(&self) -> bool {
        self.asleep.load(Ordering::SeqCst)
    }

    pub(crate) fn touch(&self) {
        let now = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_use_ms.fetch_max(now, Ordering::Relaxed);
    }

    fn unused_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_use_ms.load(Ordering::Relaxed));
        self.born.elapsed().saturating_sub(last)
    }

    /// Held while a package is stopped for good, so no sleep or wake interleaves.
    pub(crate) async fn settled(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.switching.lock().await
    }

    pub(crate) fn visit(&self) -> AppVisit<'_> {
        self.app_requests.fetch_add(1, Ordering::SeqCst);
        self.touch();
        AppVisit { idle: self }
    }
}

/// Why a package could not be woken, as the caller sees it.
fn wake_failed(package: &Package, reason: &str) -> InvokeError {
    InvokeError::new(
        ErrorCode::Starting,
        format!("package '{}' could not wake: {reason}", package.name()),
    )
}

impl Package {
    /// Starts the package's processes if it is asleep; the caller must already count
    /// as in flight (a gate permit or an [`AppVisit`]). Says how long the wake took
    /// when this call was the one that woke it.
    async fn ensure_awake(&self) -> Result<Option<Duration>, InvokeError> {
        self.idle.touch();
        if !self.idle.is_asleep() {
            return Ok(None);
        }
        let _switching = self.idle.switching.lock().await;
        if !self.idle.is_asleep() {
            return Ok(None);
        }
        if self.is_retired() {
            // Replaced or unloaded while asleep: its processes must stay stopped.
            return Err(wake_failed(self, "it is being unloaded"));
        }
        let started = Instant::now();
        let workers = async {
            match &self.pool {
                Some(pool) => pool.wake().await,
                None => Ok(()),
            }
        };
        let app = async {
            match &self.surface {
                Some(surface) => surface.wake().await,
                None => Ok(()),
            }
        };
        let (workers, app) = tokio::join!(workers, app);
        workers.and(app).map_err(|e| wake_failed(self, &e))?;
        self.idle.asleep.store(false, Ordering::SeqCst);
        let elapsed = started.elapsed();
        tracing::info!(package = %self.name(), version = %self.version(), wake_ms = elapsed.as_millis() as u64, "package woke");
        Ok(Some(elapsed))
    }

    /// Stops the package's processes if it has been unused for its idle timeout and
    /// nothing is in flight. True when it went to sleep.
    pub(crate) async fn sleep_if_idle(&self, grace: Duration) -> bool {
        let Some(timeout) = self.idle.timeout else {
            return false;
        };
        self.sleep_if_unused_for(timeout, grace).await
    }

    /// Stops a freshly loaded package's processes at once when idle stopping is on: its
    /// workers have started and answered their health check, so the load has verified
    /// what it must, and a package nobody calls yet need not keep them. Runs before the
    /// package is mounted (no call can reach it), so a load of many packages keeps only
    /// those still loading awake. True when it went to sleep.
    pub(crate) async fn sleep_after_load(&self, grace: Duration) -> bool {
        if self.idle.timeout.is_none() {
            return false;
        }
        self.sleep_if_unused_for(Duration::ZERO, grace).await
    }

    /// The sleep itself, under the race rules in this module's header: nothing in flight
    /// and unused for at least `timeout`.
    async fn sleep_if_unused_for(&self, timeout: Duration, grace: Duration) -> bool {
        if self.busy() {
            // A long call counts as use until it ends, give or take one check.
            self.idle.touch();
            return false;
        }
        if self.idle.is_asleep() || self.idle.unused_for() < timeout {
            return false;
        }
        let _switching = self.idle.switching.lock().await;
        if self.idle.is_asleep() || self.is_retired() {
            return false;
        }
        self.idle.asleep.store(true, Ordering::SeqCst);
        if self.busy() || self.idle.unused_for() < timeout {
            self.idle.asleep.store(false, Ordering::SeqCst);
            return false;
        }
        if self.pool.as_ref().is_some_and(|p| p.crash_looped()) {
            self.idle.asleep.store(false, Ordering::SeqCst);
            return false;
        }
        let workers = async {
            if let Some(pool) = &self.pool {
                pool.sleep(grace).await;
            }
        };
        let app = async {
            if let Some(surface) = &self.surface {
                surface.stop(grace).await;
            }
        };
        tokio::join!(workers, app);
        tracing::info!(package = %self.name(), version = %self.version(), "package idle: processes stopped");
        true
    }

    fn busy(&self) -> bool {
        self.gate.inflight() > 0 || self.idle.app_requests.load(Ordering::SeqCst) > 0
    }
}

impl Runtime {
    /// Wakes `package` if it is asleep and counts the wake; the caller is already in
    /// flight (see [`Package::ensure_awake`]).
    pub(crate) async fn wake(&self, package: &Package) -> Result<(), InvokeError> {
        if let Some(elapsed) = package.ensure_awake().await? {
            self.metrics().package_woken(package.name(), elapsed);
        }
        Ok(())
    }

    /// Lets an app request through to `package`'s HTTP app, waking the package first;
    /// the package stays awake while the returned visit is held.
    pub async fn visit_app<'a>(&self, package: &'a Package) -> Result<AppVisit<'a>, InvokeError> {
        let visit = package.idle.visit();
        self.wake(package).await?;
        Ok(visit)
    }

    /// Puts `package` to sleep whenever it has been idle for its timeout, until it is
    /// retired or dropped. Does nothing when idle stopping is off.
    pub(crate) fn watch_idle(self: &Arc<Self>, package: &Arc<Package>) {
        let Some(timeout) = package.idle.timeout() else {
            return;
        };
        let package: Weak<Package> = Arc::downgrade(package);
        let grace = self.config.worker_stop_grace;
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(check_interval(timeout));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(package) = package.upgrade() else {
                    return;
                };
                if package.is_retired() {
                    return;
                }
                package.sleep_if_idle(grace).await;
            }
        });
    }
}

/// How often a package checks whether it has been idle long enough: often enough to
/// stop close to the timeout, rarely enough that a thousand packages cost nothing.
pub(crate) fn check_interval(timeout: Duration) -> Duration {
    (timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_package_is_awake_and_unused_since_birth() {
        let idle = Idle::new(Some(Duration::from_secs(1)));
        assert!(!idle.is_asleep());
        idle.touch();
        assert!(idle.unused_for() < Duration::from_secs(1));
    }

    #[test]
    fn an_app_visit_counts_until_dropped() {
        let idle = Idle::new(None);
        let visit = idle.visit();
        assert_eq!(idle.app_requests.load(Ordering::SeqCst), 1);
        drop(visit);
        assert_eq!(idle.app_requests.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn the_check_interval_follows_the_timeout_within_bounds() {
        assert_eq!(
            check_interval(Duration::from_secs(1)),
            Duration::from_millis(250)
        );
        assert_eq!(
            check_interval(Duration::from_millis(10)),
            Duration::from_millis(50)
        );
        assert_eq!(
            check_interval(Duration::from_secs(600)),
            Duration::from_secs(2)
        );
    }
}
