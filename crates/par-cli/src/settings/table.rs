//! Every `par serve` setting, defined once. An entry is the setting's help line, its field
//! (the TOML key; the flag is `--` and the key), its type, its environment variable,
//! its default (when it has a fixed one) and any extra clap options. From this list come
//! the flags (clap), the file's keys (serde), the defaults `resolve` starts from, and the
//! rows the documentation test finds in docs/configuration.md.
//!
//! Adding a setting: one entry here (its variable in `env_names.rs`), where `resolve`
//! reads it in `settings/`, and its row in docs/configuration.md, which the test demands.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::values::Workers;
use crate::cli::LogFormat;
use crate::env_names as env;

/// One setting as the documentation test sees it.
#[cfg(test)]
pub(super) struct Setting {
    /// The field name: the TOML key with `-` for `_`, and the flag after `--`.
    pub field: &'static str,
    pub env: &'static str,
    /// The help line(s).
    pub doc: &'static [&'static str],
    /// The default as text, read from [`ServeArgs::defaults`]; `None`: decided in code.
    pub default: fn(&ServeArgs) -> Option<String>,
}

#[cfg(test)]
impl Setting {
    /// `--max-body-bytes`.
    pub(super) fn flag(&self) -> String {
        format!("--{}", self.key())
    }

    /// `max-body-bytes`.
    pub(super) fn key(&self) -> String {
        self.field.replace('_', "-")
    }
}

macro_rules! serve_settings {
    (@default) => { None };
    (@default $default:expr) => { Some($default) };
    ($(
        $(#[doc = $doc:literal])*
        $field:ident: $ty:ty, env = $env:expr $(, default = $default:expr)? $(, clap($($arg:tt)*))?;
    )*) => {
        /// Serve settings as given: each optional, so the TOML file fills what flags and
        /// environment leave unset and the table's defaults fill the rest
        /// ([`ServeArgs::or`], [`ServeArgs::defaults`]); `settings` validates.
        #[derive(Debug, Clone, Default, clap::Args, serde::Deserialize)]
        #[serde(deny_unknown_fields, rename_all = "kebab-case")]
        pub(crate) struct ServeArgs {
            $(
                $(#[doc = $doc])*
                #[arg(long, env = $env $(, $($arg)*)?)]
                pub $field: Option<$ty>,
            )*
            /// Sources listed in the TOML file (`sources = [...]`).
            #[arg(skip)]
            #[serde(default)]
            pub sources: Vec<String>,
            /// TOML configuration file (flags and environment override it).
            #[arg(long, env = env::CONFIG)]
            #[serde(skip)]
            pub config: Option<PathBuf>,
            /// Per-package settings, TOML file only: `[packages.<name>]`.
            #[arg(skip)]
            #[serde(default)]
            pub packages: BTreeMap<String, crate::network_settings::PackageTable>,
            /// Package sources: .apkg files or directories of them (also PACKAGES_URLS,
            /// comma-separated).
            #[arg(value_name = "SOURCE")]
            #[serde(skip)]
            pub positional: Vec<String>,
        }

        impl ServeArgs {
            /// The table's defaults; a setting without one stays unset.
            pub(crate) fn defaults() -> ServeArgs {
                ServeArgs {
                    $($field: serve_settings!(@default $($default)?),)*
                    ..ServeArgs::default()
                }
            }

            /// Each setting from `self` where it is set, else from `lower`. Sources and
            /// package tables (which only one side ever has) are kept from both.
            pub(crate) fn or(self, lower: ServeArgs) -> ServeArgs {
                ServeArgs {
                    $($field: self.$field.or(lower.$field),)*
                    sources: [self.sources, lower.sources].concat(),
                    config: self.config.or(lower.config),
                    packages: if self.packages.is_empty() { lower.packages } else { self.packages },
                    positional: [self.positional, lower.positional].concat(),
                }
            }
        }

        /// Every setting of the table, in order (read by the documentation test).
        #[cfg(test)]
        pub(crate) const SETTINGS: &[Setting] = &[$(
            Setting {
                field: stringify!($field),
                env: $env,
                doc: &[$($doc),*],
                default: |d: &ServeArgs| d.$field.as_ref().map(ShowDefault::show),
            },
        )*];
    };
}

serve_settings! {
    // Serving
    /// Address to listen on.
    listen: SocketAddr, env = env::LISTEN, default = SocketAddr::from(([127, 0, 0, 1], 8080));
    /// Cache directory for packages, environments and the worker program.
    cache_dir: PathBuf, env = env::CACHE_DIR;
    /// Log format; default json when stdout is not a terminal.
    log_format: LogFormat, env = env::LOG_FORMAT, clap(value_enum);
    /// Authentication: `oidc`, `api-key`, `oidc,api-key` or `off` (off must be explicit on
    /// non-loopback addresses).
    auth: String, env = env::AUTH;
    /// The uv binary used to build Python environments.
    uv: PathBuf, env = env::UV, default = PathBuf::from("uv");
    /// PEM certificate chain: serve HTTPS (with --tls-key); reloaded when the file changes.
    tls_cert: PathBuf, env = env::TLS_CERT;
    /// PEM private key for --tls-cert.
    tls_key: PathBuf, env = env::TLS_KEY;

    // Limits
    /// Largest invoke body in bytes.
    max_body_bytes: usize, env = env::MAX_BODY,
        default = par_http::HttpLimits::default().max_body_bytes;
    /// Largest frame between the runtime and a worker (a call's payload, a result, one
    /// streamed item), in bytes.
    max_frame_bytes: usize, env = env::MAX_FRAME, default = par_core::defaults::MAX_FRAME_BYTES;
    /// Seconds a call may run before it fails with 504 timeout.
    call_timeout: f64, env = env::CALL_TIMEOUT,
        default = par_core::defaults::CALL_TIMEOUT.as_secs_f64();
    /// Seconds a WebSocket relayed to a package app may carry no data before it is closed.
    websocket_idle_timeout: f64, env = env::WEBSOCKET_IDLE_TIMEOUT,
        default = par_core::defaults::WEBSOCKET_IDLE_TIMEOUT.as_secs_f64();
    /// How deep agent-to-agent calls (`par_runtime.call`) may nest.
    max_call_depth: usize, env = env::MAX_CALL_DEPTH, default = par_core::defaults::MAX_CALL_DEPTH;
    /// Worker processes per package: a number, or `auto` (one, and more while every one is
    /// busy, up to --workers-max; extra ones stop after --worker-idle-shrink idle).
    workers: Workers, env = env::WORKERS,
        default = Workers::Fixed(par_core::defaults::WORKERS_PER_PACKAGE);
    /// Most worker processes per package with `--workers auto` (default: the cores this
    /// process may use).
    workers_max: usize, env = env::WORKERS_MAX;
    /// Seconds an extra worker of `--workers auto` may go without a call before it stops.
    worker_idle_shrink: f64, env = env::WORKER_IDLE_SHRINK,
        default = par_core::defaults::WORKER_IDLE_SHRINK.as_secs_f64();
    /// Threads per worker for sync handlers.
    worker_threads: usize, env = env::WORKER_THREADS, default = par_core::defaults::WORKER_THREADS;
    /// Seconds a worker may take to import its entrypoint.
    worker_startup_timeout: f64, env = env::STARTUP_TIMEOUT,
        default = par_core::defaults::WORKER_STARTUP_TIMEOUT.as_secs_f64();
    /// How a package's workers start: fork (from the package's zygote), fresh, or auto.
    worker_start: String, env = env::WORKER_START, default = "auto".to_string();
    /// Seconds between health checks (PING) of each worker.
    worker_health_interval: f64, env = env::HEALTH_INTERVAL,
        default = par_core::defaults::WORKER_HEALTH_INTERVAL.as_secs_f64();
    /// Seconds a worker may go without answering before it is killed and replaced.
    worker_health_timeout: f64, env = env::HEALTH_TIMEOUT,
        default = par_core::defaults::WORKER_HEALTH_TIMEOUT.as_secs_f64();
    /// Seconds a sync call the runtime abandoned (timed out, cancelled) may keep its
    /// worker thread before the worker is replaced (0: only when every thread is stuck).
    abandoned_call_grace: f64, env = env::ABANDONED_CALL_GRACE,
        default = par_core::defaults::ABANDONED_CALL_GRACE.as_secs_f64();
    /// Seconds without calls after which a package's processes stop (0: never); the
    /// next call starts them again.
    idle_timeout: f64, env = env::IDLE_TIMEOUT, default = 0.0;
    /// Seconds an environment install may take.
    install_timeout: f64, env = env::INSTALL_TIMEOUT,
        default = par_core::defaults::INSTALL_TIMEOUT.as_secs_f64();
    /// Seconds between SIGTERM and closing the listener, while readiness already answers
    /// 503 `draining` (load balancers stop sending) and everything else still serves.
    drain_grace: f64, env = env::DRAIN_GRACE, default = 5.0;
    /// Seconds in-flight requests get to finish at shutdown.
    shutdown_grace: f64, env = env::SHUTDOWN_GRACE, default = 30.0;
    /// Packages loaded at the same time.
    load_concurrency: usize, env = env::LOAD_CONCURRENCY,
        default = par_core::defaults::LOAD_CONCURRENCY;
    /// Most entries an archive may have.
    max_archive_entries: usize, env = env::MAX_ENTRIES,
        default = par_archive::Limits::default().max_entries;
    /// Largest inflated size of one archive entry, in bytes.
    max_entry_bytes: u64, env = env::MAX_ENTRY_BYTES,
        default = par_archive::Limits::default().max_entry_bytes;
    /// Largest total inflated size of an archive, in bytes.
    max_unpacked_bytes: u64, env = env::MAX_UNPACKED,
        default = par_archive::Limits::default().max_total_bytes;
    /// Largest inflated/compressed ratio of an archive entry.
    max_compression_ratio: u64, env = env::MAX_RATIO,
        default = par_archive::Limits::default().max_ratio;

    // Worker environment
    /// Host environment variables passed to workers (comma-separated names).
    worker_env_allow: Vec<String>, env = env::WORKER_ENV_ALLOW,
        default = par_core::defaults::worker_env_allow(), clap(value_delimiter = ',');

    // Sources, cache and signatures
    /// Registry index URL (https://, http:// on loopback, s3:// or a path), polled.
    registry_index: String, env = env::REGISTRY_INDEX;
    /// Seconds between registry index polls.
    poll_interval: f64, env = env::POLL_SECS,
        default = par_core::defaults::REGISTRY_POLL_INTERVAL.as_secs_f64();
    /// OpenPGP signature policy: off, if-present or required.
    signature_policy: String, env = env::SIGNATURE_POLICY;
    /// Trusted OpenPGP public key files (comma-separated).
    trusted_keys: Vec<PathBuf>, env = env::TRUSTED_KEYS, clap(value_delimiter = ',');
    /// Extra PEM CA certificates for https:// sources and the S3 endpoint.
    ca_bundle: PathBuf, env = env::CA_BUNDLE;
    /// Allow http:// sources on non-loopback hosts.
    allow_insecure_http: bool, env = env::ALLOW_INSECURE_HTTP, default = false;
    /// Directories local sources named through the management API must be under
    /// (symlinks resolved; comma-separated); default: the startup sources' directories.
    source_roots: Vec<PathBuf>, env = env::SOURCE_ROOTS, clap(value_delimiter = ',');
    /// Let management-API sources fetch from loopback, private and link-local addresses.
    allow_private_sources: bool, env = env::ALLOW_PRIVATE_SOURCES, default = false;
    /// Largest package download in bytes.
    max_download_bytes: u64, env = env::MAX_DOWNLOAD,
        default = par_registry::FetchConfig::DEFAULT_MAX_DOWNLOAD_BYTES;
    /// Size budget of the package cache in bytes (least recently used evicted).
    cache_budget_bytes: u64, env = env::CACHE_BUDGET;

    // Auth
    /// OIDC issuer URL; discovery at {issuer}/.well-known/openid-configuration.
    oidc_issuer: String, env = env::OIDC_ISSUER;
    /// Accepted token audiences (comma-separated).
    oidc_audience: Vec<String>, env = env::OIDC_AUDIENCE, clap(value_delimiter = ',');
    /// Allowed OAuth client ids (comma-separated; default any).
    oidc_client_ids: Vec<String>, env = env::OIDC_CLIENT_IDS, clap(value_delimiter = ',');
    /// Scopes every token must carry (comma-separated).
    oidc_required_scopes: Vec<String>, env = env::OIDC_SCOPES, clap(value_delimiter = ',');
    /// Claim holding the caller's roles (dotted path allowed).
    roles_claim: String, env = env::ROLES_CLAIM, default = "roles".to_string();
    /// Claim naming the caller's tenant, for usage records.
    tenant_claim: String, env = env::TENANT_CLAIM;
    /// RBAC policy file (TOML [[grant]] role/invoke/admin).
    policy: PathBuf, env = env::POLICY;
    /// Static API keys file (TOML [[key]] name/sha256/roles).
    api_keys: PathBuf, env = env::API_KEYS;
    /// Host names requests may address besides IP literals and localhost (comma-separated;
    /// `*.example.com` matches subdomains). Checked whenever auth is off or this is set.
    allowed_hosts: Vec<String>, env = env::ALLOWED_HOSTS, clap(value_delimiter = ',');
    /// Packages whose UI files anyone may fetch without credentials (comma-separated).
    public_ui: Vec<String>, env = env::PUBLIC_UI, clap(value_delimiter = ',');

    // Lifecycle, limits and events
    /// Log lines per second one package's processes may write together (0: unlimited);
    /// lines over it are dropped and counted.
    log_lines_per_sec: u32, env = env::LOG_LINES_PER_SEC,
        default = par_core::defaults::LOG_LINES_PER_SEC;
    /// Log lines a package may write at once above its rate before lines are dropped.
    log_burst_lines: u32, env = env::LOG_BURST_LINES,
        default = par_core::defaults::LOG_BURST_LINES;
    /// Calls one package runs at once.
    max_concurrent_calls: usize, env = env::MAX_CONCURRENT,
        default = par_core::defaults::MAX_CONCURRENT_CALLS;
    /// Calls that may wait for a slot; beyond that 503 overloaded.
    max_queued_calls: usize, env = env::MAX_QUEUED, default = par_core::defaults::MAX_QUEUED_CALLS;
    /// Resident memory a worker may use before it is killed (bytes).
    worker_memory_limit: u64, env = env::WORKER_MEMORY;
    /// Crashes within a minute after which a package's workers are not restarted.
    crash_loop_threshold: usize, env = env::CRASH_LOOP,
        default = par_core::defaults::CRASH_LOOP_THRESHOLD;
    /// Seconds a replaced or unloaded version gets to finish its calls.
    drain_timeout: f64, env = env::DRAIN_TIMEOUT,
        default = par_core::defaults::DRAIN_TIMEOUT.as_secs_f64();
    /// Largest package accepted by POST /runtime/packages (bytes).
    max_upload_bytes: u64, env = env::MAX_UPLOAD,
        default = par_http::HttpLimits::default().max_upload_bytes;
    /// HTTP connections open at once; a new one beyond it gets 503 and is closed.
    max_connections: usize, env = env::MAX_CONNECTIONS,
        default = par_http::ConnectionLimits::default().max_connections;
    /// Seconds a client has to send a complete request head (a new connection: its first).
    header_read_timeout: f64, env = env::HEADER_READ_TIMEOUT,
        default = par_http::ConnectionLimits::default().header_read_timeout.as_secs_f64();
    /// Seconds an idle keep-alive connection is kept open.
    keep_alive_timeout: f64, env = env::KEEP_ALIVE_TIMEOUT,
        default = par_http::ConnectionLimits::default().keep_alive_timeout.as_secs_f64();
    /// Seconds a request body may pause between two reads before the call fails with 408.
    body_read_timeout: f64, env = env::BODY_READ_TIMEOUT,
        default = par_http::ConnectionLimits::default().body_read_timeout.as_secs_f64();
    /// Reports of failed loads kept (`GET /runtime/packages`); the oldest go first.
    max_failed_reports: usize, env = env::MAX_FAILED_REPORTS,
        default = par_core::defaults::MAX_FAILED_REPORTS;
    /// URLs receiving lifecycle events (comma-separated).
    webhook_urls: Vec<String>, env = env::WEBHOOK_URLS, clap(value_delimiter = ',');
    /// Key for the events' HMAC-SHA256 signature header (x-par-signature).
    webhook_secret: String, env = env::WEBHOOK_SECRET, clap(hide_env_values = true);

    // Observability
    /// Usage ledger (SQLite) path, or `off`. Default: the user's data dir + /par/usage.sqlite3.
    usage_db: String, env = env::USAGE_DB;
    /// Durable runs store (SQLite) path. Default: beside the usage ledger, `runs.sqlite3`.
    runs_db: PathBuf, env = env::RUNS_DB;
    /// Hours a finished run stays readable.
    run_retention_hours: f64, env = env::RUN_RETENTION, default = 168.0;
    /// Seconds a durable run may take at most (a run may ask for less).
    run_timeout: f64, env = env::RUN_TIMEOUT, default = 3600.0;
    /// Days usage records are kept in the ledger (0: forever).
    usage_retention_days: u64, env = env::USAGE_RETENTION_DAYS, default = 90;
    /// A warning is logged hourly while the ledger file is larger than this (MiB; 0: off).
    usage_size_warning_mb: u64, env = env::USAGE_SIZE_WARNING_MB, default = 1024;
    /// PostgreSQL URL the usage ledger is copied to (fleet billing); off by default.
    usage_postgres_url: String, env = env::USAGE_POSTGRES_URL, clap(hide_env_values = true);
    /// Seconds between shipping passes to PostgreSQL.
    usage_ship_interval: f64, env = env::USAGE_SHIP_SECS,
        default = par_telemetry::usage::ShipConfig::new("").interval.as_secs_f64();
    /// This instance's name in PostgreSQL (default: the ledger file's UUID).
    instance_id: String, env = env::INSTANCE_ID;
    /// Extra regular expressions whose matches are masked in logs (comma-separated).
    redact_patterns: Vec<String>, env = env::REDACT_PATTERNS, clap(value_delimiter = ',');

    // Network and egress, sandbox
    /// Default network policy of every package: egress (loopback plus the egress proxy),
    /// none (loopback only) or host.
    network: String, env = env::NETWORK;
    /// host:port patterns the egress proxy lets through although they are loopback,
    /// private or link-local (comma-separated; `*` in the host, e.g. `*.openai.com:443`).
    egress_allow: Vec<String>, env = env::EGRESS_ALLOW, clap(value_delimiter = ',');
    /// Process jail of every package: strict (default) or off.
    sandbox: String, env = env::SANDBOX;
    /// Processes and threads one jailed process tree may have.
    max_pids: u64, env = env::MAX_PIDS, default = par_sandbox::Limits::default().pids;
    /// Size of a jailed process's private work dir (HOME, TMPDIR, cwd), in MiB.
    max_disk_mb: u64, env = env::MAX_DISK_MB, default = par_sandbox::Limits::default().disk_mb;
}

/// A default as the documentation writes it.
#[cfg(test)]
pub(super) trait ShowDefault {
    fn show(&self) -> String;
}

macro_rules! show_by_display {
    ($($ty:ty),*) => {$(
        #[cfg(test)]
        impl ShowDefault for $ty {
            fn show(&self) -> String {
                self.to_string()
            }
        }
    )*};
}

show_by_display!(usize, u32, u64, f64, bool, String, SocketAddr, Workers);

#[cfg(test)]
impl ShowDefault for PathBuf {
    fn show(&self) -> String {
        self.display().to_string()
    }
}

#[cfg(test)]
impl<T: ShowDefault> ShowDefault for Vec<T> {
    fn show(&self) -> String {
        self.iter().map(T::show).collect::<Vec<_>>().join(",")
    }
}

#[cfg(test)]
impl ShowDefault for LogFormat {
    fn show(&self) -> String {
        format!("{self:?}").to_lowercase()
    }
}
