//! What every way of calling an agent checks before the call starts — invoke, durable
//! runs, MCP tools and A2A messages alike: not draining, credentials (before any lookup,
//! so ids cannot be probed), the agent (private ones are 404 for everyone), the caller's
//! permission, the body, and the sub-agent a main-agent body dispatches to.

use axum::extract::Request;
use axum::http::{header, HeaderMap};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use par_core::{ErrorCode, Target};

use crate::accounting::CallRecord;
use crate::error::ApiError;
use crate::state::AppState;

/// A call that passed every check: its body as the handler will get it (multipart
/// already turned into JSON) and the agent that will take it.
pub(crate) struct CallInput {
    pub body: Bytes,
    pub caller: Option<par_auth::Caller>,
    pub target: Target,
}

/// Refuses new calls while the runtime drains.
pub(crate) fn check_not_draining(state: &AppState) -> Result<(), ApiError> {
    if state.is_draining() {
        return Err(ApiError::new(
            ErrorCode::Draining,
            "the runtime is draining",
        ));
    }
    Ok(())
}

/// Every check of an HTTP call on `id`, reading its body (JSON or multipart) into
/// `record`.
pub(crate) async fn accept(
    state: &AppState,
    id: &str,
    request: Request,
    record: &mut CallRecord,
) -> Result<CallInput, ApiError> {
    check_not_draining(state)?;
    let caller = crate::auth::authenticate(state, request.headers()).await?;
    let target = authorize_agent(state, &caller, id)?;
    record.set_caller(caller.as_ref());
    let body = if crate::multipart::is_multipart(&request) {
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
        record.uploads = Some(folder);
        body
    } else {
        read_body(request, state.limits.max_body_bytes).await?
    };
    record.bytes_in = body.len() as u64;
    check_dispatched_action(state, &caller, &target, &body)?;
    Ok(CallInput {
        body,
        caller,
        target,
    })
}

/// The agent `id` as `caller` may call it: 404 for unknown and private ids, 403 without
/// the grant or role.
pub(crate) fn authorize_agent(
    state: &AppState,
    caller: &Option<par_auth::Caller>,
    id: &str,
) -> Result<Target, ApiError> {
    let target = state.runtime.resolve(id).map_err(ApiError::from_invoke)?;
    crate::auth::authorize_invoke(state, caller, &target)?;
    Ok(target)
}

/// The checks for a body that arrived some other way than as a request body (an MCP
/// tool's arguments, an A2A message): the dispatched sub-agent, then the body itself.
pub(crate) fn check_body(
    state: &AppState,
    caller: &Option<par_auth::Caller>,
    target: &Target,
    body: &[u8],
) -> Result<(), ApiError> {
    check_dispatched_action(state, caller, target, body)?;
    state
        .runtime
        .check_body(target, body)
        .map_err(ApiError::from_invoke)
}

/// A package's main agent dispatches on `action` to its sub-agents, so a main-agent call
/// naming a sub-agent is a call of that sub-agent and is refused as calling it directly
/// would be: 404 for a private one, 403 without its role, 503 when it is disabled.
fn check_dispatched_action(
    state: &AppState,
    caller: &Option<par_auth::Caller>,
    target: &Target,
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
    authorize_agent(state, caller, &action).map(drop)
}

pub(crate) fn accepts_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream"))
}

/// The request body, refused past `limit` bytes (413) before it is all read.
pub(crate) async fn read_body(request: Request, limit: usize) -> Result<Bytes, ApiError> {
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
