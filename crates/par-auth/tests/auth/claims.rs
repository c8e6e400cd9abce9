//! Claim checks: real tokens with the wrong audience, client, scope or lifetime, and tokens
//! signed with the issuer's own key whose claims are wrong (so only the claim check can
//! refuse them; the control case proves such a token passes when its claims are right).

use std::time::Duration;

use par_auth::AuthError;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn control_a_token_forged_with_the_issuers_key_and_good_claims_passes() {
    let p = shared();
    let auth = authenticator_for(p).await;
    for alg in ["RS256", "ES256", "EdDSA"] {
        let token = issuer_signed(p, alg, &claims(&p.issuer));
        let caller = auth
            .authenticate(&bearer(&token))
            .await
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(caller.roles, ["ops"]);
    }
}

#[tokio::test]
async fn wrong_audience_is_refused() {
    let p = shared();
    let auth = authenticator_for(p).await;
    let token = p
        .token("par-test", "urn:par:other", Some("agents:invoke"))
        .await;
    assert_eq!(decode_part(&token, 1)["aud"], "urn:par:other");
    assert_eq!(
        auth.authenticate(&bearer(&token)).await,
        Err(AuthError::BadAudience)
    );

    let mut c = claims(&p.issuer);
    c["aud"] = json!(["urn:par:other", "urn:par:else"]);
    assert_eq!(
        auth.authenticate(&bearer(&issuer_signed(p, "RS256", &c)))
            .await,
        Err(AuthError::BadAudience)
    );
    c["aud"] = json!(["urn:par:other", AUDIENCE]);
    assert!(auth
        .authenticate(&bearer(&issuer_signed(p, "RS256", &c)))
        .await
        .is_ok());
    c.as_object_mut().unwrap().remove("aud");
    assert_eq!(
        auth.authenticate(&bearer(&issuer_signed(p, "RS256", &c)))
            .await,
        Err(AuthError::MissingClaim("aud"))
    );
}

#[tokio::test]
async fn wrong_issuer_is_refused() {
    let p = shared();
    let auth = authenticator_for(p).await;
    let mut c = claims(&p.issuer);
    c["iss"] = json!("http://127.0.0.1:1/evil");
    assert_eq!(
        auth.authenticate(&bearer(&issuer_signed(p, "RS256", &c)))
            .await,
        Err(AuthError::BadIssuer)
    );
    c["iss"] = json!(format!("{}/", p.issuer));
    assert_eq!(
        auth.authenticate(&bearer(&issuer_signed(p, "RS256", &c)))
            .await,
        Err(AuthError::BadIssuer)
    );
    c.as_object_mut().unwrap().remove("iss");
    assert_eq!(
        auth.authenticate(&bearer(&issuer_signed(p, "RS256", &c)))
            .await,
        Err(AuthError::MissingClaim("iss"))
    );

    // A genuine token from another provider, audience and all.
    let foreign = attacker().rs256("par-test").await;
    assert_eq!(
        auth.authenticate(&bearer(&foreign)).await,
        Err(AuthError::UnknownKid)
    );
}

#[tokio::test]
async fn client_id_must_be_allowed() {
    let p = shared();
    let mut cfg = oidc_config(p);
    cfg.allowed_client_ids = vec!["par-test".into(), "par-ops".into()];
    let auth = oidc_auth(cfg).await;
    assert!(auth
        .authenticate(&bearer(&p.rs256("par-test").await))
        .await
        .is_ok());
    assert_eq!(
        auth.authenticate(&bearer(&p.rs256("other-client").await))
            .await,
        Err(AuthError::ClientNotAllowed)
    );
    // azp counts as the client too; no client claim at all is refused.
    let mut c = claims(&p.issuer);
    c.as_object_mut().unwrap().remove("client_id");
    assert_eq!(
        auth.authenticate(&bearer(&issuer_signed(p, "RS256", &c)))
            .await,
        Err(AuthError::ClientNotAllowed)
    );
    c["azp"] = json!("par-ops");
    assert!(auth
        .authenticate(&bearer(&issuer_signed(p, "RS256", &c)))
        .await
        .is_ok());
}

#[tokio::test]
async fn required_scopes_must_all_be_granted() {
    let p = shared();
    let mut cfg = oidc_config(p);
    cfg.required_scopes = vec!["agents:invoke".into()];
    let auth = oidc_auth(cfg.clone()).await;
    assert!(auth
        .authenticate(&bearer(&p.rs256("par-test").await))
        .await
        .is_ok());
    let unscoped = p.token("par-test", AUDIENCE, None).await;
    assert_eq!(
        auth.authenticate(&bearer(&unscoped)).await,
        Err(AuthError::MissingScope)
    );

    cfg.required_scopes = vec!["agents:invoke".into(), "agents:admin".into()];
    let auth = oidc_auth(cfg).await;
    assert_eq!(
        auth.authenticate(&bearer(&p.rs256("par-test").await)).await,
        Err(AuthError::MissingScope)
    );
    let both = p
        .token("par-test", AUDIENCE, Some("agents:invoke agents:admin"))
        .await;
    assert!(auth.authenticate(&bearer(&both)).await.is_ok());
}

#[tokio::test]
async fn expired_token_from_the_provider_is_refused() {
    let p = shared();
    let mut cfg = oidc_config(p);
    cfg.leeway = Duration::ZERO;
    let auth = oidc_auth(cfg).await;
    let token = p
        .token(
            "par-test",
            &format!("{AUDIENCE}?ttl=2"),
            Some("agents:invoke"),
        )
        .await;
    assert!(auth.authenticate(&bearer(&token)).await.is_ok());
    // Valid until its two seconds are up, then refused as expired (never anything else).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match auth.authenticate(&bearer(&token)).await {
            Err(AuthError::Expired) => break,
            Ok(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => panic!("the expired token gave {other:?}"),
        }
    }
}

#[tokio::test]
async fn expiry_and_not_before_respect_the_leeway() {
    let p = shared();
    let auth = authenticator_for(p).await; // 60 s leeway
    let with = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut c = claims(&p.issuer);
        f(&mut c);
        bearer(&issuer_signed(p, "ES256", &c))
    };
    let cases: Vec<(http::HeaderMap, Result<(), AuthError>)> = vec![
        (
            with(&|c| c["exp"] = json!(now() - 3600)),
            Err(AuthError::Expired),
        ),
        (with(&|c| c["exp"] = json!(now() - 30)), Ok(())),
        (
            with(&|c| c["nbf"] = json!(now() + 600)),
            Err(AuthError::NotYetValid),
        ),
        (with(&|c| c["nbf"] = json!(now() + 30)), Ok(())),
        (with(&|c| c["nbf"] = json!(now() - 30)), Ok(())),
        (
            with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
            Err(AuthError::MissingClaim("exp")),
        ),
        (
            with(&|c| c["exp"] = json!(null)),
            Err(AuthError::MissingClaim("exp")),
        ),
        (
            with(&|c| c["exp"] = json!(format!("{}", now() + 300))),
            Err(AuthError::MissingClaim("exp")),
        ),
        (
            with(&|c| c["exp"] = json!(-1)),
            Err(AuthError::MissingClaim("exp")),
        ),
        (
            with(&|c| c["nbf"] = json!(format!("{}", now() + 600))),
            Err(AuthError::Malformed("claim has the wrong type")),
        ),
        (
            with(&|c| {
                c.as_object_mut().unwrap().remove("sub");
            }),
            Err(AuthError::MissingClaim("sub")),
        ),
        (
            with(&|c| c["sub"] = json!(42)),
            Err(AuthError::MissingClaim("sub")),
        ),
    ];
    for (i, (headers, want)) in cases.into_iter().enumerate() {
        let got = auth.authenticate(&headers).await.map(|_| ());
        assert_eq!(got, want, "case {i}");
    }
}
