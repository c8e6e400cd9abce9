//! The per-request check the HTTP layer calls: authenticate, then authorize against the policy.

use http::{HeaderMap, StatusCode};
use thiserror::Error;

use crate::authenticator::Authenticator;
use crate::caller::Caller;
use crate::error::AuthError;
use crate::policy::Policy;

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission<'a> {
    /// Call the agent with this id.
    Invoke(&'a str),
    /// Use the management API.
    Admin,
}

/// Why a request was refused. Map to the contract's error body with [`Denied::status`] and
/// [`Denied::code`]; log [`Denied::reason`], never send it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Denied {
    #[error("unauthenticated: {0}")]
    Unauthenticated(AuthError),
    #[error("caller {subject} lacks the permission")]
    Forbidden { subject: String },
}

impl Denied {
    pub fn status(&self) -> StatusCode {
        match self {
            Denied::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Denied::Forbidden { .. } => StatusCode::FORBIDDEN,
        }
    }

    /// The contract's public error code.
    pub fn code(&self) -> &'static str {
        match self {
            Denied::Unauthenticated(_) => "unauthorized",
            Denied::Forbidden { .. } => "forbidden",
        }
    }

    /// The public message: the same for every reason, so a response reveals nothing about
    /// which check failed.
    pub fn public_message(&self) -> &'static str {
        match self {
            Denied::Unauthenticated(_) => "missing or invalid credentials",
            Denied::Forbidden { .. } => "the caller is not allowed to do this",
        }
    }

    /// For logs and metrics only.
    pub fn reason(&self) -> &'static str {
        match self {
            Denied::Unauthenticated(e) => e.reason(),
            Denied::Forbidden { .. } => "forbidden",
        }
    }

    /// For a `WWW-Authenticate` header on 401 (RFC 6750), without error details.
    pub fn www_authenticate(&self) -> Option<&'static str> {
        match self {
            Denied::Unauthenticated(_) => Some("Bearer"),
            Denied::Forbidden { .. } => None,
        }
    }
}

/// Authenticates the request and checks `need` against the policy. With auth off everyone
/// passes (as the anonymous caller). Deny by default otherwise.
pub async fn require(
    auth: &Authenticator,
    policy: &Policy,
    headers: &HeaderMap,
    need: Permission<'_>,
) -> Result<Caller, Denied> {
    let caller = auth
        .authenticate(headers)
        .await
        .map_err(Denied::Unauthenticated)?;
    if auth.is_off() {
        return Ok(caller);
    }
    let allowed = match need {
        Permission::Invoke(agent_id) => policy.can_invoke(&caller.roles, agent_id),
        Permission::Admin => policy.is_admin(&caller.roles),
    };
    if allowed {
        Ok(caller)
    } else {
        Err(Denied::Forbidden {
            subject: caller.subject,
        })
    }
}
