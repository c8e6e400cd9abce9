//! The default of every runtime setting, typed once: [`crate::RuntimeConfig::new`] and
//! [`crate::pool::PoolSettings::default`] start from these, and `par serve`'s setting
//! table (par-cli `settings/table.rs`) names them, so the flag, the library and
//! docs/configuration.md (checked by a test) cannot disagree.

use std::time::Duration;

/// Calls one package runs at once.
pub const MAX_CONCURRENT_CALLS: usize = 1000;
/// Calls that may wait for a slot of a package.
pub const MAX_QUEUED_CALLS: usize = 1000;
/// Time a replaced or unloaded version gets to finish its calls.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Threads per worker for sync handlers.
pub const WORKER_THREADS: usize = 32;
/// Time a worker may take to import its entrypoint.
pub const WORKER_STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// Time between health checks (PING) of each worker.
pub const WORKER_HEALTH_INTERVAL: Duration = Duration::from_secs(5);
/// Time a worker may stay silent before it is killed and replaced.
pub const WORKER_HEALTH_TIMEOUT: Duration = Duration::from_secs(30);
/// Time a sync call the runtime abandoned may keep a worker thread before the worker is
/// replaced (zero: replaced only once every thread is stuck).
pub const ABANDONED_CALL_GRACE: Duration = Duration::from_secs(300);
/// Log lines per second one package's processes may write together (0: unlimited).
pub const LOG_LINES_PER_SEC: u32 = 1000;
/// Log lines a package may write at once above its rate.
pub const LOG_BURST_LINES: u32 = 5000;
/// Time a call may run.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Time a WebSocket relayed to a package app may carry nothing either way.
pub const WEBSOCKET_IDLE_TIMEOUT: Duration = par_surface::DEFAULT_WEBSOCKET_IDLE_TIMEOUT;
/// How deep agent-to-agent calls may nest.
pub const MAX_CALL_DEPTH: usize = 8;
/// Time one `uv` step may take.
pub const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);
/// Largest frame between the runtime and a worker.
pub const MAX_FRAME_BYTES: usize = 64 * 1024 * 1024;
/// Reports of failed loads kept; the oldest failure is forgotten first.
pub const MAX_FAILED_REPORTS: usize = 100;
/// Packages prepared at the same time.
pub const LOAD_CONCURRENCY: usize = 4;
/// Worker processes per package.
pub const WORKERS_PER_PACKAGE: usize = 1;
/// Time an extra worker of an elastic pool (`--workers auto`) may stay without a call
/// before it stops.
pub const WORKER_IDLE_SHRINK: Duration = Duration::from_secs(30);

/// Most workers an elastic pool (`--workers auto`) runs: one per core this process may
/// use (`std::thread::available_parallelism`, which honours CPU affinity and cgroup
/// quotas), at least one.
pub fn auto_max_workers() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}
/// Crashes within a minute after which a package's workers are not restarted.
pub const CRASH_LOOP_THRESHOLD: usize = 5;
/// Time between registry index polls.
pub const REGISTRY_POLL_INTERVAL: Duration = Duration::from_secs(30);

/// Host variables a worker sees unless the operator says otherwise: what Python and
/// common libraries need to run, and nothing that usually carries a secret.
pub fn worker_env_allow() -> Vec<String> {
    [
        "PATH",
        "LANG",
        "LC_ALL",
        "LC_CTYPE",
        "TZ",
        "HOME",
        "TMPDIR",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}
/// Workers are forked from a zygote of their package (off: each starts fresh).
pub const FORK_WORKERS: bool = true;
