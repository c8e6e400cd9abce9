//! The runtime: loads sources, mounts packages, answers lookups and invocations.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use par_pyenv::EnvManager;

use crate::config::RuntimeConfig;
use crate::error::{ErrorCode, InvokeError, LoadError, LoadPhase};
use crate::invoke::{handler_payload, ActiveCall, InvokeOutput};
use crate::loader::Loader;
use crate::package::{Package, PackageReport, PackageState};
use crate::source::{self, SourceFile};
use crate::table::{AgentInfo, AgentTable, Target};

pub struct Runtime {
    config: RuntimeConfig,
    envs: EnvManager,
    worker_script: PathBuf,
    table: ArcSwap<AgentTable>,
    /// Serialises mounts so two loads cannot both pass the id-clash check.
    mount_lock: tokio::sync::Mutex<()>,
    reports: Mutex<Vec<PackageReport>>,
    ready: AtomicBool,
}

impl Runtime {
    pub fn new(config: RuntimeConfig) -> std::io::Result<Arc<Runtime>> {
        fs_err::create_dir_all(&config.cache_dir)?;
        create_private_dir(&config.packages_dir())?;
        let worker_script = par_worker::script::materialize(&config.worker_dir())?;
        let envs = EnvManager::new(config.uv.clone(), config.envs_dir(), config.install_timeout);
        Ok(Arc::new(Runtime {
            config,
            envs,
            worker_script,
            table: ArcSwap::from_pointee(AgentTable::default()),
            mount_lock: tokio::sync::Mutex::new(()),
            reports: Mutex::new(Vec::new()),
            ready: AtomicBool::new(false),
        }))
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// Loads every source (concurrently, bounded), mounts them in the order given (so an
    /// earlier source wins an id clash, whatever finished first), then marks the runtime
    /// ready. A failed package is reported and skipped; it never stops the others.
    pub async fn load_startup_sources(self: &Arc<Self>, sources: &[String]) {
        let mut files = Vec::new();
        for source in sources {
            match source::expand(source) {
                Ok(found) => files.extend(found),
                Err(e) => self.record_failure(source, &e),
            }
        }
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
        for (_, file, result) in prepared {
            self.finish_load(&file, result).await.ok();
        }
        self.ready.store(true, Ordering::Release);
        let mounted = self.table.load().packages().len();
        tracing::info!(packages = mounted, "startup sources processed");
    }

    /// Loads and mounts one package file.
    pub async fn load_file(&self, file: &SourceFile) -> Result<Arc<Package>, LoadError> {
        let prepared = self.prepare(file).await;
        self.finish_load(file, prepared).await
    }

    /// Everything up to mounting: verify, manifest, extract, environment, workers.
    async fn prepare(&self, file: &SourceFile) -> Result<Package, LoadError> {
        self.set_report(PackageReport::loading(&file.label));
        tracing::info!(source = %file.label, "loading package");
        let loader = Loader {
            config: &self.config,
            envs: &self.envs,
            worker_script: &self.worker_script,
        };
        loader.load(file).await
    }

    async fn finish_load(
        &self,
        file: &SourceFile,
        prepared: Result<Package, LoadError>,
    ) -> Result<Arc<Package>, LoadError> {
        let result = match prepared {
            Ok(package) => self.mount(Arc::new(package)).await,
            Err(e) => Err(e),
        };
        match &result {
            Ok(package) => self.record_ready(&file.label, package),
            Err(e) => self.record_failure(&file.label, e),
        }
        result
    }

    async fn mount(&self, package: Arc<Package>) -> Result<Arc<Package>, LoadError> {
        let _guard = self.mount_lock.lock().await;
        let current = self.table.load_full();
        if let Some(same) = identical_package(&current, &package) {
            // The same bytes from another source (a directory holding two names for one
            // file, say): keep the mounted one, drop the duplicate's workers.
            tracing::info!(source = %package.source, mounted = %same.source, "duplicate package: already mounted");
            self.stop_package(&package).await;
            return Ok(same);
        }
        match current.with_package(&package) {
            Ok(next) => {
                let replaced = replaced_package(&current, &package);
                self.table.store(Arc::new(next));
                if let Some(old) = replaced {
                    self.stop_package(&old).await;
                }
                Ok(package)
            }
            Err(reason) => {
                self.stop_package(&package).await;
                Err(LoadError::new(LoadPhase::Mount, &package.source, reason))
            }
        }
    }

    async fn stop_package(&self, package: &Package) {
        if let Some(pool) = &package.pool {
            pool.stop(self.config.worker_stop_grace).await;
        }
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// A public agent, by `id` or `id@version`.
    pub fn resolve(&self, id: &str) -> Result<Target, InvokeError> {
        self.table
            .load()
            .lookup(id)
            .filter(|r| r.public)
            .cloned()
            .ok_or_else(|| InvokeError::new(ErrorCode::AgentNotFound, format!("no agent '{id}'")))
    }

    /// Starts a call on `target` with the raw request body.
    pub async fn start_call(
        &self,
        target: &Target,
        body: &[u8],
        request_id: &str,
    ) -> Result<ActiveCall, InvokeError> {
        let pool = target.package.pool.as_ref().ok_or_else(|| {
            InvokeError::new(
                ErrorCode::NotInvocable,
                format!("package '{}' has no entrypoint", target.package.name()),
            )
        })?;
        let payload = handler_payload(body, target.sub_agent.as_deref())?;
        let worker = pool.pick().await.map_err(|e| {
            tracing::error!(package = %target.package.name(), error = %e, "no worker available");
            InvokeError::new(
                ErrorCode::WorkerCrashed,
                "the agent's worker could not be started",
            )
        })?;
        let rid = serde_json::to_string(request_id).expect("a string serialises");
        let parts: [&[u8]; 4] = [b"{\"rid\":", rid.as_bytes(), b",\"p\":", &payload];
        let call = worker
            .call(&[parts[0], parts[1], parts[2], parts[3], b"}"])
            .await
            .map_err(|_| {
                InvokeError::new(ErrorCode::WorkerCrashed, "the agent's worker is gone")
            })?;
        Ok(ActiveCall::new(call, self.config.call_timeout))
    }

    /// Calls an agent and waits for its whole result.
    pub async fn invoke(
        &self,
        id: &str,
        body: &[u8],
        request_id: &str,
    ) -> Result<InvokeOutput, InvokeError> {
        let target = self.resolve(id)?;
        self.start_call(&target, body, request_id)
            .await?
            .collect()
            .await
    }

    pub fn agents(&self) -> Vec<AgentInfo> {
        self.table.load().public_agents()
    }

    pub fn agent(&self, id: &str) -> Option<AgentInfo> {
        self.table.load().public_agent(id)
    }

    /// One report per source file, failures included, with live worker facts.
    pub fn reports(&self) -> Vec<PackageReport> {
        let table = self.table.load();
        let packages = table.packages();
        let mut reports = self.reports.lock().expect("reports poisoned").clone();
        for report in reports.iter_mut() {
            if let Some(p) = packages
                .iter()
                .find(|p| Some(&p.sha256) == report.sha256.as_ref())
            {
                report.workers = p.worker_pids();
                report.restarts = p.pool.as_ref().map_or(0, |pool| pool.restarts());
            }
        }
        reports
    }

    /// Stops every worker of every mounted package.
    pub async fn shutdown(&self) {
        let packages = self.table.load().packages();
        for package in packages {
            self.stop_package(&package).await;
        }
    }

    fn set_report(&self, report: PackageReport) {
        let mut reports = self.reports.lock().expect("reports poisoned");
        match reports.iter_mut().find(|r| r.source == report.source) {
            Some(slot) => *slot = report,
            None => reports.push(report),
        }
    }

    fn record_ready(&self, source: &str, package: &Package) {
        tracing::info!(
            package = %package.name(), version = %package.version(), sha256 = %package.sha256,
            "package ready"
        );
        let mut report = PackageReport::loading(source);
        report.state = PackageState::Ready;
        report.name = Some(package.name().to_string());
        report.version = Some(package.version().to_string());
        report.sha256 = Some(package.sha256.clone());
        report.environment = Some(package.env_key.clone());
        report.workers = package.worker_pids();
        self.set_report(report);
    }

    fn record_failure(&self, source: &str, error: &LoadError) {
        tracing::error!(source, phase = ?error.phase, error = %error.reason, "package failed to load");
        let mut report = PackageReport::loading(source);
        report.state = PackageState::Failed;
        report.failed_phase = Some(error.phase);
        report.error = Some(error.reason.clone());
        self.set_report(report);
    }
}

/// The mounted package with exactly these bytes, if any.
fn identical_package(table: &AgentTable, package: &Package) -> Option<Arc<Package>> {
    let existing = table.lookup(&format!("{}@{}", package.name(), package.version()))?;
    (existing.package.sha256 == package.sha256).then(|| existing.package.clone())
}

/// The package a new one replaces: same name and version, different bytes.
fn replaced_package(table: &AgentTable, package: &Package) -> Option<Arc<Package>> {
    let existing = table.lookup(&format!("{}@{}", package.name(), package.version()))?;
    (existing.package.sha256 != package.sha256).then(|| existing.package.clone())
}

/// Extracted packages hold `.env` files with secrets: only the runtime's user may look.
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs_err::create_dir_all(dir)?;
    fs_err::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}
