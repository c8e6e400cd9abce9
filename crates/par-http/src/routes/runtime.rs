//! `/runtime/...`: probes and the package report.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use par_core::ErrorCode;
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

pub(crate) async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

pub(crate) async fn ready(State(state): State<AppState>) -> Response {
    if state.is_unready() {
        return ApiError::new(ErrorCode::Draining, "the runtime is draining").into_response();
    }
    if !state.runtime.is_ready() {
        return ApiError::new(ErrorCode::Starting, "startup sources are still loading")
            .into_response();
    }
    Json(json!({"status": "ready"})).into_response()
}

pub(crate) async fn packages(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({"packages": state.runtime.reports()}))
}
