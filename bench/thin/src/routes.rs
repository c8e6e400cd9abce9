//! The baseline's three routes: invoke (JSON or SSE) and static files.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State as Extract};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use par_worker::{Call, Reply, Worker};

#[derive(Clone)]
pub(crate) struct State {
    pub worker: Arc<Worker>,
    pub ui: Option<PathBuf>,
}

pub(crate) fn app(state: State) -> Router {
    Router::new()
        .route("/agents/{id}/invoke", post(invoke))
        .route("/ui/{*path}", get(static_file))
        .with_state(state)
}

async fn invoke(Extract(state): Extract<State>, headers: HeaderMap, body: Bytes) -> Response {
    let call = match state
        .worker
        .call(par_worker::protocol::CallRequest {
            request_id: "",
            traceparent: "",
            payload: &body,
        })
        .await
    {
        Ok(call) => call,
        Err(_) => return failed(StatusCode::BAD_GATEWAY, "worker gone"),
    };
    if wants_events(&headers) {
        return events(call);
    }
    collect(call).await
}

/// Waits for the result (streamed items become a JSON array) and wraps it like PAR.
async fn collect(mut call: Call) -> Response {
    let mut items: Vec<Bytes> = Vec::new();
    loop {
        match call.next().await {
            Reply::Result(data) => return envelope(&data),
            Reply::Item(item) => items.push(item),
            Reply::End => return envelope(&join(&items)),
            // The baseline routes no agent-to-agent calls: dropping one answers it.
            Reply::Usage(_) | Reply::Outcall(_) => {}
            Reply::Error(e) => return failed(StatusCode::INTERNAL_SERVER_ERROR, &e.message),
            Reply::Crashed | Reply::Oversized { .. } => {
                return failed(StatusCode::BAD_GATEWAY, "worker crashed")
            }
        }
    }
}

/// One `data:` event per item, then `event: done`, as PAR sends them.
fn events(mut call: Call) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(16);
    tokio::spawn(async move {
        loop {
            let frame = match call.next().await {
                Reply::Item(item) | Reply::Result(item) => sse(None, &item),
                Reply::Usage(_) | Reply::Outcall(_) => continue,
                Reply::End => sse(Some("done"), b"{}"),
                Reply::Error(_) | Reply::Crashed | Reply::Oversized { .. } => {
                    sse(Some("error"), b"{}")
                }
            };
            let last = frame.starts_with(b"event:");
            if tx.send(Ok(frame)).await.is_err() || last {
                return;
            }
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    response
}

async fn static_file(Extract(state): Extract<State>, Path(path): Path<String>) -> Response {
    let Some(root) = state.ui else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if path.split('/').any(|part| part == "..") {
        return StatusCode::NOT_FOUND.into_response();
    }
    match tokio::fs::read(root.join(&path)).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, content_type(&path))], bytes).into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("js") => "text/javascript; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn wants_events(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"))
}

fn envelope(data: &[u8]) -> Response {
    let mut body = Vec::with_capacity(data.len() + 48);
    body.extend_from_slice(b"{\"status\":\"success\",\"data\":");
    body.extend_from_slice(data);
    body.extend_from_slice(b",\"error\":null}");
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn failed(status: StatusCode, message: &str) -> Response {
    (
        status,
        format!("{{\"status\":\"error\",\"message\":{message:?}}}"),
    )
        .into_response()
}

fn join(items: &[Bytes]) -> Vec<u8> {
    let mut out = vec![b'['];
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item);
    }
    out.push(b']');
    out
}

fn sse(event: Option<&str>, data: &[u8]) -> Bytes {
    let mut frame = Vec::with_capacity(data.len() + 24);
    if let Some(event) = event {
        frame.extend_from_slice(format!("event: {event}\n").as_bytes());
    }
    frame.extend_from_slice(b"data: ");
    frame.extend_from_slice(data);
    frame.extend_from_slice(b"\n\n");
    frame.into()
}
