//! A small HTTP/1.1 server for tests, plain or TLS, on 127.0.0.1 with an OS-chosen port.
//! Routes are set per path, each with an optional fault (stall, truncation, failing
//! first requests); every request is counted per path. One request per connection.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

#[derive(Clone, Debug)]
pub(crate) enum Fault {
    None,
    /// Wait this long before answering.
    Delay(Duration),
    /// Send the headers and this many body bytes, then go silent.
    StallAfter(usize),
    /// Announce the full length, send this many bytes, close.
    TruncateAt(usize),
    /// The first `times` requests get `status` (with `Retry-After` when given).
    FailFirst {
        times: usize,
        status: u16,
        retry_after: Option<u64>,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct Route {
    pub body: Vec<u8>,
    pub etag: Option<String>,
    pub fault: Fault,
    /// Send `Content-Length` (otherwise the body ends when the connection closes).
    pub content_length: bool,
}

impl Route {
    pub(crate) fn ok(body: impl Into<Vec<u8>>) -> Self {
        Self {
            body: body.into(),
            etag: None,
            fault: Fault::None,
            content_length: true,
        }
    }

    pub(crate) fn with_fault(mut self, fault: Fault) -> Self {
        self.fault = fault;
        self
    }

    pub(crate) fn with_etag(mut self, etag: &str) -> Self {
        self.etag = Some(etag.to_owned());
        self
    }

    pub(crate) fn without_length(mut self) -> Self {
        self.content_length = false;
        self
    }
}

#[derive(Default)]
struct State {
    routes: Mutex<HashMap<String, Route>>,
    hits: Mutex<HashMap<String, usize>>,
    connections: AtomicUsize,
}

pub(crate) struct TestServer {
    pub addr: SocketAddr,
    scheme: &'static str,
    state: Arc<State>,
    accept_loop: JoinHandle<()>,
}

impl TestServer {
    pub(crate) async fn start() -> Self {
        Self::spawn(None).await
    }

    pub(crate) async fn start_tls(acceptor: TlsAcceptor) -> Self {
        Self::spawn(Some(acceptor)).await
    }

    async fn spawn(tls: Option<TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let scheme = if tls.is_some() { "https" } else { "http" };
        let accept_loop = tokio::spawn(accept(listener, tls, state.clone()));
        Self {
            addr,
            scheme,
            state,
            accept_loop,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    pub(crate) fn put(&self, path: &str, route: Route) {
        self.state
            .routes
            .lock()
            .unwrap()
            .insert(path.to_owned(), route);
    }

    pub(crate) fn hits(&self, path: &str) -> usize {
        *self.state.hits.lock().unwrap().get(path).unwrap_or(&0)
    }

    pub(crate) fn total_hits(&self) -> usize {
        self.state.hits.lock().unwrap().values().sum()
    }

    /// TCP connections accepted (TLS handshakes that failed included).
    pub(crate) fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

async fn accept(listener: TcpListener, tls: Option<TlsAcceptor>, state: Arc<State>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        state.connections.fetch_add(1, Ordering::SeqCst);
        let state = state.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(tcp).await {
                        serve(stream, &state).await;
                    }
                }
                None => serve(tcp, &state).await,
            }
        });
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, state: &State) {
    let Some((path, headers)) = read_head(&mut stream).await else {
        return;
    };
    let hit = {
        let mut hits = state.hits.lock().unwrap();
        let count = hits.entry(path.clone()).or_default();
        *count += 1;
        *count
    };
    let route = state.routes.lock().unwrap().get(&path).cloned();
    let _ = respond(&mut stream, route, hit, &headers).await;
    let _ = stream.shutdown().await;
}

async fn respond<S: AsyncWrite + Unpin>(
    stream: &mut S,
    route: Option<Route>,
    hit: usize,
    headers: &HashMap<String, String>,
) -> std::io::Result<()> {
    let Some(route) = route else {
        return simple(stream, "404 Not Found", "").await;
    };
    if let Fault::FailFirst {
        times,
        status,
        retry_after,
    } = route.fault
    {
        if hit <= times {
            let extra = retry_after
                .map(|s| format!("Retry-After: {s}\r\n"))
                .unwrap_or_default();
            return simple(stream, &format!("{status} Failing"), &extra).await;
        }
    }
    if let Fault::Delay(wait) = route.fault {
        tokio::time::sleep(wait).await;
    }
    if let (Some(etag), Some(asked)) = (&route.etag, headers.get("if-none-match")) {
        if etag == asked {
            return simple(stream, "304 Not Modified", &format!("ETag: {etag}\r\n")).await;
        }
    }
    let mut head = String::from("HTTP/1.1 200 OK\r\nConnection: close\r\n");
    if route.content_length {
        head.push_str(&format!("Content-Length: {}\r\n", route.body.len()));
    }
    if let Some(etag) = &route.etag {
        head.push_str(&format!("ETag: {etag}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    match route.fault {
        Fault::StallAfter(n) => {
            stream.write_all(&route.body[..n]).await?;
            stream.flush().await?;
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Fault::TruncateAt(n) => stream.write_all(&route.body[..n]).await?,
        _ => stream.write_all(&route.body).await?,
    }
    stream.flush().await
}

async fn simple<S: AsyncWrite + Unpin>(
    stream: &mut S,
    status: &str,
    extra: &str,
) -> std::io::Result<()> {
    let text =
        format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n{extra}\r\n");
    stream.write_all(text.as_bytes()).await?;
    stream.flush().await
}

/// Reads the request line and headers; returns the path and lowercase header names.
async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Option<(String, HashMap<String, String>)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if buf.len() > 16 * 1024 || stream.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
    let text = String::from_utf8(buf).ok()?;
    let mut lines = text.split("\r\n");
    let target = lines.next()?.split(' ').nth(1)?;
    let path = target.split('?').next()?.to_owned();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some((path, headers))
}

/// An address where nothing listens (the port was just released).
pub(crate) async fn closed_port_url(path: &str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}{path}")
}
