//! Validated authentication settings: the mode, the OIDC issuer and its checks, the API keys.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use url::Url;

use crate::error::AuthConfigError;

/// Which credentials the runtime accepts (`--auth` / `PAR_AUTH`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Every caller is allowed, as `AuthMethod::Anonymous`.
    Off,
    Oidc,
    ApiKey,
    OidcAndApiKey,
}

impl AuthMode {
    pub fn oidc(self) -> bool {
        matches!(self, AuthMode::Oidc | AuthMode::OidcAndApiKey)
    }

    pub fn api_key(self) -> bool {
        matches!(self, AuthMode::ApiKey | AuthMode::OidcAndApiKey)
    }
}

impl FromStr for AuthMode {
    type Err = AuthConfigError;

    /// `off`, `oidc`, `api-key`, or both methods comma-separated in either order.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts: Vec<&str> = s.split(',').map(str::trim).collect();
        parts.sort_unstable();
        parts.dedup();
        match parts.as_slice() {
            ["off"] => Ok(AuthMode::Off),
            ["oidc"] => Ok(AuthMode::Oidc),
            ["api-key"] => Ok(AuthMode::ApiKey),
            ["api-key", "oidc"] => Ok(AuthMode::OidcAndApiKey),
            _ => Err(AuthConfigError::BadMode(s.to_string())),
        }
    }
}

impl fmt::Display for AuthMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthMode::Off => "off",
            AuthMode::Oidc => "oidc",
            AuthMode::ApiKey => "api-key",
            AuthMode::OidcAndApiKey => "oidc,api-key",
        })
    }
}

/// A signature algorithm a token may use. Only asymmetric ones exist here: `none` and the
/// HMAC family cannot be expressed, so no configuration can allow them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

impl Algorithm {
    pub const ALL: [Algorithm; 9] = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ];

    /// The JOSE name, as in a token's `alg` header.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    pub(crate) fn to_jwt(self) -> jsonwebtoken::Algorithm {
        use jsonwebtoken::Algorithm as J;
        match self {
            Algorithm::RS256 => J::RS256,
            Algorithm::RS384 => J::RS384,
            Algorithm::RS512 => J::RS512,
            Algorithm::PS256 => J::PS256,
            Algorithm::PS384 => J::PS384,
            Algorithm::PS512 => J::PS512,
            Algorithm::ES256 => J::ES256,
            Algorithm::ES384 => J::ES384,
            Algorithm::EdDSA => J::EdDSA,
        }
    }
}

impl FromStr for Algorithm {
    type Err = AuthConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| AuthConfigError::BadAlgorithm(s.to_string()))
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How bearer JWTs from one OpenID provider are verified.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// Discovery runs at `{issuer}/.well-known/openid-configuration`; tokens' `iss` must equal
    /// the `issuer` the provider publishes there, which must match this (trailing `/` aside).
    pub issuer: Url,
    /// A token is accepted when its `aud` names at least one of these. Never empty.
    pub audiences: Vec<String>,
    /// Empty = any client; otherwise the token's `azp` or `client_id` claim must be listed.
    pub allowed_client_ids: Vec<String>,
    /// Every one of these must be in the token's `scope` (or `scp`) claim.
    pub required_scopes: Vec<String>,
    /// Explicit allowlist of signature algorithms.
    pub algorithms: Vec<Algorithm>,
    /// Cached keys are refetched after this long (in the background; the cache keeps serving).
    pub jwks_ttl: Duration,
    /// An unknown `kid` triggers a refetch at most this often.
    pub refresh_min_interval: Duration,
    /// A bearer value longer than this is refused before any parsing.
    pub max_token_bytes: usize,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
    /// Timeout for each discovery or JWKS request.
    pub http_timeout: Duration,
    /// Extra PEM root certificates for reaching the issuer (a private CA).
    pub ca_bundle: Option<PathBuf>,
}

impl OidcConfig {
    pub const DEFAULT_ALGORITHMS: [Algorithm; 3] =
        [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

    /// The defaults: RS256/ES256/EdDSA, 10 min JWKS TTL, 30 s refetch interval, 8 KiB tokens,
    /// 60 s leeway, 5 s HTTP timeout.
    pub fn new(issuer: Url, audiences: Vec<String>) -> Self {
        OidcConfig {
            issuer,
            audiences,
            allowed_client_ids: Vec::new(),
            required_scopes: Vec::new(),
            algorithms: Self::DEFAULT_ALGORITHMS.to_vec(),
            jwks_ttl: Duration::from_secs(600),
            refresh_min_interval: Duration::from_secs(30),
            max_token_bytes: 8 * 1024,
            leeway: Duration::from_secs(60),
            http_timeout: Duration::from_secs(5),
            ca_bundle: None,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), AuthConfigError> {
        let mut problems = Vec::new();
        match self.issuer.scheme() {
            "https" => {}
            "http" if is_loopback(&self.issuer) => {}
            _ => problems.push(format!(
                "OIDC issuer {} must be https (plain http only for loopback)",
                self.issuer
            )),
        }
        if self.audiences.iter().all(|a| a.trim().is_empty()) {
            problems.push("at least one OIDC audience is required".to_string());
        }
        if self.algorithms.is_empty() {
            problems.push("the OIDC algorithm allowlist is empty".to_string());
        }
        if self.max_token_bytes == 0 {
            problems.push("max_token_bytes must be positive".to_string());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(AuthConfigError::Invalid(problems))
        }
    }
}

pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Static API keys for service callers. Only the SHA-256 of each key is configured.
#[derive(Debug, Clone, Default)]
pub struct ApiKeyConfig {
    pub keys: Vec<ApiKeyEntry>,
}

#[derive(Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyEntry {
    /// Names the caller in logs and usage records (`api-key:{name}`).
    pub name: String,
    /// Lowercase or uppercase hex SHA-256 of the key (`printf %s "$KEY" | sha256sum`).
    pub sha256: String,
    #[serde(default)]
    pub roles: Vec<String>,
}

impl fmt::Debug for ApiKeyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The digest is not the key, but there is no reason to spread it through logs.
        f.debug_struct("ApiKeyEntry")
            .field("name", &self.name)
            .field("sha256", &"<redacted>")
            .field("roles", &self.roles)
            .finish()
    }
}
