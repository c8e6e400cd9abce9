//! An issuer served over HTTPS by a private CA: trusted only through `ca_bundle`.

use par_auth::{AuthError, OidcConfig, Url};

use crate::support::*;

fn config(p: &Provider, ca: Option<&TestPki>) -> OidcConfig {
    let mut cfg = OidcConfig::new(Url::parse(&p.issuer).unwrap(), vec![AUDIENCE.into()]);
    cfg.ca_bundle = ca.map(|pki| pki.ca_file.clone());
    cfg
}

#[tokio::test]
async fn an_https_issuer_with_a_private_ca_needs_the_ca_bundle() {
    let pki = TestPki::new();
    let p = Provider::start_tls(&pki);
    assert!(p.issuer.starts_with("https://127.0.0.1:"), "{}", p.issuer);
    let token = p.rs256("par-test").await;

    let trusted = oidc_auth(config(&p, Some(&pki))).await;
    let caller = trusted.authenticate(&bearer(&token)).await.unwrap();
    assert_eq!(caller.subject, "par-test");

    // Without the bundle, or with another CA's, the issuer's certificate is not trusted:
    // startup goes on (logged), and tokens are refused as the issuer is unreachable.
    let stranger = TestPki::new();
    for cfg in [config(&p, None), config(&p, Some(&stranger))] {
        let auth = oidc_auth(cfg).await;
        assert_eq!(
            auth.authenticate(&bearer(&token)).await,
            Err(AuthError::IssuerUnreachable)
        );
    }
}
