//! Static API keys, alone and next to OIDC, and the settings that must stop startup.

use par_auth::{
    ApiKeyConfig, ApiKeyEntry, AuthConfigError, AuthError, AuthMethod, AuthMode, Authenticator,
    OidcConfig, Url, API_KEY_HEADER,
};
use sha2::{Digest, Sha256};

use crate::support::*;

const KEY: &str = "par_live_3f9a1c0e5b7d2f4a6c8e0b1d3f5a7c9e";

fn keys() -> ApiKeyConfig {
    ApiKeyConfig {
        keys: vec![ApiKeyEntry {
            name: "ci".into(),
            sha256: hex::encode(Sha256::digest(KEY)),
            roles: vec!["ops".into()],
        }],
    }
}

fn x_api_key(key: &str) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert(API_KEY_HEADER, key.parse().unwrap());
    h
}

#[tokio::test]
async fn api_keys_via_bearer_or_x_api_key() {
    let auth = api_key_auth(AuthMode::ApiKey, keys(), None).await;
    for headers in [bearer(KEY), x_api_key(KEY)] {
        let caller = auth.authenticate(&headers).await.unwrap();
        assert_eq!(caller.subject, "api-key:ci");
        assert_eq!(caller.roles, ["ops"]);
        assert_eq!(caller.via, AuthMethod::ApiKey { name: "ci".into() });
    }
    let mut both = bearer(KEY);
    both.insert(API_KEY_HEADER, KEY.parse().unwrap());
    let huge = "k".repeat(8 * 1024 + 1);
    let cases: Vec<(http::HeaderMap, AuthError)> = vec![
        (bearer("par_live_wrong"), AuthError::BadApiKey),
        (x_api_key(&KEY[..KEY.len() - 1]), AuthError::BadApiKey),
        (bearer("a.b.c"), AuthError::BadApiKey),
        (http::HeaderMap::new(), AuthError::Missing),
        (both, AuthError::Ambiguous),
        (x_api_key(&huge), AuthError::TooLarge),
    ];
    for (headers, want) in cases {
        assert_eq!(auth.authenticate(&headers).await, Err(want));
    }
}

#[tokio::test]
async fn oidc_and_api_keys_together() {
    let p = shared();
    let auth = api_key_auth(AuthMode::OidcAndApiKey, keys(), Some(oidc_config(p))).await;
    assert_eq!(
        auth.authenticate(&bearer(KEY)).await.unwrap().subject,
        "api-key:ci"
    );
    assert_eq!(
        auth.authenticate(&x_api_key(KEY)).await.unwrap().subject,
        "api-key:ci"
    );
    let caller = auth
        .authenticate(&bearer(&p.rs256("par-test").await))
        .await
        .unwrap();
    assert_eq!(caller.via, AuthMethod::Oidc);
    assert_eq!(
        auth.authenticate(&bearer("wrong-key")).await,
        Err(AuthError::BadApiKey)
    );
    // A JWT in x-api-key is just a wrong key.
    assert_eq!(
        auth.authenticate(&x_api_key(&p.rs256("par-test").await))
            .await,
        Err(AuthError::BadApiKey)
    );

    // With OIDC only, API keys are not a way in.
    let oidc_only = authenticator_for(p).await;
    assert_eq!(
        oidc_only.authenticate(&x_api_key(KEY)).await,
        Err(AuthError::MethodNotEnabled)
    );
    assert!(matches!(
        oidc_only.authenticate(&bearer(KEY)).await,
        Err(AuthError::Malformed(_))
    ));
}

#[tokio::test]
async fn bad_settings_stop_startup() {
    let issuer = |u: &str| OidcConfig::new(Url::parse(u).unwrap(), vec![AUDIENCE.into()]);
    let new = |mode, oidc, keys| Authenticator::new(mode, oidc, keys, "roles".into(), None);

    assert!(matches!(
        new(AuthMode::Oidc, None, None).await,
        Err(AuthConfigError::MissingOidc(_))
    ));
    assert!(matches!(
        new(AuthMode::ApiKey, None, None).await,
        Err(AuthConfigError::MissingApiKeys(_))
    ));
    let empty = Some(ApiKeyConfig::default());
    assert!(matches!(
        new(AuthMode::ApiKey, None, empty).await,
        Err(AuthConfigError::MissingApiKeys(_))
    ));
    let plain_http = new(AuthMode::Oidc, Some(issuer("http://idp.example.com")), None).await;
    assert!(plain_http.unwrap_err().to_string().contains("https"));
    let mut no_aud = issuer("https://idp.example.com");
    no_aud.audiences.clear();
    assert!(new(AuthMode::Oidc, Some(no_aud), None)
        .await
        .unwrap_err()
        .to_string()
        .contains("audience"));
    let mut no_algs = issuer("https://idp.example.com");
    no_algs.algorithms.clear();
    assert!(new(AuthMode::Oidc, Some(no_algs), None).await.is_err());
    let mut bad_ca = issuer("https://idp.example.com");
    bad_ca.ca_bundle = Some("/nonexistent/ca.pem".into());
    let err = new(AuthMode::Oidc, Some(bad_ca), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/ca.pem"), "{err}");
}

#[test]
fn auth_mode_parses_the_contract_values() {
    assert_eq!("off".parse::<AuthMode>().unwrap(), AuthMode::Off);
    assert_eq!("oidc".parse::<AuthMode>().unwrap(), AuthMode::Oidc);
    assert_eq!("api-key".parse::<AuthMode>().unwrap(), AuthMode::ApiKey);
    assert_eq!(
        "oidc,api-key".parse::<AuthMode>().unwrap(),
        AuthMode::OidcAndApiKey
    );
    assert_eq!(
        "api-key, oidc".parse::<AuthMode>().unwrap(),
        AuthMode::OidcAndApiKey
    );
    for bad in ["", "on", "OIDC", "oidc,off", "basic"] {
        let err = bad.parse::<AuthMode>().unwrap_err().to_string();
        assert!(err.contains("PAR_AUTH"), "{err}");
    }
    assert_eq!(AuthMode::OidcAndApiKey.to_string(), "oidc,api-key");
    assert!("HS256".parse::<par_auth::Algorithm>().is_err());
    assert!("none".parse::<par_auth::Algorithm>().is_err());
}
