//! A package's own HTTP surfaces: `/agents/{package}/ui/...` (static files, served here)
//! and every other `/agents/{package}/...` path (its REST or ASGI app, proxied).

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use par_auth::Caller;
use par_core::{ErrorCode, Package};

use crate::error::{ApiError, PassThrough};
use crate::request_id::{RequestId, HEADER as REQUEST_ID};
use crate::state::AppState;

/// The raw (still percent-encoded) path after `/agents/{package}`, always starting with `/`.
fn path_after_package(request: &Request) -> String {
    let path = request.uri().path();
    let rest = path.splitn(4, '/').nth(3).unwrap_or("");
    format!("/{rest}")
}

/// The mounted package named in the route, or the contract's 404.
fn named_package(state: &AppState, params: &[String]) -> Result<Arc<Package>, ApiError> {
    let name = params.first().map(String::as_str).unwrap_or_default();
    state.runtime.package(name).ok_or_else(|| {
        let message = format!("no package '{name}'");
        ApiError::new(ErrorCode::AgentNotFound, message)
    })
}

/// Credentials first (no probing of package names without them), then the package,
/// then the permission: as for invoking the package's main agent.
async fn authorized_package(
    state: &AppState,
    params: &[String],
    headers: &HeaderMap,
    ui: bool,
) -> Result<(Arc<Package>, Option<Caller>), ApiError> {
    let name = params.first().map(String::as_str).unwrap_or_default();
    let name = name.split('@').next().unwrap_or(name);
    let caller = if ui {
        crate::auth::authorize_ui(state, headers, name).await?
    } else {
        crate::auth::authenticate(state, headers).await?
    };
    let package = named_package(state, params)?;
    if caller.is_some() {
        crate::auth::authorize_package(state, &caller, &package)?;
    }
    Ok((package, caller))
}

/// The package's app and its UI see the runtime's request id, generated or not.
fn set_request_id(headers: &mut HeaderMap, rid: &RequestId) {
    if let Ok(value) = HeaderValue::from_str(&rid.0) {
        headers.insert(REQUEST_ID, value);
    }
}

/// Its body is the package's (or the UI's own contract body): left as it is.
fn passed_through(mut response: Response) -> Response {
    response.extensions_mut().insert(PassThrough);
    response
}

pub(crate) async fn ui(
    State(state): State<AppState>,
    Path(params): Path<Vec<String>>,
    rid: RequestId,
    mut request: Request,
) -> Result<Response, ApiError> {
    let (package, _) = authorized_package(&state, &params, request.headers(), true).await?;
    let Some(site) = &package.ui else {
        let message = format!("package '{}' has no UI", package.name());
        return Err(ApiError::new(ErrorCode::NotFound, message));
    };
    set_request_id(request.headers_mut(), &rid);
    let after = path_after_package(&request);
    let ui_path = after.strip_prefix("/ui").unwrap_or("");
    let response = site
        .serve_method(request.method(), ui_path, request.headers())
        .await;
    Ok(passed_through(response))
}

pub(crate) async fn app(
    State(state): State<AppState>,
    Path(params): Path<Vec<String>>,
    rid: RequestId,
    mut request: Request,
) -> Result<Response, ApiError> {
    let (package, caller) = authorized_package(&state, &params, request.headers(), false).await?;
    let Some(surface) = &package.surface else {
        let message = format!("package '{}' has no HTTP app", package.name());
        return Err(ApiError::new(ErrorCode::NotFound, message));
    };
    let auth_on = state.access.is_some();
    crate::caller_headers::replace(request.headers_mut(), caller.as_ref(), auth_on);
    set_request_id(request.headers_mut(), &rid);
    let path = path_after_package(&request);
    let _visit = state
        .runtime
        .visit_app(&package)
        .await
        .map_err(ApiError::from_invoke)?;
    match surface.proxy(request, &path).await {
        Ok(response) => Ok(passed_through(response)),
        Err(e) => {
            let code = match e.status().as_u16() {
                504 => ErrorCode::Timeout,
                400 => ErrorCode::BadRequest,
                _ => ErrorCode::AppUnavailable,
            };
            Err(ApiError::new(code, e.to_string()))
        }
    }
}
