//! Command-line definitions. Every setting is a flag and an environment variable (the
//! flag wins); `--config` adds a TOML file below both.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;

use crate::env_names as env;

#[derive(Debug, Parser)]
#[command(
    name = "par",
    version,
    about = "PAR: serve Pixell agent packages (APKG) over HTTP"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the runtime, load every SOURCE, serve HTTP.
    Serve(Box<ServeArgs>),
    /// Print a package's manifest, agents, surfaces, dependencies, size and sha256.
    Inspect(InspectArgs),
    /// Check a package: exit 0 only when every requested check passes.
    Verify(VerifyArgs),
    /// Usage records: `par usage export --format csv|jsonl`.
    #[command(subcommand)]
    Usage(UsageCommand),
}

#[derive(Debug, Subcommand)]
pub enum UsageCommand {
    /// Write usage records to stdout.
    Export(UsageExportArgs),
}

#[derive(Debug, Args)]
pub struct UsageExportArgs {
    /// `csv` or `jsonl`.
    #[arg(long, default_value = "jsonl")]
    pub format: String,
    /// The usage ledger (default as for `par serve`).
    #[arg(long, env = env::USAGE_DB)]
    pub usage_db: Option<String>,
    /// Only this agent.
    #[arg(long)]
    pub agent: Option<String>,
    /// RFC 3339 start (inclusive).
    #[arg(long)]
    pub from: Option<String>,
    /// RFC 3339 end (exclusive).
    #[arg(long)]
    pub to: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

/// Serve settings. Each is optional here so the TOML file can fill what flags and
/// environment leave unset; `settings.rs` applies defaults and validates.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServeArgs {
    /// Calls one package runs at once.
    #[arg(long, env = env::MAX_CONCURRENT)]
    pub max_concurrent_calls: Option<usize>,
    /// Calls that may wait for a slot; beyond that 503 overloaded.
    #[arg(long, env = env::MAX_QUEUED)]
    pub max_queued_calls: Option<usize>,
    /// Resident memory a worker may use before it is killed (bytes).
    #[arg(long, env = env::WORKER_MEMORY)]
    pub worker_memory_limit: Option<u64>,
    /// Process jail of every package: strict (default) or off.
    #[arg(long, env = env::SANDBOX)]
    pub sandbox: Option<String>,
    /// Processes and threads one jailed process tree may have.
    #[arg(long, env = env::MAX_PIDS)]
    pub max_pids: Option<u64>,
    /// Size of a jailed process's private work dir (HOME, TMPDIR, cwd), in MiB.
    #[arg(long, env = env::MAX_DISK_MB)]
    pub max_disk_mb: Option<u64>,
    /// Seconds a replaced or unloaded version gets to finish its calls.
    #[arg(long, env = env::DRAIN_TIMEOUT)]
    pub drain_timeout: Option<f64>,
    /// Crashes within a minute after which a package's workers are not restarted.
    #[arg(long, env = env::CRASH_LOOP)]
    pub crash_loop_threshold: Option<usize>,
    /// Largest package accepted by POST /runtime/packages (bytes).
    #[arg(long, env = env::MAX_UPLOAD)]
    pub max_upload_bytes: Option<u64>,
    /// URLs receiving lifecycle events (comma-separated).
    #[arg(long, env = env::WEBHOOK_URLS, value_delimiter = ',')]
    pub webhook_urls: Option<Vec<String>>,
    /// Key for the events' HMAC-SHA256 signature header (x-par-signature).
    #[arg(long, env = env::WEBHOOK_SECRET, hide_env_values = true)]
    pub webhook_secret: Option<String>,
    /// PEM certificate chain: serve HTTPS (with --tls-key); reloaded when the file changes.
    #[arg(long, env = env::TLS_CERT)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = env::TLS_KEY)]
    pub tls_key: Option<PathBuf>,
    /// Registry index URL (https://, http:// on loopback, s3:// or a path), polled.
    #[arg(long, env = env::REGISTRY_INDEX)]
    pub registry_index: Option<String>,
    /// Seconds between registry index polls.
    #[arg(long, env = env::POLL_SECS)]
    pub poll_interval: Option<f64>,
    /// OpenPGP signature policy: off, if-present or required.
    #[arg(long, env = env::SIGNATURE_POLICY)]
    pub signature_policy: Option<String>,
    /// Trusted OpenPGP public key files (comma-separated).
    #[arg(long, env = env::TRUSTED_KEYS, value_delimiter = ',')]
    pub trusted_keys: Option<Vec<PathBuf>>,
    /// Extra PEM CA certificates for https:// sources and the S3 endpoint.
    #[arg(long, env = env::CA_BUNDLE)]
    pub ca_bundle: Option<PathBuf>,
    /// Allow http:// sources on non-loopback hosts.
    #[arg(long, env = env::ALLOW_INSECURE_HTTP)]
    pub allow_insecure_http: Option<bool>,
    /// Largest package download in bytes.
    #[arg(long, env = env::MAX_DOWNLOAD)]
    pub max_download_bytes: Option<u64>,
    /// Size budget of the package cache in bytes (least recently used evicted).
    #[arg(long, env = env::CACHE_BUDGET)]
    pub cache_budget_bytes: Option<u64>,
    /// Extra regular expressions whose matches are masked in logs (comma-separated).
    #[arg(long, env = env::REDACT_PATTERNS, value_delimiter = ',')]
    pub redact_patterns: Option<Vec<String>>,
    /// Usage ledger (SQLite) path, or `off`. Default: the user's data dir + /par/usage.sqlite3.
    #[arg(long, env = env::USAGE_DB)]
    pub usage_db: Option<String>,
    /// PostgreSQL URL the usage ledger is copied to (fleet billing); off by default.
    #[arg(long, env = env::USAGE_POSTGRES_URL, hide_env_values = true)]
    pub usage_postgres_url: Option<String>,
    /// Seconds between shipping passes to PostgreSQL.
    #[arg(long, env = env::USAGE_SHIP_SECS)]
    pub usage_ship_interval: Option<f64>,
    /// This instance's name in PostgreSQL (default: the ledger file's UUID).
    #[arg(long, env = env::INSTANCE_ID)]
    pub instance_id: Option<String>,
    /// Sources listed in the TOML file (`sources = [...]`).
    #[arg(skip)]
    #[serde(default)]
    pub sources: Vec<String>,
    /// TOML configuration file (flags and environment override it).
    #[arg(long, env = env::CONFIG)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = env::LISTEN)]
    pub listen: Option<SocketAddr>,
    /// Cache directory for packages, environments and the worker program.
    #[arg(long, env = env::CACHE_DIR)]
    pub cache_dir: Option<PathBuf>,
    /// Log format; default json when stdout is not a terminal.
    #[arg(long, env = env::LOG_FORMAT, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Authentication: `oidc`, `api-key`, `oidc,api-key` or `off` (off must be explicit on
    /// non-loopback addresses).
    #[arg(long, env = env::AUTH)]
    pub auth: Option<String>,
    /// OIDC issuer URL; discovery at {issuer}/.well-known/openid-configuration.
    #[arg(long, env = env::OIDC_ISSUER)]
    pub oidc_issuer: Option<String>,
    /// Accepted token audiences (comma-separated).
    #[arg(long, env = env::OIDC_AUDIENCE, value_delimiter = ',')]
    pub oidc_audience: Option<Vec<String>>,
    /// Allowed OAuth client ids (comma-separated; default any).
    #[arg(long, env = env::OIDC_CLIENT_IDS, value_delimiter = ',')]
    pub oidc_client_ids: Option<Vec<String>>,
    /// Scopes every token must carry (comma-separated).
    #[arg(long, env = env::OIDC_SCOPES, value_delimiter = ',')]
    pub oidc_required_scopes: Option<Vec<String>>,
    /// Claim holding the caller's roles (dotted path allowed).
    #[arg(long, env = env::ROLES_CLAIM)]
    pub roles_claim: Option<String>,
    /// Claim naming the caller's tenant, for usage records.
    #[arg(long, env = env::TENANT_CLAIM)]
    pub tenant_claim: Option<String>,
    /// RBAC policy file (TOML [[grant]] role/invoke/admin).
    #[arg(long, env = env::POLICY)]
    pub policy: Option<PathBuf>,
    /// Static API keys file (TOML [[key]] name/sha256/roles).
    #[arg(long, env = env::API_KEYS)]
    pub api_keys: Option<PathBuf>,
    /// Host names requests may address besides IP literals and localhost (comma-separated;
    /// `*.example.com` matches subdomains). Checked whenever auth is off or this is set.
    #[arg(long, env = env::ALLOWED_HOSTS, value_delimiter = ',')]
    pub allowed_hosts: Option<Vec<String>>,
    /// Packages whose UI files anyone may fetch without credentials (comma-separated).
    #[arg(long, env = env::PUBLIC_UI, value_delimiter = ',')]
    pub public_ui: Option<Vec<String>>,
    /// The uv binary used to build Python environments.
    #[arg(long, env = env::UV)]
    pub uv: Option<PathBuf>,
    /// Worker processes per package.
    #[arg(long, env = env::WORKERS)]
    pub workers: Option<usize>,
    /// Threads per worker for sync handlers.
    #[arg(long, env = env::WORKER_THREADS)]
    pub worker_threads: Option<usize>,
    /// Host environment variables passed to workers (comma-separated names).
    #[arg(long, env = env::WORKER_ENV_ALLOW, value_delimiter = ',')]
    pub worker_env_allow: Option<Vec<String>>,
    /// Seconds a call may run before it fails with 504 timeout.
    #[arg(long, env = env::CALL_TIMEOUT)]
    pub call_timeout: Option<f64>,
    /// How deep agent-to-agent calls (`par_runtime.call`) may nest.
    #[arg(long, env = env::MAX_CALL_DEPTH)]
    pub max_call_depth: Option<usize>,
    /// Seconds a worker may take to import its entrypoint.
    #[arg(long, env = env::STARTUP_TIMEOUT)]
    pub worker_startup_timeout: Option<f64>,
    /// Seconds an environment install may take.
    #[arg(long, env = env::INSTALL_TIMEOUT)]
    pub install_timeout: Option<f64>,
    /// Seconds in-flight requests get to finish at shutdown.
    #[arg(long, env = env::SHUTDOWN_GRACE)]
    pub shutdown_grace: Option<f64>,
    /// Seconds between SIGTERM and closing the listener, while readiness already answers
    /// 503 `draining` (load balancers stop sending) and everything else still serves.
    #[arg(long, env = env::DRAIN_GRACE)]
    pub drain_grace: Option<f64>,
    /// Largest invoke body in bytes.
    #[arg(long, env = env::MAX_BODY)]
    pub max_body_bytes: Option<usize>,
    /// Largest frame between the runtime and a worker (a call's payload, a result, one
    /// streamed item), in bytes.
    #[arg(long, env = env::MAX_FRAME)]
    pub max_frame_bytes: Option<usize>,
    /// Most entries an archive may have.
    #[arg(long, env = env::MAX_ENTRIES)]
    pub max_archive_entries: Option<usize>,
    /// Largest inflated size of one archive entry, in bytes.
    #[arg(long, env = env::MAX_ENTRY_BYTES)]
    pub max_entry_bytes: Option<u64>,
    /// Largest total inflated size of an archive, in bytes.
    #[arg(long, env = env::MAX_UNPACKED)]
    pub max_unpacked_bytes: Option<u64>,
    /// Largest inflated/compressed ratio of an archive entry.
    #[arg(long, env = env::MAX_RATIO)]
    pub max_compression_ratio: Option<u64>,
    /// Packages loaded at the same time.
    #[arg(long, env = env::LOAD_CONCURRENCY)]
    pub load_concurrency: Option<usize>,
    /// Default network policy of every package: egress (loopback plus the egress proxy),
    /// none (loopback only) or host.
    #[arg(long, env = env::NETWORK)]
    pub network: Option<String>,
    /// host:port patterns the egress proxy lets through although they are loopback,
    /// private or link-local (comma-separated; `*` in the host, e.g. `*.openai.com:443`).
    #[arg(long, env = env::EGRESS_ALLOW, value_delimiter = ',')]
    pub egress_allow: Option<Vec<String>>,
    /// Reports of failed loads kept (`GET /runtime/packages`); the oldest go first.
    #[arg(long, env = env::MAX_FAILED_REPORTS)]
    pub max_failed_reports: Option<usize>,
    /// Days usage records are kept in the ledger (0: forever).
    #[arg(long, env = env::USAGE_RETENTION_DAYS)]
    pub usage_retention_days: Option<u64>,
    /// A warning is logged hourly while the ledger file is larger than this (MiB; 0: off).
    #[arg(long, env = env::USAGE_SIZE_WARNING_MB)]
    pub usage_size_warning_mb: Option<u64>,
    /// HTTP connections open at once; a new one beyond it gets 503 and is closed.
    #[arg(long, env = env::MAX_CONNECTIONS)]
    pub max_connections: Option<usize>,
    /// Seconds a client has to send a complete request head (a new connection: its first).
    #[arg(long, env = env::HEADER_READ_TIMEOUT)]
    pub header_read_timeout: Option<f64>,
    /// Seconds an idle keep-alive connection is kept open.
    #[arg(long, env = env::KEEP_ALIVE_TIMEOUT)]
    pub keep_alive_timeout: Option<f64>,
    /// Seconds a request body may pause between two reads before the call fails with 408.
    #[arg(long, env = env::BODY_READ_TIMEOUT)]
    pub body_read_timeout: Option<f64>,
    /// Per-package settings, TOML file only: `[packages.<name>]`.
    #[arg(skip)]
    #[serde(default)]
    pub packages: std::collections::BTreeMap<String, crate::network_settings::PackageTable>,
    /// Package sources: .apkg files or directories of them (also PACKAGES_URLS, comma-separated).
    #[arg(value_name = "SOURCE")]
    #[serde(skip)]
    pub positional: Vec<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    pub file: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    pub file: PathBuf,
    /// Expected sha256 of the file (64 hex characters).
    #[arg(long)]
    pub sha256: Option<String>,
    /// Detached OpenPGP signature (.sig or .asc).
    #[arg(long, requires = "key")]
    pub signature: Option<PathBuf>,
    /// Public key to check the signature with.
    #[arg(long, requires = "signature")]
    pub key: Option<PathBuf>,
}
