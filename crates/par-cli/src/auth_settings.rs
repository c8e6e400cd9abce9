//! Auth settings become a validated [`AuthSettings`]; the authenticator itself is built
//! at startup (OIDC discovery is network I/O).

use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;

use par_auth::{ApiKeyConfig, ApiKeyEntry, AuthMode, OidcConfig, Policy, Url};

use crate::cli::ServeArgs;
use crate::env_names as env;

pub(crate) struct AuthSettings {
    pub mode: AuthMode,
    pub oidc: Option<OidcConfig>,
    pub api_keys: Option<ApiKeyConfig>,
    pub roles_claim: String,
    pub tenant_claim: Option<String>,
    pub policy: Policy,
    /// Names requests may address besides IP literals and localhost.
    pub allowed_hosts: Vec<String>,
    /// Packages whose UI needs no credentials.
    pub public_ui: Vec<String>,
}

pub(crate) fn resolve(
    listen: &SocketAddr,
    s: &ServeArgs,
    errors: &mut Vec<String>,
) -> Option<AuthSettings> {
    let mode = match s.auth.as_deref() {
        Some(text) => match AuthMode::from_str(text) {
            Ok(mode) => mode,
            Err(_) => {
                errors.push(format!(
                    "--auth / {}: '{text}' is not oidc, api-key, oidc,api-key or off",
                    env::AUTH
                ));
                return None;
            }
        },
        None if listen.ip().is_loopback() => AuthMode::Off,
        None => {
            errors.push(format!(
                "--auth / {}: listening on {listen} (not loopback) needs auth configured, or 'off' given explicitly",
                env::AUTH
            ));
            return None;
        }
    };
    let oidc = if mode.oidc() {
        oidc_config(s, errors)
    } else {
        None
    };
    let api_keys = if mode.api_key() {
        api_keys(s, errors)
    } else {
        None
    };
    let policy = policy(s, mode, errors);
    Some(AuthSettings {
        mode,
        oidc,
        api_keys,
        roles_claim: s.roles_claim.clone().expect("the table gives a default"),
        tenant_claim: s.tenant_claim.clone(),
        policy,
        allowed_hosts: s.allowed_hosts.clone().unwrap_or_default(),
        public_ui: s.public_ui.clone().unwrap_or_default(),
    })
}

fn oidc_config(s: &ServeArgs, errors: &mut Vec<String>) -> Option<OidcConfig> {
    let audiences = s.oidc_audience.clone().unwrap_or_default();
    if audiences.is_empty() {
        errors.push(format!(
            "--oidc-audience / {}: required with --auth oidc",
            env::OIDC_AUDIENCE
        ));
    }
    let Some(issuer) = s.oidc_issuer.clone() else {
        errors.push(format!(
            "--oidc-issuer / {}: required with --auth oidc",
            env::OIDC_ISSUER
        ));
        return None;
    };
    let issuer = match Url::parse(&issuer) {
        Ok(url) => url,
        Err(e) => {
            errors.push(format!(
                "--oidc-issuer / {}: '{issuer}': {e}",
                env::OIDC_ISSUER
            ));
            return None;
        }
    };
    if audiences.is_empty() {
        return None;
    }
    let mut config = OidcConfig::new(issuer, audiences);
    config.allowed_client_ids = s.oidc_client_ids.clone().unwrap_or_default();
    config.required_scopes = s.oidc_required_scopes.clone().unwrap_or_default();
    Some(config)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    #[serde(default)]
    key: Vec<ApiKeyEntry>,
}

fn api_keys(s: &ServeArgs, errors: &mut Vec<String>) -> Option<ApiKeyConfig> {
    let Some(path) = s.api_keys.clone() else {
        errors.push(format!(
            "--api-keys / {}: required with --auth api-key",
            env::API_KEYS
        ));
        return None;
    };
    match read_toml::<KeysFile>(&path) {
        Ok(file) => Some(ApiKeyConfig { keys: file.key }),
        Err(e) => {
            errors.push(format!("--api-keys / {}: {e}", env::API_KEYS));
            None
        }
    }
}

fn policy(s: &ServeArgs, mode: AuthMode, errors: &mut Vec<String>) -> Policy {
    let empty = || Policy::from_toml("").expect("an empty policy parses");
    let Some(path) = s.policy.clone() else {
        if mode != AuthMode::Off {
            tracing::warn!("auth is on but no --policy is set: every call will be forbidden");
        }
        return empty();
    };
    match Policy::load(&path) {
        Ok(policy) => policy,
        Err(e) => {
            errors.push(format!("--policy / {}: {e}", env::POLICY));
            empty()
        }
    }
}

fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}
