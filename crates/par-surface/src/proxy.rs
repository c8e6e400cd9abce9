//! Forwarding one request to the app and its response back, both bodies streamed.

use std::error::Error as _;
use std::net::{IpAddr, SocketAddr};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Request, Response, Uri, Version};

use crate::error::ProxyError;
use crate::process::SurfaceProcess;

/// Headers that describe one connection, not the message: never forwarded either way.
const HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");

impl SurfaceProcess {
    /// Forwards `req` to the app as `path_and_query` (the part after `/agents/{package}`,
    /// starting with `/`; when it has no `?query`, the query of `req`'s URI is used).
    /// Method, headers (minus hop-by-hop ones, plus `x-forwarded-*`) and body pass through;
    /// both bodies stream, so server-sent events arrive one by one. The client's address
    /// comes from axum's `ConnectInfo<SocketAddr>` extension when the server provides it.
    /// An upgrade request (WebSocket) is relayed once the app accepts it (`upgrade.rs`).
    pub async fn proxy(
        &self,
        req: Request<Body>,
        path_and_query: &str,
    ) -> Result<Response<Body>, ProxyError> {
        if crate::upgrade::is_upgrade_request(&req) {
            return self.proxy_upgrade(req, path_and_query).await;
        }
        if !self.is_alive() {
            return Err(ProxyError::NotRunning);
        }
        let uri = target_uri(path_and_query, req.uri().query())?;
        let (parts, body) = req.into_parts();
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip());
        let mut headers = parts.headers;
        strip_hop_by_hop(&mut headers);
        // The front server already answered `100-continue` when the body was first read.
        headers.remove(header::EXPECT);
        add_forwarded(&mut headers, peer, &self.prefix);
        let mut outgoing = Request::new(body);
        *outgoing.method_mut() = parts.method;
        *outgoing.uri_mut() = uri;
        *outgoing.version_mut() = Version::HTTP_11;
        *outgoing.headers_mut() = headers;
        let sent = tokio::time::timeout(self.response_timeout, self.client.request(outgoing));
        let response = match sent.await {
            Err(_) => return Err(ProxyError::Timeout(self.response_timeout)),
            Ok(Err(error)) => return Err(self.classify(&error)),
            Ok(Ok(response)) => response,
        };
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        Ok(Response::from_parts(parts, Body::new(body)))
    }

    pub(crate) fn classify(&self, error: &hyper_util::client::legacy::Error) -> ProxyError {
        if !self.is_alive() {
            return ProxyError::NotRunning;
        }
        let detail = describe(error);
        tracing::warn!(package = %self.label(), error = %detail, "proxying to http app failed");
        if error.is_connect() {
            ProxyError::Connect(detail)
        } else {
            ProxyError::Broken(detail)
        }
    }
}

/// The error and its causes on one line (hyper's own message alone says little).
fn describe(error: &hyper_util::client::legacy::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

pub(crate) fn target_uri(path_and_query: &str, query: Option<&str>) -> Result<Uri, ProxyError> {
    let invalid = || ProxyError::InvalidPath(path_and_query.to_string());
    if !path_and_query.starts_with('/')
        || path_and_query.starts_with("//")
        || is_ambiguous(path_and_query)
    {
        return Err(invalid());
    }
    let full = match query {
        Some(q) if !path_and_query.contains('?') => format!("{path_and_query}?{q}"),
        _ => path_and_query.to_string(),
    };
    Uri::builder()
        .scheme("http")
        .authority("localhost")
        .path_and_query(full)
        .build()
        .map_err(|_| invalid())
}

/// Paths an app could read as other than they look: encoded separators
/// (`%2f`, `%5c`), encoded dot segments (`%2e%2e`) and NUL. Plain `..` segments never get
/// here (the router matched the path as given), and the app's own router decodes the
/// rest.
fn is_ambiguous(path: &str) -> bool {
    let lower = path.split('?').next().unwrap_or(path).to_ascii_lowercase();
    let encoded_separator = ["%2f", "%5c", "%00"].iter().any(|e| lower.contains(e));
    let dot_segment = lower
        .replace("%2e", ".")
        .split('/')
        .any(|segment| segment == ".." || segment == ".");
    encoded_separator || dot_segment
}

/// Removes hop-by-hop headers, including those the `connection` header names.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
    let proxy: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("proxy-"))
        .cloned()
        .collect();
    for name in proxy {
        headers.remove(name);
    }
}

/// `x-forwarded-for` gains the peer's address; `x-forwarded-proto` is kept when a front
/// proxy set it (else `http`); `x-forwarded-prefix` is the app's public prefix.
pub(crate) fn add_forwarded(headers: &mut HeaderMap, peer: Option<IpAddr>, prefix: &HeaderValue) {
    if let Some(ip) = peer {
        let previous: Vec<&str> = headers
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let mut chain = previous.join(", ");
        if !chain.is_empty() {
            chain.push_str(", ");
        }
        chain.push_str(&ip.to_string());
        if let Ok(value) = HeaderValue::from_str(&chain) {
            headers.insert(X_FORWARDED_FOR, value);
        }
    }
    if !headers.contains_key(&X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    }
    headers.insert(X_FORWARDED_PREFIX, prefix.clone());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_uri_keeps_or_borrows_the_query() {
        let uri = target_uri("/api/x", Some("a=1")).unwrap();
        assert_eq!(uri.path_and_query().unwrap().as_str(), "/api/x?a=1");
        let uri = target_uri("/api/x?b=2", Some("a=1")).unwrap();
        assert_eq!(uri.path_and_query().unwrap().as_str(), "/api/x?b=2");
        assert!(target_uri("api", None).is_err());
        assert!(target_uri("//evil.example/x", None).is_err());
        assert!(target_uri("/a b", None).is_err());
    }

    #[test]
    fn encoded_separators_and_dot_segments_are_refused() {
        for path in [
            "/api/%2e%2e/secret",
            "/api/%2E%2e/x",
            "/api/.%2e/x",
            "/api/a%2fb",
            "/api/a%5Cb",
            "/api/a%00",
            "/api/./x",
        ] {
            assert!(is_ambiguous(path), "{path}");
        }
        for path in [
            "/api/hello",
            "/api/a%20b",
            "/api/x?next=%2f",
            "/",
            "/api/..x",
        ] {
            assert!(!is_ambiguous(path), "{path}");
        }
    }

    #[test]
    fn hop_by_hop_headers_are_removed() {
        let mut headers = HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, x-secret-hop"),
            ("keep-alive", "timeout=5"),
            ("x-secret-hop", "1"),
            ("proxy-authorization", "Basic x"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("x-request-id", "abc"),
            ("content-type", "text/plain"),
        ] {
            headers.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        strip_hop_by_hop(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
        left.sort();
        assert_eq!(left, ["content-type", "x-request-id"]);
    }

    #[test]
    fn forwarded_headers_are_set() {
        let mut headers = HeaderMap::new();
        headers.insert(X_FORWARDED_FOR, HeaderValue::from_static("10.0.0.1"));
        let prefix = HeaderValue::from_static("/agents/p");
        add_forwarded(&mut headers, Some("127.0.0.1".parse().unwrap()), &prefix);
        assert_eq!(headers[&X_FORWARDED_FOR], "10.0.0.1, 127.0.0.1");
        assert_eq!(headers[&X_FORWARDED_PROTO], "http");
        assert_eq!(headers[&X_FORWARDED_PREFIX], "/agents/p");
    }
}
