//! Raw serve arguments (flags > environment > TOML file) become validated settings in one
//! step; every bad setting is reported together, naming the flag and variable.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use par_core::RuntimeConfig;
use par_http::HttpLimits;

use crate::cli::{LogFormat, ServeArgs};
use crate::env_names as env;

pub struct ServeSettings {
    pub listen: SocketAddr,
    pub tls: Option<par_http::TlsFiles>,
    pub fetch: crate::registry_settings::FetchSettings,
    pub auth: crate::auth_settings::AuthSettings,
    /// The usage ledger, or `None` when metering is off.
    pub usage_db: Option<PathBuf>,
    /// Retention and size warning of the ledger.
    pub usage_bounds: crate::usage_settings::LedgerBounds,
    /// Copying the ledger to PostgreSQL, when `--usage-postgres-url` is set.
    pub usage_ship: Option<par_telemetry::usage::ShipConfig>,
    /// Span export, from the standard `OTEL_*` variables; `None` (the default) is off.
    pub otlp: Option<par_telemetry::otlp::OtlpConfig>,
    pub sources: Vec<String>,
    pub runtime: RuntimeConfig,
    pub http: HttpLimits,
    /// Connection cap and timeouts of the HTTP listener.
    pub connections: par_http::ConnectionLimits,
    pub log_format: Option<LogFormat>,
    pub shutdown_grace: Duration,
    /// Readiness fails this long before the listener closes.
    pub drain_grace: Duration,
    /// Network policies and egress rules, by package.
    pub network: par_egress::EgressSettings,
    pub sandbox: crate::sandbox_settings::SandboxSettings,
}

/// Reads the TOML file named by `--config` / `PAR_CONFIG`, if any.
pub fn read_config_file(path: &Path) -> Result<ServeArgs, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "--config / {}: cannot read {}: {e}",
            env::CONFIG,
            path.display()
        )
    })?;
    toml::from_str(&text)
        .map_err(|e| format!("--config / {}: {}: {e}", env::CONFIG, path.display()))
}

/// Flags and environment (already merged by clap) over the file, then defaults.
pub fn resolve(
    args: ServeArgs,
    file: ServeArgs,
    vars: &HashMap<String, String>,
) -> Result<ServeSettings, Vec<String>> {
    let mut errors = Vec::new();
    let listen = args
        .listen
        .or(file.listen)
        .unwrap_or_else(|| "127.0.0.1:8080".parse().expect("valid default"));
    let auth = crate::auth_settings::resolve(&listen, &args, &file, &mut errors);
    let cache_dir = args
        .cache_dir
        .clone()
        .or(file.cache_dir.clone())
        .or_else(|| default_cache_dir(vars))
        .unwrap_or_else(|| PathBuf::from(".par-cache"));
    let tls = tls_files(&args, &file, &mut errors);
    let fetch = crate::registry_settings::resolve(&cache_dir, &args, &file, &mut errors);
    let uv = args
        .uv
        .clone()
        .or(file.uv.clone())
        .unwrap_or_else(|| "uv".into());
    let mut runtime = RuntimeConfig::new(cache_dir, uv);
    runtime.host_env = vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    apply_runtime_limits(&mut runtime, &args, &file, &mut errors);
    let mut patterns = args
        .redact_patterns
        .clone()
        .or(file.redact_patterns.clone())
        .unwrap_or_default();
    let usage_db = usage_db(args.usage_db.as_deref().or(file.usage_db.as_deref()), vars);
    let usage_ship = usage_ship(&args, &file, usage_db.is_some(), &mut errors);
    if usage_ship.is_some() {
        patterns.push(POSTGRES_USERINFO.to_owned());
    }
    match par_core::redact::Redactor::new(&patterns) {
        Ok(redactor) => runtime.redactor = redactor,
        Err(e) => errors.push(format!("--redact-patterns / {}: {e}", env::REDACT_PATTERNS)),
    }
    let otlp = par_telemetry::otlp::OtlpConfig::from_env(vars).unwrap_or_else(|e| {
        errors.push(e);
        None
    });
    // Collector headers usually carry an API key: never let one reach a log line.
    for (_, value) in otlp.iter().flat_map(|c| &c.headers) {
        runtime.redactor.add_secret(value);
    }
    if let Some(password) = usage_ship
        .as_ref()
        .and_then(|ship| par_telemetry::usage::postgres_password(&ship.url))
    {
        runtime.redactor.add_secret(&password);
    }
    let http = HttpLimits {
        max_upload_bytes: positive(
            args.max_upload_bytes.or(file.max_upload_bytes),
            512 * 1024 * 1024,
            "--max-upload-bytes",
            env::MAX_UPLOAD,
            &mut errors,
        ),
        max_body_bytes: positive(
            args.max_body_bytes.or(file.max_body_bytes),
            10 * 1024 * 1024,
            "--max-body-bytes",
            env::MAX_BODY,
            &mut errors,
        ),
    };
    check_body_fits_frame(&http, &runtime, &mut errors);
    let drain_grace = match args.drain_grace.or(file.drain_grace) {
        // Zero is meaningful here: close the listener at once.
        Some(0.0) => Duration::ZERO,
        other => seconds(other, 5.0, "--drain-grace", env::DRAIN_GRACE, &mut errors),
    };
    let shutdown_grace = seconds(
        args.shutdown_grace.or(file.shutdown_grace),
        30.0,
        "--shutdown-grace",
        env::SHUTDOWN_GRACE,
        &mut errors,
    );
    let sources = collect_sources(&args, &file, vars);
    let network = crate::network_settings::resolve(&args, &file, &mut errors);
    let sandbox = crate::sandbox_settings::resolve(&args, &file, &mut errors);
    let connections = crate::connection_settings::resolve(&args, &file, &mut errors);
    let usage_bounds = crate::usage_settings::resolve(&args, &file, &mut errors);
    let Some(auth) = auth.filter(|_| errors.is_empty()) else {
        return Err(errors);
    };
    Ok(ServeSettings {
        tls,
        fetch,
        auth,
        usage_db,
        usage_bounds,
        usage_ship,
        otlp,
        listen,
        sources,
        runtime,
        http,
        connections,
        log_format: args.log_format.or(file.log_format),
        shutdown_grace,
        drain_grace,
        network,
        sandbox,
    })
}

/// Room a CALL frame needs around the body: request id, traceparent, the sub-agent's
/// `action`, the JSON around them.
const CALL_ENVELOPE_BYTES: usize = 4096;

/// A body the runtime accepts must fit a frame to its worker; refuse settings that let
/// callers send what every worker would refuse.
fn check_body_fits_frame(http: &HttpLimits, rt: &RuntimeConfig, errors: &mut Vec<String>) {
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

fn apply_runtime_limits(
    rt: &mut RuntimeConfig,
    a: &ServeArgs,
    f: &ServeArgs,
    errors: &mut Vec<String>,
) {
    rt.pool.workers = positive(
        a.workers.or(f.workers),
        1,
        "--workers",
        env::WORKERS,
        errors,
    );
    rt.pool.crash_loop_threshold = positive(
        a.crash_loop_threshold.or(f.crash_loop_threshold),
        5,
        "--crash-loop-threshold",
        env::CRASH_LOOP,
        errors,
    );
    rt.pool.memory_limit_bytes = a.worker_memory_limit.or(f.worker_memory_limit).map(|v| {
        positive(
            Some(v),
            1,
            "--worker-memory-limit",
            env::WORKER_MEMORY,
            errors,
        )
    });
    rt.max_concurrent_calls = positive(
        a.max_concurrent_calls.or(f.max_concurrent_calls),
        1000,
        "--max-concurrent-calls",
        env::MAX_CONCURRENT,
        errors,
    );
    rt.max_queued_calls = a.max_queued_calls.or(f.max_queued_calls).unwrap_or(1000);
    rt.drain_timeout = seconds(
        a.drain_timeout.or(f.drain_timeout),
        30.0,
        "--drain-timeout",
        env::DRAIN_TIMEOUT,
        errors,
    );
    apply_webhooks(rt, a, f, errors);
    rt.worker_threads = positive(
        a.worker_threads.or(f.worker_threads),
        32,
        "--worker-threads",
        env::WORKER_THREADS,
        errors,
    );
    rt.load_concurrency = positive(
        a.load_concurrency.or(f.load_concurrency),
        4,
        "--load-concurrency",
        env::LOAD_CONCURRENCY,
        errors,
    );
    rt.call_timeout = seconds(
        a.call_timeout.or(f.call_timeout),
        60.0,
        "--call-timeout",
        env::CALL_TIMEOUT,
        errors,
    );
    rt.max_frame_bytes = positive(
        a.max_frame_bytes.or(f.max_frame_bytes),
        64 * 1024 * 1024,
        "--max-frame-bytes",
        env::MAX_FRAME,
        errors,
    );
    rt.max_call_depth = positive(
        a.max_call_depth.or(f.max_call_depth),
        8,
        "--max-call-depth",
        env::MAX_CALL_DEPTH,
        errors,
    );
    rt.max_failed_reports = positive(
        a.max_failed_reports.or(f.max_failed_reports),
        rt.max_failed_reports,
        "--max-failed-reports",
        env::MAX_FAILED_REPORTS,
        errors,
    );
    rt.worker_startup_timeout = seconds(
        a.worker_startup_timeout.or(f.worker_startup_timeout),
        60.0,
        "--worker-startup-timeout",
        env::STARTUP_TIMEOUT,
        errors,
    );
    rt.install_timeout = seconds(
        a.install_timeout.or(f.install_timeout),
        600.0,
        "--install-timeout",
        env::INSTALL_TIMEOUT,
        errors,
    );
    if let Some(allow) = a.worker_env_allow.clone().or(f.worker_env_allow.clone()) {
        rt.worker_env_allow = allow
            .into_iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
    }
    let limits = &mut rt.archive_limits;
    limits.max_entries = positive(
        a.max_archive_entries.or(f.max_archive_entries),
        limits.max_entries,
        "--max-archive-entries",
        env::MAX_ENTRIES,
        errors,
    );
    limits.max_entry_bytes = positive(
        a.max_entry_bytes.or(f.max_entry_bytes),
        limits.max_entry_bytes,
        "--max-entry-bytes",
        env::MAX_ENTRY_BYTES,
        errors,
    );
    limits.max_total_bytes = positive(
        a.max_unpacked_bytes.or(f.max_unpacked_bytes),
        limits.max_total_bytes,
        "--max-unpacked-bytes",
        env::MAX_UNPACKED,
        errors,
    );
    limits.max_ratio = positive(
        a.max_compression_ratio.or(f.max_compression_ratio),
        limits.max_ratio,
        "--max-compression-ratio",
        env::MAX_RATIO,
        errors,
    );
}

fn apply_webhooks(rt: &mut RuntimeConfig, a: &ServeArgs, f: &ServeArgs, errors: &mut Vec<String>) {
    let urls = a
        .webhook_urls
        .clone()
        .or(f.webhook_urls.clone())
        .unwrap_or_default();
    rt.webhooks.urls = urls
        .into_iter()
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .collect();
    rt.webhooks.secret = a.webhook_secret.clone().or(f.webhook_secret.clone());
    for url in &rt.webhooks.urls {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            errors.push(format!(
                "--webhook-urls / {}: '{url}' is not an http(s) URL",
                env::WEBHOOK_URLS
            ));
        }
    }
}

pub(crate) fn positive<T: PartialOrd + Default + Copy>(
    value: Option<T>,
    default: T,
    flag: &str,
    var: &str,
    errors: &mut Vec<String>,
) -> T {
    match value {
        Some(v) if v <= T::default() => {
            errors.push(format!("{flag} / {var}: must be greater than zero"));
            default
        }
        Some(v) => v,
        None => default,
    }
}

pub(crate) fn seconds(
    value: Option<f64>,
    default: f64,
    flag: &str,
    var: &str,
    errors: &mut Vec<String>,
) -> Duration {
    let secs = value.unwrap_or(default);
    if !(secs.is_finite() && secs > 0.0 && secs < 1e9) {
        errors.push(format!(
            "{flag} / {var}: must be a positive number of seconds"
        ));
        return Duration::from_secs_f64(default);
    }
    Duration::from_secs_f64(secs)
}

fn collect_sources(
    args: &ServeArgs,
    file: &ServeArgs,
    vars: &HashMap<String, String>,
) -> Vec<String> {
    let mut sources: Vec<String> = args.positional.clone();
    sources.extend(file.sources.iter().cloned());
    if let Some(list) = vars.get(env::PACKAGES_URLS) {
        sources.extend(
            list.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from),
        );
    }
    sources
}

/// `--tls-cert` and `--tls-key` come together, and both files must exist.
fn tls_files(a: &ServeArgs, f: &ServeArgs, errors: &mut Vec<String>) -> Option<par_http::TlsFiles> {
    match (
        a.tls_cert.clone().or(f.tls_cert.clone()),
        a.tls_key.clone().or(f.tls_key.clone()),
    ) {
        (None, None) => None,
        (Some(cert), Some(key)) => {
            for (path, flag, var) in [
                (&cert, "--tls-cert", env::TLS_CERT),
                (&key, "--tls-key", env::TLS_KEY),
            ] {
                if !path.is_file() {
                    errors.push(format!("{flag} / {var}: no such file {}", path.display()));
                }
            }
            Some(par_http::TlsFiles { cert, key })
        }
        _ => {
            errors.push(format!(
                "--tls-cert / {} and --tls-key / {}: give both or neither",
                env::TLS_CERT,
                env::TLS_KEY
            ));
            None
        }
    }
}

/// The password of a PostgreSQL URL, whatever its length, wherever a URL is logged.
const POSTGRES_USERINFO: &str = r"(?i)(postgres(?:ql)?://[^:/@\s]*:)[^@\s/]*@";

/// `--usage-postgres-url`, `--usage-ship-interval`, `--instance-id`: checked here so a
/// bad URL stops startup (an unreachable server does not).
fn usage_ship(
    a: &ServeArgs,
    f: &ServeArgs,
    ledger_on: bool,
    errors: &mut Vec<String>,
) -> Option<par_telemetry::usage::ShipConfig> {
    let url = a
        .usage_postgres_url
        .clone()
        .or(f.usage_postgres_url.clone())?;
    let flag = format!("--usage-postgres-url / {}", env::USAGE_POSTGRES_URL);
    if !ledger_on {
        errors.push(format!(
            "{flag}: needs the usage ledger (--usage-db is off)"
        ));
    }
    let mut ship = par_telemetry::usage::ShipConfig::new(url);
    ship.interval = seconds(
        a.usage_ship_interval.or(f.usage_ship_interval),
        5.0,
        "--usage-ship-interval",
        env::USAGE_SHIP_SECS,
        errors,
    );
    ship.instance_id = a.instance_id.clone().or(f.instance_id.clone());
    ship.ca_bundle = a.ca_bundle.clone().or(f.ca_bundle.clone());
    if let Err(e) = ship.check() {
        let flag = match e {
            par_telemetry::usage::UsageError::Shipper {
                setting: "instance_id",
                ..
            } => {
                format!("--instance-id / {}", env::INSTANCE_ID)
            }
            par_telemetry::usage::UsageError::Shipper {
                setting: "ca_bundle",
                ..
            } => {
                format!("--ca-bundle / {}", env::CA_BUNDLE)
            }
            _ => flag,
        };
        errors.push(format!("{flag}: {e}"));
    }
    Some(ship)
}

/// `--usage-db`: a path, `off`, or the default under the user's data directory.
pub fn usage_db(value: Option<&str>, vars: &HashMap<String, String>) -> Option<PathBuf> {
    match value {
        Some("off") => None,
        Some(path) => Some(PathBuf::from(path)),
        None => {
            let base = match vars.get(env::XDG_DATA_HOME).filter(|v| !v.is_empty()) {
                Some(xdg) => PathBuf::from(xdg),
                None => PathBuf::from(vars.get(env::HOME).map_or(".", |h| h.as_str()))
                    .join(".local/share"),
            };
            Some(base.join("par").join("usage.sqlite3"))
        }
    }
}

fn default_cache_dir(vars: &HashMap<String, String>) -> Option<PathBuf> {
    let base = match vars.get(env::XDG_CACHE_HOME).filter(|v| !v.is_empty()) {
        Some(xdg) => PathBuf::from(xdg),
        None => PathBuf::from(vars.get(env::HOME)?).join(".cache"),
    };
    Some(base.join("par"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn flags_beat_file_and_defaults_fill_the_rest() {
        let args = ServeArgs {
            workers: Some(3),
            ..Default::default()
        };
        let file = ServeArgs {
            workers: Some(5),
            worker_threads: Some(7),
            ..Default::default()
        };
        let s = resolve(args, file, &vars(&[("HOME", "/home/u")]))
            .ok()
            .unwrap();
        assert_eq!(s.runtime.pool.workers, 3);
        assert_eq!(s.runtime.worker_threads, 7);
        assert_eq!(s.runtime.cache_dir, PathBuf::from("/home/u/.cache/par"));
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn every_bad_setting_is_reported_by_name() {
        let args = ServeArgs {
            workers: Some(0),
            call_timeout: Some(-1.0),
            listen: Some("0.0.0.0:80".parse().unwrap()),
            ..Default::default()
        };
        let errors = resolve(args, ServeArgs::default(), &vars(&[]))
            .err()
            .unwrap();
        let text = errors.join("\n");
        assert!(text.contains(env::WORKERS), "{text}");
        assert!(text.contains(env::CALL_TIMEOUT), "{text}");
        assert!(text.contains(env::AUTH), "{text}");
        assert_eq!(errors.len(), 3);
    }

    #[test]
    fn the_postgres_url_is_checked_and_its_password_masked() {
        let args = ServeArgs {
            usage_postgres_url: Some("postgres://biller:pw-0123456789@db:5432/usage".into()),
            instance_id: Some("pod-7".into()),
            ..Default::default()
        };
        let s = resolve(args, ServeArgs::default(), &vars(&[("HOME", "/h")]))
            .ok()
            .unwrap();
        let ship = s.usage_ship.unwrap();
        assert_eq!(ship.interval, Duration::from_secs(5));
        assert_eq!(ship.instance_id.as_deref(), Some("pod-7"));
        let line = "url=postgres://biller:pw-0123456789@db:5432/usage echo pw-0123456789";
        let masked = s.runtime.redactor.redact(line);
        assert!(!masked.contains("pw-0123"), "{masked}");
        let short = "postgres://u:abc@db/usage";
        assert!(!s.runtime.redactor.redact(short).contains("abc"));

        let bad = ServeArgs {
            usage_postgres_url: Some("postgres://u:hunter22@db/usage?sslmode=sometimes".into()),
            usage_db: Some("off".into()),
            usage_ship_interval: Some(0.0),
            ..Default::default()
        };
        let errors = resolve(bad, ServeArgs::default(), &vars(&[]))
            .err()
            .unwrap();
        let text = errors.join("\n");
        assert!(!text.contains("hunter22"), "{text}");
        assert!(text.contains(env::USAGE_SHIP_SECS), "{text}");
        assert!(text.contains("--usage-db is off"), "{text}");
        assert!(text.contains("sslmode"), "{text}");
    }

    #[test]
    fn packages_urls_adds_sources() {
        let args = ServeArgs {
            positional: vec!["a.apkg".into()],
            ..Default::default()
        };
        let s = resolve(
            args,
            ServeArgs::default(),
            &vars(&[("PACKAGES_URLS", "b.apkg, c.apkg,")]),
        )
        .ok()
        .unwrap();
        assert_eq!(s.sources, ["a.apkg", "b.apkg", "c.apkg"]);
    }
}
