//! A package's workers: picking the least busy live one, and replacing a dead one when a
//! call needs it (full supervision with backoff belongs to the lifecycle work).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use par_worker::{Worker, WorkerError, WorkerSpec};

pub struct WorkerPool {
    spec: WorkerSpec,
    slots: Vec<ArcSwap<Worker>>,
    respawn: tokio::sync::Mutex<()>,
    restarts: AtomicU64,
}

impl WorkerPool {
    pub async fn start(spec: WorkerSpec, count: usize) -> Result<WorkerPool, WorkerError> {
        let mut slots = Vec::with_capacity(count);
        for _ in 0..count.max(1) {
            slots.push(ArcSwap::from_pointee(Worker::spawn(&spec).await?));
        }
        Ok(WorkerPool {
            spec,
            slots,
            respawn: tokio::sync::Mutex::new(()),
            restarts: AtomicU64::new(0),
        })
    }

    /// The live worker with the fewest calls in flight; restarts one if none is alive.
    pub async fn pick(&self) -> Result<Arc<Worker>, WorkerError> {
        if let Some(worker) = self.least_busy() {
            return Ok(worker);
        }
        let _guard = self.respawn.lock().await;
        if let Some(worker) = self.least_busy() {
            return Ok(worker);
        }
        let fresh = Arc::new(Worker::spawn(&self.spec).await?);
        self.restarts.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(package = %self.spec.label, pid = fresh.info().pid, "restarted dead worker");
        self.slots[0].store(fresh.clone());
        Ok(fresh)
    }

    fn least_busy(&self) -> Option<Arc<Worker>> {
        self.slots
            .iter()
            .map(ArcSwap::load_full)
            .filter(|w| w.is_alive())
            .min_by_key(|w| w.inflight())
    }

    pub fn pids(&self) -> Vec<u32> {
        self.slots
            .iter()
            .map(ArcSwap::load_full)
            .filter(|w| w.is_alive())
            .map(|w| w.info().pid)
            .collect()
    }

    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    pub async fn stop(&self, grace: std::time::Duration) {
        let workers: Vec<_> = self.slots.iter().map(ArcSwap::load_full).collect();
        let stops = workers.iter().map(|w| w.stop(grace));
        for stop in stops {
            stop.await;
        }
    }
}
