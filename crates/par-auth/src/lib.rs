//! Who may call PAR, and what they may do.
//!
//! This crate owns caller authentication and authorization, and nothing about HTTP routing:
//! [`Authenticator`] turns request headers into a [`Caller`] (OIDC bearer JWTs verified
//! against the issuer's published keys, or static API keys configured as SHA-256 digests);
//! [`Policy`] is the RBAC file granting roles `invoke` on agent-id patterns and `admin`;
//! [`require`] combines both into the one call a route makes, answering [`Denied`], which the
//! HTTP layer maps to 401 `unauthorized` / 403 `forbidden`. Reasons for refusals are for logs
//! and metrics ([`AuthError::reason`]); response bodies never carry them.

mod apikey;
mod authenticator;
mod caller;
mod config;
mod error;
mod guard;
mod oidc;
mod policy;

pub use authenticator::{Authenticator, API_KEY_HEADER};
pub use caller::{has_role, roles_from_claims, AuthMethod, Caller};
pub use config::{Algorithm, ApiKeyConfig, ApiKeyEntry, AuthMode, OidcConfig};
pub use error::{AuthConfigError, AuthError, PolicyError};
pub use guard::{require, Denied, Permission};
pub use policy::{AgentPattern, Grant, Policy};
pub use url::Url;
