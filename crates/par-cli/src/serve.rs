//! `par serve`: settings -> runtime -> listener -> serve until a signal.

use std::collections::HashMap;
use std::process::ExitCode;

use par_core::Runtime;
use par_http::AppState;

use crate::cli::ServeArgs;
use crate::settings::{self, ServeSettings};

pub fn main(args: ServeArgs) -> ExitCode {
    let vars: HashMap<String, String> = std::env::vars().collect();
    let file = match &args.config {
        Some(path) => match settings::read_config_file(path) {
            Ok(file) => file,
            Err(e) => return usage_error(&[e]),
        },
        None => ServeArgs::default(),
    };
    let settings = match settings::resolve(args, file, &vars) {
        Ok(s) => s,
        Err(errors) => return usage_error(&errors),
    };
    let (log_control, _log_guard) =
        crate::logging::init(settings.log_format, settings.runtime.redactor.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(settings, log_control)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "par serve failed");
            ExitCode::FAILURE
        }
    }
}

fn usage_error(errors: &[String]) -> ExitCode {
    for e in errors {
        eprintln!("par: {e}");
    }
    ExitCode::from(2)
}

async fn run(settings: ServeSettings, log_control: par_http::LogControl) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.listen))?;
    let addr = listener.local_addr()?;
    let metrics = par_telemetry::Metrics::new();
    let usage = open_usage(settings.usage_db.as_deref(), &metrics)?;
    let shipper = start_shipper(settings.usage_ship, usage.as_deref(), &metrics)?;
    let runtime = Runtime::new(settings.runtime, metrics)?;
    let fetcher = par_registry::Fetcher::new(settings.fetch.fetch)
        .await
        .map_err(|e| anyhow::anyhow!("package fetching: {e}"))?;
    runtime.set_fetcher(fetcher);
    if let Some(registry) = settings.fetch.registry {
        tracing::info!(
            every_secs = registry.interval.as_secs_f64(),
            "following registry index"
        );
        runtime.set_registry(registry);
    }
    if let Some(ledger) = &usage {
        runtime.set_usage_ledger(ledger.clone());
    }
    let spans = start_span_export(settings.otlp, &runtime)?;
    let mut state = AppState::new(runtime.clone(), settings.http);
    state.usage = usage.clone();
    state.log_control = Some(log_control);
    state.site = par_http::SiteRules::new(
        settings.auth.mode == par_auth::AuthMode::Off,
        settings.auth.allowed_hosts.clone(),
    );
    state.access = access_control(settings.auth).await?;
    let api = state.clone();
    let scheme = if settings.tls.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(addr = %addr, scheme, "listening");
    let loader = runtime.clone();
    let sources = settings.sources.clone();
    tokio::spawn(async move { loader.load_startup_sources(&sources).await });
    let grace = settings.shutdown_grace;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stopped = async move {
        let _ = stop_rx.await;
    };
    let server = match settings.tls {
        Some(files) => tokio::spawn(par_http::serve_tls(
            listener.into_std()?,
            state,
            files,
            stopped,
        )),
        None => tokio::spawn(par_http::serve(listener, state, stopped)),
    };
    tokio::select! {
        _ = shutdown_signal() => {}
        _ = api.shutdown_requested() => tracing::info!("shutdown requested through the API"),
    }
    let _ = stop_tx.send(());
    match tokio::time::timeout(grace, server).await {
        Ok(joined) => joined??,
        Err(_) => {
            tracing::warn!(
                grace_secs = grace.as_secs_f64(),
                "grace period over; stopping workers"
            );
            runtime.shutdown().await;
        }
    }
    if let Some(usage) = usage {
        if let Err(e) = usage.close().await {
            tracing::error!(error = %e, "usage ledger did not close cleanly");
        }
    }
    // After the ledger, so the final pass ships its last batch; bounded, and blocking.
    if let Some(shipper) = shipper {
        let _ = tokio::task::spawn_blocking(move || shipper.close()).await;
    }
    if let Some(spans) = spans {
        spans.shutdown(SPAN_FLUSH).await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// How long shutdown waits for queued spans to reach the collector.
const SPAN_FLUSH: std::time::Duration = std::time::Duration::from_secs(5);

fn start_span_export(
    config: Option<par_telemetry::otlp::OtlpConfig>,
    runtime: &Runtime,
) -> anyhow::Result<Option<par_telemetry::otlp::OtlpExporter>> {
    let Some(mut config) = config else {
        return Ok(None);
    };
    config.counters = runtime.metrics().otlp_counters();
    let exporter = par_telemetry::otlp::OtlpExporter::start(config)
        .map_err(|e| anyhow::anyhow!("OTLP export: {e}"))?;
    tracing::info!(
        endpoint = exporter.endpoint(),
        "exporting call spans over OTLP"
    );
    runtime.set_span_exporter(exporter.clone());
    Ok(Some(exporter))
}

/// Builds the authenticator (OIDC discovery happens here); `None` when auth is off.
async fn access_control(
    auth: crate::auth_settings::AuthSettings,
) -> anyhow::Result<Option<std::sync::Arc<par_http::AccessControl>>> {
    if auth.mode == par_auth::AuthMode::Off {
        tracing::warn!(
            "AUTHENTICATION IS OFF: every caller may invoke every agent and use the management API"
        );
        return Ok(None);
    }
    let authenticator = par_auth::Authenticator::new(
        auth.mode,
        auth.oidc,
        auth.api_keys,
        auth.roles_claim,
        auth.tenant_claim,
    )
    .await
    .map_err(|e| anyhow::anyhow!("auth: {e}"))?;
    tracing::info!(mode = %auth.mode, "authentication on");
    Ok(Some(std::sync::Arc::new(par_http::AccessControl {
        authenticator,
        policy: auth.policy,
        public_ui: auth.public_ui,
    })))
}

/// Opens the usage ledger, creating its folder; `None` when metering is off.
fn open_usage(
    path: Option<&std::path::Path>,
    metrics: &par_telemetry::Metrics,
) -> anyhow::Result<Option<std::sync::Arc<par_telemetry::UsageLedger>>> {
    let Some(path) = path else {
        tracing::info!("usage metering is off");
        return Ok(None);
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    }
    let config = par_telemetry::usage::UsageConfig {
        counters: metrics.usage_counters(),
        ..Default::default()
    };
    let ledger = par_telemetry::UsageLedger::open(path, config)
        .map_err(|e| anyhow::anyhow!("cannot open usage ledger {}: {e}", path.display()))?;
    tracing::info!(path = %path.display(), "usage ledger open");
    Ok(Some(std::sync::Arc::new(ledger)))
}

/// Starts copying the ledger to PostgreSQL; `None` unless `--usage-postgres-url` is set.
fn start_shipper(
    config: Option<par_telemetry::usage::ShipConfig>,
    ledger: Option<&par_telemetry::UsageLedger>,
    metrics: &par_telemetry::Metrics,
) -> anyhow::Result<Option<par_telemetry::UsageShipper>> {
    let (Some(mut config), Some(path)) = (config, ledger.and_then(|ledger| ledger.path())) else {
        return Ok(None);
    };
    config.counters = metrics.ship_counters();
    par_telemetry::UsageShipper::start(path, config)
        .map(Some)
        .map_err(|e| anyhow::anyhow!("usage shipping to PostgreSQL: {e}"))
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!(signal = name, "shutdown requested");
}
