//! Who may do what over HTTP: authentication (401) before anything is looked up, then
//! the policy and the package's own `role_required` (403). Private agents stay 404.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use par_auth::{Authenticator, Caller, Denied, Permission, Policy};
use par_core::{ErrorCode, Target};

use crate::error::ApiError;
use crate::state::AppState;

/// The authenticator and the policy; absent from the state when auth is off.
pub struct AccessControl {
    pub authenticator: Authenticator,
    pub policy: Policy,
    /// Packages whose UI files anyone may fetch (an operator setting; a package can
    /// never make itself public).
    pub public_ui: Vec<String>,
}

impl AccessControl {
    fn ui_is_public(&self, package: &str) -> bool {
        self.public_ui.iter().any(|name| name == package)
    }
}

pub(crate) type Access = Option<Arc<AccessControl>>;

/// Authenticates the caller (the anonymous caller when auth is off).
pub(crate) async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Caller>, ApiError> {
    let Some(access) = &state.access else {
        return Ok(None);
    };
    match access.authenticator.authenticate(headers).await {
        Ok(caller) => Ok(Some(caller)),
        Err(e) => Err(denied(state, Denied::Unauthenticated(e))),
    }
}

/// Checks that `caller` may invoke `target`: a policy grant for its id, and the role the
/// package or sub-agent itself requires, if any.
pub(crate) fn authorize_invoke(
    state: &AppState,
    caller: &Option<Caller>,
    target: &Target,
) -> Result<(), ApiError> {
    let (Some(access), Some(caller)) = (&state.access, caller) else {
        return Ok(());
    };
    let granted = access.policy.can_invoke(&caller.roles, &target.id);
    let required = required_role(target);
    let has_required = required.is_none_or(|role| par_auth::has_role(caller, role));
    if granted && has_required {
        return Ok(());
    }
    Err(denied(
        state,
        Denied::Forbidden {
            subject: caller.subject.clone(),
        },
    ))
}

/// Checks that `caller` may use `package`'s HTTP surfaces (its app, its UI): as for
/// invoking the package's main agent, whether or not it has one.
pub(crate) fn authorize_package(
    state: &AppState,
    caller: &Option<Caller>,
    package: &par_core::Package,
) -> Result<(), ApiError> {
    let (Some(access), Some(caller)) = (&state.access, caller) else {
        return Ok(());
    };
    let granted = access.policy.can_invoke(&caller.roles, package.name());
    let required = package.manifest.role_required.as_deref();
    if granted && required.is_none_or(|role| par_auth::has_role(caller, role)) {
        return Ok(());
    }
    Err(denied(
        state,
        Denied::Forbidden {
            subject: caller.subject.clone(),
        },
    ))
}

/// Authenticates and authorizes a request for `package`'s UI, unless the operator made
/// that UI public.
pub(crate) async fn authorize_ui(
    state: &AppState,
    headers: &HeaderMap,
    package: &str,
) -> Result<Option<Caller>, ApiError> {
    if state
        .access
        .as_ref()
        .is_some_and(|a| a.ui_is_public(package))
    {
        return Ok(None);
    }
    authenticate(state, headers).await
}

fn required_role(target: &Target) -> Option<&str> {
    let manifest = &target.package.manifest;
    let sub = target
        .sub_agent
        .as_deref()
        .and_then(|name| manifest.sub_agents.iter().find(|s| s.name == name));
    sub.and_then(|s| s.role_required.as_deref())
        .or(manifest.role_required.as_deref())
}

/// Route layer for the management API: admins only.
pub(crate) async fn require_admin(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(access) = state.access.clone() else {
        return next.run(request).await;
    };
    match par_auth::require(
        &access.authenticator,
        &access.policy,
        request.headers(),
        Permission::Admin,
    )
    .await
    {
        Ok(_) => next.run(request).await,
        Err(d) => denied(&state, d).into_response(),
    }
}

/// The contract's error body; the reason goes to the log and the metrics, never the body.
fn denied(state: &AppState, denied: Denied) -> ApiError {
    state.runtime.metrics().auth_rejected(denied.reason());
    let code = if denied.status().as_u16() == 401 {
        ErrorCode::Unauthorized
    } else {
        ErrorCode::Forbidden
    };
    let mut error = ApiError::new(code, denied.public_message()).with_reason(denied.reason());
    error.challenge = denied.www_authenticate();
    error
}
