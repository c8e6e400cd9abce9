//! `GET /a2a/{id}/.well-known/agent-card.json`: the agent card, in the 1.0 form with the
//! 0.3 fields beside it, so clients of either version can read it.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::state::AppState;

pub(crate) async fn card(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let caller = crate::auth::authenticate(&state, &headers).await?;
    let target = super::invocable(&state, &caller, &id)?;
    let info = state
        .runtime
        .agent(&target.id)
        .ok_or_else(|| ApiError::new(par_core::ErrorCode::AgentNotFound, "no such agent"))?;
    let url = format!("{}/a2a/{}", base_url(&headers), info.id);
    let interface = |version: &str| json!({"url": url, "protocolBinding": "JSONRPC", "protocolVersion": version});
    let tags = if info.capabilities.is_empty() {
        vec![info.id.clone()]
    } else {
        info.capabilities.clone()
    };
    Ok(Json(json!({
        "name": info.id,
        "description": info.description,
        "version": info.version,
        "supportedInterfaces": [interface("1.0"), interface("0.3")],
        "capabilities": {"streaming": true, "pushNotifications": false},
        "defaultInputModes": ["application/json", "text/plain"],
        "defaultOutputModes": ["application/json", "text/plain"],
        "skills": [{
            "id": info.id,
            "name": info.id,
            "description": info.description,
            "tags": tags,
        }],
        // The 0.3 card's own fields.
        "url": url,
        "protocolVersion": "0.3.0",
        "preferredTransport": "JSONRPC",
    })))
}

/// `scheme://host` as the caller reached the runtime (`X-Forwarded-Proto` from a TLS
/// proxy in front; the `Host` it used).
fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .filter(|p| *p == "https")
        .unwrap_or("http");
    format!("{scheme}://{host}")
}
