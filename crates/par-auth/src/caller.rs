//! Who is calling: the identity an accepted credential maps to, and claim lookups.

use serde_json::Value;

/// An authenticated (or, with auth off, anonymous) caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's `sub`, `api-key:{name}`, or `anonymous`.
    pub subject: String,
    /// The OAuth client (`azp` or `client_id` claim), for OIDC callers.
    pub client_id: Option<String>,
    pub tenant: Option<String>,
    pub roles: Vec<String>,
    pub scopes: Vec<String>,
    pub via: AuthMethod,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod {
    Oidc,
    ApiKey {
        name: String,
    },
    /// Auth is off: everyone is this caller and every permission is granted.
    Anonymous,
}

impl Caller {
    pub(crate) fn anonymous() -> Caller {
        Caller {
            subject: "anonymous".to_string(),
            client_id: None,
            tenant: None,
            roles: Vec::new(),
            scopes: Vec::new(),
            via: AuthMethod::Anonymous,
        }
    }
}

/// Whether the caller holds `role` (exact, case-sensitive). With auth off the anonymous
/// caller holds every role, as it passes every other check.
pub fn has_role(caller: &Caller, role: &str) -> bool {
    caller.via == AuthMethod::Anonymous || caller.roles.iter().any(|r| r == role)
}

/// Roles claim lookup by dotted path; a string claim is split on whitespace/commas, an array
/// taken as strings (other elements ignored). A missing claim gives no roles.
///
/// A path segment may itself contain dots (`https://example.com/roles`, as Auth0 namespaces
/// claims): at each level the literal key is tried before splitting.
pub fn roles_from_claims(claims: &Value, path: &str) -> Vec<String> {
    let mut roles: Vec<String> = Vec::new();
    let mut push = |r: &str| {
        if !r.is_empty() && !roles.iter().any(|x| x == r) {
            roles.push(r.to_string());
        }
    };
    match claim_at(claims, path) {
        Some(Value::String(s)) => s
            .split(|c: char| c.is_whitespace() || c == ',')
            .for_each(&mut push),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::trim)
            .for_each(&mut push),
        _ => {}
    }
    roles
}

/// The value at a dotted path, trying literal keys (which may contain dots) first.
pub(crate) fn claim_at<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    let object = value.as_object()?;
    if let Some(v) = object.get(path) {
        return Some(v);
    }
    path.match_indices('.').find_map(|(i, _)| {
        let child = object.get(&path[..i])?;
        claim_at(child, &path[i + 1..])
    })
}

/// A string-valued claim at a dotted path (numbers are rendered; other types ignored).
pub(crate) fn string_claim(claims: &Value, path: &str) -> Option<String> {
    match claim_at(claims, path)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Scopes from the OAuth `scope` string, or `scp` (string or array, as Azure AD and Okta send).
pub(crate) fn scopes_from_claims(claims: &Value) -> Vec<String> {
    let mut scopes = roles_from_claims(claims, "scope");
    for s in roles_from_claims(claims, "scp") {
        if !scopes.contains(&s) {
            scopes.push(s);
        }
    }
    scopes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn array_claim() {
        let c = json!({"roles": ["a", "b", 3, null, "a", ""]});
        assert_eq!(roles_from_claims(&c, "roles"), ["a", "b"]);
    }

    #[test]
    fn string_claim_is_split_on_whitespace_and_commas() {
        let c = json!({"roles": " a b,c,,d\te "});
        assert_eq!(roles_from_claims(&c, "roles"), ["a", "b", "c", "d", "e"]);
    }

    #[test]
    fn dotted_path() {
        let c = json!({"realm_access": {"roles": ["x", "y"]}, "roles": ["z"]});
        assert_eq!(roles_from_claims(&c, "realm_access.roles"), ["x", "y"]);
        assert_eq!(roles_from_claims(&c, "roles"), ["z"]);
        let deep = json!({"a": {"b": {"c": "r1 r2"}}});
        assert_eq!(roles_from_claims(&deep, "a.b.c"), ["r1", "r2"]);
    }

    #[test]
    fn literal_keys_with_dots() {
        let c = json!({"https://example.com/roles": ["admin"], "ns.x": {"roles": ["q"]}});
        assert_eq!(
            roles_from_claims(&c, "https://example.com/roles"),
            ["admin"]
        );
        assert_eq!(roles_from_claims(&c, "ns.x.roles"), ["q"]);
    }

    #[test]
    fn missing_or_wrong_type_gives_nothing() {
        let c = json!({"roles": {"a": 1}, "n": 5, "realm_access": ["x"]});
        assert!(roles_from_claims(&c, "roles").is_empty());
        assert!(roles_from_claims(&c, "n").is_empty());
        assert!(roles_from_claims(&c, "nope").is_empty());
        assert!(roles_from_claims(&c, "realm_access.roles").is_empty());
        assert!(roles_from_claims(&json!("roles"), "roles").is_empty());
    }

    #[test]
    fn scopes_from_scope_and_scp() {
        assert_eq!(scopes_from_claims(&json!({"scope": "a b"})), ["a", "b"]);
        assert_eq!(
            scopes_from_claims(&json!({"scp": ["a", "c"], "scope": "a"})),
            ["a", "c"]
        );
    }

    #[test]
    fn has_role_exact_and_anonymous() {
        let mut c = Caller::anonymous();
        assert!(has_role(&c, "anything"));
        c.via = AuthMethod::Oidc;
        c.roles = vec!["ops".into()];
        assert!(has_role(&c, "ops"));
        assert!(!has_role(&c, "Ops"));
        assert!(!has_role(&c, "op"));
    }
}
