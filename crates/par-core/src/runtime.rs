//! The runtime: loads sources, mounts packages, answers lookups and invocations.
//! Unloading, replacing, draining and load jobs live in `lifecycle.rs`.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use arc_swap::ArcSwap;
use par_pyenv::EnvManager;

use crate::config::RuntimeConfig;
use crate::error::{ErrorCode, InvokeError, LoadError};
use crate::invoke::{handler_payload, ActiveCall, CallMeta, InvokeOutput};
use crate::lifecycle::{Jobs, MountOptions};
use crate::loader::Loader;
use crate::outcall::Outcalls;
use crate::package::{Package, PackageReport};
use crate::pool::PickError;
use crate::reports::Reports;
use crate::source::{self, SourceFile};
use crate::table::{AgentInfo, AgentTable, Target};
use par_telemetry::metrics::LoadOutcome;

pub struct Runtime {
    pub(crate) config: RuntimeConfig,
    envs: EnvManager,
    worker_script: PathBuf,
    pub(crate) table: ArcSwap<AgentTable>,
    /// Serialises mounts so two loads cannot both pass the id-clash check.
    pub(crate) mount_lock: tokio::sync::Mutex<()>,
    pub(crate) reports: Reports,
    /// Replaced or unloaded packages still finishing their calls.
    pub(crate) draining: Mutex<Vec<Arc<Package>>>,
    pub(crate) disabled: RwLock<HashSet<String>>,
    pub(crate) jobs: Jobs,
    pub(crate) startup_sources: Mutex<Vec<String>>,
    pub(crate) events: Option<crate::webhook::Webhooks>,
    pub(crate) metrics: par_telemetry::Metrics,
    /// Fetches remote sources and the registry index; set once at startup.
    pub(crate) fetcher: std::sync::OnceLock<par_registry::Fetcher>,
    pub(crate) registry: tokio::sync::Mutex<crate::registry::RegistryState>,
    registry_settings: std::sync::OnceLock<crate::registry::RegistrySettings>,
    /// The usage ledger, when metering is on (see `metering.rs`).
    pub(crate) usage: std::sync::OnceLock<Arc<par_telemetry::UsageLedger>>,
    /// Exports a span per call, when OTLP export is configured.
    pub(crate) spans: std::sync::OnceLock<par_telemetry::otlp::OtlpExporter>,
    ready: AtomicBool,
}

impl Runtime {
    pub fn new(
        config: RuntimeConfig,
        metrics: par_telemetry::Metrics,
    ) -> std::io::Result<Arc<Runtime>> {
        fs_err::create_dir_all(&config.cache_dir)?;
        create_private_dir(&config.packages_dir())?;
        let worker_script = par_worker::script::materialize(&config.worker_dir())?;
        let envs = EnvManager::new(config.uv.clone(), config.envs_dir(), config.install_timeout);
        let events = crate::webhook::Webhooks::start(&config.webhooks);
        Ok(Arc::new(Runtime {
            config,
            envs,
            worker_script,
            table: ArcSwap::from_pointee(AgentTable::default()),
            mount_lock: tokio::sync::Mutex::new(()),
            reports: Reports::default(),
            draining: Mutex::new(Vec::new()),
            disabled: RwLock::new(HashSet::new()),
            jobs: Jobs::default(),
            startup_sources: Mutex::new(Vec::new()),
            events,
            metrics,
            fetcher: std::sync::OnceLock::new(),
            registry: Default::default(),
            registry_settings: std::sync::OnceLock::new(),
            usage: std::sync::OnceLock::new(),
            spans: std::sync::OnceLock::new(),
            ready: AtomicBool::new(false),
        }))
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// Enables remote sources, signatures and the cache (see `par-registry`).
    pub fn set_fetcher(&self, fetcher: par_registry::Fetcher) {
        let _ = self.fetcher.set(fetcher);
    }

    /// Follows a registry index from startup on (needs a fetcher).
    pub fn set_registry(&self, settings: crate::registry::RegistrySettings) {
        let _ = self.registry_settings.set(settings);
    }

    pub(crate) fn registry_settings_now(&self) -> Option<crate::registry::RegistrySettings> {
        self.registry_settings.get().cloned()
    }

    pub fn metrics(&self) -> &par_telemetry::Metrics {
        &self.metrics
    }

    /// Swaps in a new routing table and keeps the metrics' set of known agent ids (the
    /// only ids allowed as label values) in step with it.
    pub(crate) fn store_table(&self, next: AgentTable) {
        let before = self.table.load().ids();
        let after = next.ids();
        self.table.store(Arc::new(next));
        for id in after.difference(&before) {
            self.metrics.register_agent(id);
        }
        for id in before.difference(&after) {
            self.metrics.unregister_agent(id);
        }
    }

    /// Loads every source (concurrently, bounded), mounts them in the order given (so an
    /// earlier source wins an id clash, whatever finished first), then marks the runtime
    /// ready. A failed package is reported and skipped; it never stops the others.
    pub async fn load_startup_sources(self: &Arc<Self>, sources: &[String]) {
        *self.startup_sources.lock().expect("sources poisoned") = sources.to_vec();
        let files = self.resolve_sources(sources).await;
        self.load_files(files, MountOptions::startup()).await;
        if let Some(settings) = self.registry_settings.get().cloned() {
            self.registry_startup(&settings).await;
            tokio::spawn(self.clone().registry_loop(settings));
        }
        self.ready.store(true, Ordering::Release);
        let mounted = self.table.load().packages().len();
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
            metrics: &self.metrics,
            envs: &self.envs,
            worker_script: &self.worker_script,
        };
        loader.load(file).await
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
        self.metrics.package_loaded(outcome);
        match &result {
            Ok(package) => {
                self.reports.ready(&file.label, package);
                self.emit("package.loaded", package, None);
            }
            Err(e) => self.fail(&file.label, e),
        }
        result
    }

    pub(crate) fn fail(&self, source: &str, error: &LoadError) {
        self.reports.failed(source, error);
        if let Some(events) = &self.events {
            events.send(crate::webhook::Event::failed(source, error));
        }
    }

    pub(crate) fn emit(&self, kind: &'static str, package: &Package, detail: Option<String>) {
        if let Some(events) = &self.events {
            events.send(crate::webhook::Event::for_package(kind, package, detail));
        }
    }

    pub(crate) async fn stop_package(&self, package: &Package) {
        let grace = self.config.worker_stop_grace;
        let workers = async {
            if let Some(pool) = &package.pool {
                pool.stop(grace).await;
            }
        };
        let app = async {
            if let Some(surface) = &package.surface {
                surface.stop(grace).await;
            }
        };
        tokio::join!(workers, app);
    }

    /// The active version of a package (or `name@version`), for its HTTP and UI surfaces.
    pub fn package(&self, name: &str) -> Option<Arc<Package>> {
        let table = self.table.load();
        let route = table.lookup(name)?;
        (route.package.name() == name.split('@').next().unwrap_or(name))
            .then(|| route.package.clone())
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// A public agent, by `id` or `id@version`; disabled agents answer `disabled`.
    pub fn resolve(&self, id: &str) -> Result<Target, InvokeError> {
        self.resolve_for(id, Reach::Public)
    }

    /// An agent `reach` may call: the public ones from outside, any from inside.
    fn resolve_for(&self, id: &str, reach: Reach) -> Result<Target, InvokeError> {
        let target = self
            .table
            .load()
            .lookup(id)
            .filter(|r| r.public || reach == Reach::Internal)
            .cloned()
            .ok_or_else(|| {
                InvokeError::new(ErrorCode::AgentNotFound, format!("no agent '{id}'"))
            })?;
        if self
            .disabled
            .read()
            .expect("disabled poisoned")
            .contains(&target.id)
        {
            return Err(InvokeError::new(
                ErrorCode::Disabled,
                format!("agent '{}' is disabled", target.id),
            ));
        }
        Ok(target)
    }

    /// Admits and starts a call on agent `id` with the raw request body.
    ///
    /// A version being replaced stops admitting calls before it drains; a call that
    /// resolved it just before the switch is sent to the new version instead of failing.
    pub async fn start_call(
        self: &Arc<Self>,
        id: &str,
        body: &[u8],
        meta: &CallMeta,
    ) -> Result<ActiveCall, InvokeError> {
        let timeout = self.config.call_timeout;
        self.start(id, body, meta, Reach::Public, timeout).await
    }

    /// Starts a call that may take at most `timeout`, on an agent `reach` may call.
    pub(crate) async fn start(
        self: &Arc<Self>,
        id: &str,
        body: &[u8],
        meta: &CallMeta,
        reach: Reach,
        timeout: std::time::Duration,
    ) -> Result<ActiveCall, InvokeError> {
        for _ in 0..3 {
            let target = self.resolve_for(id, reach)?;
            let pool = target.package.pool.as_ref().ok_or_else(|| {
                InvokeError::new(
                    ErrorCode::NotInvocable,
                    format!("package '{}' has no entrypoint", target.package.name()),
                )
            })?;
            let payload = handler_payload(body, target.sub_agent.as_deref())?;
            target
                .package
                .schemas
                .check(target.sub_agent.as_deref(), body)?;
            let queued = || {
                self.metrics
                    .track_queued(&self.metrics.agent_label(&target.id))
            };
            let permit = target.package.gate.enter(timeout, queued).await?;
            if target.package.is_retired() {
                continue;
            }
            let wait = self.config.worker_startup_timeout.min(timeout);
            let worker = pool.pick(wait).await.map_err(|e| pick_error(e, &target))?;
            let traceparent = meta.trace.traceparent();
            let request = par_worker::protocol::CallRequest {
                request_id: &meta.request_id,
                traceparent: &traceparent,
                payload: &payload,
            };
            let call = worker.call(request).await.map_err(|e| match e {
                par_worker::WorkerError::TooLarge { .. } => {
                    InvokeError::new(ErrorCode::TooLarge, e.to_string())
                }
                _ => InvokeError::new(ErrorCode::WorkerCrashed, "the agent's worker is gone"),
            })?;
            let mut active = ActiveCall::new(call, timeout, permit);
            active.outcalls = Some(Outcalls::new(self, meta.clone(), target.id.clone()));
            active.agent = target.id.clone();
            active.version = target.package.version().to_string();
            return Ok(active);
        }
        Err(InvokeError::new(
            ErrorCode::Overloaded,
            "the agent is being replaced; retry",
        ))
    }

    /// Calls an agent and waits for its whole result.
    pub async fn invoke(
        self: &Arc<Self>,
        id: &str,
        body: &[u8],
        meta: &CallMeta,
    ) -> Result<InvokeOutput, InvokeError> {
        self.start_call(id, body, meta).await?.collect().await
    }

    pub fn agents(&self) -> Vec<AgentInfo> {
        self.table.load().public_agents()
    }

    pub fn agent(&self, id: &str) -> Option<AgentInfo> {
        self.table.load().public_agent(id)
    }

    /// One report per source file, failures included, with live worker facts.
    pub fn reports(&self) -> Vec<PackageReport> {
        let mut live = self.table.load().packages();
        live.extend(
            self.draining
                .lock()
                .expect("draining poisoned")
                .iter()
                .cloned(),
        );
        self.reports.snapshot(&live)
    }

    /// Stops every worker of every package, mounted or draining, and flushes events.
    pub async fn shutdown(&self) {
        let mut packages = self.table.load().packages();
        packages.extend(self.draining.lock().expect("draining poisoned").drain(..));
        let stops = packages.iter().map(|p| self.stop_package(p));
        futures_util::future::join_all(stops).await;
        if let Some(events) = &self.events {
            events.close(std::time::Duration::from_secs(5)).await;
        }
    }
}

/// Who may reach an agent: outside callers only public ones, agents any mounted one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    Public,
    Internal,
}

fn pick_error(error: PickError, target: &Target) -> InvokeError {
    match error {
        PickError::CrashLoop => InvokeError::new(
            ErrorCode::WorkerCrashed,
            format!("package '{}' is in a crash loop", target.package.name()),
        ),
        PickError::Unavailable => {
            InvokeError::new(ErrorCode::Starting, "the agent's worker is restarting")
        }
    }
}

/// Extracted packages hold `.env` files with secrets: only the runtime's user may look.
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs_err::create_dir_all(dir)?;
    fs_err::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}
