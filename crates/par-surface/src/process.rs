//! One app process: starting it, knowing when it is ready or gone, and stopping it.

use std::path::Path;
use std::time::Duration;

use axum::body::Body;
use axum::http::HeaderValue;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use nix::sys::signal::Signal;
use par_worker::child::{self, Exit, Watched};
use tokio::net::UnixStream;
use tokio::process::Child;
use tokio::sync::watch;

use crate::connector::UnixConnector;
use crate::error::SurfaceError;
use crate::output::{self, Tail};
use crate::script::{SurfaceMode, EXIT_ENTRY, EXIT_SERVER_MISSING};

/// How long a proxied request waits for the app's response head by default.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a relayed WebSocket may stay silent in both directions by default.
pub const DEFAULT_WEBSOCKET_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Idle pooled connections are closed after this; `par_asgi.py` keeps them open longer on
/// its side, so the host never reuses a connection the server is about to close.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
const POOL_MAX_IDLE: usize = 128;
/// How often startup checks whether the socket accepts connections.
const READY_POLL: Duration = Duration::from_millis(25);
/// How long a failed startup waits for the rest of stderr before reporting.
const STDERR_SETTLE: Duration = Duration::from_secs(2);

/// Everything needed to start one app process.
#[derive(Debug, Clone)]
pub struct SurfaceSpec {
    /// The process: interpreter, `par_asgi.py` (from [`crate::script::materialize`]),
    /// environment, jail.
    pub program: child::Program,
    pub mode: SurfaceMode,
    /// `module:attr` (`rest.entry`, `http_server` or `a2a.http_server`).
    pub entry: String,
    /// Public path prefix of the app, `/agents/{package}`, sent as `x-forwarded-prefix`.
    pub forwarded_prefix: String,
    /// How long a proxied request waits for the response head (504 after that).
    pub response_timeout: Duration,
    /// How long a relayed WebSocket (upgraded) connection may carry no byte either way
    /// before both sides are closed.
    pub websocket_idle_timeout: Duration,
}

/// A running app process and the pooled client that talks to it. Dropping it kills the
/// process group (kill-on-drop is the backstop; [`SurfaceProcess::stop`] is the polite way).
pub struct SurfaceProcess {
    label: String,
    pid: u32,
    pub(crate) client: Client<UnixConnector, Body>,
    connector: UnixConnector,
    pub(crate) prefix: HeaderValue,
    pub(crate) response_timeout: Duration,
    pub(crate) websocket_idle_timeout: Duration,
    process: Watched,
    _socket_dir: tempfile::TempDir,
}

impl SurfaceProcess {
    /// Starts the process and waits until its socket accepts connections.
    pub async fn spawn(spec: SurfaceSpec) -> Result<SurfaceProcess, SurfaceError> {
        let prefix = HeaderValue::from_str(&spec.forwarded_prefix)
            .map_err(|_| SurfaceError::InvalidPrefix(spec.forwarded_prefix.clone()))?;
        let socket_dir =
            par_worker::socket_dir::create(par_worker::socket_dir::APP).map_err(|source| {
                SurfaceError::Socket {
                    label: spec.program.label.clone(),
                    source,
                }
            })?;
        let socket = socket_dir.path().join("s");
        let mut child = start_process(&spec, socket_dir.path(), &socket)?;
        output::forward(
            child.stdout.take().expect("piped"),
            spec.program.label.clone(),
            "stdout",
            spec.program.log_budget.clone(),
        );
        let stderr = output::forward(
            child.stderr.take().expect("piped"),
            spec.program.label.clone(),
            "stderr",
            spec.program.log_budget.clone(),
        );
        let process = Watched::start(child, spec.program.label.clone(), "http app");
        let pid = process.pid();
        wait_ready(&socket, process.exit_receiver(), &spec, &stderr).await?;
        tracing::debug!(package = %spec.program.label, pid, mode = spec.mode.as_str(), "http app ready");
        let connector = UnixConnector::new(socket);
        let client = pooled_client(connector.clone());
        Ok(SurfaceProcess {
            label: spec.program.label,
            pid,
            client,
            connector,
            prefix,
            response_timeout: spec.response_timeout,
            websocket_idle_timeout: spec.websocket_idle_timeout,
            process,
            _socket_dir: socket_dir,
        })
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// False once the process has exited (then restart it).
    pub fn is_alive(&self) -> bool {
        !self.process.has_exited()
    }

    /// Connections opened to the app so far; with pooling this stays near the peak number
    /// of concurrent requests, not the request count.
    pub fn connections_opened(&self) -> u64 {
        self.connector.opened()
    }

    /// Resolves when the process has exited, with a description of how.
    pub async fn exited(&self) -> String {
        self.process.exited().await.text
    }

    /// Stops the app: SIGTERM (uvicorn finishes in-flight requests), then SIGKILL to the
    /// whole process group when `grace` is over. Always reaps the process.
    pub async fn stop(&self, grace: Duration) {
        if !self.is_alive() {
            return;
        }
        self.process.signal(Signal::SIGTERM);
        if tokio::time::timeout(grace, self.exited()).await.is_err() {
            self.kill_now();
            self.exited().await;
        }
    }

    /// SIGKILL to the process group, at once.
    pub fn kill_now(&self) {
        self.process.kill_now();
    }
}

/// Keep-alive connections to the app, reused across requests (never one per request).
fn pooled_client(connector: UnixConnector) -> Client<UnixConnector, Body> {
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_max_idle_per_host(POOL_MAX_IDLE)
        .build(connector)
}

fn start_process(
    spec: &SurfaceSpec,
    socket_dir: &Path,
    socket: &Path,
) -> Result<Child, SurfaceError> {
    let program = &spec.program;
    let settings = vec![
        ("PAR_ASGI_SOCKET", socket.into()),
        ("PAR_ASGI_ROOT", program.package_root.clone().into()),
        ("PAR_ASGI_MODE", spec.mode.as_str().into()),
        ("PAR_ASGI_ENTRY", spec.entry.clone().into()),
    ];
    program
        .start(settings, socket_dir)
        .map_err(|source| SurfaceError::Spawn {
            python: program.python.clone(),
            source,
        })
}

/// Polls the socket until it accepts a connection, the process exits, or time runs out.
async fn wait_ready(
    socket: &Path,
    mut exit: watch::Receiver<Option<Exit>>,
    spec: &SurfaceSpec,
    stderr: &Tail,
) -> Result<(), SurfaceError> {
    let deadline = tokio::time::Instant::now() + spec.program.startup_timeout;
    loop {
        if UnixStream::connect(socket).await.is_ok() {
            return Ok(());
        }
        let finished = exit.borrow().clone();
        if let Some(exit) = finished {
            stderr.finished(STDERR_SETTLE).await;
            return Err(startup_failure(spec, &exit, &stderr.lines()));
        }
        if tokio::time::Instant::now() >= deadline {
            stderr.finished(Duration::ZERO).await;
            return Err(SurfaceError::StartupTimeout {
                timeout: spec.program.startup_timeout,
                stderr: stderr.lines().join("\n"),
            });
        }
        tokio::select! {
            _ = exit.changed() => {}
            _ = tokio::time::sleep(READY_POLL) => {}
        }
    }
}

fn startup_failure(spec: &SurfaceSpec, exit: &Exit, lines: &[String]) -> SurfaceError {
    let reported = |marker: &str| {
        lines
            .iter()
            .rev()
            .find_map(|l| l.strip_prefix(marker))
            .map(str::to_string)
    };
    let stderr = lines.join("\n");
    match exit.code {
        Some(EXIT_ENTRY) => {
            let marker = format!(
                "par-asgi: cannot load {} entry {}: ",
                spec.mode.as_str(),
                spec.entry
            );
            SurfaceError::Entry {
                mode: spec.mode.as_str(),
                entry: spec.entry.clone(),
                message: reported(&marker).unwrap_or_else(|| "import failed".into()),
                stderr,
            }
        }
        Some(EXIT_SERVER_MISSING) => SurfaceError::ServerMissing {
            message: reported("par-asgi: ").unwrap_or_else(|| exit.text.clone()),
        },
        _ => SurfaceError::Exited {
            status: exit.text.clone(),
            stderr,
        },
    }
}
