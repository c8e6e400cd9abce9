//! The runs of one runtime: the store, plus what only exists while runs are in flight —
//! a wake-up per run for readers following its events, and its cancel signal.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::model::{now_ms, NewRun, RunEvent, RunFilter, RunRecord, RunStatus};
use crate::store::{RunEnd, RunStore, StoreError};

/// How long an `Idempotency-Key` names its run (the contract's 24 h).
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// A run in flight: readers wait on `changed`, its task on `cancel`.
struct Live {
    changed: watch::Sender<u64>,
    cancel: watch::Sender<bool>,
}

struct Shared {
    store: RunStore,
    live: Mutex<HashMap<String, Live>>,
    /// How many runs are in flight, for shutdown to wait on.
    in_flight: watch::Sender<usize>,
    retention: Duration,
}

/// The runs of this runtime; cheap to clone.
#[derive(Clone)]
pub struct Runs {
    shared: Arc<Shared>,
}

impl Runs {
    /// Opens the store; runs a previous process left queued or running become
    /// `interrupted`, and runs past `retention` are removed.
    pub fn open(path: &Path, retention: Duration) -> Result<Runs, StoreError> {
        let store = RunStore::open(path)?;
        let interrupted = store.interrupt_unfinished("the runtime stopped during the run")?;
        if interrupted > 0 {
            tracing::warn!(
                runs = interrupted,
                "runs cut off by the last stop are now interrupted"
            );
        }
        let runs = Runs {
            shared: Arc::new(Shared {
                store,
                live: Mutex::new(HashMap::new()),
                in_flight: watch::channel(0).0,
                retention,
            }),
        };
        runs.purge_expired()?;
        Ok(runs)
    }

    /// Removes runs that ended longer than the retention period ago.
    pub fn purge_expired(&self) -> Result<usize, StoreError> {
        let retention_ms = self.shared.retention.as_millis() as i64;
        let removed = self.shared.store.purge(now_ms() - retention_ms)?;
        if removed > 0 {
            tracing::info!(runs = removed, "removed runs past their retention");
        }
        Ok(removed)
    }

    /// Purges expired runs every `every` until the returned task is aborted.
    pub fn spawn_retention(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let runs = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let purge = runs.clone();
                match tokio::task::spawn_blocking(move || purge.purge_expired()).await {
                    Ok(Err(e)) => tracing::error!(error = %e, "purging expired runs"),
                    Err(e) => tracing::error!(error = %e, "purging expired runs panicked"),
                    Ok(Ok(_)) => {}
                }
            }
        })
    }

    /// Creates a queued run and returns its handle, or returns the run this owner
    /// created with the same idempotency key (no handle: nothing new to drive).
    pub fn create(&self, new: &NewRun) -> Result<(RunRecord, Option<RunHandle>), StoreError> {
        let window = IDEMPOTENCY_WINDOW.as_millis() as i64;
        let (run, created) = self.shared.store.create(new, window)?;
        if !created {
            return Ok((run, None));
        }
        let (changed, _) = watch::channel(0);
        let (cancel, cancelled) = watch::channel(false);
        {
            let mut live = self.live();
            live.insert(run.run_id.clone(), Live { changed, cancel });
            self.shared.in_flight.send_replace(live.len());
        }
        let handle = RunHandle {
            runs: self.clone(),
            run_id: run.run_id.clone(),
            cancelled,
        };
        Ok((run, Some(handle)))
    }

    pub fn get(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.shared.store.get(run_id)
    }

    pub fn list(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError> {
        self.shared.store.list(filter)
    }

    pub fn events_after(&self, run_id: &str, after: i64) -> Result<Vec<RunEvent>, StoreError> {
        self.shared.store.events_after(run_id, after)
    }

    /// A wake-up that fires whenever the run gets an event; `None` once it has ended
    /// (its events are all in the store then).
    pub fn watch(&self, run_id: &str) -> Option<watch::Receiver<u64>> {
        self.live().get(run_id).map(|live| live.changed.subscribe())
    }

    /// Ends the run as `cancelled` and stops its handler. False when it had already
    /// ended (nothing changed).
    pub fn cancel(&self, run_id: &str) -> Result<bool, StoreError> {
        let end = RunEnd::error(RunStatus::Cancelled, "cancelled", "the run was cancelled");
        let ended = self.shared.store.finish(run_id, &end)?;
        if ended {
            self.signal_end(run_id);
        }
        Ok(ended)
    }

    /// Ends every run in flight as `interrupted` (the runtime is stopping) and stops
    /// their handlers.
    pub fn interrupt_all(&self) -> Result<usize, StoreError> {
        let count = self
            .shared
            .store
            .interrupt_unfinished("the runtime stopped during the run")?;
        let ids: Vec<String> = self.live().keys().cloned().collect();
        for id in ids {
            self.signal_end(&id);
        }
        Ok(count)
    }

    /// Resolves once no run is in flight (shutdown lets runs finish within its grace).
    pub async fn wait_idle(&self) {
        let mut count = self.shared.in_flight.subscribe();
        // The sender lives in `shared`, which `self` keeps alive: this cannot fail.
        let _ = count.wait_for(|n| *n == 0).await;
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<String, Live>> {
        self.shared.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn notify(&self, run_id: &str) {
        if let Some(live) = self.live().get(run_id) {
            live.changed.send_modify(|n| *n += 1);
        }
    }

    /// The run has ended: wake its readers and stop its task. Readers that subscribe
    /// from now on find every event in the store.
    fn signal_end(&self, run_id: &str) {
        let mut live = self.live();
        if let Some(ended) = live.remove(run_id) {
            self.shared.in_flight.send_replace(live.len());
            ended.changed.send_modify(|n| *n += 1);
            let _ = ended.cancel.send(true);
        }
    }
}

/// What the task driving one run records through. Dropping it before the run ended
/// ends the run as `interrupted` (the task died), so no run stays `running` forever.
pub struct RunHandle {
    runs: Runs,
    run_id: String,
    cancelled: watch::Receiver<bool>,
}

impl RunHandle {
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Queued → running. False when the run ended while it waited (cancelled).
    pub fn mark_running(&self, version: &str) -> Result<bool, StoreError> {
        let running = self.runs.shared.store.mark_running(&self.run_id, version)?;
        self.runs.notify(&self.run_id);
        Ok(running)
    }

    /// Records one item; `None` when the run has already ended (the item is dropped).
    pub fn item(&self, data: &str) -> Result<Option<i64>, StoreError> {
        let seq = self.runs.shared.store.append_item(&self.run_id, data)?;
        self.runs.notify(&self.run_id);
        Ok(seq)
    }

    /// Ends the run, unless a cancel or shutdown ended it first. Returns whether this did.
    pub fn finish(&self, end: &RunEnd) -> Result<bool, StoreError> {
        let ended = self.runs.shared.store.finish(&self.run_id, end)?;
        self.runs.signal_end(&self.run_id);
        Ok(ended)
    }

    /// How the run ended, as the store has it (after a cancel or a shutdown ended it).
    pub fn status(&self) -> Option<RunStatus> {
        match self.runs.shared.store.get(&self.run_id) {
            Ok(run) => run.map(|r| r.status),
            Err(e) => {
                tracing::error!(run_id = %self.run_id, error = %e, "reading a run's status");
                None
            }
        }
    }

    /// Resolves once the run was ended from outside (cancel, shutdown).
    pub fn ended_elsewhere(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut cancelled = self.cancelled.clone();
        async move {
            // An error means the sender is gone, which also means the run ended.
            let _ = cancelled.wait_for(|cancelled| *cancelled).await;
        }
    }
}

impl Drop for RunHandle {
    fn drop(&mut self) {
        let end = RunEnd::error(
            RunStatus::Interrupted,
            "interrupted",
            "the run stopped before it ended",
        );
        if let Err(e) = self.runs.shared.store.finish(&self.run_id, &end) {
            tracing::error!(run_id = %self.run_id, error = %e, "recording an interrupted run");
        }
        self.runs.signal_end(&self.run_id);
    }
}
