//! Watching one worker: its exit, its memory use, its answers to health checks, and
//! sync calls the runtime abandoned that hold its threads.

use std::sync::Arc;

use par_worker::Worker;

use super::Shared;
use crate::memory::rss_bytes;

/// How a watched worker's time ended.
pub(super) enum Ended {
    /// It exited, or was killed (memory, silence); says why.
    Exited(String),
    /// Still running, but abandoned sync calls hold its threads: to be replaced.
    Stuck(String),
}

/// Resolves when the worker has exited, was killed for its memory use or for not
/// answering health checks, or is stuck in abandoned calls.
pub(super) async fn watch_worker(shared: &Shared, worker: &Worker) -> Ended {
    let settings = &shared.settings;
    let mut memory = tokio::time::interval(settings.memory_check_interval);
    let mut health = tokio::time::interval(settings.health_interval);
    health.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let killed = tokio::select! {
            status = worker.exited() => return Ended::Exited(status),
            _ = memory.tick(), if settings.memory_limit_bytes.is_some() => over_memory(shared, worker),
            _ = health.tick() => match stuck(shared, worker) {
                Some(reason) => return Ended::Stuck(reason),
                None => unresponsive(shared, worker),
            },
        };
        if let Some(reason) = killed {
            worker.kill_now();
            let status = worker.exited().await;
            return Ended::Exited(format!("{reason}; {status}"));
        }
    }
}

/// Why the worker must be replaced, if abandoned sync calls hold all its threads or one
/// has held its thread past the grace.
fn stuck(shared: &Shared, worker: &Worker) -> Option<String> {
    let (abandoned, oldest) = worker.abandoned_calls();
    if abandoned == 0 {
        return None;
    }
    let threads = shared.spec.threads.max(1);
    if abandoned >= threads {
        return Some(format!(
            "all {threads} threads held by abandoned calls (oldest {oldest:?})"
        ));
    }
    let grace = shared.settings.abandoned_call_grace?;
    (oldest >= grace)
        .then(|| format!("an abandoned call has held a thread for {oldest:?} (grace {grace:?})"))
}

/// Puts a new worker in the slot, then kills the stuck one (its process group), so the
/// package keeps a worker throughout. Not a crash. If no new worker starts, the stuck one
/// is killed anyway and the slot restarts as after a crash (the error says why).
pub(super) async fn replace_stuck(
    shared: &Shared,
    index: usize,
    stuck: &Worker,
    reason: &str,
) -> Result<(), String> {
    let label = &shared.spec.program.label;
    tracing::warn!(package = %label, pid = stuck.pid(), reason, "worker stuck in abandoned calls: replacing it");
    shared.metrics.worker_stuck_replaced(&shared.package);
    let replacement = shared.spawn_worker().await;
    if let Ok(worker) = &replacement {
        tracing::info!(package = %label, old_pid = stuck.pid(), pid = worker.pid(), "stuck worker replaced");
    }
    let started = replacement.map(|worker| {
        shared.slots[index].store(Some(Arc::new(worker)));
        shared.metrics.worker_started(&shared.package);
        shared.generation.send_modify(|g| *g += 1);
    });
    stuck.kill_now();
    let status = stuck.exited().await;
    shared.report_live();
    started.map_err(|e| format!("{reason}; no replacement started ({e}); {status}"))
}

/// Why the worker must go, if it is over its memory limit.
fn over_memory(shared: &Shared, worker: &Worker) -> Option<String> {
    let limit = shared.settings.memory_limit_bytes?;
    let rss = rss_bytes(worker.pid()).unwrap_or(0);
    if rss <= limit {
        return None;
    }
    tracing::warn!(package = %shared.spec.program.label, pid = worker.pid(), rss, limit, "worker over its memory limit: killing it");
    Some(format!("memory limit exceeded ({rss} > {limit} bytes)"))
}

/// Why the worker must go, if it has stopped answering; otherwise asks it again.
fn unresponsive(shared: &Shared, worker: &Worker) -> Option<String> {
    let silent = worker.silent_for();
    if silent < shared.settings.health_timeout {
        worker.ping();
        return None;
    }
    tracing::warn!(package = %shared.spec.program.label, pid = worker.pid(), silent_ms = silent.as_millis() as u64, "worker stopped answering health checks: killing it");
    Some(format!("no answer to health checks for {silent:?}"))
}
