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
pub(crate) struct Jobs {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::PackageState;

    fn request(source: &str) -> LoadRequest {
        LoadRequest {
            source: source.to_string(),
            expected_sha256: None,
            replace: true,
            force: false,
        }
    }

    fn state(jobs: &Jobs, id: u64) -> String {
        let job = jobs.get(id).expect("job kept");
        serde_json::to_value(&job.state)
            .unwrap()
            .as_str()
            .unwrap()
            .to_string()
    }

    #[test]
    fn the_same_request_joins_the_running_job() {
        let jobs = Jobs::default();
        let key = request("/p/a.apkg").key();
        let (first, joined) = jobs.start_or_join(&key, "/p/a.apkg");
        assert!(!joined);
        let (second, joined) = jobs.start_or_join(&key, "/p/a.apkg");
        assert!(joined);
        assert_eq!(first, second);
    }

    #[test]
    fn a_different_request_starts_its_own_job() {
        let jobs = Jobs::default();
        let (a, _) = jobs.start_or_join(&request("/p/a.apkg").key(), "/p/a.apkg");
        let (b, joined) = jobs.start_or_join(&request("/p/b.apkg").key(), "/p/b.apkg");
        assert!(!joined);
        assert_ne!(a, b);
        assert_eq!(jobs.get(b).unwrap().source, "/p/b.apkg");
    }

    #[test]
    fn the_key_tells_apart_digest_replace_and_force() {
        let base = request("/p/a.apkg");
        let variants = [
            LoadRequest {
                expected_sha256: Some("ab".repeat(32)),
                ..base.clone()
            },
            LoadRequest {
                replace: !base.replace,
                ..base.clone()
            },
            LoadRequest {
                force: !base.force,
                ..base.clone()
            },
            LoadRequest {
                source: "/p/other.apkg".into(),
                ..base.clone()
            },
        ];
        for variant in &variants {
            assert_ne!(variant.key(), base.key(), "{variant:?}");
        }
        assert_eq!(
            base.key(),
            request("/p/a.apkg").key(),
            "equal requests, one key"
        );
        let jobs = Jobs::default();
        let (first, _) = jobs.start_or_join(&base.key(), &base.source);
        for variant in &variants {
            let (id, joined) = jobs.start_or_join(&variant.key(), &variant.source);
            assert!(!joined && id != first, "{variant:?} must not join");
        }
    }

    #[test]
    fn a_job_starts_loading_and_ids_count_up_from_one() {
        let jobs = Jobs::default();
        let (one, _) = jobs.start_or_join("k1", "s1");
        let (two, _) = jobs.start_or_join("k2", "s2");
        assert_eq!((one, two), (1, 2));
        assert_eq!(state(&jobs, one), "loading");
        assert!(jobs.get(one).unwrap().packages.is_empty());
        assert!(jobs.get(99).is_none());
    }

    #[test]
    fn a_finished_job_is_ready_with_its_package_reports() {
        let jobs = Jobs::default();
        let (id, _) = jobs.start_or_join("k", "/p");
        let mut report = PackageReport::loading("/p/a.apkg");
        report.state = PackageState::Ready;
        jobs.finish(id, "k", Ok(vec![report]));
        let job = jobs.get(id).unwrap();
        assert_eq!(state(&jobs, id), "ready");
        assert_eq!(job.packages.len(), 1);
        assert_eq!(job.packages[0].source, "/p/a.apkg");
        assert!(job.error.is_none());
    }

    #[test]
    fn a_failed_job_keeps_its_error() {
        let jobs = Jobs::default();
        let (id, _) = jobs.start_or_join("k", "/p");
        jobs.finish(id, "k", Err("verify: digest mismatch".into()));
        let job = jobs.get(id).unwrap();
        assert_eq!(state(&jobs, id), "failed");
        assert_eq!(job.error.as_deref(), Some("verify: digest mismatch"));
        assert!(job.packages.is_empty());
    }

    #[test]
    fn the_same_request_after_its_job_finished_starts_a_new_job() {
        let jobs = Jobs::default();
        let (first, _) = jobs.start_or_join("k", "/p");
        jobs.finish(first, "k", Ok(vec![]));
        let (second, joined) = jobs.start_or_join("k", "/p");
        assert!(!joined);
        assert_ne!(first, second);
        assert_eq!(
            state(&jobs, first),
            "ready",
            "the finished job stays readable"
        );
        assert_eq!(state(&jobs, second), "loading");
    }

    #[test]
    fn the_oldest_job_is_forgotten_past_the_limit() {
        let jobs = Jobs::default();
        let mut ids = Vec::new();
        for n in 0..KEPT_JOBS {
            let key = format!("k{n}");
            let (id, _) = jobs.start_or_join(&key, "s");
            jobs.finish(id, &key, Ok(vec![]));
            ids.push(id);
        }
        assert!(jobs.get(ids[0]).is_some(), "{KEPT_JOBS} jobs are all kept");
        let (newest, _) = jobs.start_or_join("one-more", "s");
        assert!(jobs.get(ids[0]).is_none(), "the oldest is forgotten");
        assert!(jobs.get(ids[1]).is_some());
        assert!(jobs.get(newest).is_some());
    }
}
