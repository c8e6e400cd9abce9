//! Key rotation without a restart, the unknown-kid refetch rate limit, and the JWKS TTL.

use std::time::Duration;

use par_auth::AuthError;

use crate::support::*;

#[tokio::test]
async fn a_rotated_key_is_fetched_on_first_sight_without_restart() {
    let p = Provider::start();
    let auth = authenticator_for(&p).await; // default 30 s refetch interval
    let old = p.rs256("par-test").await;
    assert!(auth.authenticate(&bearer(&old)).await.is_ok());
    let stats = p.stats().await;
    let (fetched, discovered) = (stats.jwks_requests, stats.discovery_requests);

    let new_kid = p.rotate("RS256").await;
    let new = p.rs256("par-test").await;
    assert_eq!(decode_part(&new, 0)["kid"], new_kid.as_str());
    let caller = auth
        .authenticate(&bearer(&new))
        .await
        .expect("token signed by the rotated-in key");
    assert_eq!(caller.subject, "par-test");
    let stats = p.stats().await;
    assert_eq!(
        stats.jwks_requests,
        fetched + 1,
        "one refetch for the new kid"
    );
    assert_eq!(
        stats.discovery_requests,
        discovered + 1,
        "discovery is re-read with it"
    );

    // The old key is still published, so tokens signed before the rotation keep working,
    // and neither token costs another fetch.
    assert!(auth.authenticate(&bearer(&old)).await.is_ok());
    assert!(auth.authenticate(&bearer(&new)).await.is_ok());
    assert_eq!(p.stats().await.jwks_requests, fetched + 1);

    // A second rotation inside the refetch interval is not picked up yet: the interval is
    // what protects the issuer from a flood of made-up kids.
    p.rotate("RS256").await;
    let newer = p.rs256("par-test").await;
    assert_eq!(
        auth.authenticate(&bearer(&newer)).await,
        Err(AuthError::UnknownKid)
    );
    assert_eq!(p.stats().await.jwks_requests, fetched + 1);
}

#[tokio::test]
async fn unknown_kids_refetch_at_most_once_per_interval() {
    let p = Provider::start();
    let mut cfg = oidc_config(&p);
    cfg.refresh_min_interval = Duration::from_secs(2);
    let auth = oidc_auth(cfg).await;
    let start = p.stats().await.jwks_requests;
    let evil = attacker().key("RS256");

    let forged: Vec<String> = (0..20)
        .map(|i| {
            sign(
                &header("RS256", Some(&format!("made-up-{i}"))),
                &claims(&p.issuer),
                &encoding_key(&evil),
            )
        })
        .collect();
    let results = futures_join(forged.iter().map(|t| {
        let auth = auth.clone();
        let h = bearer(t);
        async move { auth.authenticate(&h).await }
    }))
    .await;
    assert!(results.iter().all(|r| *r == Err(AuthError::UnknownKid)));
    assert_eq!(
        p.stats().await.jwks_requests,
        start + 1,
        "20 concurrent unknown kids, one fetch"
    );

    for t in &forged {
        assert_eq!(
            auth.authenticate(&bearer(t)).await,
            Err(AuthError::UnknownKid)
        );
    }
    assert_eq!(
        p.stats().await.jwks_requests,
        start + 1,
        "still inside the interval"
    );

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let kid = p.rotate("ES256").await;
    let token = p
        .token("par-test", &format!("{AUDIENCE}?alg=ES256"), None)
        .await;
    assert_eq!(decode_part(&token, 0)["kid"], kid.as_str());
    assert!(
        auth.authenticate(&bearer(&token)).await.is_ok(),
        "after the interval, a new kid refetches"
    );
    assert_eq!(p.stats().await.jwks_requests, start + 2);
}

#[tokio::test]
async fn keys_are_refreshed_in_the_background_after_the_ttl() {
    let p = Provider::start();
    let mut cfg = oidc_config(&p);
    cfg.jwks_ttl = Duration::from_secs(1);
    cfg.refresh_min_interval = Duration::from_millis(500);
    let auth = oidc_auth(cfg).await;
    let token = p.rs256("par-test").await;
    assert!(auth.authenticate(&bearer(&token)).await.is_ok());
    let start = p.stats().await.jwks_requests;

    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(auth.authenticate(&bearer(&token)).await.is_ok());
    for _ in 0..50 {
        if p.stats().await.jwks_requests > start {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no JWKS refresh after the TTL passed");
}

/// Runs the futures as concurrent tasks and collects their outputs in order.
async fn futures_join<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}
