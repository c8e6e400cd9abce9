//! `/metrics`, `GET /runtime/usage`, `PUT /runtime/log-level`, and the middleware that
//! counts HTTP requests by matched route.

use axum::extract::{MatchedPath, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use par_core::ErrorCode;
use par_telemetry::UsageQuery;
use serde::Deserialize;

use crate::error::ApiError;
use crate::state::AppState;

pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let mut response = state.runtime.metrics().encode().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(par_telemetry::metrics::CONTENT_TYPE),
    );
    response
}

/// Counts every request under its route template (never the raw path).
pub(crate) async fn count_requests(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let response = next.run(request).await;
    state
        .runtime
        .metrics()
        .http_request(route.as_deref(), response.status().as_u16());
    response
}

pub(crate) async fn usage(
    State(state): State<AppState>,
    query: Result<Query<UsageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::new(ErrorCode::BadRequest, e.body_text()))?;
    let ledger = state
        .usage
        .as_ref()
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "usage metering is off"))?;
    let report = ledger.query(&query).await.map_err(|e| {
        tracing::error!(error = %e, "usage query failed");
        ApiError::new(ErrorCode::Internal, "usage query failed")
    })?;
    Ok(Json(report).into_response())
}

#[derive(Deserialize)]
pub(crate) struct LogLevel {
    level: String,
}

/// `PUT /runtime/log-level {"level": "debug"}` (any `PAR_LOG` filter).
pub(crate) async fn set_log_level(
    State(state): State<AppState>,
    Json(body): Json<LogLevel>,
) -> Result<Response, ApiError> {
    let control = state
        .log_control
        .as_ref()
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "log level is fixed in this process"))?;
    control(&body.level).map_err(|e| ApiError::new(ErrorCode::BadRequest, e))?;
    tracing::info!(level = %body.level, "log level changed");
    Ok((
        StatusCode::OK,
        Json(serde_json::json!({"level": body.level})),
    )
        .into_response())
}
