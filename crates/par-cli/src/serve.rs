//! `par serve`: settings -> runtime -> listener -> serve until a signal.

use std::collections::HashMap;
use std::process::ExitCode;

use par_core::Runtime;
use par_http::AppState;

use crate::cli::ServeArgs;
use crate::settings::{self, ServeSettings};

pub(crate) fn main(args: ServeArgs) -> ExitCode {
    let vars: HashMap<String, String> = std::env::vars().collect();
    let file = match &args.config {
        Some(path) => match settings::read_config_file(path) {
            Ok(file) => file,
            Err(e) => return usage_error(&[e]),
        },
        None => ServeArgs::default(),
    };
    let mut settings = match settings::resolve(args, file, &vars) {
        Ok(s) => s,
        Err(errors) => return usage_error(&errors),
    };
    let cache_dir = settings.runtime.cache_dir.clone();
    // Created first: the sandbox's egress proxy counts into it as well.
    let metrics = par_telemetry::Metrics::new();
    let egress = crate::sandbox_settings::ProxyEgress::new(&settings, metrics.clone());
    let launcher_note;
    match crate::sandbox_settings::check_host(
        &settings.sandbox,
        &settings.network,
        egress,
        &cache_dir,
    ) {
        Ok((sandbox, note)) => {
            settings.runtime.sandbox = sandbox;
            launcher_note = note;
        }
        Err(e) => return usage_error(&[e]),
    }
    let (log_control, _log_guard) =
        crate::logging::init(settings.log_format, settings.runtime.redactor.clone());
    raise_open_files_limit();
    if let Some(note) = launcher_note {
        tracing::warn!("{note}");
    }
    match &settings.runtime.sandbox {
        Some(s) => tracing::info!(
            network = s.network.as_str(),
            max_pids = s.limits.pids,
            max_disk_mb = s.limits.disk_mb,
            cgroup = s.cgroups.version().unwrap_or("none"),
            packages_with_limits = s.package_limits.len(),
            launcher = %s.launcher.display(),
            "sandbox strict"
        ),
        None => tracing::warn!("{}", par_core::sandbox::OFF_WARNING),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(settings, metrics, log_control)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "par serve failed");
            ExitCode::FAILURE
        }
    }
}

/// Every connection, worker channel and log pipe is a file descriptor: take the hard
/// limit the operator allows instead of the often tiny soft default (1,024 or less).
fn raise_open_files_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => tracing::info!(from = soft, to = hard, "raised the open files limit"),
            Err(e) => tracing::warn!(error = %e, soft, hard, "cannot raise the open files limit"),
        },
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read the open files limit"),
    }
}

fn usage_error(errors: &[String]) -> ExitCode {
    for e in errors {
        eprintln!("par: {e}");
    }
    ExitCode::from(2)
}

async fn run(
    settings: ServeSettings,
    metrics: par_telemetry::Metrics,
    log_control: par_http::LogControl,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.listen))?;
    let addr = listener.local_addr()?;
    let services = Services::start(&settings, metrics).await?;
    let runtime = build_runtime(&settings, &services)?;
    let state = AppState::new(
        runtime.clone(),
        http_config(&settings, &services, log_control).await?,
    );
    let api = state.clone();
    let scheme = if settings.tls.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(addr = %addr, scheme, "listening");
    log_network(&settings.network);
    let loader = runtime.clone();
    let sources = settings.sources.clone();
    let url = format!("{scheme}://{addr}");
    tokio::spawn(async move {
        loader.load_startup_sources(&sources).await;
        let agents = loader.agents().len();
        tracing::info!(url, agents, "serving");
    });
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stopped = async move {
        let _ = stop_rx.await;
    };
    let server = match settings.tls {
        Some(files) => tokio::spawn(par_http::serve_tls(
            listener.into_std()?,
            state,
            files,
            settings.connections.clone(),
            stopped,
        )),
        None => tokio::spawn(par_http::serve(
            listener,
            state,
            settings.connections.clone(),
            stopped,
        )),
    };
    tokio::select! {
        _ = shutdown_signal() => {}
        _ = api.shutdown_requested() => tracing::info!("shutdown requested through the API"),
    }
    // Two steps: readiness fails first and everything else keeps serving for the drain
    // grace (load balancers notice and stop sending), then the listener closes and calls
    // in flight drain.
    api.stop_being_ready();
    if !settings.drain_grace.is_zero() {
        tracing::info!(
            grace_secs = settings.drain_grace.as_secs_f64(),
            "not ready: draining from load balancers"
        );
        tokio::time::sleep(settings.drain_grace).await;
    }
    let _ = stop_tx.send(());
    drain(server, &api, &runtime, settings.shutdown_grace).await?;
    services.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// What the runtime reports to, started before it: the usage ledger and its shipper,
/// span export, and the metrics they count into.
struct Services {
    metrics: par_telemetry::Metrics,
    usage: Option<std::sync::Arc<par_telemetry::UsageLedger>>,
    shipper: Option<par_telemetry::UsageShipper>,
    spans: Option<par_telemetry::otlp::OtlpExporter>,
    fetcher: par_registry::Fetcher,
    runs: par_runs::Runs,
    /// Purges runs past their retention while the runtime serves.
    retention: tokio::task::JoinHandle<()>,
}

impl Services {
    async fn start(
        settings: &ServeSettings,
        metrics: par_telemetry::Metrics,
    ) -> anyhow::Result<Services> {
        let usage = open_usage(
            settings.usage_db.as_deref(),
            settings.usage_bounds,
            &metrics,
        )?;
        let shipper = start_shipper(settings.usage_ship.clone(), usage.as_deref(), &metrics)?;
        let spans = start_span_export(settings.otlp.clone(), &metrics)?;
        let runs = crate::runs_settings::open_store(&settings.runs)?;
        let retention = runs.spawn_retention(RETENTION_SWEEP);
        let fetcher = par_registry::Fetcher::new(settings.fetch.fetch.clone())
            .await
            .map_err(|e| anyhow::anyhow!("package fetching: {e}"))?;
        Ok(Services {
            metrics,
            usage,
            shipper,
            spans,
            fetcher,
            runs,
            retention,
        })
    }

    /// Closes the ledger, then ships its last batch, then flushes spans; each bounded.
    async fn close(self) {
        self.retention.abort();
        if let Some(usage) = self.usage {
            if let Err(e) = usage.close().await {
                tracing::error!(error = %e, "usage ledger did not close cleanly");
            }
        }
        if let Some(shipper) = self.shipper {
            let _ = tokio::task::spawn_blocking(move || shipper.close()).await;
        }
        if let Some(spans) = self.spans {
            spans.shutdown(SPAN_FLUSH).await;
        }
    }
}

fn build_runtime(
    settings: &ServeSettings,
    services: &Services,
) -> anyhow::Result<std::sync::Arc<Runtime>> {
    if let Some(registry) = &settings.fetch.registry {
        tracing::info!(
            every_secs = registry.interval.as_secs_f64(),
            "following registry index"
        );
    }
    let runtime = Runtime::builder(settings.runtime.clone(), services.metrics.clone())
        .fetcher(services.fetcher.clone())
        .registry(settings.fetch.registry.clone())
        .usage_ledger(services.usage.clone())
        .span_exporter(services.spans.clone())
        .build()?;
    Ok(runtime)
}

async fn http_config(
    settings: &ServeSettings,
    services: &Services,
    log_control: par_http::LogControl,
) -> anyhow::Result<par_http::HttpConfig> {
    let auth = &settings.auth;
    Ok(par_http::HttpConfig {
        limits: settings.http.clone(),
        site: par_http::SiteRules::new(
            auth.mode == par_auth::AuthMode::Off,
            auth.allowed_hosts.clone(),
        ),
        access: access_control(auth, settings.listen).await?,
        usage: services.usage.clone(),
        log_control: Some(log_control),
        runs: Some(services.runs.clone()),
        run_timeout: settings.runs.timeout,
        sources: settings.source_policy.clone(),
    })
}

/// Lets in-flight requests and runs finish within `grace`; past it, interrupts the runs
/// still going (recorded `interrupted`, not failed by their workers' stop) and stops the
/// workers anyway.
async fn drain(
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    state: &AppState,
    runtime: &Runtime,
    grace: std::time::Duration,
) -> anyhow::Result<()> {
    match tokio::time::timeout(grace, server).await {
        Ok(joined) => joined??,
        Err(_) => {
            tracing::warn!(
                grace_secs = grace.as_secs_f64(),
                "grace period over; stopping workers"
            );
            par_http::interrupt_runs(state);
            runtime.shutdown().await;
        }
    }
    Ok(())
}

/// The network settings the jails will apply (the egress proxy is `par-egress`).
fn log_network(network: &par_egress::EgressSettings) {
    let allow: Vec<String> = network.allow.iter().map(ToString::to_string).collect();
    tracing::info!(
        default = %network.default_network,
        egress_allow = %allow.join(","),
        packages = network.packages.len(),
        "network policy"
    );
}

/// How often runs past their retention are removed.
const RETENTION_SWEEP: std::time::Duration = std::time::Duration::from_secs(3600);

/// How long shutdown waits for queued spans to reach the collector.
const SPAN_FLUSH: std::time::Duration = std::time::Duration::from_secs(5);

fn start_span_export(
    config: Option<par_telemetry::otlp::OtlpConfig>,
    metrics: &par_telemetry::Metrics,
) -> anyhow::Result<Option<par_telemetry::otlp::OtlpExporter>> {
    let Some(mut config) = config else {
        return Ok(None);
    };
    config.counters = metrics.otlp_counters();
    let exporter = par_telemetry::otlp::OtlpExporter::start(config)
        .map_err(|e| anyhow::anyhow!("OTLP export: {e}"))?;
    tracing::info!(
        endpoint = exporter.endpoint(),
        "exporting call spans over OTLP"
    );
    Ok(Some(exporter))
}

/// Builds the authenticator (OIDC discovery happens here); `None` when auth is off.
async fn access_control(
    auth: &crate::auth_settings::AuthSettings,
    listen: std::net::SocketAddr,
) -> anyhow::Result<Option<std::sync::Arc<par_http::AccessControl>>> {
    // Off on loopback is the laptop default (only this machine can connect): said, not
    // warned about. Off anywhere else was asked for explicitly and exposes everything.
    if auth.mode == par_auth::AuthMode::Off && listen.ip().is_loopback() {
        tracing::info!("authentication off: listening on loopback only (--auth to turn it on)");
        return Ok(None);
    }
    if auth.mode == par_auth::AuthMode::Off {
        tracing::warn!(
            "AUTHENTICATION IS OFF: every caller may invoke every agent and use the management API"
        );
        return Ok(None);
    }
    let authenticator = par_auth::Authenticator::new(
        auth.mode,
        auth.oidc.clone(),
        auth.api_keys.clone(),
        auth.roles_claim.clone(),
        auth.tenant_claim.clone(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("auth: {e}"))?;
    tracing::info!(mode = %auth.mode, "authentication on");
    Ok(Some(std::sync::Arc::new(par_http::AccessControl {
        authenticator,
        policy: auth.policy.clone(),
        public_ui: auth.public_ui.clone(),
    })))
}

/// Opens the usage ledger, creating its folder; `None` when metering is off.
fn open_usage(
    path: Option<&std::path::Path>,
    bounds: crate::usage_settings::LedgerBounds,
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
        retention: bounds.retention,
        size_warning_bytes: bounds.size_warning_bytes,
        ..Default::default()
    };
    let ledger = par_telemetry::UsageLedger::open(path, config)
        .map_err(|e| anyhow::anyhow!("cannot open usage ledger {}: {e}", path.display()))?;
    tracing::info!(
        path = %path.display(),
        retention_days = bounds.retention.map_or(0, |d| d.as_secs() / 86_400),
        "usage ledger open"
    );
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
