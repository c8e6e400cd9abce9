//! Connections to the app's Unix socket, for hyper-util's pooling client. The URI's
//! authority is ignored: every connection goes to the one socket.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::Uri;
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

#[derive(Clone)]
pub(crate) struct UnixConnector {
    path: Arc<PathBuf>,
    opened: Arc<AtomicU64>,
}

impl UnixConnector {
    pub(crate) fn new(path: PathBuf) -> Self {
        UnixConnector {
            path: Arc::new(path),
            opened: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Connections opened so far (pooling keeps this far below the request count).
    pub(crate) fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }
}

type Connecting = Pin<Box<dyn Future<Output = std::io::Result<TokioIo<UnixStream>>> + Send>>;

impl tower_service::Service<Uri> for UnixConnector {
    type Response = TokioIo<UnixStream>;
    type Error = std::io::Error;
    type Future = Connecting;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        let path = self.path.clone();
        let opened = self.opened.clone();
        Box::pin(async move {
            let stream = UnixStream::connect(path.as_path()).await?;
            opened.fetch_add(1, Ordering::Relaxed);
            Ok(TokioIo::new(stream))
        })
    }
}
