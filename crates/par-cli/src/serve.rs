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
    crate::logging::init(settings.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(settings)) {
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

async fn run(settings: ServeSettings) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.listen))?;
    let addr = listener.local_addr()?;
    let runtime = Runtime::new(settings.runtime)?;
    let state = AppState::new(runtime.clone(), settings.http);
    let api = state.clone();
    tracing::info!(addr = %addr, "listening");
    let loader = runtime.clone();
    let sources = settings.sources.clone();
    tokio::spawn(async move { loader.load_startup_sources(&sources).await });
    let grace = settings.shutdown_grace;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(par_http::serve(listener, state, async move {
        let _ = stop_rx.await;
    }));
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
    tracing::info!("stopped");
    Ok(())
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
