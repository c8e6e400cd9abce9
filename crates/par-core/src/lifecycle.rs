//! Changing what runs without a restart: mounting with replacement, retiring a version
//! (stop routing to it, let its calls finish, stop its workers), unloading, enabling and
//! disabling agents, asynchronous load jobs that deduplicate, and reload.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::{LoadError, LoadPhase};
use crate::package::{Package, PackageReport};
use crate::runtime::Runtime;
use crate::source::SourceFile;
use crate::table::AgentTable;
use crate::version;

/// How a newly prepared package joins the table.
#[derive(Debug, Clone, Copy)]
pub struct MountOptions {
    /// Retire every other mounted version of the same package once this one is active.
    pub replace: bool,
    /// Allow activating a version lower than the active one.
    pub force: bool,
}

impl MountOptions {
    /// Startup: every version given is kept mounted; the newest is active.
    pub fn startup() -> Self {
        MountOptions {
            replace: false,
            force: false,
        }
    }
}

impl Runtime {
    /// Mounts a prepared package; its workers are already running and ready, so the
    /// switch is one atomic table swap, after which replaced versions drain.
    pub(crate) async fn mount(
        self: &Arc<Self>,
        package: Arc<Package>,
        options: MountOptions,
    ) -> Result<Arc<Package>, LoadError> {
        let _guard = self.mount_lock.lock().await;
        let current = self.table.load_full();
        if let Some(same) = identical_package(&current, &package) {
            // The same bytes from another source (a folder holding two names for one
            // file, say): keep the mounted one, drop the duplicate's workers.
            tracing::info!(source = %package.source, mounted = %same.source, "duplicate package: already mounted");
            self.stop_package(&package).await;
            return Ok(same);
        }
        if let Err(reason) = check_downgrade(&current, &package, options) {
            self.stop_package(&package).await;
            return Err(LoadError::new(LoadPhase::Mount, &package.source, reason));
        }
        let next = match current.with_package(&package) {
            Ok(next) => next,
            Err(reason) => {
                self.stop_package(&package).await;
                return Err(LoadError::new(LoadPhase::Mount, &package.source, reason));
            }
        };
        let retired = retired_by(&current, &package, options);
        let next = retired
            .iter()
            .fold(next, |table, old| table.without_package(old));
        self.store_table(next);
        for old in retired {
            self.emit(
                "package.replaced",
                &old,
                Some(package.version().to_string()),
            );
            self.retire(old);
        }
        Ok(package)
    }

    /// The package is already out of the table: mark it, wait for its calls, stop it.
    fn retire(self: &Arc<Self>, package: Arc<Package>) {
        package.mark_retired();
        if let Some(fetcher) = self.fetcher.get() {
            fetcher.unpin(&package.sha256);
        }
        self.reports.draining(&package.sha256);
        self.draining
            .lock()
            .expect("draining poisoned")
            .push(package.clone());
        let runtime = self.clone();
        tokio::spawn(async move {
            let idle = package.gate.drained(runtime.config.drain_timeout).await;
            if !idle {
                tracing::warn!(package = %package.name(), version = %package.version(), "drain timeout: stopping with calls in flight");
            }
            runtime.stop_package(&package).await;
            runtime
                .draining
                .lock()
                .expect("draining poisoned")
                .retain(|p| !Arc::ptr_eq(p, &package));
            if runtime
                .table
                .load()
                .packages()
                .iter()
                .all(|p| p.sha256 != package.sha256)
            {
                runtime.reports.remove(&package.sha256);
            }
            tracing::info!(package = %package.name(), version = %package.version(), "package stopped");
            runtime.emit("package.unloaded", &package, None);
        });
    }

    /// Unloads every mounted version of `name`, or just `version`. Returns what was
    /// unloaded (empty when nothing matched).
    pub async fn unload(
        self: &Arc<Self>,
        name: &str,
        version: Option<&str>,
    ) -> Vec<(String, String)> {
        let _guard = self.mount_lock.lock().await;
        let current = self.table.load_full();
        let victims: Vec<Arc<Package>> = current
            .packages()
            .into_iter()
            .filter(|p| p.name() == name && version.is_none_or(|v| p.version() == v))
            .collect();
        let next = victims
            .iter()
            .fold((*current).clone(), |table, p| table.without_package(p));
        self.store_table(next);
        let unloaded = victims
            .iter()
            .map(|p| (p.name().to_string(), p.version().to_string()))
            .collect();
        for package in victims {
            self.retire(package);
        }
        unloaded
    }

    /// Disabled agents answer 503 `disabled` until enabled again. False for unknown ids.
    pub fn set_enabled(&self, id: &str, enabled: bool) -> bool {
        if self.table.load().lookup(id).is_none() {
            return false;
        }
        let mut disabled = self.disabled.write().expect("disabled poisoned");
        if enabled {
            disabled.remove(id);
        } else {
            disabled.insert(id.to_string());
        }
        true
    }

    /// Starts loading `request` in the background, or returns the job already loading
    /// the same thing. Poll it with [`Runtime::load_job`].
    pub fn submit_load(self: &Arc<Self>, request: LoadRequest) -> (u64, bool) {
        let key = request.key();
        let (id, joined) = self.jobs.start_or_join(&key, &request.source);
        if joined {
            return (id, true);
        }
        let runtime = self.clone();
        tokio::spawn(async move {
            let outcome = runtime.run_load(&request).await;
            runtime.jobs.finish(id, &key, outcome);
        });
        (id, false)
    }

    async fn run_load(
        self: &Arc<Self>,
        request: &LoadRequest,
    ) -> Result<Vec<PackageReport>, String> {
        let source = match &request.expected_sha256 {
            Some(sha) => format!("{}#sha256={sha}", request.source),
            None => request.source.clone(),
        };
        let files = self.resolve_sources(std::slice::from_ref(&source)).await;
        if files.is_empty() {
            let report = self
                .reports
                .find(&request.source)
                .or_else(|| self.reports.find(&source));
            return Err(report
                .and_then(|r| r.error)
                .unwrap_or_else(|| format!("nothing to load from {}", request.source)));
        }
        let labels: Vec<String> = files.iter().map(|f| f.label.clone()).collect();
        let options = MountOptions {
            replace: request.replace,
            force: request.force,
        };
        let results = self.load_files(files, options).await;
        if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
            return Err(e.reason.clone());
        }
        Ok(labels.iter().filter_map(|l| self.reports.find(l)).collect())
    }

    pub fn load_job(&self, id: u64) -> Option<LoadJob> {
        self.jobs.get(id)
    }

    /// Re-reads the startup sources: new or changed files load (replacing their older
    /// bytes), files gone from them unload.
    pub async fn reload(self: &Arc<Self>) {
        if let Some(settings) = self.registry_settings_now() {
            self.poll_registry(&settings).await;
        }
        let sources = self
            .startup_sources
            .lock()
            .expect("sources poisoned")
            .clone();
        let files = self.expand_all(&sources);
        let changed: Vec<SourceFile> = files
            .iter()
            .filter(|f| self.is_changed(f))
            .cloned()
            .collect();
        let labels: Vec<&str> = files.iter().map(|f| f.label.as_str()).collect();
        let gone: Vec<PackageReport> = self
            .reports()
            .into_iter()
            .filter(|r| !labels.contains(&r.source.as_str()) && r.name.is_some())
            .filter(|r| sources.iter().any(|s| r.source.starts_with(s.as_str())))
            .collect();
        tracing::info!(changed = changed.len(), gone = gone.len(), "reload");
        self.load_files(
            changed,
            MountOptions {
                replace: true,
                force: true,
            },
        )
        .await;
        for report in gone {
            if let (Some(name), Some(version)) = (&report.name, &report.version) {
                self.unload(name, Some(version)).await;
            }
        }
    }

    fn is_changed(&self, file: &SourceFile) -> bool {
        let Some(report) = self.reports.find(&file.label) else {
            return true;
        };
        let Ok(sha) = par_archive::sha256_file(&file.path) else {
            return true;
        };
        report.sha256.as_deref() != Some(sha.as_str())
    }
}

/// What `POST /runtime/packages` asks for.
#[derive(Debug, Clone)]
pub struct LoadRequest {
    pub source: String,
    pub expected_sha256: Option<String>,
    pub replace: bool,
    pub force: bool,
}

impl LoadRequest {
    fn key(&self) -> String {
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
    fn start_or_join(&self, key: &str, source: &str) -> (u64, bool) {
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

    fn finish(&self, id: u64, key: &str, outcome: Result<Vec<PackageReport>, String>) {
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

    fn get(&self, id: u64) -> Option<LoadJob> {
        self.inner
            .lock()
            .expect("jobs poisoned")
            .jobs
            .get(&id)
            .cloned()
    }
}

/// The mounted package with exactly these bytes, if any.
fn identical_package(table: &AgentTable, package: &Package) -> Option<Arc<Package>> {
    let existing = table.lookup(&format!("{}@{}", package.name(), package.version()))?;
    (existing.package.sha256 == package.sha256).then(|| existing.package.clone())
}

/// A replacing load may not lower the active version unless forced.
fn check_downgrade(
    table: &AgentTable,
    package: &Package,
    options: MountOptions,
) -> Result<(), String> {
    if !options.replace || options.force {
        return Ok(());
    }
    let Some(active) = table.lookup(package.name()) else {
        return Ok(());
    };
    if active.package.name() != package.name() {
        return Ok(());
    }
    let active_version = active.package.version();
    if version::compare(package.version(), active_version).is_lt() {
        return Err(format!(
            "downgrade of '{}' from {active_version} to {} refused (force it to override)",
            package.name(),
            package.version()
        ));
    }
    Ok(())
}

/// Versions the new package takes over from: all others when replacing, else only a
/// different build of the very same version.
fn retired_by(
    table: &AgentTable,
    package: &Arc<Package>,
    options: MountOptions,
) -> Vec<Arc<Package>> {
    table
        .packages()
        .into_iter()
        .filter(|p| p.name() == package.name() && !Arc::ptr_eq(p, package))
        .filter(|p| options.replace || p.version() == package.version())
        .collect()
}
