use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use par_core::Runtime;

#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Largest invoke body (the contract's default is 10 MiB).
    pub max_body_bytes: usize,
    /// Largest package uploaded through `POST /runtime/packages`.
    pub max_upload_bytes: u64,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_body_bytes: 10 * 1024 * 1024,
            max_upload_bytes: 512 * 1024 * 1024,
        }
    }
}

/// `--run-timeout`'s default: one hour.
pub(crate) const DEFAULT_RUN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3600);

/// Changes the log filter at run time (`PUT /runtime/log-level`); set by the binary.
pub type LogControl = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// Everything the HTTP layer is configured with, given once to [`AppState::new`].
#[derive(Clone, Default)]
pub struct HttpConfig {
    pub limits: HttpLimits,
    /// Which hosts and origins may reach the runtime (see `guard.rs`).
    pub site: crate::guard::SiteRules,
    /// Authentication and policy; `None` when auth is off.
    pub access: crate::auth::Access,
    /// The usage ledger `GET /runtime/usage` reads, when metering is on.
    pub usage: Option<Arc<par_telemetry::UsageLedger>>,
    /// Changes the log filter (`PUT /runtime/log-level`).
    pub log_control: Option<LogControl>,
    /// Durable runs (`/agents/{id}/runs`, `/runs`, A2A tasks); those routes answer 404
    /// without a store.
    pub runs: Option<par_runs::Runs>,
    /// The longest a run may take (`--run-timeout`); a run may ask for less.
    pub run_timeout: std::time::Duration,
    /// Which sources `POST /runtime/packages` callers may name (default: no local path,
    /// no private host).
    pub sources: par_core::SourcePolicy,
}

/// Shared by every handler: one `Arc`, so the clones axum makes for every request and
/// extractor cost one increment (the fields' own clones showed up in the echo profile).
#[derive(Clone)]
pub struct AppState(Arc<AppShared>);

/// What [`AppState`] shares; read through it (`Deref`).
pub struct AppShared {
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) limits: HttpLimits,
    pub(crate) usage: Option<Arc<par_telemetry::UsageLedger>>,
    pub(crate) log_control: Option<LogControl>,
    pub(crate) access: crate::auth::Access,
    pub(crate) site: crate::guard::SiteRules,
    pub(crate) runs: Option<par_runs::Runs>,
    pub(crate) run_timeout: std::time::Duration,
    pub(crate) sources: Arc<par_core::SourcePolicy>,
    draining: Arc<AtomicBool>,
    /// Readiness fails (the first step of a two-step drain) while calls still serve.
    unready: Arc<AtomicBool>,
    shutdown: Arc<tokio::sync::Notify>,
}

impl std::ops::Deref for AppState {
    type Target = AppShared;

    fn deref(&self) -> &AppShared {
        &self.0
    }
}

impl AppState {
    pub fn new(runtime: Arc<Runtime>, config: HttpConfig) -> Self {
        AppState(Arc::new(AppShared {
            runtime,
            limits: config.limits,
            usage: config.usage,
            log_control: config.log_control,
            access: config.access,
            site: config.site,
            runs: config.runs,
            sources: Arc::new(config.sources),
            run_timeout: if config.run_timeout.is_zero() {
                DEFAULT_RUN_TIMEOUT
            } else {
                config.run_timeout
            },
            draining: Arc::new(AtomicBool::new(false)),
            unready: Arc::new(AtomicBool::new(false)),
            shutdown: Arc::new(tokio::sync::Notify::new()),
        }))
    }

    /// From now on readiness fails and new calls are refused with `draining`.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// The first step of shutdown: `/runtime/ready` answers 503 `draining` so load
    /// balancers stop sending, while every other route still serves.
    pub fn stop_being_ready(&self) {
        self.unready.store(true, Ordering::Release);
    }

    /// Whether readiness must fail: stopping, or already draining.
    pub fn is_unready(&self) -> bool {
        self.unready.load(Ordering::Acquire) || self.is_draining()
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Asks the process to shut down as if it got SIGTERM (`POST /runtime/shutdown`).
    pub fn request_shutdown(&self) {
        self.shutdown.notify_one();
    }

    /// Resolves once a shutdown was requested through the API.
    pub async fn shutdown_requested(&self) {
        self.shutdown.notified().await;
    }
}
