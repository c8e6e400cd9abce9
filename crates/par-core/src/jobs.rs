//! Load jobs of the management API: one per distinct request while it runs (the same
//! request joins the running job), kept for polling after it ends, the oldest forgotten.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::package::PackageReport;

/// What `POST /runtime/packages` asks for.
#[derive(Debug, Clone)]
pub struct LoadRequest {
    pub source: String,
    pub expected_sha256: Option<String>,
    pub replace: bool,
    pub force: bool,
}

impl LoadRequest {
    pub(crate) fn key(&self) -> String {
        format!(
            "{}#{:?}#{}#{}",
            self.source, self.expected_sha256, self.replace, self.force
        )
    }
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Loading,
    Ready,
    Failed,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LoadJob {
    pub load_id: u64,
    pub source: String,
    pub state: JobState,
    pub packages: Vec<PackageReport>,
    pub error: Option<String>,
}

/// Load jobs by id, and which key each running job is loading (for deduplication).
#[derive(Default)]
pub struct Jobs {
    next: AtomicU64,
    inner: Mutex<JobsInner>,
}

#[derive(Default)]
struct JobsInner {
    jobs: HashMap<u64, LoadJob>,
    running: HashMap<String, u64>,
}

/// Finished jobs kept for polling; older ones are forgotten.
const KEPT_JOBS: usize = 1000;

impl Jobs {
    /// The running job for `key`, or a new one: checked and created under one lock so
    /// two identical requests cannot both start.
    pub(crate) fn start_or_join(&self, key: &str, source: &str) -> (u64, bool) {
        let mut inner = self.inner.lock().expect("jobs poisoned");
        if let Some(id) = inner.running.get(key) {
            return (*id, true);
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        inner.running.insert(key.to_string(), id);
        let job = LoadJob {
            load_id: id,
            source: source.to_string(),
            state: JobState::Loading,
            packages: vec![],
            error: None,
        };
        inner.jobs.insert(id, job);
        if inner.jobs.len() > KEPT_JOBS {
            let oldest = *inner.jobs.keys().min().expect("not empty");
            inner.jobs.remove(&oldest);
        }
        (id, false)
    }

    pub(crate) fn finish(&self, id: u64, key: &str, outcome: Result<Vec<PackageReport>, String>) {
        let mut inner = self.inner.lock().expect("jobs poisoned");
        inner.running.remove(key);
        if let Some(job) = inner.jobs.get_mut(&id) {
            match outcome {
                Ok(reports) => {
                    job.state = JobState::Ready;
                    job.packages = reports;
                }
                Err(e) => {
                    job.state = JobState::Failed;
                    job.error = Some(e);
                }
            }
        }
    }

    pub(crate) fn get(&self, id: u64) -> Option<LoadJob> {
        self.inner
            .lock()
            .expect("jobs poisoned")
            .jobs
            .get(&id)
            .cloned()
    }
}
