//! The core's [`RuntimeConfig`] and the HTTP limits from the merged settings: each value
//! comes from the table (which names the core's own defaults), checked here.

use std::collections::HashMap;
use std::path::PathBuf;

use par_core::RuntimeConfig;
use par_http::HttpLimits;

use super::table::ServeArgs;
use super::values::{positive, seconds, Workers};
use crate::env_names as env;

/// Room a CALL frame needs around the body: request id, traceparent, the sub-agent's
/// `action`, the JSON around them.
const CALL_ENVELOPE_BYTES: usize = 4096;

/// The password of a PostgreSQL URL, whatever its length, wherever a URL is logged.
const POSTGRES_USERINFO: &str = r"(?i)(postgres(?:ql)?://[^:/@\s]*:)[^@\s/]*@";

pub(super) fn runtime_config(
    s: &ServeArgs,
    cache_dir: PathBuf,
    vars: &HashMap<String, String>,
    errors: &mut Vec<String>,
) -> RuntimeConfig {
    let uv = s.uv.clone().expect("uv has a default");
    let mut rt = RuntimeConfig::new(cache_dir, uv);
    rt.host_env = vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    pool(&mut rt, s, errors);
    calls(&mut rt, s, errors);
    timeouts(&mut rt, s, errors);
    archive_limits(&mut rt.archive_limits, s, errors);
    webhooks(&mut rt, s, errors);
    if let Some(allow) = s.worker_env_allow.clone() {
        rt.worker_env_allow = allow
            .into_iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
    }
    rt
}

fn pool(rt: &mut RuntimeConfig, s: &ServeArgs, errors: &mut Vec<String>) {
    workers(&mut rt.pool, s, errors);
    let pool = &mut rt.pool;
    pool.crash_loop_threshold = positive(
        s,
        |a| a.crash_loop_threshold,
        "--crash-loop-threshold",
        env::CRASH_LOOP,
        errors,
    );
    // No default: unset means no limit.
    pool.memory_limit_bytes = s.worker_memory_limit;
    if s.worker_memory_limit == Some(0) {
        errors.push(format!(
            "--worker-memory-limit / {}: must be greater than zero",
            env::WORKER_MEMORY
        ));
    }
}

/// `--workers N` (fixed) or `--workers auto` (one, more while busy up to
/// `--workers-max`, extra ones stop after `--worker-idle-shrink`). `--workers-max` is
/// ignored with a fixed number, so one environment can serve both kinds of deployment.
fn workers(pool: &mut par_core::PoolSettings, s: &ServeArgs, errors: &mut Vec<String>) {
    let shrink_after = seconds(
        s,
        |a| a.worker_idle_shrink,
        "--worker-idle-shrink",
        env::WORKER_IDLE_SHRINK,
        errors,
    );
    if s.workers_max == Some(0) {
        errors.push(format!(
            "--workers-max / {}: must be greater than zero",
            env::WORKERS_MAX
        ));
    }
    match s.workers.expect("a default") {
        Workers::Fixed(0) => errors.push(format!(
            "--workers / {}: must be greater than zero (or auto)",
            env::WORKERS
        )),
        Workers::Fixed(n) => pool.workers = n,
        Workers::Auto => {
            pool.workers = 1;
            pool.scaling = Some(par_core::Scaling {
                max_workers: s
                    .workers_max
                    .filter(|&n| n > 0)
                    .unwrap_or_else(par_core::defaults::auto_max_workers),
                shrink_after,
            });
        }
    }
}

fn calls(rt: &mut RuntimeConfig, s: &ServeArgs, errors: &mut Vec<String>) {
    rt.max_concurrent_calls = positive(
        s,
        |a| a.max_concurrent_calls,
        "--max-concurrent-calls",
        env::MAX_CONCURRENT,
        errors,
    );
    rt.max_queued_calls = s.max_queued_calls.expect("a default");
    rt.drain_timeout = seconds(
        s,
        |a| a.drain_timeout,
        "--drain-timeout",
        env::DRAIN_TIMEOUT,
        errors,
    );
    rt.worker_threads = positive(
        s,
        |a| a.worker_threads,
        "--worker-threads",
        env::WORKER_THREADS,
        errors,
    );
    rt.load_concurrency = positive(
        s,
        |a| a.load_concurrency,
        "--load-concurrency",
        env::LOAD_CONCURRENCY,
        errors,
    );
}

/// The runtime's time limits.
fn timeouts(rt: &mut RuntimeConfig, s: &ServeArgs, errors: &mut Vec<String>) {
    rt.call_timeout = seconds(
        s,
        |a| a.call_timeout,
        "--call-timeout",
        env::CALL_TIMEOUT,
        errors,
    );
    rt.websocket_idle_timeout = seconds(
        s,
        |a| a.websocket_idle_timeout,
        "--websocket-idle-timeout",
        env::WEBSOCKET_IDLE_TIMEOUT,
        errors,
    );
    rt.max_frame_bytes = positive(
        s,
        |a| a.max_frame_bytes,
        "--max-frame-bytes",
        env::MAX_FRAME,
        errors,
    );
    rt.max_call_depth = positive(
        s,
        |a| a.max_call_depth,
        "--max-call-depth",
        env::MAX_CALL_DEPTH,
        errors,
    );
    rt.worker_startup_timeout = seconds(
        s,
        |a| a.worker_startup_timeout,
        "--worker-startup-timeout",
        env::STARTUP_TIMEOUT,
        errors,
    );
    rt.install_timeout = seconds(
        s,
        |a| a.install_timeout,
        "--install-timeout",
        env::INSTALL_TIMEOUT,
        errors,
    );
    apply_health_and_idle(s, rt, errors);
    log_rate(rt, s);
    rt.max_failed_reports = positive(
        s,
        |a| a.max_failed_reports,
        "--max-failed-reports",
        env::MAX_FAILED_REPORTS,
        errors,
    );
}

/// Worker health checks, and when idle packages stop (`0`: never).
fn apply_health_and_idle(s: &ServeArgs, rt: &mut RuntimeConfig, errors: &mut Vec<String>) {
    rt.pool.health_interval = seconds(
        s,
        |a| a.worker_health_interval,
        "--worker-health-interval",
        env::HEALTH_INTERVAL,
        errors,
    );
    rt.pool.health_timeout = seconds(
        s,
        |a| a.worker_health_timeout,
        "--worker-health-timeout",
        env::HEALTH_TIMEOUT,
        errors,
    );
    // Zero is meaningful: replace only when every thread is stuck.
    rt.pool.abandoned_call_grace = match s.abandoned_call_grace {
        Some(0.0) => None,
        _ => Some(seconds(
            s,
            |a| a.abandoned_call_grace,
            "--abandoned-call-grace",
            env::ABANDONED_CALL_GRACE,
            errors,
        )),
    };
    if rt.pool.health_timeout <= rt.pool.health_interval {
        errors.push("--worker-health-timeout must be longer than --worker-health-interval".into());
    }
    rt.idle_timeout = match s.idle_timeout {
        None | Some(0.0) => None,
        Some(_) => Some(seconds(
            s,
            |a| a.idle_timeout,
            "--idle-timeout",
            env::IDLE_TIMEOUT,
            errors,
        )),
    };
    rt.pool.fork_workers = fork_workers(rt, s, errors);
}

/// `--worker-start`: `fork`, `fresh`, or `auto` (the default): fork unless the zygote
/// would only ever fork one worker per wake — an idle-stopping package (`--idle-timeout`)
/// with one fixed worker. There every wake starts an interpreter anyway, and a zygote
/// beside its only worker costs ~4 MiB an awake package (docs/performance.md, density).
fn fork_workers(rt: &RuntimeConfig, s: &ServeArgs, errors: &mut Vec<String>) -> bool {
    match s.worker_start.as_deref() {
        Some("fork") => true,
        Some("fresh") => false,
        None | Some("auto") => {
            let one_worker = rt.pool.workers == 1 && rt.pool.scaling.is_none();
            !(rt.idle_timeout.is_some() && one_worker)
        }
        Some(other) => {
            errors.push(format!(
                "--worker-start / {}: {other:?} is not auto, fork or fresh",
                env::WORKER_START
            ));
            true
        }
    }
}

/// `--log-lines-per-sec` (0: unlimited) and `--log-burst-lines` (at least one line).
fn log_rate(rt: &mut RuntimeConfig, s: &ServeArgs) {
    rt.log_rate = par_worker::log_budget::LogRate {
        lines_per_sec: s.log_lines_per_sec.expect("a default"),
        burst: s.log_burst_lines.expect("a default").max(1),
    };
}

fn archive_limits(limits: &mut par_archive::Limits, s: &ServeArgs, errors: &mut Vec<String>) {
    limits.max_entries = positive(
        s,
        |a| a.max_archive_entries,
        "--max-archive-entries",
        env::MAX_ENTRIES,
        errors,
    );
    limits.max_entry_bytes = positive(
        s,
        |a| a.max_entry_bytes,
        "--max-entry-bytes",
        env::MAX_ENTRY_BYTES,
        errors,
    );
    limits.max_total_bytes = positive(
        s,
        |a| a.max_unpacked_bytes,
        "--max-unpacked-bytes",
        env::MAX_UNPACKED,
        errors,
    );
    limits.max_ratio = positive(
        s,
        |a| a.max_compression_ratio,
        "--max-compression-ratio",
        env::MAX_RATIO,
        errors,
    );
}

fn webhooks(rt: &mut RuntimeConfig, s: &ServeArgs, errors: &mut Vec<String>) {
    rt.webhooks.urls = s
        .webhook_urls
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .collect();
    rt.webhooks.secret = s.webhook_secret.clone();
    for url in &rt.webhooks.urls {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            errors.push(format!(
                "--webhook-urls / {}: '{url}' is not an http(s) URL",
                env::WEBHOOK_URLS
            ));
        }
    }
}

/// `--redact-patterns`, plus every secret the settings themselves carry: a PostgreSQL
/// URL's password and the OTLP collector's headers (usually an API key).
pub(super) fn redactor(
    s: &ServeArgs,
    usage_ship: Option<&par_telemetry::usage::ShipConfig>,
    otlp: Option<&par_telemetry::otlp::OtlpConfig>,
    errors: &mut Vec<String>,
) -> par_core::redact::Redactor {
    let mut patterns = s.redact_patterns.clone().unwrap_or_default();
    if usage_ship.is_some() {
        patterns.push(POSTGRES_USERINFO.to_owned());
    }
    let redactor = par_core::redact::Redactor::new(&patterns).unwrap_or_else(|e| {
        errors.push(format!("--redact-patterns / {}: {e}", env::REDACT_PATTERNS));
        par_core::redact::Redactor::new(&[]).expect("built-in patterns compile")
    });
    for (_, value) in otlp.iter().flat_map(|c| &c.headers) {
        redactor.add_secret(value);
    }
    if let Some(password) =
        usage_ship.and_then(|ship| par_telemetry::usage::postgres_password(&ship.url))
    {
        redactor.add_secret(&password);
    }
    redactor
}

pub(super) fn http_limits(s: &ServeArgs, errors: &mut Vec<String>) -> HttpLimits {
    HttpLimits {
        max_upload_bytes: positive(
            s,
            |a| a.max_upload_bytes,
            "--max-upload-bytes",
            env::MAX_UPLOAD,
            errors,
        ),
        max_body_bytes: positive(
            s,
            |a| a.max_body_bytes,
            "--max-body-bytes",
            env::MAX_BODY,
            errors,
        ),
    }
}

/// A body the runtime accepts must fit a frame to its worker; refuse settings that let
/// callers send what every worker would refuse.
pub(super) fn check_body_fits_frame(
    http: &HttpLimits,
    rt: &RuntimeConfig,
    errors: &mut Vec<String>,
) {
    let room = rt.max_frame_bytes.saturating_sub(CALL_ENVELOPE_BYTES);
    if http.max_body_bytes > room {
        errors.push(format!(
            "--max-body-bytes / {}: {} bytes do not fit a worker frame (--max-frame-bytes / {} is {}; \
             at most {room} bytes of body fit)",
            env::MAX_BODY,
            http.max_body_bytes,
            env::MAX_FRAME,
            rt.max_frame_bytes,
        ));
    }
}
