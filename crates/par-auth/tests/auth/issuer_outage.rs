//! The issuer going down, being slow, or being down at startup.

use std::time::{Duration, Instant};

use par_auth::AuthError;

use crate::support::*;

#[tokio::test]
async fn cached_keys_keep_working_when_the_issuer_goes_down() {
    let mut p = Provider::start();
    let mut cfg = oidc_config(&p);
    cfg.jwks_ttl = Duration::from_millis(200); // stale almost at once: refreshes will fail
    cfg.refresh_min_interval = Duration::from_millis(100);
    cfg.http_timeout = Duration::from_millis(500);
    let auth = oidc_auth(cfg).await;
    let tokens = [
        p.rs256("par-test").await,
        p.token("par-test", &format!("{AUDIENCE}?alg=ES256"), None)
            .await,
        p.token("par-test", &format!("{AUDIENCE}?alg=EdDSA"), None)
            .await,
    ];
    let issuer = p.issuer.clone();
    let rsa = p.key("RS256");
    p.stop();

    for round in 0..3 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        for t in &tokens {
            let started = Instant::now();
            assert!(auth.authenticate(&bearer(t)).await.is_ok(), "round {round}");
            assert!(
                started.elapsed() < Duration::from_millis(1000),
                "waited on the dead issuer"
            );
        }
    }
    // A kid it never saw cannot be verified, and says so rather than hanging.
    let unknown = sign(
        &header("RS256", Some("never-seen")),
        &claims(&issuer),
        &encoding_key(&rsa),
    );
    assert_eq!(
        auth.authenticate(&bearer(&unknown)).await,
        Err(AuthError::UnknownKid)
    );
}

#[tokio::test]
async fn a_slow_jwks_endpoint_does_not_delay_known_keys() {
    let p = Provider::start();
    let mut cfg = oidc_config(&p);
    cfg.jwks_ttl = Duration::from_millis(300);
    cfg.refresh_min_interval = Duration::from_millis(100);
    cfg.http_timeout = Duration::from_millis(1500);
    let auth = oidc_auth(cfg).await;
    let token = p.rs256("par-test").await;
    assert!(auth.authenticate(&bearer(&token)).await.is_ok());

    p.set_jwks_delay(6000).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    for _ in 0..5 {
        let started = Instant::now();
        assert!(auth.authenticate(&bearer(&token)).await.is_ok());
        assert!(
            started.elapsed() < Duration::from_millis(1000),
            "known key waited on the slow JWKS"
        );
    }
    let evil = attacker().key("RS256");
    let unknown = sign(
        &header("RS256", Some("slow-kid")),
        &claims(&p.issuer),
        &encoding_key(&evil),
    );
    let started = Instant::now();
    assert_eq!(
        auth.authenticate(&bearer(&unknown)).await,
        Err(AuthError::UnknownKid)
    );
    assert!(
        started.elapsed() < Duration::from_millis(4500),
        "the http timeout did not bound the refetch"
    );
    p.set_jwks_delay(0).await;
}

#[tokio::test]
async fn an_issuer_down_at_startup_is_retried_on_first_use() {
    // Find a free port, point the authenticator at it while nothing listens, then start
    // the provider there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let issuer = format!("http://127.0.0.1:{port}");
    let mut cfg = par_auth::OidcConfig::new(
        par_auth::Url::parse(&issuer).unwrap(),
        vec![AUDIENCE.into()],
    );
    cfg.http_timeout = Duration::from_millis(500);
    let auth = oidc_auth(cfg).await; // startup does not fail
    let bogus = format!(
        "{}.{}.c2ln",
        b64_json(&serde_json::json!({"alg": "RS256", "kid": "k"})),
        b64_json(&claims(&issuer))
    );
    assert_eq!(
        auth.authenticate(&bearer(&bogus)).await,
        Err(AuthError::IssuerUnreachable)
    );
    assert!(AuthError::IssuerUnreachable.is_server_side());

    let p = Provider::start_on(port);
    assert_eq!(p.issuer, issuer);
    // Failed retries are spaced (min(refresh interval, 5 s)); the first use after startup
    // retried at once, so wait out the spacing before the provider's first real token.
    let token = p.rs256("par-test").await;
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        match auth.authenticate(&bearer(&token)).await {
            Ok(caller) => {
                assert_eq!(caller.subject, "par-test");
                break;
            }
            Err(AuthError::IssuerUnreachable) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => panic!("issuer never picked up: {e}"),
        }
    }
}
