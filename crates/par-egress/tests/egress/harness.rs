//! Proxies, upstream servers and clients for the tests, and polling with deadlines.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use par_egress::{
    parse_list, serve, Direction, EgressConfig, EgressObserver, EgressPolicy, Outcome,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Long enough for a loaded CI machine; every wait polls and returns as soon as it can.
pub(crate) const DEADLINE: Duration = Duration::from_secs(20);

/// Records what the proxy reports.
#[derive(Default)]
pub(crate) struct Recorder {
    outcomes: Mutex<Vec<(String, Outcome)>>,
    bytes: Mutex<HashMap<(String, &'static str), u64>>,
}

impl EgressObserver for Recorder {
    fn connection(&self, package: &str, outcome: Outcome) {
        self.outcomes
            .lock()
            .unwrap()
            .push((package.to_owned(), outcome));
    }

    fn bytes(&self, package: &str, direction: Direction, n: u64) {
        let mut bytes = self.bytes.lock().unwrap();
        *bytes
            .entry((package.to_owned(), direction.as_str()))
            .or_default() += n;
    }
}

impl Recorder {
    pub(crate) fn outcomes(&self) -> Vec<Outcome> {
        self.outcomes
            .lock()
            .unwrap()
            .iter()
            .map(|(_, o)| *o)
            .collect()
    }

    pub(crate) fn bytes(&self, package: &str, direction: Direction) -> u64 {
        let bytes = self.bytes.lock().unwrap();
        bytes
            .get(&(package.to_owned(), direction.as_str()))
            .copied()
            .unwrap_or(0)
    }

    /// Waits until `n` connections have ended; returns their outcomes.
    pub(crate) async fn wait_for(&self, n: usize) -> Vec<Outcome> {
        let outcomes = poll(|| {
            let seen = self.outcomes();
            (seen.len() >= n).then_some(seen)
        })
        .await;
        assert_eq!(
            outcomes.len(),
            n,
            "more connections than expected: {outcomes:?}"
        );
        outcomes
    }
}

/// Polls `check` every few milliseconds until it returns `Some`, failing at [`DEADLINE`].
pub(crate) async fn poll<T>(mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "condition not reached within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A running proxy for one package.
pub(crate) struct Proxy {
    pub addr: SocketAddr,
    pub recorder: Arc<Recorder>,
    task: JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Builds a policy: `allow` and `list` are comma-separated patterns.
pub(crate) fn policy(
    allow: &str,
    list: Option<&str>,
    own: &[SocketAddr],
    config: EgressConfig,
) -> Arc<EgressPolicy> {
    Arc::new(EgressPolicy::new(
        parse_list(allow).unwrap(),
        list.map(|l| parse_list(l).unwrap()),
        own.to_vec(),
        config,
    ))
}

impl Proxy {
    pub(crate) async fn start(package: &'static str, policy: Arc<EgressPolicy>) -> Proxy {
        Self::start_with(package, policy, Arc::new(Recorder::default())).await
    }

    pub(crate) async fn start_with(
        package: &'static str,
        policy: Arc<EgressPolicy>,
        recorder: Arc<Recorder>,
    ) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let observer: Arc<dyn EgressObserver> = recorder.clone();
        let task = tokio::spawn(serve(listener, Arc::from(package), policy, observer));
        Proxy {
            addr,
            recorder,
            task,
        }
    }

    /// Allowing exactly `allow`, default limits.
    pub(crate) async fn allowing(allow: &str) -> Proxy {
        Self::start("pkg", policy(allow, None, &[], EgressConfig::default())).await
    }

    pub(crate) async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.unwrap()
    }

    /// Sends `CONNECT authority` and returns the stream and the proxy's answer head (and,
    /// for a refusal, its body).
    pub(crate) async fn tunnel(&self, authority: &str) -> (TcpStream, String) {
        let mut stream = self.connect().await;
        let req = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n");
        stream.write_all(req.as_bytes()).await.unwrap();
        let head = read_head(&mut stream).await;
        (stream, head)
    }

    /// Sends raw request bytes, reads the whole answer until the proxy closes.
    pub(crate) async fn exchange(&self, request: &[u8]) -> String {
        let mut stream = self.connect().await;
        stream.write_all(request).await.unwrap();
        read_all(&mut stream).await
    }
}

/// Reads up to the end of a head (and, when it says `Connection: close` with a short body,
/// the body too: refusals are small).
pub(crate) async fn read_head(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    let read = async {
        while !buf.ends_with(b"\r\n\r\n") {
            if stream.read(&mut byte).await.unwrap() == 0 {
                break;
            }
            buf.push(byte[0]);
        }
        let text = String::from_utf8_lossy(&buf).into_owned();
        if !text.starts_with("HTTP/1.1 200") {
            let mut rest = Vec::new();
            let _ = stream.read_to_end(&mut rest).await;
            return text + &String::from_utf8_lossy(&rest);
        }
        text
    };
    tokio::time::timeout(DEADLINE, read)
        .await
        .expect("answer in time")
}

pub(crate) async fn read_all(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut buf))
        .await
        .expect("the proxy closes in time")
        .unwrap();
    String::from_utf8_lossy(&buf).into_owned()
}

pub(crate) fn status(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"))
}

/// Bytes and connections an upstream server saw.
#[derive(Default)]
pub(crate) struct Counts {
    pub accepted: AtomicU64,
    pub received: AtomicU64,
    pub sent: AtomicU64,
    pub requests: Mutex<Vec<String>>,
}

impl Counts {
    pub(crate) fn get(&self) -> (u64, u64, u64) {
        (
            self.accepted.load(Ordering::SeqCst),
            self.received.load(Ordering::SeqCst),
            self.sent.load(Ordering::SeqCst),
        )
    }
}

/// A loopback server; dropping it stops it.
pub(crate) struct Upstream {
    pub addr: SocketAddr,
    pub counts: Arc<Counts>,
    task: JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }

    async fn spawn<F, Fut>(handler: F) -> Upstream
    where
        F: Fn(TcpStream, Arc<Counts>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let counts = Arc::new(Counts::default());
        let shared = counts.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                shared.accepted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(handler(stream, shared.clone()));
            }
        });
        Upstream { addr, counts, task }
    }

    /// Echoes every byte back, counting.
    pub(crate) async fn echo() -> Upstream {
        Self::spawn(|mut stream: TcpStream, counts: Arc<Counts>| async move {
            let mut buf = vec![0u8; 8192];
            loop {
                let n = match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                counts.received.fetch_add(n as u64, Ordering::SeqCst);
                if stream.write_all(&buf[..n]).await.is_err() {
                    break;
                }
                counts.sent.fetch_add(n as u64, Ordering::SeqCst);
            }
        })
        .await
    }

    /// Accepts and never answers.
    pub(crate) async fn silent() -> Upstream {
        Self::spawn(|mut stream: TcpStream, _| async move {
            let mut buf = vec![0u8; 8192];
            while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
        })
        .await
    }

    /// A small HTTP/1.1 server: reads one request (head and `Content-Length` body),
    /// answers `200` with `upstream saw <method> <path> body=<n>` and closes. The raw
    /// request heads are kept.
    pub(crate) async fn http() -> Upstream {
        Self::spawn(|stream: TcpStream, counts: Arc<Counts>| serve_http(stream, counts)).await
    }
}

async fn serve_http<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
    counts: Arc<Counts>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                counts.received.fetch_add(n as u64, Ordering::SeqCst);
                buf.extend_from_slice(&chunk[..n]);
            }
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                counts.received.fetch_add(n as u64, Ordering::SeqCst);
                buf.extend_from_slice(&chunk[..n]);
            }
        }
    }
    let mut words = head.split(' ');
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let body = format!("upstream saw {method} {path} body={length}");
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nKeep-Alive: timeout=5\r\n\r\n{body}",
        body.len()
    );
    counts.requests.lock().unwrap().push(head);
    if stream.write_all(response.as_bytes()).await.is_ok() {
        counts
            .sent
            .fetch_add(response.len() as u64, Ordering::SeqCst);
    }
    let _ = stream.shutdown().await;
}

/// The HTTP server of [`Upstream::http`] behind TLS (for HTTPS through `CONNECT`).
pub(crate) async fn https_upstream(acceptor: tokio_rustls::TlsAcceptor) -> Upstream {
    Upstream::spawn(move |stream: TcpStream, counts: Arc<Counts>| {
        let acceptor = acceptor.clone();
        async move {
            if let Ok(tls) = acceptor.accept(stream).await {
                serve_http(tls, counts).await;
            }
        }
    })
    .await
}

/// A port nothing listens on (bound, then closed).
pub(crate) async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// Short limits for the limit tests.
pub(crate) fn quick(config: impl FnOnce(&mut EgressConfig)) -> EgressConfig {
    let mut c = EgressConfig::default();
    config(&mut c);
    c
}
