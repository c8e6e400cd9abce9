//! `GET /agents` and `GET /agents/{id}`: public agents only.

use axum::extract::{Path, State};
use axum::Json;
use par_core::{AgentInfo, ErrorCode};
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

pub(crate) async fn list(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    crate::auth::authenticate(&state, &headers).await?;
    Ok(Json(json!({"agents": state.runtime.agents()})))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<Json<AgentInfo>, ApiError> {
    crate::auth::authenticate(&state, &headers).await?;
    state
        .runtime
        .agent(&id)
        .map(Json)
        .ok_or_else(|| ApiError::new(ErrorCode::AgentNotFound, format!("no agent '{id}'")))
}
