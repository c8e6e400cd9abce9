//! Real tokens from the real provider are accepted, with identity, roles and scopes mapped.

use par_auth::{
    require, AuthError, AuthMethod, AuthMode, Authenticator, Denied, Permission, Policy,
};

use crate::support::*;

#[tokio::test]
async fn rs256_es256_and_eddsa_tokens_are_accepted() {
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
        assert_eq!(decode_part(&token, 0)["alg"], alg);
        let caller = auth
            .authenticate(&bearer(&token))
            .await
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(caller.subject, "par-test");
        assert_eq!(caller.client_id.as_deref(), Some("par-test"));
        assert_eq!(caller.tenant.as_deref(), Some("acme"));
        assert_eq!(caller.roles, ["analyst"]);
        assert_eq!(caller.scopes, ["agents:invoke"]);
        assert_eq!(caller.via, AuthMethod::Oidc);
    }
}

#[tokio::test]
async fn roles_come_from_a_nested_claim_when_configured() {
    let p = shared();
    let auth = Authenticator::new(
        AuthMode::Oidc,
        Some(oidc_config(p)),
        None,
        "realm_access.roles".into(),
        None,
    )
    .await
    .unwrap();
    let caller = auth
        .authenticate(&bearer(&p.rs256("par-test").await))
        .await
        .unwrap();
    assert_eq!(caller.roles, ["analyst", "reader"]);
    assert_eq!(caller.tenant, None);
}

#[tokio::test]
async fn bearer_scheme_is_case_insensitive() {
    let p = shared();
    let auth = authenticator_for(p).await;
    let token = p.rs256("par-test").await;
    let mut h = http::HeaderMap::new();
    h.insert(
        http::header::AUTHORIZATION,
        format!("bearer {token}").parse().unwrap(),
    );
    assert!(auth.authenticate(&h).await.is_ok());
}

const POLICY: &str = r#"
[[grant]]
role = "analyst"
invoke = ["kit-minimal", "report-*"]

[[grant]]
role = "ops"
admin = true
"#;

#[tokio::test]
async fn require_maps_real_tokens_through_the_policy() {
    let p = shared();
    let auth = authenticator_for(p).await;
    let policy = Policy::from_toml(POLICY).unwrap();
    let analyst = bearer(&p.rs256("par-test").await);
    let ops = bearer(&p.rs256("par-ops").await);
    let none = http::HeaderMap::new();

    let cases: &[(&http::HeaderMap, Permission, Option<u16>)] = &[
        (&analyst, Permission::Invoke("kit-minimal"), None),
        (&analyst, Permission::Invoke("report-weekly"), None),
        (&analyst, Permission::Invoke("kit-other"), Some(403)),
        (&analyst, Permission::Admin, Some(403)),
        (&ops, Permission::Admin, None),
        (&ops, Permission::Invoke("kit-minimal"), Some(403)),
        (&none, Permission::Invoke("kit-minimal"), Some(401)),
        (&none, Permission::Admin, Some(401)),
    ];
    for (headers, need, want) in cases {
        let got = require(&auth, &policy, headers, *need).await;
        assert_eq!(
            got.as_ref().err().map(|d| d.status().as_u16()),
            *want,
            "{need:?}: {got:?}"
        );
    }

    let denied = require(&auth, &policy, &analyst, Permission::Admin)
        .await
        .unwrap_err();
    assert_eq!(
        denied,
        Denied::Forbidden {
            subject: "par-test".into()
        }
    );
    assert_eq!(denied.code(), "forbidden");
    let denied = require(&auth, &policy, &none, Permission::Admin)
        .await
        .unwrap_err();
    assert_eq!(denied, Denied::Unauthenticated(AuthError::Missing));
    assert_eq!(
        (denied.code(), denied.reason()),
        ("unauthorized", "missing")
    );
    // The body text is the same whatever the reason, so it reveals nothing.
    let expired = Denied::Unauthenticated(AuthError::Expired);
    assert_eq!(denied.public_message(), expired.public_message());
}

#[tokio::test]
async fn auth_off_lets_everyone_in_as_anonymous() {
    let auth = Authenticator::new(AuthMode::Off, None, None, String::new(), None)
        .await
        .unwrap();
    assert!(auth.is_off());
    let policy = Policy::from_toml("").unwrap();
    let caller = require(&auth, &policy, &http::HeaderMap::new(), Permission::Admin)
        .await
        .unwrap();
    assert_eq!(caller.via, AuthMethod::Anonymous);
    assert!(par_auth::has_role(&caller, "anything"));
    assert!(Authenticator::off().is_off());
}
