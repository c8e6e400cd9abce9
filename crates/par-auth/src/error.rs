//! Errors: bad settings (startup), refused credentials (per request), bad policy files.

use thiserror::Error;

/// A setting that stops startup. Messages name the setting involved.
#[derive(Debug, Error)]
pub enum AuthConfigError {
    #[error(
        "invalid auth mode {0:?} (PAR_AUTH / --auth): expected off, oidc, api-key or oidc,api-key"
    )]
    BadMode(String),
    #[error("unsupported signature algorithm {0:?}: expected one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA")]
    BadAlgorithm(String),
    #[error(
        "auth mode {0} needs an OIDC issuer and audience (PAR_OIDC_ISSUER, PAR_OIDC_AUDIENCE)"
    )]
    MissingOidc(String),
    #[error("auth mode {0} needs at least one API key")]
    MissingApiKeys(String),
    #[error("invalid auth settings: {}", .0.join("; "))]
    Invalid(Vec<String>),
    #[error("cannot read OIDC CA bundle {path}: {source}")]
    CaBundle {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot build the HTTP client for the OIDC issuer: {0}")]
    HttpClient(String),
}

/// Why a request's credentials were refused. Every variant answers 401; the `reason()` goes
/// to logs and metrics only, never into a response body.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    #[error("no credentials")]
    Missing,
    #[error("both an Authorization header and x-api-key were sent")]
    Ambiguous,
    #[error("credentials larger than the limit")]
    TooLarge,
    #[error("malformed credentials: {0}")]
    Malformed(&'static str),
    #[error("token algorithm not allowed")]
    AlgNotAllowed,
    #[error("token key id not in the issuer's key set")]
    UnknownKid,
    #[error("token key does not fit its algorithm")]
    KeyMismatch,
    #[error("token signature invalid")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token not valid yet")]
    NotYetValid,
    #[error("token lacks required claim {0}")]
    MissingClaim(&'static str),
    #[error("token issuer not accepted")]
    BadIssuer,
    #[error("token audience not accepted")]
    BadAudience,
    #[error("token client not allowed")]
    ClientNotAllowed,
    #[error("token lacks a required scope")]
    MissingScope,
    #[error("unknown API key")]
    BadApiKey,
    #[error("the credential kind is not enabled")]
    MethodNotEnabled,
    #[error("OIDC issuer unreachable and no cached keys")]
    IssuerUnreachable,
}

impl AuthError {
    /// A short stable label for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::Ambiguous => "ambiguous",
            AuthError::TooLarge => "too_large",
            AuthError::Malformed(_) => "malformed",
            AuthError::AlgNotAllowed => "alg_not_allowed",
            AuthError::UnknownKid => "unknown_kid",
            AuthError::KeyMismatch => "key_mismatch",
            AuthError::BadSignature => "bad_signature",
            AuthError::Expired => "expired",
            AuthError::NotYetValid => "not_yet_valid",
            AuthError::MissingClaim(_) => "missing_claim",
            AuthError::BadIssuer => "bad_issuer",
            AuthError::BadAudience => "bad_audience",
            AuthError::ClientNotAllowed => "client_not_allowed",
            AuthError::MissingScope => "missing_scope",
            AuthError::BadApiKey => "bad_api_key",
            AuthError::MethodNotEnabled => "method_not_enabled",
            AuthError::IssuerUnreachable => "issuer_unreachable",
        }
    }

    /// True when the fault is on our side (the issuer cannot be reached), not the caller's:
    /// a retry may succeed, and an operator should look.
    pub fn is_server_side(&self) -> bool {
        matches!(self, AuthError::IssuerUnreachable)
    }
}

/// A policy file that cannot be used.
#[derive(Debug, Error)]
pub enum PolicyError {
    #[error("cannot read policy file {path} (PAR_POLICY / --policy): {source}")]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("policy is not valid TOML for the expected shape: {0}")]
    Parse(String),
    #[error("policy grant #{index}: {problem}")]
    Grant { index: usize, problem: String },
}
