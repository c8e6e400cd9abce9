//! Log output: JSON lines for machines, or pretty text for people.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;
use crate::env_names as env;

pub fn init(format: Option<LogFormat>) {
    let filter = EnvFilter::try_from_env(env::LOG_LEVEL).unwrap_or_else(|_| EnvFilter::new("info"));
    let format = format.unwrap_or(if std::io::stdout().is_terminal() {
        LogFormat::Pretty
    } else {
        LogFormat::Json
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
        LogFormat::Pretty => builder.init(),
    }
}
