//! Raw serve arguments (flags > environment > TOML file > the table's defaults) become
//! validated settings in one step; every bad setting is reported together, naming the
//! flag and variable.
//!
//! `table.rs` defines every setting once (flag, variable, TOML key, default, help);
//! `runtime.rs` turns them into the core's `RuntimeConfig` and the HTTP limits;
//! `values.rs` holds the checks and the settings with their own rules (TLS pair, sources,
//! usage ledger and shipper).

mod runtime;
mod table;
mod values;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use par_core::RuntimeConfig;
use par_http::HttpLimits;

use crate::cli::LogFormat;
use crate::env_names as env;

pub(crate) use table::ServeArgs;
pub(crate) use values::usage_db;
pub(crate) use values::{positive, seconds};

pub(crate) struct ServeSettings {
    pub listen: SocketAddr,
    pub tls: Option<par_http::TlsFiles>,
    pub fetch: crate::registry_settings::FetchSettings,
    pub auth: crate::auth_settings::AuthSettings,
    /// The usage ledger, or `None` when metering is off.
    pub usage_db: Option<PathBuf>,
    /// Copying the ledger to PostgreSQL, when `--usage-postgres-url` is set.
    pub usage_ship: Option<par_telemetry::usage::ShipConfig>,
    /// Span export, from the standard `OTEL_*` variables; `None` (the default) is off.
    pub otlp: Option<par_telemetry::otlp::OtlpConfig>,
    pub sources: Vec<String>,
    pub runtime: RuntimeConfig,
    pub http: HttpLimits,
    pub log_format: Option<LogFormat>,
    pub shutdown_grace: Duration,
    /// Readiness fails this long before the listener closes.
    pub drain_grace: Duration,
    /// Network policies and egress rules, by package.
    pub network: par_egress::EgressSettings,
    pub sandbox: crate::sandbox_settings::SandboxSettings,
    /// Durable runs: store, retention, deadline.
    pub runs: crate::runs_settings::RunSettings,
    /// Retention and size warning of the ledger.
    pub usage_bounds: crate::usage_settings::LedgerBounds,
    /// Connection cap and timeouts of the HTTP listener.
    pub connections: par_http::ConnectionLimits,
    /// What management-API callers may name as a source.
    pub source_policy: par_core::SourcePolicy,
}

/// Reads the TOML file named by `--config` / `PAR_CONFIG`, if any.
pub(crate) fn read_config_file(path: &Path) -> Result<ServeArgs, String> {
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

/// Flags and environment (already merged by clap) over the file, then the table's
/// defaults; then every setting is checked.
pub(crate) fn resolve(
    args: ServeArgs,
    file: ServeArgs,
    vars: &HashMap<String, String>,
) -> Result<ServeSettings, Vec<String>> {
    let s = args.or(file).or(ServeArgs::defaults());
    let mut errors = Vec::new();
    let listen = s.listen.expect("listen has a default");
    let auth = crate::auth_settings::resolve(&listen, &s, &mut errors);
    let cache_dir = s
        .cache_dir
        .clone()
        .or_else(|| values::default_cache_dir(vars))
        .unwrap_or_else(|| PathBuf::from(".par-cache"));
    let tls = values::tls_files(&s, &mut errors);
    // Jailed processes see host paths at the same place, which must be absolute.
    let cache_dir = std::path::absolute(&cache_dir).unwrap_or(cache_dir);
    let fetch = crate::registry_settings::resolve(&cache_dir, &s, &mut errors);
    let usage_db = values::usage_db(s.usage_db.as_deref(), vars);
    let usage_ship = values::usage_ship(&s, usage_db.is_some(), &mut errors);
    let otlp = par_telemetry::otlp::OtlpConfig::from_env(vars).unwrap_or_else(|e| {
        errors.push(e);
        None
    });
    let mut runtime = runtime::runtime_config(&s, cache_dir, vars, &mut errors);
    runtime.redactor = runtime::redactor(&s, usage_ship.as_ref(), otlp.as_ref(), &mut errors);
    let http = runtime::http_limits(&s, &mut errors);
    runtime::check_body_fits_frame(&http, &runtime, &mut errors);
    let (drain_grace, shutdown_grace) = graces(&s, &mut errors);
    let network = crate::network_settings::resolve(&s, &mut errors);
    let sandbox = crate::sandbox_settings::resolve(&s, &mut errors);
    let runs = crate::runs_settings::resolve(&s, vars, &mut errors);
    let connections = crate::connection_settings::resolve(&s, &mut errors);
    let usage_bounds = crate::usage_settings::resolve(&s, &mut errors);
    let sources = values::collect_sources(&s, vars);
    let source_policy = crate::source_settings::resolve(&s, &sources, &mut errors);
    let Some(auth) = auth.filter(|_| errors.is_empty()) else {
        return Err(errors);
    };
    Ok(ServeSettings {
        tls,
        fetch,
        auth,
        usage_db,
        usage_ship,
        otlp,
        listen,
        sources,
        runtime,
        http,
        log_format: s.log_format,
        shutdown_grace,
        drain_grace,
        network,
        sandbox,
        runs,
        usage_bounds,
        connections,
        source_policy,
    })
}

/// `--drain-grace` (zero is meaningful: close the listener at once) and
/// `--shutdown-grace`: the two steps of shutdown.
fn graces(s: &ServeArgs, errors: &mut Vec<String>) -> (Duration, Duration) {
    let drain_grace = match s.drain_grace {
        Some(0.0) => Duration::ZERO,
        _ => values::seconds(
            s,
            |a| a.drain_grace,
            "--drain-grace",
            env::DRAIN_GRACE,
            errors,
        ),
    };
    let shutdown_grace = values::seconds(
        s,
        |a| a.shutdown_grace,
        "--shutdown-grace",
        env::SHUTDOWN_GRACE,
        errors,
    );
    (drain_grace, shutdown_grace)
}
