//! What a package's HTTP app learns about the caller: the identity PAR established, as
//! `x-par-caller-*` headers PAR alone sets, and never the credentials PAR consumed (a
//! package must not collect an admin's key by serving a route).

use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use par_auth::{AuthMethod, Caller};

const SUBJECT: HeaderName = HeaderName::from_static("x-par-caller-subject");
const ROLES: HeaderName = HeaderName::from_static("x-par-caller-roles");
const TENANT: HeaderName = HeaderName::from_static("x-par-caller-tenant");
const CLIENT: HeaderName = HeaderName::from_static("x-par-caller-client-id");
const METHOD: HeaderName = HeaderName::from_static("x-par-caller-auth");

/// Cookies whose names start with this are PAR's own (e.g. a console session).
const OWN_COOKIE_PREFIX: &str = "par_";

/// Removes every `x-par-*` header the client sent, the credentials PAR checked (when
/// `auth_on`), and PAR's own cookies; then describes `caller`.
pub(crate) fn replace(headers: &mut HeaderMap, caller: Option<&Caller>, auth_on: bool) {
    let forged: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("x-par-"))
        .cloned()
        .collect();
    for name in forged {
        headers.remove(name);
    }
    if auth_on {
        headers.remove(header::AUTHORIZATION);
        headers.remove(par_auth::API_KEY_HEADER);
    }
    strip_own_cookies(headers);
    if let Some(caller) = caller {
        describe(headers, caller);
    }
}

fn describe(headers: &mut HeaderMap, caller: &Caller) {
    let method = match &caller.via {
        AuthMethod::Oidc => "oidc",
        AuthMethod::ApiKey { .. } => "api-key",
        AuthMethod::Anonymous => "anonymous",
    };
    let fields = [
        (SUBJECT, Some(caller.subject.clone())),
        (ROLES, Some(caller.roles.join(","))),
        (TENANT, caller.tenant.clone()),
        (CLIENT, caller.client_id.clone()),
        (METHOD, Some(method.to_string())),
    ];
    for (name, value) in fields {
        // A claim that cannot be a header value (control characters) is left out.
        if let Some(value) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            headers.insert(name, value);
        }
    }
}

fn strip_own_cookies(headers: &mut HeaderMap) {
    let kept: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|c| !c.is_empty() && !c.starts_with(OWN_COOKIE_PREFIX))
        .map(str::to_string)
        .collect();
    headers.remove(header::COOKIE);
    if kept.is_empty() {
        return;
    }
    if let Ok(value) = HeaderValue::from_str(&kept.join("; ")) {
        headers.insert(header::COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    fn caller() -> Caller {
        Caller {
            subject: "svc".into(),
            client_id: None,
            tenant: Some("acme".into()),
            roles: vec!["analyst".into(), "ops".into()],
            scopes: vec![],
            via: AuthMethod::ApiKey { name: "svc".into() },
        }
    }

    #[test]
    fn consumed_credentials_and_forged_identity_are_removed() {
        let mut h = headers(&[
            ("authorization", "Bearer secret"),
            ("x-api-key", "secret"),
            ("x-par-caller-subject", "admin"),
            ("x-par-anything", "1"),
            ("cookie", "par_session=abc; theme=dark"),
            ("accept", "*/*"),
        ]);
        replace(&mut h, Some(&caller()), true);
        assert!(h.get("authorization").is_none());
        assert!(h.get("x-api-key").is_none());
        assert!(h.get("x-par-anything").is_none());
        assert_eq!(h["x-par-caller-subject"], "svc");
        assert_eq!(h["x-par-caller-roles"], "analyst,ops");
        assert_eq!(h["x-par-caller-tenant"], "acme");
        assert_eq!(h["x-par-caller-auth"], "api-key");
        assert!(h.get("x-par-caller-client-id").is_none());
        assert_eq!(h["cookie"], "theme=dark");
        assert_eq!(h["accept"], "*/*");
    }

    #[test]
    fn with_auth_off_the_apps_own_credentials_pass() {
        let mut h = headers(&[
            ("authorization", "Bearer app-token"),
            ("x-par-caller-subject", "x"),
        ]);
        replace(&mut h, None, false);
        assert_eq!(h["authorization"], "Bearer app-token");
        assert!(h.get("x-par-caller-subject").is_none());
    }
}
