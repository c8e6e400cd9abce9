//! `POST /agents/{id}/invoke`: JSON in, the contract's envelope out, or Server-Sent Events
//! when the caller accepts `text/event-stream`.

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use par_core::{ActiveCall, ErrorCode, StreamEvent};

use crate::accounting::{CallRecord, CLIENT_GONE};

/// A quiet stream sends a comment line this often.
const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(15);
/// The success envelope around the data: `{"status":"success","data":…,"error":null}`.
const ENVELOPE_HEAD: &[u8] = b"{\"status\":\"success\",\"data\":";
const ENVELOPE_TAIL: &[u8] = b",\"error\":null}";
const ENVELOPE_BYTES: u64 = (ENVELOPE_HEAD.len() + ENVELOPE_TAIL.len()) as u64;

use crate::error::ApiError;
use crate::request_id::RequestId;
use crate::state::AppState;

pub async fn invoke(
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
    if state.is_draining() {
        return Err(ApiError::new(
            ErrorCode::Draining,
            "the runtime is draining",
        ));
    }
    // Credentials first (no probing of ids without them), then the agent (private ones
    // are 404 for everyone), then the permission, all before the body is read.
    let caller = crate::auth::authenticate(state, request.headers()).await?;
    let target = state.runtime.resolve(id).map_err(ApiError::from_invoke)?;
    crate::auth::authorize_invoke(state, &caller, &target)?;
    record.set_caller(caller.as_ref());
    let wants_stream = accepts_event_stream(request.headers());
    let (body, uploads) = if crate::multipart::is_multipart(&request) {
        let limits = &state.limits;
        // Under the package's uploads folder, which its jail sees.
        let uploads = state.runtime.config().uploads_dir(target.package.name());
        let (body, folder) = crate::multipart::read(
            request,
            &uploads,
            limits.max_upload_bytes,
            limits.max_body_bytes,
        )
        .await?;
        (body, Some(folder))
    } else {
        (read_body(request, state.limits.max_body_bytes).await?, None)
    };
    record.uploads = uploads;
    record.bytes_in = body.len() as u64;
    check_dispatched_action(state, &caller, &target, &body)?;
    let mut call = state
        .runtime
        .start_call(id, &body, &record.meta)
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

/// A package's main agent dispatches on `action` to its sub-agents, so a main-agent call
/// naming a sub-agent is a call of that sub-agent and is refused as calling it directly
/// would be: 404 for a private one, 403 without its role, 503 when it is disabled.
fn check_dispatched_action(
    state: &AppState,
    caller: &Option<par_auth::Caller>,
    target: &par_core::Target,
    body: &[u8],
) -> Result<(), ApiError> {
    if target.sub_agent.is_some() {
        return Ok(());
    }
    let Some(action) = par_core::dispatched_action(body) else {
        return Ok(());
    };
    let manifest = &target.package.manifest;
    if !manifest.sub_agents.iter().any(|s| s.name == action) {
        return Ok(());
    }
    let sub = state
        .runtime
        .resolve(&action)
        .map_err(ApiError::from_invoke)?;
    crate::auth::authorize_invoke(state, caller, &sub)
}

fn accepts_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream"))
}

async fn read_body(request: Request, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            ErrorCode::TooLarge,
            format!("body is larger than {limit} bytes"),
        )
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    match Limited::new(request.into_body(), limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(too_large()),
        Err(e) => Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("cannot read body: {e}"),
        )),
    }
}

/// `{"status":"success","data":<result>,"error":null}`, spliced without re-parsing the
/// result the worker already serialised.
fn success(data: &[u8]) -> Response {
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

fn sse_frame(event: Option<&str>, data: &[u8]) -> Bytes {
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
