//! A2A for every invocable public agent: its card, and `POST /a2a/{id}` speaking
//! JSON-RPC in protocol 1.0 (`A2A-Version: 1.0`) or 0.3 (no header). A message starts a
//! durable run (A2A tasks are runs: same store, same ids, same rules), so tasks outlive
//! the request and can be fetched, listed, cancelled and re-subscribed.

mod card;
mod files;
mod stream;
mod wire;

use axum::extract::{Path, Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use par_core::Target;
use par_runs::{RunFilter, RunRecord};
use serde_json::{json, Value};

use crate::accounting::CallRecord;
use crate::error::ApiError;
use crate::jsonrpc::{self, RpcError, RpcRequest, INVALID_PARAMS, METHOD_NOT_FOUND};
use crate::request_id::RequestId;
use crate::routes::call_input::{self, CallInput};
use crate::runs::{self, RunOptions};
use crate::state::AppState;
pub(crate) use card::card;
use wire::Version;

/// Who asks, for which agent, in which protocol version.
struct Ask<'a> {
    state: &'a AppState,
    caller: Option<par_auth::Caller>,
    target: Target,
    version: Version,
    rid: &'a str,
    traceparent: Option<String>,
}

/// The agent `id` if `caller` may invoke it and it has a handler: 404 otherwise (private
/// sub-agents and packages without an entrypoint have no A2A face).
pub(crate) fn invocable(
    state: &AppState,
    caller: &Option<par_auth::Caller>,
    id: &str,
) -> Result<Target, ApiError> {
    let target = call_input::authorize_agent(state, caller, id)?;
    if target.package.manifest.entrypoint.is_none() {
        return Err(ApiError::new(
            par_core::ErrorCode::NotInvocable,
            format!("'{id}' has no handler to call"),
        ));
    }
    Ok(target)
}

/// `POST /a2a/{id}`.
pub(crate) async fn endpoint(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RequestId(rid): RequestId,
    request: Request,
) -> Response {
    let headers = request.headers().clone();
    let caller = match crate::auth::authenticate(&state, &headers).await {
        Ok(caller) => caller,
        Err(error) => return error.into_response(),
    };
    let target = match invocable(&state, &caller, &id) {
        Ok(target) => target,
        Err(error) => return error.into_response(),
    };
    let rpc = match jsonrpc::read(request, state.limits.max_body_bytes).await {
        Ok(rpc) => rpc,
        Err(error) => return jsonrpc::error(None, &error),
    };
    let Some(rpc_id) = rpc.id.clone() else {
        return jsonrpc::accepted();
    };
    let version = match version_of(&headers) {
        Ok(version) => version,
        Err(error) => return jsonrpc::error(Some(&rpc_id), &error),
    };
    let ask = Ask {
        state: &state,
        caller,
        target,
        version,
        rid: &rid,
        traceparent: headers
            .get(par_core::trace::HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    };
    match dispatch(&ask, &rpc, &rpc_id).await {
        Ok(Answer::Result(result)) => jsonrpc::result(&rpc_id, result),
        Ok(Answer::Stream(response)) => response,
        Err(error) => jsonrpc::error(Some(&rpc_id), &error),
    }
}

/// `A2A-Version`: `1.0`, or 0.3 when absent (what 0.3 clients send).
fn version_of(headers: &HeaderMap) -> Result<Version, RpcError> {
    match headers.get("a2a-version").map(|v| v.to_str().unwrap_or("")) {
        None => Ok(Version::V03),
        Some(v) if v == "1.0" || v.starts_with("1.0.") => Ok(Version::V1),
        Some(v) if v == "0.3" || v.starts_with("0.3.") => Ok(Version::V03),
        Some(other) => Err(RpcError::new(
            wire::VERSION_NOT_SUPPORTED,
            format!("A2A version '{other}' is not supported (1.0, 0.3)"),
        )),
    }
}

enum Answer {
    Result(Value),
    Stream(Response),
}

async fn dispatch(ask: &Ask<'_>, rpc: &RpcRequest, id: &Value) -> Result<Answer, RpcError> {
    let method = rpc.method.as_str();
    match (ask.version, method) {
        (Version::V1, "SendMessage") | (Version::V03, "message/send") => send(ask, rpc).await,
        (Version::V1, "SendStreamingMessage") | (Version::V03, "message/stream") => {
            let run = start(ask, &rpc.params).await?;
            Ok(Answer::Stream(stream::events(
                store(ask)?.clone(),
                run.run_id,
                0,
                id.clone(),
                ask.version,
            )))
        }
        (Version::V1, "GetTask") | (Version::V03, "tasks/get") => {
            let run = visible(ask, &rpc.params)?;
            Ok(Answer::Result(wire::task(ask.version, &run)))
        }
        (Version::V1, "CancelTask") | (Version::V03, "tasks/cancel") => cancel(ask, &rpc.params),
        (Version::V1, "ListTasks") => list(ask, &rpc.params),
        (Version::V1, "SubscribeToTask") | (Version::V03, "tasks/resubscribe") => {
            let run = visible(ask, &rpc.params)?;
            if run.status.is_terminal() {
                return Err(RpcError::new(
                    wire::UNSUPPORTED_OPERATION,
                    "the task has already ended",
                ));
            }
            let after = store(ask)?
                .events_after(&run.run_id, 0)
                .map(|e| e.len() as i64)
                .unwrap_or(0);
            Ok(Answer::Stream(stream::events(
                store(ask)?.clone(),
                run.run_id,
                after,
                id.clone(),
                ask.version,
            )))
        }
        (_, m) if m.contains("PushNotification") || m.starts_with("tasks/pushNotification") => {
            Err(RpcError::new(
                wire::PUSH_NOT_SUPPORTED,
                "push notifications are not supported",
            ))
        }
        (_, "GetExtendedAgentCard" | "agent/getAuthenticatedExtendedCard") => Err(RpcError::new(
            wire::EXTENDED_CARD_NOT_CONFIGURED,
            "there is no extended agent card",
        )),
        (_, other) => Err(RpcError::new(
            METHOD_NOT_FOUND,
            format!("method '{other}' not found"),
        )),
    }
}

fn store<'a>(ask: &'a Ask<'_>) -> Result<&'a par_runs::Runs, RpcError> {
    runs::store(ask.state).map_err(|e| RpcError::new(wire::UNSUPPORTED_OPERATION, e.message))
}

/// Starts a run for the message in `params` (`params.message`).
async fn start(ask: &Ask<'_>, params: &Value) -> Result<RunRecord, RpcError> {
    let message = wire::params(params)?
        .get("message")
        .ok_or_else(|| RpcError::new(INVALID_PARAMS, "params.message is required"))?;
    let wire::Incoming { mut payload, files } = wire::incoming(message)?;
    let as_error = |e: ApiError| {
        RpcError::new(
            INVALID_PARAMS,
            format!("{}: {}", e.code.as_str(), e.message),
        )
    };
    call_input::check_not_draining(ask.state).map_err(as_error)?;
    let package = ask.target.package.name();
    let uploads = files::attach(ask.state, package, files, &mut payload)
        .await
        .map_err(as_error)?;
    let body = Bytes::from(serde_json::to_vec(&payload).expect("JSON serialises"));
    call_input::check_body(ask.state, &ask.caller, &ask.target, &body).map_err(as_error)?;
    let mut record = CallRecord::start(
        ask.state,
        &ask.target.id,
        ask.rid,
        ask.traceparent.as_deref(),
    );
    record.set_caller(ask.caller.as_ref());
    record.bytes_in = body.len() as u64;
    record.uploads = uploads;
    let input = CallInput {
        body,
        caller: ask.caller.clone(),
        target: ask.target.clone(),
    };
    let (run, _) = runs::start_run(
        ask.state,
        input,
        &ask.target.id,
        record,
        RunOptions::default(),
    )
    .map_err(as_error)?;
    Ok(run)
}

/// `SendMessage`: waits for the task to end (unless `returnImmediately`), then answers
/// with it.
async fn send(ask: &Ask<'_>, rpc: &RpcRequest) -> Result<Answer, RpcError> {
    let run = start(ask, &rpc.params).await?;
    let immediately = rpc.params.pointer("/configuration/returnImmediately") == Some(&json!(true))
        || rpc.params.pointer("/configuration/blocking") == Some(&json!(false));
    let runs = store(ask)?;
    let mut run = run;
    while !immediately && !run.status.is_terminal() {
        // Without a wake-up the run is no longer in flight: what the store says is final.
        let wake = runs.watch(&run.run_id);
        if let Some(mut wake) = wake.clone() {
            let _ = wake.changed().await;
        }
        run = runs.get(&run.run_id).ok().flatten().unwrap_or(run);
        if wake.is_none() {
            break;
        }
    }
    Ok(Answer::Result(wire::task_response(ask.version, &run)))
}

/// The task `params.id` names, if it is this agent's and the caller may see it.
fn visible(ask: &Ask<'_>, params: &Value) -> Result<RunRecord, RpcError> {
    let id = wire::task_id(params)?;
    let not_found = || RpcError::new(wire::TASK_NOT_FOUND, format!("task '{id}' not found"));
    let run = runs::visible_run(ask.state, &ask.caller, id).map_err(|_| not_found())?;
    if run.agent.split('@').next() != Some(ask.target.id.as_str()) {
        return Err(not_found());
    }
    Ok(run)
}

fn cancel(ask: &Ask<'_>, params: &Value) -> Result<Answer, RpcError> {
    let run = visible(ask, params)?;
    let cancelled = store(ask)?.cancel(&run.run_id).unwrap_or(false);
    if !cancelled {
        return Err(RpcError::new(
            wire::TASK_NOT_CANCELABLE,
            "the task has already ended",
        ));
    }
    let run = visible(ask, params)?;
    Ok(Answer::Result(wire::task(ask.version, &run)))
}

/// `ListTasks` (1.0): this agent's tasks the caller may see, newest first.
fn list(ask: &Ask<'_>, params: &Value) -> Result<Answer, RpcError> {
    let size = params.get("pageSize").and_then(Value::as_u64).unwrap_or(50);
    if !(1..=100).contains(&size) {
        return Err(RpcError::new(INVALID_PARAMS, "pageSize must be 1 to 100"));
    }
    let filter = RunFilter {
        owner: (!runs::is_admin(ask.state, &ask.caller)).then(|| runs::owner_of(&ask.caller)),
        agent: Some(ask.target.id.clone()),
        status: None,
        limit: size as usize,
    };
    let found = store(ask)?
        .list(&filter)
        .map_err(|e| RpcError::new(jsonrpc::INVALID_REQUEST, e.to_string()))?;
    let tasks: Vec<Value> = found.iter().map(|r| wire::task(ask.version, r)).collect();
    Ok(Answer::Result(json!({
        "tasks": tasks,
        "nextPageToken": "",
        "pageSize": size,
        "totalSize": found.len(),
    })))
}
