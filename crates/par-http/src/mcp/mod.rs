//! MCP over streamable HTTP: `POST /mcp` (every agent the caller may invoke, as tools)
//! and `POST /mcp/{id}` (one agent). Stateless: no session id, one JSON response per
//! request, notifications acknowledged with 202. `GET` (a server-to-client stream) is
//! not offered, so it answers 405 as the transport spec says.

mod tools;
mod versions;

use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::jsonrpc::{self, RpcError, RpcRequest, METHOD_NOT_FOUND};
use crate::request_id::RequestId;
use crate::state::AppState;
use tools::Scope;

/// `POST /mcp`.
pub(crate) async fn all_agents(
    State(state): State<AppState>,
    RequestId(rid): RequestId,
    request: Request,
) -> Response {
    serve(&state, None, &rid, request).await
}

/// `POST /mcp/{id}`: the same server, limited to one agent.
pub(crate) async fn one_agent(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RequestId(rid): RequestId,
    request: Request,
) -> Response {
    serve(&state, Some(&id), &rid, request).await
}

async fn serve(state: &AppState, only: Option<&str>, rid: &str, request: Request) -> Response {
    // Credentials first, then the agent, as for invoke: 401 and 404 are HTTP answers.
    let caller = match crate::auth::authenticate(state, request.headers()).await {
        Ok(caller) => caller,
        Err(error) => return error.into_response(),
    };
    if let Some(id) = only {
        if let Err(error) = crate::routes::call_input::authorize_agent(state, &caller, id) {
            return error.into_response();
        }
    }
    let headers = request.headers().clone();
    let traceparent = headers
        .get(par_core::trace::HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let rpc = match jsonrpc::read(request, state.limits.max_body_bytes).await {
        Ok(rpc) => rpc,
        Err(error) => return jsonrpc::error(None, &error),
    };
    let era = match versions::era(&rpc, &headers) {
        Ok(era) => era,
        Err(error) => return jsonrpc::error(rpc.id.as_ref(), &error),
    };
    let Some(id) = rpc.id.clone() else {
        // Notifications (initialized, cancelled...) need nothing from a stateless server.
        return jsonrpc::accepted();
    };
    let scope = Scope {
        state,
        caller: &caller,
        only,
    };
    match dispatch(&scope, &rpc, rid, traceparent.as_deref()).await {
        Ok(result) => jsonrpc::result(&id, versions::finish_result(era, &rpc.method, result)),
        Err(error) => jsonrpc::error(Some(&id), &versions::with_status(era, error)),
    }
}

async fn dispatch(
    scope: &Scope<'_>,
    rpc: &RpcRequest,
    rid: &str,
    traceparent: Option<&str>,
) -> Result<Value, RpcError> {
    match rpc.method.as_str() {
        "initialize" => versions::initialize(&rpc.params),
        "server/discover" => Ok(versions::discover()),
        "ping" => Ok(json!({})),
        "tools/list" => Ok(tools::list(scope)),
        "tools/call" => {
            let params = versions::params_object(rpc)?;
            tools::call(scope, params, rid, traceparent).await
        }
        other => Err(RpcError::new(
            METHOD_NOT_FOUND,
            format!("method '{other}' is not served here"),
        )),
    }
}
