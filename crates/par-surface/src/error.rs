//! Why an app process could not start, and why a proxied request failed.

use std::path::PathBuf;
use std::time::Duration;

use axum::http::StatusCode;

/// Why [`crate::SurfaceProcess::spawn`] failed. Every variant names what was involved;
/// `stderr` fields hold the last lines the process printed (empty when it printed none).
#[derive(Debug, thiserror::Error)]
pub enum SurfaceError {
    #[error("cannot prepare the socket directory for {label}: {source}")]
    Socket {
        label: String,
        source: std::io::Error,
    },
    #[error("forwarded prefix {0:?} is not a valid header value")]
    InvalidPrefix(String),
    #[error("cannot start python {python}: {source}")]
    Spawn {
        python: PathBuf,
        source: std::io::Error,
    },
    /// The entry could not be imported, or did not give an ASGI app (agent's fault).
    #[error("cannot load {mode} entry {entry}: {message}")]
    Entry {
        mode: &'static str,
        entry: String,
        message: String,
        stderr: String,
    },
    /// uvicorn (or fastapi in `rest` mode) is not installed in the package's environment.
    #[error("the package environment cannot serve HTTP: {message}")]
    ServerMissing { message: String },
    #[error("HTTP app exited during startup ({status}){}", stderr_suffix(.stderr))]
    Exited { status: String, stderr: String },
    #[error("HTTP app did not accept connections within {timeout:?}{}", stderr_suffix(.stderr))]
    StartupTimeout { timeout: Duration, stderr: String },
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!("; stderr ends with:\n{stderr}")
    }
}

/// Why a request could not be proxied to the app. The messages are safe to show callers.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The process has exited; restart it.
    #[error("the package's HTTP app is not running")]
    NotRunning,
    /// The socket refused or failed the connection.
    #[error("cannot connect to the package's HTTP app: {0}")]
    Connect(String),
    /// The connection broke before a complete response head arrived.
    #[error("the package's HTTP app closed the connection: {0}")]
    Broken(String),
    /// No response head within the configured response timeout.
    #[error("the package's HTTP app sent no response within {0:?}")]
    Timeout(Duration),
    /// The path given to `proxy` is not an absolute origin-form path (caller's fault).
    #[error("invalid request path {0:?}")]
    InvalidPath(String),
}

impl ProxyError {
    /// The HTTP status to answer with: 502 for a dead or broken app, 504 for a timeout.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::NotRunning | ProxyError::Connect(_) | ProxyError::Broken(_) => {
                StatusCode::BAD_GATEWAY
            }
            ProxyError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::InvalidPath(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// A machine code for the error body.
    pub fn code(&self) -> &'static str {
        match self {
            ProxyError::NotRunning | ProxyError::Connect(_) | ProxyError::Broken(_) => {
                "app_unavailable"
            }
            ProxyError::Timeout(_) => "timeout",
            ProxyError::InvalidPath(_) => "bad_request",
        }
    }

    /// Whether the process should be checked and restarted.
    pub fn app_down(&self) -> bool {
        matches!(self, ProxyError::NotRunning | ProxyError::Connect(_))
    }
}
