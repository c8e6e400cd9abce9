//! A package's own HTTP surfaces: `/agents/{package}/ui/...` (static files, served here)
//! and every other `/agents/{package}/...` path (its REST or ASGI app, proxied).

use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use par_core::ErrorCode;

use crate::error::ApiError;
use crate::request_id::RequestId;
use crate::state::AppState;

fn request_id(request: &Request) -> String {
    request
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default()
}

/// The raw (still percent-encoded) path after `/agents/{package}`, always starting with `/`.
fn path_after_package(request: &Request) -> String {
    let path = request.uri().path();
    let rest = path.splitn(4, '/').nth(3).unwrap_or("");
    format!("/{rest}")
}

/// The mounted package named in the route, or the contract's 404.
fn named_package(
    state: &AppState,
    params: &[String],
    rid: &str,
) -> Result<std::sync::Arc<par_core::Package>, ApiError> {
    let name = params.first().map(String::as_str).unwrap_or_default();
    state.runtime.package(name).ok_or_else(|| {
        let message = format!("no package '{name}'");
        ApiError::new(ErrorCode::AgentNotFound, message, rid)
    })
}

/// Credentials first (no probing of package names without them), then the package,
/// then the permission: as for invoking the package's main agent.
async fn authorized_package(
    state: &AppState,
    params: &[String],
    headers: &axum::http::HeaderMap,
    rid: &str,
    ui: bool,
) -> Result<(std::sync::Arc<par_core::Package>, Option<par_auth::Caller>), ApiError> {
    let name = params.first().map(String::as_str).unwrap_or_default();
    let name = name.split('@').next().unwrap_or(name);
    let caller = if ui {
        crate::auth::authorize_ui(state, headers, name, rid).await?
    } else {
        crate::auth::authenticate(state, headers, rid).await?
    };
    let package = named_package(state, params, rid)?;
    if caller.is_some() {
        crate::auth::authorize_package(state, &caller, &package, rid)?;
    }
    Ok((package, caller))
}

pub async fn ui(
    State(state): State<AppState>,
    Path(params): Path<Vec<String>>,
    request: Request,
) -> Response {
    let rid = request_id(&request);
    let package = match authorized_package(&state, &params, request.headers(), &rid, true).await {
        Ok((package, _)) => package,
        Err(error) => return error.into_response(),
    };
    let Some(site) = &package.ui else {
        let message = format!("package '{}' has no UI", package.name());
        return ApiError::new(ErrorCode::NotFound, message, &rid).into_response();
    };
    let after = path_after_package(&request);
    let ui_path = after.strip_prefix("/ui").unwrap_or("");
    site.serve_method(request.method(), ui_path, request.headers())
        .await
}

pub async fn app(
    State(state): State<AppState>,
    Path(params): Path<Vec<String>>,
    mut request: Request,
) -> Response {
    let rid = request_id(&request);
    let (package, caller) =
        match authorized_package(&state, &params, request.headers(), &rid, false).await {
            Ok(found) => found,
            Err(error) => return error.into_response(),
        };
    let Some(surface) = &package.surface else {
        let message = format!("package '{}' has no HTTP app", package.name());
        return ApiError::new(ErrorCode::NotFound, message, &rid).into_response();
    };
    let consumed = state.access.is_some();
    crate::caller_headers::replace(request.headers_mut(), caller.as_ref(), consumed);
    // The app sees the runtime's request id, generated or not, for its own logs.
    if let Ok(value) = rid.parse() {
        request
            .headers_mut()
            .insert(crate::request_id::HEADER, value);
    }
    let path = path_after_package(&request);
    match surface.proxy(request, &path).await {
        Ok(response) => response,
        Err(e) => {
            let code = match e.status().as_u16() {
                504 => ErrorCode::Timeout,
                400 => ErrorCode::BadRequest,
                _ => ErrorCode::AppUnavailable,
            };
            ApiError::new(code, e.to_string(), &rid).into_response()
        }
    }
}
