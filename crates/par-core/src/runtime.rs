//! The runtime, built once with every dependency ([`RuntimeBuilder`]), and made of owned
//! parts: routing (`routing.rs`), load jobs and reports (`jobs.rs`, `reports.rs`),
//! metering (`metering.rs`) and the registry follower's state (`convergence.rs`). What
//! the runtime does with them lives beside it: mounting and unloading (`lifecycle.rs`),
//! starting calls (`calling.rs`), agent-to-agent calls (`outcall.rs`), fetching sources
//! (`fetching.rs`) and following a registry index (`registry.rs`). Those modules import
//! this one; this one imports only the parts, so imports go one way.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use par_pyenv::EnvManager;

use crate::config::RuntimeConfig;
use crate::convergence::{RegistrySettings, RegistryState};
use crate::error::{InvokeError, LoadError};
use crate::jobs::Jobs;
use crate::metering::Metering;
use crate::package::{Package, PackageReport};
use crate::reports::Reports;
use crate::routing::{Reach, Routing};
use crate::table::{AgentInfo, Target};

pub struct Runtime {
    pub(crate) config: RuntimeConfig,
    pub(crate) envs: EnvManager,
    pub(crate) worker_script: PathBuf,
    pub(crate) routing: Routing,
    pub(crate) reports: Reports,
    pub(crate) log_budgets: crate::log_budgets::LogBudgets,
    pub(crate) jobs: Jobs,
    /// The sources given at startup, re-read by a reload.
    pub(crate) startup_sources: Mutex<Vec<String>>,
    pub(crate) events: Option<crate::webhook::Webhooks>,
    pub(crate) metering: Arc<Metering>,
    /// Fetches remote sources and the registry index; without one, only local paths.
    pub(crate) fetcher: Option<par_registry::Fetcher>,
    pub(crate) registry: Option<RegistrySettings>,
    pub(crate) registry_state: tokio::sync::Mutex<RegistryState>,
    ready: AtomicBool,
}

/// Everything a runtime needs, given before it exists: nothing is set afterwards.
pub struct RuntimeBuilder {
    config: RuntimeConfig,
    metrics: par_telemetry::Metrics,
    fetcher: Option<par_registry::Fetcher>,
    registry: Option<RegistrySettings>,
    usage: Option<Arc<par_telemetry::UsageLedger>>,
    spans: Option<par_telemetry::otlp::OtlpExporter>,
}

impl RuntimeBuilder {
    /// Remote sources, signatures and the cache (see `par-registry`).
    pub fn fetcher(mut self, fetcher: par_registry::Fetcher) -> Self {
        self.fetcher = Some(fetcher);
        self
    }

    /// Follow a registry index from startup on (needs a fetcher).
    pub fn registry(mut self, settings: Option<RegistrySettings>) -> Self {
        self.registry = settings;
        self
    }

    /// Where usage records go (metering off without one).
    pub fn usage_ledger(mut self, ledger: Option<Arc<par_telemetry::UsageLedger>>) -> Self {
        self.usage = ledger;
        self
    }

    /// Where call spans go (OTLP export off without one).
    pub fn span_exporter(mut self, exporter: Option<par_telemetry::otlp::OtlpExporter>) -> Self {
        self.spans = exporter;
        self
    }

    /// Creates the cache folders, writes the worker program out, starts the webhook
    /// sender, and returns the complete runtime.
    pub fn build(self) -> std::io::Result<Arc<Runtime>> {
        let config = self.config;
        let max_failed_reports = config.max_failed_reports;
        let swept = par_worker::socket_dir::sweep_stale(&std::env::temp_dir());
        if swept > 0 {
            tracing::info!(
                folders = swept,
                "removed socket folders a killed runtime left behind"
            );
        }
        fs_err::create_dir_all(&config.cache_dir)?;
        create_private_dir(&config.packages_dir())?;
        let worker_script = par_worker::script::materialize(&config.worker_dir())?;
        let envs = EnvManager::new(config.uv.clone(), config.envs_dir(), config.install_timeout);
        let events = crate::webhook::Webhooks::start(&config.webhooks);
        let metering = Metering::new(self.metrics.clone(), self.usage, self.spans);
        let log_budgets =
            crate::log_budgets::LogBudgets::new(config.log_rate, self.metrics.clone());
        Ok(Arc::new(Runtime {
            config,
            log_budgets,
            envs,
            worker_script,
            routing: Routing::new(self.metrics),
            reports: Reports::new(max_failed_reports),
            jobs: Jobs::default(),
            startup_sources: Mutex::new(Vec::new()),
            events,
            metering: Arc::new(metering),
            fetcher: self.fetcher,
            registry: self.registry,
            registry_state: Default::default(),
            ready: AtomicBool::new(false),
        }))
    }
}

impl Runtime {
    pub fn builder(config: RuntimeConfig, metrics: par_telemetry::Metrics) -> RuntimeBuilder {
        RuntimeBuilder {
            config,
            metrics,
            fetcher: None,
            registry: None,
            usage: None,
            spans: None,
        }
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    pub fn metrics(&self) -> &par_telemetry::Metrics {
        self.metering.metrics()
    }

    /// What every finished call is recorded with.
    pub fn metering(&self) -> Arc<Metering> {
        self.metering.clone()
    }

    pub(crate) fn mark_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// The active version of a package (or `name@version`), for its HTTP and UI surfaces.
    pub fn package(&self, name: &str) -> Option<Arc<Package>> {
        self.routing.package(name)
    }

    /// A public agent, by `id` or `id@version`; disabled agents answer `disabled`.
    pub fn resolve(&self, id: &str) -> Result<Target, InvokeError> {
        self.routing.resolve(id, Reach::Public)
    }

    /// Whether `id` (or `id@version`) names a mounted public agent.
    pub fn is_public(&self, id: &str) -> bool {
        self.routing.table().lookup(id).is_some_and(|r| r.public)
    }

    pub fn agents(&self) -> Vec<AgentInfo> {
        self.routing.public_agents()
    }

    /// The input schema a public agent declares (or inherits from its package).
    pub fn input_schema(&self, id: &str) -> Option<serde_json::Value> {
        let table = self.routing.table();
        let target = table.lookup(id).filter(|t| t.public)?;
        let schema = target.package.schemas.declared(target.sub_agent.as_deref());
        schema.cloned()
    }

    pub fn agent(&self, id: &str) -> Option<AgentInfo> {
        self.routing.public_agent(id)
    }

    /// False while the management API has the agent disabled.
    pub fn is_enabled(&self, id: &str) -> bool {
        !self.routing.is_disabled(id)
    }

    /// Disabled agents answer 503 `disabled` until enabled again. False for unknown ids.
    pub fn set_enabled(&self, id: &str, enabled: bool) -> bool {
        self.routing.set_enabled(id, enabled)
    }

    /// One report per source file, failures included, with live worker facts.
    pub fn reports(&self) -> Vec<PackageReport> {
        self.reports.snapshot(&self.routing.all_packages())
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
        let _settled = package.idle.settled().await;
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

    /// Stops every worker of every package, mounted or draining, and flushes events.
    pub async fn shutdown(&self) {
        let packages = self.routing.all_packages();
        let stops = packages.iter().map(|p| self.stop_package(p));
        futures_util::future::join_all(stops).await;
        if let Some(events) = &self.events {
            events.close(std::time::Duration::from_secs(5)).await;
        }
    }
}

/// Extracted packages hold `.env` files with secrets: only the runtime's user may look.
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs_err::create_dir_all(dir)?;
    fs_err::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}
