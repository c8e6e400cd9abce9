//! Changing what runs: loading sources (concurrently, mounted in order), mounting with
//! replacement (one atomic table swap), retiring a version (stop routing to it, let its
//! calls finish, stop its workers), unloading, asynchronous load jobs, and reload.

use std::sync::Arc;

use par_telemetry::metrics::LoadOutcome;

use crate::error::{LoadError, LoadPhase};
use crate::jobs::{LoadJob, LoadRequest};
use crate::loader::Loader;
use crate::package::{Package, PackageReport};
use crate::routing::{plan_mount, MountOptions, MountPlan};
use crate::runtime::Runtime;
use crate::source::{self, SourceFile};

impl Runtime {
    /// Loads every source (concurrently, bounded), mounts them in the order given (so an
    /// earlier source wins an id clash, whatever finished first), then marks the runtime
    /// ready. A failed package is reported and skipped; it never stops the others.
    pub async fn load_startup_sources(self: &Arc<Self>, sources: &[String]) {
        *self.startup_sources.lock().expect("sources poisoned") = sources.to_vec();
        let files = self.resolve_sources(sources).await;
        self.load_files(files, MountOptions::startup()).await;
        if let Some(settings) = self.registry.clone() {
            self.registry_startup(&settings).await;
            tokio::spawn(self.clone().registry_loop(settings));
        }
        self.mark_ready();
        let mounted = self.routing.table().packages().len();
        tracing::info!(packages = mounted, "startup sources processed");
    }

    pub(crate) fn expand_all(&self, sources: &[String]) -> Vec<SourceFile> {
        let mut files = Vec::new();
        for source in sources {
            match source::expand(source) {
                Ok(found) => files.extend(found),
                Err(e) => self.fail(source, &e),
            }
        }
        files
    }

    /// Prepares files concurrently (bounded) and mounts them in order.
    pub(crate) async fn load_files(
        self: &Arc<Self>,
        files: Vec<SourceFile>,
        options: MountOptions,
    ) -> Vec<Result<Arc<Package>, LoadError>> {
        let limit = Arc::new(tokio::sync::Semaphore::new(
            self.config.load_concurrency.max(1),
        ));
        let mut tasks = tokio::task::JoinSet::new();
        for (index, file) in files.into_iter().enumerate() {
            let (runtime, limit) = (self.clone(), limit.clone());
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await;
                let prepared = runtime.prepare(&file).await;
                (index, file, prepared)
            });
        }
        let mut prepared = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            prepared.extend(joined.ok());
        }
        prepared.sort_by_key(|(index, _, _)| *index);
        let mut results = Vec::new();
        for (_, file, result) in prepared {
            results.push(self.finish_load(&file, result, options).await);
        }
        results
    }

    /// Everything up to mounting: verify, manifest, extract, environment, workers.
    async fn prepare(&self, file: &SourceFile) -> Result<Package, LoadError> {
        self.reports.loading(&file.label);
        tracing::info!(source = %file.label, "loading package");
        let loader = Loader {
            config: &self.config,
            metrics: self.metrics(),
            envs: &self.envs,
            worker_script: &self.worker_script,
            reports: &self.reports,
            log_budgets: &self.log_budgets,
        };
        let package = loader.load(file).await?;
        if self.config.idle_timeout.is_some() && !self.replaces_an_awake_version(&package) {
            // Inside the load slot: a load holds at most `load_concurrency` packages awake.
            package
                .sleep_after_load(self.config.worker_stop_grace)
                .await;
        }
        Ok(package)
    }

    /// Whether a mounted version of the same package is awake: the new one will take
    /// over its calls, so it starts awake too and falls asleep after the idle timeout.
    fn replaces_an_awake_version(&self, package: &Package) -> bool {
        self.routing
            .table()
            .packages()
            .iter()
            .any(|p| p.name() == package.name() && !p.is_idle())
    }

    async fn finish_load(
        self: &Arc<Self>,
        file: &SourceFile,
        prepared: Result<Package, LoadError>,
        options: MountOptions,
    ) -> Result<Arc<Package>, LoadError> {
        let result = match prepared {
            Ok(package) => self.mount(Arc::new(package), options).await,
            Err(e) => Err(e),
        };
        let outcome = if result.is_ok() {
            LoadOutcome::Ok
        } else {
            LoadOutcome::Failed
        };
        self.metrics().package_loaded(outcome);
        match &result {
            Ok(package) => {
                self.reports.ready(&file.label, package);
                self.emit("package.loaded", package, None);
            }
            Err(e) => self.fail(&file.label, e),
        }
        result
    }

    /// Mounts a prepared package; its workers are already running and ready, so the
    /// switch is one atomic table swap, after which replaced versions drain.
    pub(crate) async fn mount(
        self: &Arc<Self>,
        package: Arc<Package>,
        options: MountOptions,
    ) -> Result<Arc<Package>, LoadError> {
        let _guard = self.routing.lock_mounts().await;
        let plan = plan_mount(&self.routing.table(), &package, options);
        let (table, retired) = match plan {
            Ok(MountPlan::Swap { table, retired }) => (table, retired),
            Ok(MountPlan::Duplicate(same)) => {
                // The same bytes from another source (a folder holding two names for one
                // file, say): keep the mounted one, drop the duplicate's workers.
                tracing::info!(source = %package.source, mounted = %same.source, "duplicate package: already mounted");
                self.stop_package(&package).await;
                return Ok(same);
            }
            Err(reason) => {
                self.stop_package(&package).await;
                return Err(LoadError::new(LoadPhase::Mount, &package.source, reason));
            }
        };
        self.routing.store(table);
        self.watch_idle(&package);
        for old in retired {
            let detail = Some(package.version().to_string());
            self.emit("package.replaced", &old, detail);
            self.retire(old);
        }
        Ok(package)
    }

    /// The package is already out of the table: mark it, wait for its calls, stop it.
    fn retire(self: &Arc<Self>, package: Arc<Package>) {
        package.mark_retired();
        if let Some(fetcher) = &self.fetcher {
            fetcher.unpin(&package.sha256);
        }
        self.reports.draining(&package.sha256);
        self.routing.start_draining(package.clone());
        let runtime = self.clone();
        tokio::spawn(async move {
            let idle = package.gate.drained(runtime.config.drain_timeout).await;
            if !idle {
                tracing::warn!(package = %package.name(), version = %package.version(), "drain timeout: stopping with calls in flight");
            }
            runtime.stop_package(&package).await;
            runtime.routing.finish_draining(&package);
            if !runtime.routing.serves_sha(&package.sha256) {
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
        let _guard = self.routing.lock_mounts().await;
        let current = self.routing.table();
        let victims: Vec<Arc<Package>> = current
            .packages()
            .into_iter()
            .filter(|p| p.name() == name && version.is_none_or(|v| p.version() == v))
            .collect();
        let next = victims
            .iter()
            .fold((*current).clone(), |table, p| table.without_package(p));
        self.routing.store(next);
        let unloaded = victims
            .iter()
            .map(|p| (p.name().to_string(), p.version().to_string()))
            .collect();
        for package in victims {
            self.retire(package);
        }
        unloaded
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

    /// A load job; while it runs, or when it failed before reporting packages, it shows its
    /// source's live report (the phase it is in, or the phase that failed and why).
    pub fn load_job(&self, id: u64) -> Option<LoadJob> {
        let mut job = self.jobs.get(id)?;
        if job.packages.is_empty() {
            job.packages = self.reports.find(&job.source).into_iter().collect();
        }
        Some(job)
    }

    /// Re-reads the startup sources: new or changed files load (replacing their older
    /// bytes), files gone from them unload.
    pub async fn reload(self: &Arc<Self>) {
        if let Some(settings) = self.registry.clone() {
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
        self.load_files(changed, MountOptions::authoritative())
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
