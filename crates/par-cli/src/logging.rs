//! Log output: JSON lines for machines, or pretty text for people; the filter can be
//! changed while running (`PUT /runtime/log-level`).

use std::io::IsTerminal;
use std::sync::Arc;

use par_http::LogControl;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Layer};

use crate::cli::LogFormat;
use crate::env_names as env;

/// Installs the global subscriber and returns the handle that changes its filter.
pub fn init(format: Option<LogFormat>) -> LogControl {
    let filter = EnvFilter::try_from_env(env::LOG_LEVEL).unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let format = format.unwrap_or(if std::io::stdout().is_terminal() {
        LogFormat::Pretty
    } else {
        LogFormat::Json
    });
    let output = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_writer(std::io::stdout)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stdout)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .init();
    Arc::new(move |level: &str| {
        let filter =
            EnvFilter::try_new(level).map_err(|e| format!("bad log filter '{level}': {e}"))?;
        handle.reload(filter).map_err(|e| e.to_string())
    })
}
