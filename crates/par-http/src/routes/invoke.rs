//! `POST /agents/{id}/invoke`: JSON in, the contract's envelope out, or Server-Sent Events
//! when the caller accepts `text/event-stream`.

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use par_core::{ActiveCall, StreamEvent};

use crate::accounting::{CallRecord, CLIENT_GONE};
use crate::routes::call_input::{self, accepts_event_stream};

/// A quiet stream sends a comment line this often.
pub(crate) const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(15);
/// The success envelope around the data: `{"status":"success","data":…,"error":null}`.
const ENVELOPE_HEAD: &[u8] = b"{\"status\":\"success\",\"data\":";
const ENVELOPE_TAIL: &[u8] = b",\"error\":null}";
const ENVELOPE_BYTES: u64 = (ENVELOPE_HEAD.len() + ENVELOPE_TAIL.len()) as u64;

use crate::error::ApiError;
use crate::request_id::RequestId;
use crate::state::AppState;

pub(crate) async fn invoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RequestId(rid): RequestId,
    request: Request,
) -> Response {
    let traceparent = request
        .headers()
        .get(par_core::trace::HEADER)
        .and_then(|v| v.to_str().ok());
    let mut record = CallRecord::start(&state, &id, &rid, traceparent);
    match run(&state, &id, request, &mut record).await {
        Ok(Outcome::Done {
            response,
            bytes_out,
        }) => {
            record.finish("ok", bytes_out);
            response
        }
        Ok(Outcome::Streaming(call)) => event_stream(*call, rid, record),
        Err(error) => {
            record.finish(error.code.as_str(), 0);
            error.into_response()
        }
    }
}

enum Outcome {
    Done {
        response: Response,
        bytes_out: u64,
    },
    /// The stream's task finishes the record when the stream ends.
    Streaming(Box<ActiveCall>),
}

async fn run(
    state: &AppState,
    id: &str,
    request: Request,
    record: &mut CallRecord,
) -> Result<Outcome, ApiError> {
    let wants_stream = accepts_event_stream(request.headers());
    let input = call_input::accept(state, id, request, record).await?;
    let mut call = state
        .runtime
        .start_call(id, &input.body, &record.meta)
        .await
        .map_err(ApiError::from_invoke)?;
    record.taken_by(&call);
    if wants_stream {
        return Ok(Outcome::Streaming(Box::new(call)));
    }
    let data = call.finish().await.map_err(ApiError::from_invoke)?;
    Ok(Outcome::Done {
        response: success(&data),
        bytes_out: data.len() as u64 + ENVELOPE_BYTES,
    })
}

/// `{"status":"success","data":<result>,"error":null}`, spliced without re-parsing the
/// result the worker already serialised.
pub(crate) fn success(data: &[u8]) -> Response {
    let mut body = Vec::with_capacity(data.len() + ENVELOPE_BYTES as usize);
    body.extend_from_slice(ENVELOPE_HEAD);
    body.extend_from_slice(data);
    body.extend_from_slice(ENVELOPE_TAIL);
    json_response(body)
}

fn json_response(body: Vec<u8>) -> Response {
    let mut response = Body::from(body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Sends each item as soon as the worker yields it, with a comment line as heartbeat
/// when the handler is quiet (proxies close idle connections). Dropping the response
/// (the client went away) drops the call, which cancels the handler.
fn event_stream(mut call: ActiveCall, rid: String, record: CallRecord) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(16);
    tokio::spawn(async move {
        let mut heartbeat =
            tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
        let mut bytes_out = 0u64;
        let code = loop {
            let event = tokio::select! {
                event = call.next_event() => event,
                _ = heartbeat.tick() => {
                    if tx.send(Ok(Bytes::from_static(b": keep-alive\n\n"))).await.is_err() {
                        break CLIENT_GONE;
                    }
                    continue;
                }
            };
            let (frame, code) = match event {
                StreamEvent::Item(item) => (sse_frame(None, &item), None),
                StreamEvent::Done => (sse_frame(Some("done"), b"{}"), Some("ok")),
                StreamEvent::Failed(e) => {
                    let code = e.code.as_str();
                    let body = ApiError::from_invoke(e).body(&rid).to_string();
                    (sse_frame(Some("error"), body.as_bytes()), Some(code))
                }
            };
            bytes_out += frame.len() as u64;
            if tx.send(Ok(frame)).await.is_err() {
                break CLIENT_GONE;
            }
            if let Some(code) = code {
                break code;
            }
        };
        drop(call);
        record.finish(code, bytes_out);
    });
    sse_response(rx)
}

/// A server-sent-events response streaming the frames sent into `rx`'s channel, with the
/// headers that keep proxies from caching or buffering it.
pub(crate) fn sse_response(rx: tokio::sync::mpsc::Receiver<Result<Bytes, Infallible>>) -> Response {
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

pub(crate) fn sse_frame(event: Option<&str>, data: &[u8]) -> Bytes {
    let mut frame = Vec::with_capacity(data.len() + 24);
    if let Some(event) = event {
        frame.extend_from_slice(b"event: ");
        frame.extend_from_slice(event.as_bytes());
        frame.push(b'\n');
    }
    // JSON from the worker is compact (no raw newlines), so one data line suffices.
    frame.extend_from_slice(b"data: ");
    frame.extend_from_slice(data);
    frame.extend_from_slice(b"\n\n");
    frame.into()
}
