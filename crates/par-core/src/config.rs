use std::path::PathBuf;
use std::time::Duration;

use crate::defaults;

/// Everything the core needs, already validated by the binary.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Root of packages, environments and the worker program.
    pub cache_dir: PathBuf,
    /// The `uv` binary.
    pub uv: PathBuf,
    pub archive_limits: par_archive::Limits,
    pub manifest_limits: par_manifest::ParseLimits,
    /// Worker count, restart backoff, crash-loop threshold, memory limit.
    pub pool: crate::pool::PoolSettings,
    /// Calls one package runs at once; more wait in a queue of `max_queued_calls`.
    pub max_concurrent_calls: usize,
    pub max_queued_calls: usize,
    /// How long an unloaded or replaced version may take to finish its calls.
    pub drain_timeout: Duration,
    /// Threads each worker uses for sync handlers.
    pub worker_threads: usize,
    pub worker_startup_timeout: Duration,
    /// Stop a package's processes after this long without calls (`None`: never).
    pub idle_timeout: Option<Duration>,
    pub worker_stop_grace: Duration,
    pub call_timeout: Duration,
    /// A WebSocket relayed to a package app is closed after this long without traffic.
    pub websocket_idle_timeout: Duration,
    /// How deep agent-to-agent calls may nest (a call from outside is depth 0); deeper
    /// calls fail with `call_depth_exceeded`, which also stops call cycles.
    pub max_call_depth: usize,
    /// Reports of failed loads kept; the oldest are forgotten first.
    pub max_failed_reports: usize,
    pub install_timeout: Duration,
    /// Largest frame (request or result) between runtime and worker.
    pub max_frame_bytes: usize,
    /// Host environment variables workers may see; everything else is withheld.
    pub worker_env_allow: Vec<String>,
    /// The host environment the allowlist draws from (passed in, so tests can fill it).
    pub host_env: Vec<(String, String)>,
    /// Packages loaded at once.
    pub load_concurrency: usize,
    pub webhooks: crate::webhook::WebhookConfig,
    /// Masks secrets in log lines; packages' `.env` and `environment` values join it.
    pub redactor: crate::redact::Redactor,
    /// `--sandbox strict`: every package process in a jail; `None` is `off`.
    pub sandbox: Option<crate::sandbox::SandboxConfig>,
    /// Log lines a package's processes may write together (`--log-lines-per-sec`).
    pub log_rate: par_worker::log_budget::LogRate,
}

impl RuntimeConfig {
    /// Defaults suited to tests and small installations; the binary overrides from settings.
    pub fn new(cache_dir: PathBuf, uv: PathBuf) -> Self {
        RuntimeConfig {
            cache_dir,
            uv,
            archive_limits: par_archive::Limits::default(),
            manifest_limits: par_manifest::ParseLimits::default(),
            pool: crate::pool::PoolSettings::default(),
            max_concurrent_calls: defaults::MAX_CONCURRENT_CALLS,
            max_queued_calls: defaults::MAX_QUEUED_CALLS,
            drain_timeout: defaults::DRAIN_TIMEOUT,
            worker_threads: defaults::WORKER_THREADS,
            worker_startup_timeout: defaults::WORKER_STARTUP_TIMEOUT,
            idle_timeout: None,
            worker_stop_grace: Duration::from_secs(5),
            call_timeout: defaults::CALL_TIMEOUT,
            websocket_idle_timeout: defaults::WEBSOCKET_IDLE_TIMEOUT,
            max_call_depth: defaults::MAX_CALL_DEPTH,
            max_failed_reports: defaults::MAX_FAILED_REPORTS,
            install_timeout: defaults::INSTALL_TIMEOUT,
            max_frame_bytes: defaults::MAX_FRAME_BYTES,
            worker_env_allow: defaults::worker_env_allow(),
            host_env: std::env::vars().collect(),
            load_concurrency: defaults::LOAD_CONCURRENCY,
            webhooks: crate::webhook::WebhookConfig::default(),
            redactor: crate::redact::Redactor::new(&[]).expect("built-in patterns compile"),
            sandbox: None,
            log_rate: par_worker::log_budget::LogRate {
                lines_per_sec: defaults::LOG_LINES_PER_SEC,
                burst: defaults::LOG_BURST_LINES,
            },
        }
    }

    pub fn packages_dir(&self) -> PathBuf {
        self.cache_dir.join("packages")
    }

    pub fn envs_dir(&self) -> PathBuf {
        self.cache_dir.join("envs")
    }

    pub fn surface_dir(&self) -> PathBuf {
        self.cache_dir.join("surface")
    }

    pub fn worker_dir(&self) -> PathBuf {
        self.cache_dir.join("worker")
    }

    /// Where a package's multipart uploads are written, one folder per call; its jail
    /// sees this folder (read-only) and nothing of other packages' uploads.
    pub fn uploads_dir(&self, package: &str) -> PathBuf {
        self.cache_dir.join("calls").join(package)
    }

    /// The empty folder jails assemble their root on (each in its own mount namespace).
    pub fn jail_dir(&self) -> PathBuf {
        self.cache_dir.join("jail")
    }
}
