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

pub async fn ui(
    State(state): State<AppState>,
    Path(params): Path<Vec<String>>,
    request: Request,
) -> Response {
    let rid = request_id(&request);
    let package = match named_package(&state, &params, &rid) {
        Ok(package) => package,
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
    let package = match named_package(&state, &params, &rid) {
        Ok(package) => package,
        Err(error) => return error.into_response(),
    };
    let Some(surface) = &package.surface else {
        let message = format!("package '{}' has no HTTP app", package.name());
        return ApiError::new(ErrorCode::NotFound, message, &rid).into_response();
    };
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
