//! Bearer JWT verification against one OpenID provider.
//!
//! Order of checks, cheapest and least trusting first: size; shape; the header's `alg`
//! against the allowlist (by name, before any key is chosen, so `none` and HMAC never reach
//! a verifier); the key by `kid` from the issuer's JWKS only (`jku`, `x5u`, `jwk` and `x5c`
//! headers are never read); key type against `alg`; signature; then `exp`, `nbf`, `iss`,
//! `aud`, and the client and scope requirements.

mod cache;
mod fetch;
mod keys;

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::Validation;
use serde_json::{Map, Value};

use crate::caller::{claim_at, scopes_from_claims};
use crate::config::{Algorithm, OidcConfig};
use crate::error::{AuthConfigError, AuthError};
use cache::KeyCache;

pub(crate) struct OidcVerifier {
    cfg: OidcConfig,
    allowed: HashSet<Algorithm>,
    keys: Arc<KeyCache>,
}

/// The verified claims and what was read from them.
pub(crate) struct Verified {
    pub claims: Value,
    pub scopes: Vec<String>,
    pub client_id: Option<String>,
}

impl OidcVerifier {
    /// Builds the verifier and fetches the keys once; an unreachable issuer is logged and
    /// retried on first use.
    pub(crate) async fn new(cfg: OidcConfig) -> Result<OidcVerifier, AuthConfigError> {
        cfg.validate()?;
        let fetcher = fetch::Fetcher::new(&cfg).await?;
        let keys = Arc::new(KeyCache::new(
            fetcher,
            cfg.jwks_ttl,
            cfg.refresh_min_interval,
        ));
        if !keys.warm_up().await {
            tracing::warn!(issuer = %cfg.issuer, "oidc: issuer unreachable at startup; tokens are refused until it answers (retried on use)");
        }
        let allowed = cfg.algorithms.iter().copied().collect();
        Ok(OidcVerifier { cfg, allowed, keys })
    }

    pub(crate) fn max_token_bytes(&self) -> usize {
        self.cfg.max_token_bytes
    }

    pub(crate) async fn verify(&self, token: &str) -> Result<Verified, AuthError> {
        if token.len() > self.cfg.max_token_bytes {
            return Err(AuthError::TooLarge);
        }
        let header = parse_header(token)?;
        let alg = self.allowed_alg(&header)?;
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(k)) => Some(k.as_str()),
            Some(_) => return Err(AuthError::Malformed("kid is not a string")),
        };
        let found = self.keys.find(kid, alg).await?;
        if !found.key.fits(alg) {
            return Err(AuthError::KeyMismatch);
        }
        let validation = self.validation(alg, &found.issuer);
        let data = jsonwebtoken::decode::<Value>(token, &found.key.decoding, &validation)
            .map_err(|e| map_jwt_error(e.kind()))?;
        self.check_claims(data.claims)
    }

    fn allowed_alg(&self, header: &Map<String, Value>) -> Result<Algorithm, AuthError> {
        let name = header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or(AuthError::Malformed("no alg in header"))?;
        match Algorithm::from_str(name) {
            Ok(alg) if self.allowed.contains(&alg) => Ok(alg),
            _ => Err(AuthError::AlgNotAllowed),
        }
    }

    fn validation(&self, alg: Algorithm, issuer: &str) -> Validation {
        let mut v = Validation::new(alg.to_jwt());
        v.set_issuer(&[issuer]);
        v.set_audience(&self.cfg.audiences);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.validate_exp = true;
        v.validate_nbf = true;
        v.leeway = self.cfg.leeway.as_secs();
        v
    }

    fn check_claims(&self, claims: Value) -> Result<Verified, AuthError> {
        if !claims.get("sub").is_some_and(Value::is_string) {
            return Err(AuthError::MissingClaim("sub"));
        }
        let client_id = ["azp", "client_id"]
            .iter()
            .find_map(|c| claim_at(&claims, c).and_then(Value::as_str))
            .map(str::to_string);
        if !self.cfg.allowed_client_ids.is_empty()
            && !client_id
                .as_ref()
                .is_some_and(|c| self.cfg.allowed_client_ids.contains(c))
        {
            return Err(AuthError::ClientNotAllowed);
        }
        let scopes = scopes_from_claims(&claims);
        if !self.cfg.required_scopes.iter().all(|s| scopes.contains(s)) {
            return Err(AuthError::MissingScope);
        }
        Ok(Verified {
            claims,
            scopes,
            client_id,
        })
    }
}

/// Decodes the JOSE header of a compact JWS, refusing anything that is not three base64url
/// segments or that marks an extension critical (we implement none).
fn parse_header(token: &str) -> Result<Map<String, Value>, AuthError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed("not a compact JWS"));
    };
    let b64url = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if [header, payload].iter().any(|p| p.is_empty())
        || ![header, payload, signature].iter().all(|p| b64url(p))
    {
        return Err(AuthError::Malformed("not a compact JWS"));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| AuthError::Malformed("header is not base64url"))?;
    let map: Map<String, Value> = serde_json::from_slice(&bytes)
        .map_err(|_| AuthError::Malformed("header is not a JSON object"))?;
    if map.contains_key("crit") {
        return Err(AuthError::Malformed(
            "critical header extensions are not supported",
        ));
    }
    Ok(map)
}

fn map_jwt_error(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::InvalidSignature | ErrorKind::Provider(_) => AuthError::BadSignature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::BadIssuer,
        ErrorKind::InvalidAudience => AuthError::BadAudience,
        ErrorKind::MissingRequiredClaim(c) => AuthError::MissingClaim(match c.as_str() {
            "exp" => "exp",
            "iss" => "iss",
            "aud" => "aud",
            "sub" => "sub",
            _ => "required claim",
        }),
        ErrorKind::InvalidClaimFormat(_) => AuthError::Malformed("claim has the wrong type"),
        ErrorKind::InvalidAlgorithm
        | ErrorKind::MissingAlgorithm
        | ErrorKind::InvalidAlgorithmName => AuthError::AlgNotAllowed,
        ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat => AuthError::KeyMismatch,
        _ => AuthError::Malformed("token rejected by the JWT parser"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn header_shape_is_checked() {
        let h = b64(r#"{"alg":"RS256","kid":"k"}"#);
        assert!(parse_header(&format!("{h}.e30.c2ln")).is_ok());
        for bad in [
            format!("{h}.e30"),
            format!("{h}.e30.c2ln.x"),
            format!("{h}..c2ln"),
            ".e30.c2ln".to_string(),
            format!("{h}.e3+0.c2ln"),
            format!("{h}.e30.c2/ln"),
            format!("{}.e30.c2ln", b64("[1]")),
            format!("{}.e30.c2ln", b64("not json")),
            format!(
                "{}.e30.c2ln",
                b64(r#"{"alg":"RS256","crit":["b64"],"b64":false}"#)
            ),
        ] {
            assert!(
                matches!(parse_header(&bad), Err(AuthError::Malformed(_))),
                "{bad}"
            );
        }
    }
}
