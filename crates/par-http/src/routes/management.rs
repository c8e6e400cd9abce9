//! The management API under `/runtime/`: load (from a source or an uploaded file),
//! poll a load, unload, reload, enable/disable an agent, shut down.

use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::TryStreamExt;
use par_core::{ErrorCode, LoadRequest};
use serde::Deserialize;
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;
use crate::upload;

/// Options of a load, as JSON fields or query parameters.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoadOptions {
    pub source: Option<String>,
    pub sha256: Option<String>,
    /// Retire the other versions of the package once this one is active (default true).
    pub replace: Option<bool>,
    /// Allow a downgrade.
    pub force: Option<bool>,
    /// Name for an uploaded file in reports.
    pub filename: Option<String>,
}

impl LoadOptions {
    fn request(&self, source: String) -> LoadRequest {
        LoadRequest {
            source,
            expected_sha256: self.sha256.clone(),
            replace: self.replace.unwrap_or(true),
            force: self.force.unwrap_or(false),
        }
    }
}

/// Room for a form's boundaries, part headers and option fields around an uploaded file.
const FORM_ROOM: u64 = 64 * 1024;

/// `POST /runtime/packages`: JSON `{"source", "sha256"?, "replace"?, "force"?}`, a raw
/// `.apkg` body (`application/octet-stream`, options in the query), or multipart with a
/// `file` field. Answers 202 with the load id to poll.
pub(crate) async fn load(
    State(state): State<AppState>,
    Query(query): Query<LoadOptions>,
    request: Request,
) -> Result<Response, ApiError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let bad = |m: String| ApiError::new(ErrorCode::BadRequest, m);
    if !content_type.starts_with("application/json") {
        // An upload (raw or in a form, whose part headers need a little room).
        let limit = state.limits.max_upload_bytes.saturating_add(FORM_ROOM);
        if crate::body_limit::declared_length(&request).is_some_and(|n| n > limit) {
            return Err(crate::body_limit::too_large(
                state.limits.max_upload_bytes,
                "upload",
            ));
        }
    }
    let load = if content_type.starts_with("application/json") {
        let Json(options) = Json::<LoadOptions>::from_request(request, &())
            .await
            .map_err(|e| bad(e.body_text()))?;
        let source = options
            .source
            .clone()
            .ok_or_else(|| bad("field 'source' is required".into()))?;
        // Only a named source is checked: an upload is stored by PAR itself.
        state
            .sources
            .check(&source)
            .await
            .map_err(|reason| ApiError::new(ErrorCode::Forbidden, reason))?;
        options.request(source)
    } else if content_type.starts_with("multipart/form-data") {
        let multipart = Multipart::from_request(request, &())
            .await
            .map_err(|e| bad(e.body_text()))?;
        multipart_load(&state, query, multipart).await?
    } else {
        let stream = request
            .into_body()
            .into_data_stream()
            .map_err(std::io::Error::other);
        let name = query
            .filename
            .clone()
            .unwrap_or_else(|| "upload.apkg".into());
        let path = upload::store(&state, stream, &name).await?;
        query.request(path)
    };
    let (id, deduplicated) = state.runtime.submit_load(load);
    let body = json!({
        "load_id": id,
        "state": "loading",
        "deduplicated": deduplicated,
        "status_url": format!("/runtime/loads/{id}"),
    });
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

async fn multipart_load(
    state: &AppState,
    mut options: LoadOptions,
    mut multipart: Multipart,
) -> Result<LoadRequest, ApiError> {
    let bad = |m: String| ApiError::new(ErrorCode::BadRequest, m);
    let mut stored = None;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| crate::multipart::multipart_error(&e))?
    {
        match field.name().unwrap_or("") {
            "file" => {
                let name = field.file_name().unwrap_or("upload.apkg").to_string();
                let stream = field.map_err(std::io::Error::other);
                stored = Some(upload::store(state, stream, &name).await?);
            }
            "sha256" => options.sha256 = Some(field.text().await.map_err(|e| bad(e.body_text()))?),
            "replace" => {
                options.replace =
                    Some(field.text().await.map_err(|e| bad(e.body_text()))? == "true")
            }
            "force" => {
                options.force = Some(field.text().await.map_err(|e| bad(e.body_text()))? == "true")
            }
            other => return Err(bad(format!("unexpected form field '{other}'"))),
        }
    }
    let path = stored.ok_or_else(|| bad("multipart load needs a 'file' field".into()))?;
    Ok(options.request(path))
}

/// `GET /runtime/loads/{id}`.
pub(crate) async fn load_status(
    State(state): State<AppState>,
    Path(id): Path<u64>,
) -> Result<Response, ApiError> {
    let job = state
        .runtime
        .load_job(id)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no load {id}")))?;
    Ok(Json(job).into_response())
}

/// `DELETE /runtime/packages/{name}` and `/runtime/packages/{name}/{version}`.
pub(crate) async fn unload(
    State(state): State<AppState>,
    Path(params): Path<Vec<String>>,
) -> Result<Response, ApiError> {
    let name = params.first().cloned().unwrap_or_default();
    let version = params.get(1).map(String::as_str);
    let unloaded = state.runtime.unload(&name, version).await;
    if unloaded.is_empty() {
        let what = version.map_or(name.clone(), |v| format!("{name}@{v}"));
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("package '{what}' is not mounted"),
        ));
    }
    let list: Vec<_> = unloaded
        .iter()
        .map(|(n, v)| json!({"name": n, "version": v}))
        .collect();
    Ok((StatusCode::ACCEPTED, Json(json!({"unloading": list}))).into_response())
}

/// `POST /runtime/reload`: re-read the startup sources.
pub(crate) async fn reload(State(state): State<AppState>) -> Response {
    let runtime = state.runtime.clone();
    tokio::spawn(async move { runtime.reload().await });
    (StatusCode::ACCEPTED, Json(json!({"status": "reloading"}))).into_response()
}

/// `GET /runtime/agents`: the public agents with what the console needs besides
/// `GET /agents` — whether each is enabled and the input schema it declares (`null`: any
/// JSON object).
pub(crate) async fn agents(State(state): State<AppState>) -> Json<serde_json::Value> {
    let runtime = &state.runtime;
    let agents: Vec<serde_json::Value> = runtime
        .agents()
        .into_iter()
        .map(|agent| {
            let mut entry = serde_json::to_value(&agent).unwrap_or_default();
            entry["enabled"] = json!(runtime.is_enabled(&agent.id));
            entry["input_schema"] = runtime.input_schema(&agent.id).unwrap_or_default();
            entry
        })
        .collect();
    Json(json!({"agents": agents}))
}

/// `POST /runtime/agents/{id}/enable` and `/disable`.
pub(crate) async fn enable(state: State<AppState>, id: Path<String>) -> Result<Response, ApiError> {
    set_enabled(state, id, true)
}

pub(crate) async fn disable(
    state: State<AppState>,
    id: Path<String>,
) -> Result<Response, ApiError> {
    set_enabled(state, id, false)
}

fn set_enabled(
    State(state): State<AppState>,
    Path(id): Path<String>,
    enabled: bool,
) -> Result<Response, ApiError> {
    if !state.runtime.set_enabled(&id, enabled) {
        return Err(ApiError::new(
            ErrorCode::AgentNotFound,
            format!("no agent '{id}'"),
        ));
    }
    Ok(Json(json!({"id": id, "enabled": enabled})).into_response())
}

/// `POST /runtime/shutdown`: drain, then exit, as on SIGTERM.
pub(crate) async fn shutdown(State(state): State<AppState>) -> Response {
    state.request_shutdown();
    (StatusCode::ACCEPTED, Json(json!({"status": "draining"}))).into_response()
}
