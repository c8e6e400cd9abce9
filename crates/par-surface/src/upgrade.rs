//! WebSocket (and any other HTTP/1.1 `Upgrade`) through the app proxy: the upgrade
//! request goes to the app with its `Connection`/`Upgrade` headers; when the app answers
//! `101 Switching Protocols`, both connections are taken over from hyper and bytes are
//! copied both ways until either side closes or nothing moves for the idle timeout.
//! Frames stay opaque: the app's server bounds message sizes (uvicorn: 16 MiB).

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, Request, Response, StatusCode, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use crate::error::ProxyError;
use crate::process::SurfaceProcess;
use crate::proxy::{add_forwarded, strip_hop_by_hop, target_uri};

/// Whether `request` asks to switch protocols (`GET` with `Connection: upgrade` and an
/// `Upgrade` header), which [`SurfaceProcess::proxy`] relays.
pub fn is_upgrade_request<B>(request: &Request<B>) -> bool {
    let connection_upgrade = request
        .headers()
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    request.method() == Method::GET
        && connection_upgrade
        && request.headers().contains_key(header::UPGRADE)
}

impl SurfaceProcess {
    /// Forwards an upgrade request (see [`is_upgrade_request`]) to the app. Any answer
    /// but `101` comes back as an ordinary response; a `101` comes back with the app's
    /// handshake headers, and a task then relays the two upgraded connections, closing
    /// both after the spec's `websocket_idle_timeout` without a byte in either direction.
    pub(crate) async fn proxy_upgrade(
        &self,
        mut req: Request<Body>,
        path_and_query: &str,
    ) -> Result<Response<Body>, ProxyError> {
        let idle = self.websocket_idle_timeout;
        if !self.is_alive() {
            return Err(ProxyError::NotRunning);
        }
        let uri = target_uri(path_and_query, req.uri().query())?;
        let client_side = hyper::upgrade::on(&mut req);
        let (parts, _body) = req.into_parts();
        let protocol = parts.headers.get(header::UPGRADE).cloned();
        let peer = parts
            .extensions
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map(|info| info.0.ip());
        let mut headers = parts.headers;
        strip_hop_by_hop(&mut headers);
        add_forwarded(&mut headers, peer, &self.prefix);
        keep_upgrade(&mut headers, protocol);
        let mut outgoing = Request::new(Body::empty());
        *outgoing.uri_mut() = uri;
        *outgoing.version_mut() = Version::HTTP_11;
        *outgoing.headers_mut() = headers;
        let sent = tokio::time::timeout(self.response_timeout, self.client.request(outgoing));
        let mut response = match sent.await {
            Err(_) => return Err(ProxyError::Timeout(self.response_timeout)),
            Ok(Err(error)) => return Err(self.classify(&error)),
            Ok(Ok(response)) => response,
        };
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            return Ok(Response::from_parts(parts, Body::new(body)));
        }
        let app_side = hyper::upgrade::on(&mut response);
        let (parts, _body) = response.into_parts();
        let label = self.label().to_string();
        tokio::spawn(relay(client_side, app_side, idle, label));
        Ok(Response::from_parts(parts, Body::empty()))
    }
}

/// The upgrade headers stripped as hop-by-hop, put back for the hop to the app.
fn keep_upgrade(headers: &mut HeaderMap, protocol: Option<HeaderValue>) {
    if let Some(protocol) = protocol {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, protocol);
    }
}

async fn relay(client: OnUpgrade, app: OnUpgrade, idle: Duration, label: String) {
    let (client, app) = match tokio::try_join!(client, app) {
        Ok(both) => both,
        Err(e) => return tracing::debug!(package = %label, error = %e, "upgrade failed"),
    };
    let clock = Arc::new(Activity::new());
    let mut client = Tracked::new(TokioIo::new(client), clock.clone());
    let mut app = Tracked::new(TokioIo::new(app), clock.clone());
    let copy = tokio::io::copy_bidirectional(&mut client, &mut app);
    tokio::pin!(copy);
    loop {
        let deadline = clock.last() + idle;
        tokio::select! {
            done = &mut copy => {
                return match done {
                    Ok((up, down)) => tracing::debug!(package = %label, up, down, "upgraded connection closed"),
                    Err(e) => tracing::debug!(package = %label, error = %e, "upgraded connection broke"),
                };
            }
            _ = tokio::time::sleep_until(deadline) => {
                if clock.last() + idle <= Instant::now() {
                    return tracing::debug!(package = %label, ?idle, "upgraded connection idle: closed");
                }
            }
        }
    }
}

/// When bytes last moved, in milliseconds after `start`.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// An upgraded connection that records when bytes are read from it.
struct Tracked<T> {
    inner: T,
    clock: Arc<Activity>,
}

impl<T> Tracked<T> {
    fn new(inner: T, clock: Arc<Activity>) -> Self {
        Tracked { inner, clock }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.clock.touch();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder().method(method).uri("/ws");
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn only_a_get_with_connection_upgrade_and_upgrade_is_an_upgrade() {
        let ws = [
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
        ];
        assert!(is_upgrade_request(&request(Method::GET, &ws)));
        assert!(!is_upgrade_request(&request(Method::POST, &ws)));
        assert!(!is_upgrade_request(&request(
            Method::GET,
            &[("upgrade", "websocket")]
        )));
        assert!(!is_upgrade_request(&request(
            Method::GET,
            &[("connection", "upgrade")]
        )));
    }

    #[test]
    fn upgrade_headers_are_restored_for_the_app() {
        let mut headers = HeaderMap::new();
        keep_upgrade(&mut headers, Some(HeaderValue::from_static("websocket")));
        assert_eq!(headers[header::CONNECTION], "upgrade");
        assert_eq!(headers[header::UPGRADE], "websocket");
    }
}
