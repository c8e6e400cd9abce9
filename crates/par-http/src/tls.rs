//! TLS termination by PAR itself, for setups without a load balancer. The certificate
//! and key files are watched and reloaded when they change, without dropping connections.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use std::sync::Arc;

use axum_server::tls_rustls::RustlsConfig;
use tokio::net::TcpStream;

use crate::conn::{ConnectionLimits, Handshake, Watched};

use crate::server::app;
use crate::state::AppState;

/// How often the certificate files are checked for changes.
const RELOAD_CHECK: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Serves HTTPS on `listener` until `shutdown`, then drains and stops every worker.
pub async fn serve_tls<F>(
    listener: std::net::TcpListener,
    state: AppState,
    files: TlsFiles,
    limits: ConnectionLimits,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    // Two crypto backends are linked (ring through other crates): name the one to use.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let config = RustlsConfig::from_pem_file(&files.cert, &files.key).await?;
    tokio::spawn(watch(config.clone(), files));
    let (runtime, draining) = (state.runtime.clone(), state.clone());
    let signal = async move {
        shutdown.await;
        draining.start_draining();
        tracing::info!("shutting down: draining in-flight requests and runs");
    };
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let runs = state.runs.clone();
    crate::conn::serve(listener, app(state), Tls(config), limits, signal).await;
    crate::server::finish_draining(runs, &runtime).await;
    Ok(())
}

/// The TLS handshake with the current certificate (reloads apply to new connections).
#[derive(Clone)]
struct Tls(RustlsConfig);

impl Handshake for Tls {
    type Io = tokio_rustls::server::TlsStream<Watched<TcpStream>>;

    async fn handshake(&self, tcp: Watched<TcpStream>) -> std::io::Result<Self::Io> {
        let mut config = (*self.0.get_inner()).clone();
        // The serve loop speaks HTTP/1.1 only.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
            .accept(tcp)
            .await
    }

    fn plain(&self) -> bool {
        false
    }
}

/// Reloads the certificate and key when either file's modification time changes.
async fn watch(config: RustlsConfig, files: TlsFiles) {
    let mut seen = stamps(&files);
    loop {
        tokio::time::sleep(RELOAD_CHECK).await;
        let now = stamps(&files);
        if now == seen {
            continue;
        }
        match config.reload_from_pem_file(&files.cert, &files.key).await {
            Ok(()) => {
                tracing::info!(cert = %files.cert.display(), "TLS certificate reloaded");
                seen = now;
            }
            // A half-written pair is retried on the next check.
            Err(e) => {
                tracing::warn!(error = %e, "TLS certificate reload failed; keeping the current one")
            }
        }
    }
}

fn stamps(files: &TlsFiles) -> (Option<SystemTime>, Option<SystemTime>) {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (modified(&files.cert), modified(&files.key))
}
