//! Refuses requests a web page in someone's browser could have made: a foreign `Host`
//! (DNS rebinding), a cross-site `Origin` or `Sec-Fetch-Site`, and state-changing
//! management calls in a form a page may send without a CORS preflight.
//!
//! Browsers attach none of PAR's credentials on their own (no cookies), so these checks
//! matter most when auth is off on loopback: without them any page the operator visits
//! could load a package (and run its code) or shut the runtime down.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use par_core::ErrorCode;

use crate::error::ApiError;
use crate::state::AppState;

/// The header that makes a multipart or raw upload to the management API acceptable:
/// a page cannot set it without a CORS preflight, which PAR never grants.
pub const UPLOAD_HEADER: &str = "x-par-upload";

/// Which requests the site guard lets through.
#[derive(Debug, Clone, Default)]
pub struct SiteRules {
    /// Check `Host` at all (auth off, or names configured).
    pub check_host: bool,
    /// Host names (no port) accepted besides IP literals and `localhost`; a leading
    /// `*.` matches any subdomain.
    pub allowed_hosts: Vec<String>,
}

impl SiteRules {
    /// Rules for a runtime: the host check is on when auth is off (nothing else stops a
    /// rebound name) or when the operator named the hosts.
    pub fn new(auth_off: bool, allowed_hosts: Vec<String>) -> SiteRules {
        SiteRules {
            check_host: auth_off || !allowed_hosts.is_empty(),
            allowed_hosts: allowed_hosts
                .into_iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
        }
    }

    /// Whether `authority` (`host[:port]` from the `Host` header) names this runtime.
    /// IP literals always do: a rebinding attack needs a name.
    pub fn host_allowed(&self, authority: &str) -> bool {
        if !self.check_host {
            return true;
        }
        let host = host_part(authority).to_ascii_lowercase();
        if host.parse::<std::net::IpAddr>().is_ok() || host == "localhost" {
            return true;
        }
        self.allowed_hosts
            .iter()
            .any(|pattern| match pattern.strip_prefix("*.") {
                Some(suffix) => host
                    .strip_suffix(suffix)
                    .is_some_and(|rest| rest.ends_with('.') && rest.len() > 1),
                None => *pattern == host,
            })
    }
}

/// `host[:port]` → `host`, brackets of an IPv6 literal removed.
fn host_part(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    authority.split(':').next().unwrap_or(authority)
}

/// Probes and scrapers are not state-changing and must work from any name.
fn is_exempt(path: &str) -> bool {
    matches!(path, "/runtime/health" | "/runtime/ready" | "/metrics")
}

/// The middleware: every route but the probes passes through here.
pub(crate) async fn check(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if is_exempt(request.uri().path()) {
        return next.run(request).await;
    }
    match refusal(&state.site, &request) {
        None => next.run(request).await,
        Some((code, message)) => ApiError::new(code, message.clone())
            .with_reason(format!("cross-site: {message}"))
            .into_response(),
    }
}

fn refusal(rules: &SiteRules, request: &Request) -> Option<(ErrorCode, String)> {
    let headers = request.headers();
    let host = header_text(headers, header::HOST.as_str())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    if let Some(host) = host {
        if !rules.host_allowed(host) {
            let message = format!("host '{host}' is not a name of this runtime (--allowed-hosts)");
            return Some((ErrorCode::Forbidden, message));
        }
    }
    if let Some(site) = header_text(headers, "sec-fetch-site") {
        if !matches!(site, "same-origin" | "none") {
            return Some((
                ErrorCode::Forbidden,
                format!("cross-site request refused (sec-fetch-site: {site})"),
            ));
        }
    }
    if let Some(origin) = header_text(headers, header::ORIGIN.as_str()) {
        if !same_origin(origin, host) {
            return Some((
                ErrorCode::Forbidden,
                format!("cross-origin request refused (origin: {origin})"),
            ));
        }
    }
    if is_management_write(request) {
        return unsafe_content_type(headers);
    }
    None
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The origin's `host[:port]` equals the request's `Host` (scheme and default ports
/// aside: TLS may end at a proxy in front).
fn same_origin(origin: &str, host: Option<&str>) -> bool {
    let Some(host) = host else { return false };
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false; // `null` and other opaque origins
    };
    let authority = authority.trim_end_matches('/');
    let default_port = match scheme {
        "https" => ":443",
        "http" => ":80",
        _ => return false,
    };
    let strip = |a: &str| {
        a.strip_suffix(default_port)
            .unwrap_or(a)
            .to_ascii_lowercase()
    };
    strip(authority) == strip(host)
}

fn is_management_write(request: &Request) -> bool {
    request.uri().path().starts_with("/runtime/")
        && matches!(
            *request.method(),
            Method::POST | Method::PUT | Method::DELETE | Method::PATCH
        )
}

/// Bodies a page can send without a preflight (`text/plain`, form encodings) are
/// refused; multipart uploads pass only with [`UPLOAD_HEADER`].
fn unsafe_content_type(headers: &HeaderMap) -> Option<(ErrorCode, String)> {
    let content_type = header_text(headers, header::CONTENT_TYPE.as_str())?;
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let upload_marked = headers.contains_key(UPLOAD_HEADER);
    match essence.as_str() {
        "application/json" | "application/octet-stream" => None,
        "multipart/form-data" if upload_marked => None,
        "multipart/form-data" => Some((
            ErrorCode::UnsupportedMediaType,
            format!("a multipart upload needs the '{UPLOAD_HEADER}: 1' header"),
        )),
        _ => Some((
            ErrorCode::UnsupportedMediaType,
            format!("content-type '{content_type}' is not accepted here: send application/json"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, path: &str, headers: &[(&str, &str)]) -> Request {
        let mut builder = axum::http::Request::builder().method(method).uri(path);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        builder.body(axum::body::Body::empty()).unwrap()
    }

    fn loopback_rules() -> SiteRules {
        SiteRules::new(true, vec!["par.example.com".into(), "*.svc.local".into()])
    }

    #[test]
    fn ip_literals_localhost_and_configured_names_pass() {
        let rules = loopback_rules();
        for host in [
            "127.0.0.1:8080",
            "[::1]:8080",
            "10.1.2.3",
            "localhost:8080",
            "PAR.example.com",
            "a.svc.local:80",
        ] {
            assert!(rules.host_allowed(host), "{host}");
        }
        for host in [
            "evil.example",
            "svc.local",
            "localhost.evil.example:8080",
            ".svc.local",
        ] {
            assert!(!rules.host_allowed(host), "{host}");
        }
    }

    #[test]
    fn host_check_is_off_with_auth_on_and_no_names() {
        assert!(SiteRules::new(false, vec![]).host_allowed("anything.example"));
        assert!(!SiteRules::new(false, vec!["a.example".into()]).host_allowed("b.example"));
    }

    #[test]
    fn rebinding_cross_site_and_foreign_origins_are_refused() {
        let rules = loopback_rules();
        let rebound = request(Method::GET, "/agents", &[("host", "evil.example:8080")]);
        assert!(refusal(&rules, &rebound).is_some());
        let cross = request(
            Method::POST,
            "/agents/x/invoke",
            &[("host", "127.0.0.1:8080"), ("sec-fetch-site", "cross-site")],
        );
        assert!(refusal(&rules, &cross).is_some());
        let foreign = request(
            Method::POST,
            "/agents/x/invoke",
            &[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://evil.example"),
            ],
        );
        assert!(refusal(&rules, &foreign).is_some());
        let opaque = request(
            Method::POST,
            "/agents/x/invoke",
            &[("host", "127.0.0.1:8080"), ("origin", "null")],
        );
        assert!(refusal(&rules, &opaque).is_some());
    }

    #[test]
    fn same_origin_and_plain_clients_pass() {
        let rules = loopback_rules();
        let page = request(
            Method::POST,
            "/agents/x/invoke",
            &[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://127.0.0.1:8080"),
                ("sec-fetch-site", "same-origin"),
            ],
        );
        assert_eq!(refusal(&rules, &page), None);
        let behind_tls = request(
            Method::GET,
            "/agents",
            &[
                ("host", "par.example.com"),
                ("origin", "https://par.example.com:443"),
            ],
        );
        assert_eq!(refusal(&rules, &behind_tls), None);
        let curl = request(
            Method::POST,
            "/runtime/reload",
            &[("host", "127.0.0.1:8080")],
        );
        assert_eq!(refusal(&rules, &curl), None);
    }

    #[test]
    fn management_writes_need_json_or_a_marked_upload() {
        let rules = loopback_rules();
        let post = |ct: &str, marked: bool| {
            let mut headers = vec![("host", "127.0.0.1:8080"), ("content-type", ct)];
            if marked {
                headers.push((UPLOAD_HEADER, "1"));
            }
            refusal(
                &rules,
                &request(Method::POST, "/runtime/packages", &headers),
            )
        };
        assert_eq!(post("application/json", false), None);
        assert_eq!(post("application/json; charset=utf-8", false), None);
        assert_eq!(post("application/octet-stream", false), None);
        assert_eq!(post("multipart/form-data; boundary=x", true), None);
        for (ct, marked) in [
            ("multipart/form-data; boundary=x", false),
            ("text/plain", false),
            ("text/plain", true),
            ("application/x-www-form-urlencoded", false),
        ] {
            let refused = post(ct, marked).expect(ct);
            assert_eq!(refused.0, ErrorCode::UnsupportedMediaType);
        }
        let invoke_text = request(
            Method::POST,
            "/agents/x/invoke",
            &[("host", "127.0.0.1:8080"), ("content-type", "text/plain")],
        );
        assert_eq!(
            refusal(&rules, &invoke_text),
            None,
            "invoke bodies are any JSON"
        );
    }

    #[test]
    fn probes_are_exempt() {
        assert!(is_exempt("/runtime/health"));
        assert!(is_exempt("/metrics"));
        assert!(!is_exempt("/runtime/packages"));
    }
}
