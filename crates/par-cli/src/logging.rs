//! Log output: JSON lines for machines, or pretty text for people; the filter can be
//! changed while running (`PUT /runtime/log-level`).

use std::io::IsTerminal;
use std::sync::Arc;

use par_http::LogControl;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Layer};

use par_core::redact::Redactor;

use crate::cli::LogFormat;
use crate::env_names as env;

/// Installs the global subscriber and returns the handle that changes its filter. Every
/// line passes through `redactor` before it is written.
pub fn init(format: Option<LogFormat>, redactor: Redactor) -> LogControl {
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
            .with_writer(RedactingStdout(redactor))
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_writer(RedactingStdout(redactor))
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

/// Hands out one buffer per log event; the buffer is redacted and written on drop, so
/// a secret split across `write` calls is still caught.
struct RedactingStdout(Redactor);

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactingStdout {
    type Writer = RedactedLine;

    fn make_writer(&'a self) -> Self::Writer {
        RedactedLine {
            redactor: self.0.clone(),
            buffer: Vec::with_capacity(256),
        }
    }
}

struct RedactedLine {
    redactor: Redactor,
    buffer: Vec<u8>,
}

impl std::io::Write for RedactedLine {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactedLine {
    fn drop(&mut self) {
        use std::io::Write;
        let text = String::from_utf8_lossy(&self.buffer);
        let clean = self.redactor.redact(&text);
        let _ = std::io::stdout().lock().write_all(clean.as_bytes());
    }
}
