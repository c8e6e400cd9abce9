//! Forged tokens: every classic JWT attack is refused, with the reason it deserves.

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{EncodingKey, Header};
use par_auth::{Algorithm, AuthError};
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn alg_none_is_refused_in_every_spelling() {
    let p = shared();
    let auth = authenticator_for(p).await;
    let kid = p.key("RS256").kid;
    let payload = b64_json(&claims(&p.issuer));
    for alg in ["none", "None", "NONE", "nOnE", ""] {
        for header in [
            json!({"alg": alg, "typ": "JWT"}),
            json!({"alg": alg, "kid": kid}),
        ] {
            let h = b64_json(&header);
            for token in [format!("{h}.{payload}."), format!("{h}.{payload}.c2ln")] {
                assert_eq!(
                    auth.authenticate(&bearer(&token)).await,
                    Err(AuthError::AlgNotAllowed),
                    "{header}"
                );
            }
        }
    }
    let no_alg = format!("{}.{payload}.", b64_json(&json!({"kid": kid})));
    assert!(matches!(
        auth.authenticate(&bearer(&no_alg)).await,
        Err(AuthError::Malformed(_))
    ));
}

#[tokio::test]
async fn hmac_keyed_with_the_issuers_public_key_is_refused() {
    let p = shared();
    let auth = authenticator_for(p).await;
    let rsa = p.key("RS256");
    let jwks = reqwest::get(format!("{}/jwks", p.issuer))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let public_der = {
        let body: String = rsa
            .public_pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, body).unwrap()
    };
    let secrets: [&[u8]; 3] = [rsa.public_pem.as_bytes(), &public_der, jwks.as_bytes()];
    for secret in secrets {
        for alg in ["HS256", "HS384", "HS512"] {
            let token = sign(
                &header(alg, Some(&rsa.kid)),
                &claims(&p.issuer),
                &EncodingKey::from_secret(secret),
            );
            assert_eq!(
                auth.authenticate(&bearer(&token)).await,
                Err(AuthError::AlgNotAllowed),
                "{alg}"
            );
        }
    }
}

#[tokio::test]
async fn algorithms_outside_the_allowlist_are_refused() {
    let p = shared();
    let mut cfg = oidc_config(p);
    cfg.algorithms = vec![Algorithm::RS256];
    let auth = oidc_auth(cfg).await;
    assert!(auth
        .authenticate(&bearer(&p.rs256("par-test").await))
        .await
        .is_ok());
    for alg in ["ES256", "EdDSA"] {
        let token = p
            .token("par-test", &format!("{AUDIENCE}?alg={alg}"), None)
            .await;
        assert_eq!(
            auth.authenticate(&bearer(&token)).await,
            Err(AuthError::AlgNotAllowed),
            "{alg}"
        );
    }
    // PS256 with the issuer's real RSA key: valid signature, but not on the default list.
    let auth = authenticator_for(p).await;
    let rsa = p.key("RS256");
    let ps = sign(
        &header("PS256", Some(&rsa.kid)),
        &claims(&p.issuer),
        &encoding_key(&rsa),
    );
    assert_eq!(
        auth.authenticate(&bearer(&ps)).await,
        Err(AuthError::AlgNotAllowed)
    );
}

#[tokio::test]
async fn a_key_is_used_only_for_its_own_algorithm() {
    let p = shared();
    let mut cfg = oidc_config(p);
    cfg.algorithms = Algorithm::ALL.to_vec();
    let auth = oidc_auth(cfg).await;
    // The issuer's JWKS pins alg RS256 on its RSA key: a PS256 signature by that very key
    // is refused, as is naming the EC key's kid in an RS256 token.
    let rsa = p.key("RS256");
    let ps = sign(
        &header("PS256", Some(&rsa.kid)),
        &claims(&p.issuer),
        &encoding_key(&rsa),
    );
    assert_eq!(
        auth.authenticate(&bearer(&ps)).await,
        Err(AuthError::KeyMismatch)
    );
    let ec_kid = p.key("ES256").kid;
    let cross = sign(
        &header("RS256", Some(&ec_kid)),
        &claims(&p.issuer),
        &encoding_key(&rsa),
    );
    assert_eq!(
        auth.authenticate(&bearer(&cross)).await,
        Err(AuthError::KeyMismatch)
    );
}

#[tokio::test]
async fn tampered_tokens_are_refused() {
    let p = shared();
    let auth = authenticator_for(p).await;
    for alg in ["RS256", "ES256", "EdDSA"] {
        let token = p
            .token(
                "par-test",
                &format!("{AUDIENCE}?alg={alg}"),
                Some("agents:invoke"),
            )
            .await;
        let parts: Vec<&str> = token.split('.').collect();
        let mut payload = decode_part(&token, 1);
        payload["roles"] = json!(["ops"]);
        let forged = format!("{}.{}.{}", parts[0], b64_json(&payload), parts[2]);
        assert_eq!(
            auth.authenticate(&bearer(&forged)).await,
            Err(AuthError::BadSignature),
            "{alg}"
        );

        let mut sig = parts[2].to_string().into_bytes();
        sig[10] = if sig[10] == b'A' { b'B' } else { b'A' };
        let bad_sig = format!(
            "{}.{}.{}",
            parts[0],
            parts[1],
            String::from_utf8(sig).unwrap()
        );
        assert_eq!(
            auth.authenticate(&bearer(&bad_sig)).await,
            Err(AuthError::BadSignature),
            "{alg}"
        );

        let no_sig = format!("{}.{}.", parts[0], parts[1]);
        assert_eq!(
            auth.authenticate(&bearer(&no_sig)).await,
            Err(AuthError::BadSignature),
            "{alg}"
        );
    }
}

#[tokio::test]
async fn right_kid_signed_by_another_key_is_refused() {
    let p = shared();
    let auth = authenticator_for(p).await;
    let evil = attacker();
    for alg in ["RS256", "ES256", "EdDSA"] {
        let kid = p.key(alg).kid;
        let token = sign(
            &header(alg, Some(&kid)),
            &claims(&p.issuer),
            &encoding_key(&evil.key(alg)),
        );
        assert_eq!(
            auth.authenticate(&bearer(&token)).await,
            Err(AuthError::BadSignature),
            "{alg}"
        );
    }
}

#[tokio::test]
async fn embedded_jwk_and_remote_key_urls_are_ignored() {
    let p = shared();
    let auth = authenticator_for(p).await;
    let evil = attacker();
    let before = evil.stats().await.jwks_requests;
    let evil_key = evil.key("RS256");
    let evil_enc = encoding_key(&evil_key);
    let evil_jwk = Jwk::from_encoding_key(&evil_enc, jsonwebtoken::Algorithm::RS256).unwrap();
    let evil_jwks_url = format!("{}/jwks", evil.issuer);

    let variants: Vec<(Option<String>, AuthError)> = vec![
        (Some(evil_key.kid.clone()), AuthError::UnknownKid),
        (Some(p.key("RS256").kid), AuthError::BadSignature),
        // No kid: the issuer's one RS256 key is tried, and the signature does not match it.
        (None, AuthError::BadSignature),
    ];
    for (kid, want) in variants {
        let mut h: Header = header("RS256", kid.as_deref());
        h.jwk = Some(evil_jwk.clone());
        h.jku = Some(evil_jwks_url.clone());
        h.x5u = Some(format!("{}/cert.pem", evil.issuer));
        let token = sign(&h, &claims(&p.issuer), &evil_enc);
        assert_eq!(
            auth.authenticate(&bearer(&token)).await,
            Err(want.clone()),
            "kid {kid:?}"
        );

        let mut jku_only = header("RS256", kid.as_deref());
        jku_only.jku = Some(evil_jwks_url.clone());
        let token = sign(&jku_only, &claims(&p.issuer), &evil_enc);
        assert_eq!(
            auth.authenticate(&bearer(&token)).await,
            Err(want),
            "jku, kid {kid:?}"
        );
    }
    assert_eq!(
        evil.stats().await.jwks_requests,
        before,
        "the attacker's jku/x5u was fetched"
    );
}

#[tokio::test]
async fn oversized_tokens_are_refused_before_parsing() {
    let p = shared();
    let auth = authenticator_for(p).await;
    let garbage = "x".repeat(8 * 1024 + 1);
    assert_eq!(
        auth.authenticate(&bearer(&garbage)).await,
        Err(AuthError::TooLarge)
    );
    let mut c = claims(&p.issuer);
    c["padding"] = json!("p".repeat(8 * 1024));
    let big = issuer_signed(p, "ES256", &c);
    assert_eq!(
        auth.authenticate(&bearer(&big)).await,
        Err(AuthError::TooLarge)
    );

    let mut cfg = oidc_config(p);
    cfg.max_token_bytes = 64 * 1024;
    let roomy = oidc_auth(cfg).await;
    assert!(roomy.authenticate(&bearer(&big)).await.is_ok());
}

#[tokio::test]
async fn malformed_credentials_are_refused() {
    let p = shared();
    let auth = authenticator_for(p).await;
    let token = p.rs256("par-test").await;
    let mut basic = http::HeaderMap::new();
    basic.insert(
        http::header::AUTHORIZATION,
        "Basic cGFyOnNlY3JldA==".parse().unwrap(),
    );
    let mut twice = bearer(&token);
    twice.append(
        http::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    let cases: Vec<(http::HeaderMap, &str)> = vec![
        (http::HeaderMap::new(), "missing"),
        (bearer(""), "missing"),
        (basic, "malformed"),
        (twice, "malformed"),
        (bearer("a.b"), "malformed"),
        (bearer("not-a-jwt"), "malformed"),
        (bearer(&format!("{token}.extra")), "malformed"),
        (
            bearer(&format!("{}.e30.c2ln", b64("{\"alg\":\"RS256\""))),
            "malformed",
        ),
    ];
    for (i, (headers, reason)) in cases.into_iter().enumerate() {
        let err = auth.authenticate(&headers).await.unwrap_err();
        assert_eq!(err.reason(), reason, "case {i}: {err}");
    }
}
