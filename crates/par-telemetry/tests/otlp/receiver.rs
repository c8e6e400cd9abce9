//! An OTLP/HTTP receiver in the test process: records every request (path, headers,
//! body decoded with the official generated types) and answers with scripted statuses.
//!
//! Why in-process as well as the real receiver of `rotel.rs`: only here can a test script
//! 503s, watch retries and headers, and count requests exactly; and these tests then run
//! on any machine, with or without the external binary.

use std::collections::VecDeque;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub request: ExportTraceServiceRequest,
    /// When the request arrived.
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn span_count(&self) -> usize {
        self.request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum()
    }
}

/// A scripted answer: status and optional `Retry-After` seconds.
pub(crate) type Answer = (StatusCode, Option<u64>);

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    answers: Mutex<VecDeque<Answer>>,
}

pub(crate) struct Receiver {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Receiver {
    /// Listens on 127.0.0.1:0; answers 200 once the scripted answers are used up.
    pub(crate) async fn start(answers: Vec<Answer>) -> Receiver {
        let shared = Arc::new(Shared {
            answers: Mutex::new(answers.into()),
            ..Default::default()
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { addr, shared }
    }

    pub(crate) fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Waits (bounded) until `done` holds for what was received, and returns it.
    pub(crate) async fn wait_for(
        &self,
        what: &str,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let received = self.received();
            if done(&received) {
                return received;
            }
            assert!(
                Instant::now() < until,
                "timed out waiting for {what}: {received:#?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = decode(&headers, &body);
    shared.received.lock().unwrap().push(Received {
        path: uri.path().to_string(),
        headers,
        request,
        at: Instant::now(),
    });
    let answer = shared.answers.lock().unwrap().pop_front();
    match answer {
        Some((status, retry_after)) if !status.is_success() => {
            let mut headers = HeaderMap::new();
            if let Some(seconds) = retry_after {
                headers.insert("retry-after", seconds.into());
            }
            (status, headers).into_response()
        }
        _ => {
            let body = ExportTraceServiceResponse::default().encode_to_vec();
            ([("content-type", "application/x-protobuf")], body).into_response()
        }
    }
}

/// Decodes as a collector does: gzip by `Content-Encoding`, protobuf or JSON by
/// `Content-Type`. A body that does not decode fails the test through the panic.
pub(crate) fn decode(headers: &HeaderMap, body: &[u8]) -> ExportTraceServiceRequest {
    let mut raw = body.to_vec();
    if headers.get("content-encoding").is_some_and(|v| v == "gzip") {
        raw.clear();
        flate2::read::GzDecoder::new(body)
            .read_to_end(&mut raw)
            .expect("gzip body");
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match content_type {
        "application/x-protobuf" => ExportTraceServiceRequest::decode(raw.as_slice()).unwrap(),
        "application/json" => serde_json::from_slice(&raw).unwrap(),
        other => panic!("unexpected content type {other:?}"),
    }
}
