//! Turns a request's headers into a [`Caller`], by whichever methods the mode enables.
//!
//! Credentials: `Authorization: Bearer <jwt or api key>` or `x-api-key: <key>`, never both.
//! With both methods on, a bearer value that matches a configured API key is that key;
//! anything else is verified as a JWT.

use std::sync::Arc;

use http::header::{HeaderMap, HeaderName, AUTHORIZATION};

use crate::apikey::ApiKeys;
use crate::caller::{roles_from_claims, string_claim, AuthMethod, Caller};
use crate::config::{ApiKeyConfig, AuthMode, OidcConfig};
use crate::error::{AuthConfigError, AuthError};
use crate::oidc::OidcVerifier;

/// The API key header.
pub const API_KEY_HEADER: HeaderName = HeaderName::from_static("x-api-key");

/// Largest credential header accepted when no OIDC limit is configured.
const DEFAULT_MAX_CREDENTIAL_BYTES: usize = 8 * 1024;

/// Verifies callers. Cheap to clone; one per runtime.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

struct Inner {
    mode: AuthMode,
    oidc: Option<OidcVerifier>,
    api_keys: Option<ApiKeys>,
    roles_claim: String,
    tenant_claim: Option<String>,
    max_bytes: usize,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("mode", &self.inner.mode)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Validates the settings for `mode` and, when OIDC is on, runs discovery and fetches
    /// the issuer's keys. An unreachable issuer is not fatal: it is logged and retried on use.
    /// Settings for a method the mode does not enable are ignored.
    pub async fn new(
        mode: AuthMode,
        oidc: Option<OidcConfig>,
        api_keys: Option<ApiKeyConfig>,
        roles_claim: String,
        tenant_claim: Option<String>,
    ) -> Result<Authenticator, AuthConfigError> {
        let api_keys = match (mode.api_key(), api_keys) {
            (false, _) => None,
            (true, None) => return Err(AuthConfigError::MissingApiKeys(mode.to_string())),
            (true, Some(cfg)) => {
                let keys = ApiKeys::new(&cfg)?;
                if keys.is_empty() {
                    return Err(AuthConfigError::MissingApiKeys(mode.to_string()));
                }
                Some(keys)
            }
        };
        let roles_claim = match roles_claim.trim() {
            "" => "roles".to_string(),
            path => path.to_string(),
        };
        let oidc = match (mode.oidc(), oidc) {
            (false, _) => None,
            (true, None) => return Err(AuthConfigError::MissingOidc(mode.to_string())),
            (true, Some(cfg)) => Some(OidcVerifier::new(cfg).await?),
        };
        if mode == AuthMode::Off {
            tracing::warn!("AUTHENTICATION IS OFF: every caller is allowed to invoke every agent and use the management API");
        }
        let max_bytes = oidc
            .as_ref()
            .map_or(DEFAULT_MAX_CREDENTIAL_BYTES, OidcVerifier::max_token_bytes);
        let inner = Inner {
            mode,
            oidc,
            api_keys,
            roles_claim,
            tenant_claim,
            max_bytes,
        };
        Ok(Authenticator {
            inner: Arc::new(inner),
        })
    }

    /// An authenticator that lets everyone in (auth off), without the startup warning.
    pub fn off() -> Authenticator {
        let inner = Inner {
            mode: AuthMode::Off,
            oidc: None,
            api_keys: None,
            roles_claim: "roles".to_string(),
            tenant_claim: None,
            max_bytes: DEFAULT_MAX_CREDENTIAL_BYTES,
        };
        Authenticator {
            inner: Arc::new(inner),
        }
    }

    pub fn is_off(&self) -> bool {
        self.inner.mode == AuthMode::Off
    }

    pub fn mode(&self) -> AuthMode {
        self.inner.mode
    }

    /// The caller the request's credentials prove, or why they prove nothing.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, AuthError> {
        if self.is_off() {
            return Ok(Caller::anonymous());
        }
        match self.credential(headers)? {
            Credential::ApiKey(key) => self.api_key(key),
            Credential::Bearer(value) => self.bearer(value).await,
        }
    }

    fn credential<'h>(&self, headers: &'h HeaderMap) -> Result<Credential<'h>, AuthError> {
        let auth = single(headers, &AUTHORIZATION)?;
        let key = single(headers, &API_KEY_HEADER)?;
        let (raw, is_key) = match (auth, key) {
            (Some(_), Some(_)) => return Err(AuthError::Ambiguous),
            (None, None) => return Err(AuthError::Missing),
            (Some(v), None) => (v, false),
            (None, Some(v)) => (v, true),
        };
        // The size limit comes before any parsing, UTF-8 decoding included.
        if raw.len() > self.inner.max_bytes {
            return Err(AuthError::TooLarge);
        }
        let text = raw
            .to_str()
            .map_err(|_| AuthError::Malformed("header is not visible ASCII"))?;
        if is_key {
            return Ok(Credential::ApiKey(text.trim()));
        }
        let (scheme, rest) = text
            .split_once(' ')
            .ok_or(AuthError::Malformed("no auth scheme"))?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::Malformed("auth scheme is not Bearer"));
        }
        match rest.trim() {
            "" => Err(AuthError::Missing),
            value => Ok(Credential::Bearer(value)),
        }
    }

    fn api_key(&self, key: &str) -> Result<Caller, AuthError> {
        let keys = self
            .inner
            .api_keys
            .as_ref()
            .ok_or(AuthError::MethodNotEnabled)?;
        keys.verify(key)
    }

    async fn bearer(&self, value: &str) -> Result<Caller, AuthError> {
        let looks_like_jwt = value.bytes().filter(|b| *b == b'.').count() == 2;
        if let Some(keys) = &self.inner.api_keys {
            match keys.verify(value) {
                Ok(caller) => return Ok(caller),
                Err(e) if self.inner.oidc.is_none() || !looks_like_jwt => return Err(e),
                Err(_) => {}
            }
        }
        let oidc = self
            .inner
            .oidc
            .as_ref()
            .ok_or(AuthError::MethodNotEnabled)?;
        let verified = oidc.verify(value).await?;
        let claims = &verified.claims;
        Ok(Caller {
            subject: string_claim(claims, "sub").unwrap_or_default(),
            client_id: verified.client_id,
            tenant: self
                .inner
                .tenant_claim
                .as_deref()
                .and_then(|p| string_claim(claims, p)),
            roles: roles_from_claims(claims, &self.inner.roles_claim),
            scopes: verified.scopes,
            via: AuthMethod::Oidc,
        })
    }
}

enum Credential<'h> {
    ApiKey(&'h str),
    Bearer(&'h str),
}

/// The header's value if it is sent once; a repeated credential header is refused.
fn single<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
) -> Result<Option<&'h http::HeaderValue>, AuthError> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(v), None) => Ok(Some(v)),
        (Some(_), Some(_)) => Err(AuthError::Malformed("credential header repeated")),
    }
}
