//! Every environment variable PAR reads, in one place.

pub const CONFIG: &str = "PAR_CONFIG";
pub const LISTEN: &str = "PAR_LISTEN";
pub const PACKAGES_URLS: &str = "PACKAGES_URLS";
pub const CACHE_DIR: &str = "PAR_CACHE_DIR";
pub const LOG_FORMAT: &str = "PAR_LOG_FORMAT";
pub const LOG_LEVEL: &str = "PAR_LOG";
pub const AUTH: &str = "PAR_AUTH";
pub const UV: &str = "PAR_UV";
pub const WORKERS: &str = "PAR_WORKERS_PER_PACKAGE";
pub const WORKER_THREADS: &str = "PAR_WORKER_THREADS";
pub const WORKER_ENV_ALLOW: &str = "PAR_WORKER_ENV_ALLOW";
pub const CALL_TIMEOUT: &str = "PAR_CALL_TIMEOUT_SECS";
pub const STARTUP_TIMEOUT: &str = "PAR_WORKER_STARTUP_SECS";
pub const INSTALL_TIMEOUT: &str = "PAR_INSTALL_TIMEOUT_SECS";
pub const SHUTDOWN_GRACE: &str = "PAR_SHUTDOWN_GRACE_SECS";
pub const MAX_BODY: &str = "PAR_MAX_BODY_BYTES";
pub const MAX_ENTRIES: &str = "PAR_MAX_ARCHIVE_ENTRIES";
pub const MAX_ENTRY_BYTES: &str = "PAR_MAX_ENTRY_BYTES";
pub const MAX_UNPACKED: &str = "PAR_MAX_UNPACKED_BYTES";
pub const MAX_RATIO: &str = "PAR_MAX_COMPRESSION_RATIO";
pub const LOAD_CONCURRENCY: &str = "PAR_LOAD_CONCURRENCY";
pub const MAX_CONCURRENT: &str = "PAR_MAX_CONCURRENT_CALLS";
pub const MAX_QUEUED: &str = "PAR_MAX_QUEUED_CALLS";
pub const WORKER_MEMORY: &str = "PAR_WORKER_MEMORY_LIMIT_BYTES";
pub const DRAIN_TIMEOUT: &str = "PAR_DRAIN_TIMEOUT_SECS";
pub const CRASH_LOOP: &str = "PAR_CRASH_LOOP_THRESHOLD";
pub const MAX_UPLOAD: &str = "PAR_MAX_UPLOAD_BYTES";
pub const WEBHOOK_URLS: &str = "PAR_WEBHOOK_URLS";
pub const WEBHOOK_SECRET: &str = "PAR_WEBHOOK_SECRET";
pub const USAGE_DB: &str = "PAR_USAGE_DB";
/// Standard locations used for the default cache directory.
pub const XDG_CACHE_HOME: &str = "XDG_CACHE_HOME";
pub const HOME: &str = "HOME";
pub const XDG_DATA_HOME: &str = "XDG_DATA_HOME";
