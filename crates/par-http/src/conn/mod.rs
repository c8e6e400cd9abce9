//! The accept loop, for HTTP and HTTPS alike: a cap on open connections, and timeouts
//! for a request head, an idle keep-alive connection and a stalled request body, so slow
//! or silent clients cannot hold the runtime's connections and file descriptors.

mod body;
mod clock;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue, Request, Response};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use par_core::ErrorCode;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tower_service::Service;

use crate::error::ApiError;
use body::{SlowBodyGuard, TimedOut, Tracked};
pub(crate) use clock::Watched;
use clock::{Clock, Timeouts};

/// Limits of the HTTP connections (`--max-connections`, `--header-read-timeout`,
/// `--keep-alive-timeout`, `--body-read-timeout`).
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Connections open at once; beyond it a new one gets 503 `overloaded` and is closed.
    pub max_connections: usize,
    /// From a head's first byte (or the connection's opening, for its first request,
    /// TLS handshake included) to the head's end.
    pub header_read_timeout: Duration,
    /// How long a connection may wait, idle, for its next request.
    pub keep_alive_timeout: Duration,
    /// How long a request body may pause between two reads.
    pub body_read_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 4096,
            header_read_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(75),
            body_read_timeout: Duration::from_secs(30),
        }
    }
}

/// Turns an accepted socket into the stream HTTP is spoken on (TLS or not).
pub(crate) trait Handshake: Clone + Send + Sync + 'static {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn handshake(
        &self,
        tcp: Watched<TcpStream>,
    ) -> impl Future<Output = std::io::Result<Self::Io>> + Send;
    /// Whether a refusal can be written to the socket as plain HTTP.
    fn plain(&self) -> bool;
}

#[derive(Clone)]
pub(crate) struct Plain;

impl Handshake for Plain {
    type Io = Watched<TcpStream>;
    async fn handshake(&self, tcp: Watched<TcpStream>) -> std::io::Result<Self::Io> {
        Ok(tcp)
    }
    fn plain(&self) -> bool {
        true
    }
}

/// Serves `app` until `shutdown` resolves, then closes idle connections, lets requests in
/// flight finish, and returns once every connection is closed.
pub(crate) async fn serve<H: Handshake>(
    listener: TcpListener,
    app: Router,
    handshake: H,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let limits = Arc::new(limits);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors, mostly: wait for some to close.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tokio::spawn(refuse(tcp, handshake.plain()));
            continue;
        };
        let connection = Connection {
            app: app.clone(),
            peer,
            limits: limits.clone(),
        };
        let (handshake, stop) = (handshake.clone(), stop_rx.clone());
        tokio::spawn(async move {
            connection.run(tcp, handshake, stop).await;
            drop(slot);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every slot back means every connection closed.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
}

/// Over the cap: a short 503 in plain HTTP (nothing for TLS), then close.
async fn refuse(mut tcp: TcpStream, plain: bool) {
    tracing::warn!("connection refused: --max-connections reached");
    if !plain {
        return;
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    let body = ApiError::new(ErrorCode::Overloaded, "too many open connections")
        .body(&id)
        .to_string();
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nx-request-id: {id}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let write = async {
        tcp.write_all(head.as_bytes()).await?;
        tcp.write_all(body.as_bytes()).await?;
        tcp.shutdown().await?;
        // Read what the client sent, so closing does not reset the answer away.
        let mut sink = tokio::io::sink();
        tokio::io::copy(&mut tcp, &mut sink).await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}

struct Connection {
    app: Router,
    peer: SocketAddr,
    limits: Arc<ConnectionLimits>,
}

impl Connection {
    async fn run<H: Handshake>(
        self,
        tcp: TcpStream,
        handshake: H,
        mut stop: watch::Receiver<bool>,
    ) {
        let clock = Clock::new(Timeouts {
            header: self.limits.header_read_timeout,
            keep_alive: self.limits.keep_alive_timeout,
        });
        let io = tokio::select! {
            io = handshake.handshake(Watched::new(tcp, clock.clone())) => match io {
                Ok(io) => io,
                Err(e) => return tracing::debug!(peer = %self.peer, error = %e, "handshake failed"),
            },
            _ = clock.expired() => return tracing::debug!(peer = %self.peer, "handshake timed out"),
        };
        let service = ConnService {
            app: self.app.clone(),
            peer: self.peer,
            body_limit: self.limits.body_read_timeout,
            clock: clock.clone(),
        };
        let conn = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        tokio::pin!(conn);
        let mut stopping = *stop.borrow();
        if stopping {
            conn.as_mut().graceful_shutdown();
        }
        loop {
            tokio::select! {
                _ = conn.as_mut() => return,
                why = clock.expired() => {
                    return tracing::debug!(peer = %self.peer, reason = ?why, "connection timed out");
                }
                _ = stop.changed(), if !stopping => {
                    stopping = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// The router, with the peer address, the body timeout and the request's place in the
/// connection's clock.
#[derive(Clone)]
struct ConnService {
    app: Router,
    peer: SocketAddr,
    body_limit: Duration,
    clock: Arc<Clock>,
}

type Answer = Result<Response<axum::body::Body>, std::convert::Infallible>;

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<axum::body::Body>;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<Box<dyn Future<Output = Answer> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let in_flight = self.clock.request_started();
        let timed_out = TimedOut::default();
        let (mut parts, incoming) = request.into_parts();
        parts.extensions.insert(ConnectInfo(self.peer));
        let guarded = SlowBodyGuard::new(incoming, self.body_limit, timed_out.clone());
        let request = Request::from_parts(parts, axum::body::Body::new(guarded));
        let mut app = self.app.clone();
        Box::pin(async move {
            let response = app.call(request).await?;
            let response = if timed_out.happened() {
                request_timeout(&response)
            } else {
                response
            };
            Ok(response.map(|b| axum::body::Body::new(Tracked::new(b, in_flight))))
        })
    }
}

/// 408 with the contract's body, and the connection closed: what is left of the body on
/// the wire cannot be told from the next request.
fn request_timeout(answered: &Response<axum::body::Body>) -> Response<axum::body::Body> {
    let id = answered
        .headers()
        .get(crate::request_id::HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let error = ApiError::new(
        ErrorCode::RequestTimeout,
        "the request body stopped arriving (--body-read-timeout)",
    );
    tracing::warn!(request_id = %id, "request body read timed out");
    let mut response = Response::new(axum::body::Body::from(error.body(&id).to_string()));
    *response.status_mut() = crate::error::status_of(error.code);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    if let Ok(value) = HeaderValue::from_str(&id) {
        headers.insert(crate::request_id::HEADER, value);
    }
    response
}
