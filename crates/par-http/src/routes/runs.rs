//! `POST /agents/{id}/runs`, `GET /runs/{run_id}`, `POST /runs/{run_id}/cancel`,
//! `GET /runs`: durable runs (see `crate::runs`). `GET /runs/{run_id}/events` is in
//! `run_events.rs`.

use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use par_core::ErrorCode;
use par_runs::{RunFilter, RunRecord, RunStatus};

use crate::accounting::CallRecord;
use crate::error::ApiError;
use crate::request_id::RequestId;
use crate::routes::call_input;
use crate::runs::{self, RunOptions};
use crate::state::AppState;

/// Longest `Idempotency-Key` accepted.
const MAX_KEY_CHARS: usize = 255;
/// `GET /runs` lists this many runs unless `limit` says otherwise, and never more than
/// `MAX_LIST`.
const DEFAULT_LIST: usize = 50;
const MAX_LIST: usize = 1000;

#[derive(serde::Deserialize)]
pub(crate) struct CreateQuery {
    /// The run's own deadline in seconds (capped by `--run-timeout`).
    timeout: Option<f64>,
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RequestId(rid): RequestId,
    Query(query): Query<CreateQuery>,
    request: Request,
) -> Result<Response, ApiError> {
    let options = RunOptions {
        idempotency_key: idempotency_key(request.headers())?,
        timeout: run_timeout(query.timeout)?,
    };
    runs::store(&state)?;
    let traceparent = request
        .headers()
        .get(par_core::trace::HEADER)
        .and_then(|v| v.to_str().ok());
    let mut record = CallRecord::start(&state, &id, &rid, traceparent);
    let input = match call_input::accept(&state, &id, request, &mut record).await {
        Ok(input) => input,
        Err(error) => {
            record.finish(error.code.as_str(), 0);
            return Err(error);
        }
    };
    let (run, _) = runs::start_run(&state, input, &id, record, options)?;
    Ok(accepted(&run))
}

/// 202 with the run's summary and `Location: /runs/{run_id}`.
pub(crate) fn accepted(run: &RunRecord) -> Response {
    let body = serde_json::json!({
        "run_id": run.run_id,
        "agent": run.agent,
        "status": run.status,
        "created_at": par_runs::rfc3339(run.created_ms),
    });
    let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/runs/{}", run.run_id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let bad = || {
        ApiError::new(
            ErrorCode::BadRequest,
            format!("Idempotency-Key must be 1 to {MAX_KEY_CHARS} visible ASCII characters"),
        )
    };
    let key = value.to_str().map_err(|_| bad())?;
    let visible = key.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    if key.is_empty() || key.len() > MAX_KEY_CHARS || !visible {
        return Err(bad());
    }
    Ok(Some(key.to_string()))
}

fn run_timeout(seconds: Option<f64>) -> Result<Option<Duration>, ApiError> {
    match seconds {
        None => Ok(None),
        Some(s) if s.is_finite() && s > 0.0 && s < 1e9 => Ok(Some(Duration::from_secs_f64(s))),
        Some(_) => Err(ApiError::new(
            ErrorCode::BadRequest,
            "timeout must be a positive number of seconds",
        )),
    }
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Path(run_id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    runs::store(&state)?;
    let caller = crate::auth::authenticate(&state, &headers).await?;
    let run = runs::visible_run(&state, &caller, &run_id)?;
    Ok(Json(run.to_json()))
}

/// 202 and the run, now `cancelled`; 409 `conflict` when it had already ended.
pub(crate) async fn cancel(
    State(state): State<AppState>,
    Path(run_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let store = runs::store(&state)?;
    let caller = crate::auth::authenticate(&state, &headers).await?;
    let run = runs::visible_run(&state, &caller, &run_id)?;
    if !store.cancel(&run.run_id).map_err(runs::store_error)? {
        let status = runs::visible_run(&state, &caller, &run_id)?.status;
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("the run has already ended ({})", status.as_str()),
        ));
    }
    let run = runs::visible_run(&state, &caller, &run_id)?;
    Ok((StatusCode::ACCEPTED, Json(run.to_json())).into_response())
}

#[derive(serde::Deserialize)]
pub(crate) struct ListQuery {
    agent: Option<String>,
    status: Option<String>,
    limit: Option<usize>,
}

/// The caller's runs (an admin's: everyone's), newest first.
pub(crate) async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let store = runs::store(&state)?;
    let caller = crate::auth::authenticate(&state, &headers).await?;
    let status = match query.status.as_deref() {
        None => None,
        Some(text) => Some(RunStatus::parse(text).ok_or_else(|| {
            ApiError::new(ErrorCode::BadRequest, format!("unknown status '{text}'"))
        })?),
    };
    let limit = query.limit.unwrap_or(DEFAULT_LIST);
    if limit == 0 || limit > MAX_LIST {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("limit must be 1 to {MAX_LIST}"),
        ));
    }
    let filter = RunFilter {
        owner: (!runs::is_admin(&state, &caller)).then(|| runs::owner_of(&caller)),
        agent: query.agent,
        status,
        limit,
    };
    let found = store.list(&filter).map_err(runs::store_error)?;
    let runs: Vec<_> = found.iter().map(RunRecord::to_json).collect();
    Ok(Json(serde_json::json!({ "runs": runs })))
}
