//! `/console/`: the operators' web console, plain HTML, CSS and JavaScript embedded in the
//! binary (no build step, no CDN, nothing fetched from elsewhere).
//!
//! The files hold no data, so they are served to anyone: every view fetches from the API,
//! and the data calls carry the credential the operator types into the login form (an API
//! key or a bearer token, kept in the tab's `sessionStorage` and sent as
//! `Authorization: Bearer`). A browser never attaches that header on its own, so there is
//! no cookie and no ambient authority for a forged cross-site request to ride on; the site
//! guard (`guard.rs`) refuses such requests besides. Every console answer carries strict
//! security headers: scripts, styles and connections from this origin only, no framing,
//! no sniffing, no referrer.

use axum::extract::Path;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use par_core::ErrorCode;

use crate::error::ApiError;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// Same-origin everything; no inline script or style, no plugins, no framing, no forms
/// posted anywhere (the console's forms are handled by its script).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// `GET /console`: the console lives under the slash (its assets are relative).
pub(crate) async fn redirect() -> Redirect {
    Redirect::permanent("/console/")
}

/// `GET /console/`: the page shell.
pub(crate) async fn index() -> Response {
    file("text/html; charset=utf-8", INDEX_HTML)
}

/// `GET /console/{file}`: the script and the style sheet.
pub(crate) async fn asset(Path(name): Path<String>) -> Response {
    match name.as_str() {
        "app.js" => file("text/javascript; charset=utf-8", APP_JS),
        "app.css" => file("text/css; charset=utf-8", APP_CSS),
        _ => {
            ApiError::new(ErrorCode::NotFound, format!("no console file '{name}'")).into_response()
        }
    }
}

fn file(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // Always revalidated: a new binary must never run an old script.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// A layer on every console route, error answers included.
pub(crate) async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let mut set = |name: header::HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY);
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::REFERRER_POLICY, "no-referrer");
    set(
        header::HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The console must stay small (first paint on loopback well under 300 ms) and
    /// self-contained: no external URL in any file.
    #[test]
    fn assets_are_small_and_self_contained() {
        let total = INDEX_HTML.len() + APP_JS.len() + APP_CSS.len();
        assert!(total < 96 * 1024, "console assets are {total} bytes");
        for text in [INDEX_HTML, APP_JS, APP_CSS] {
            // The SVG namespace is a name, not a place anything is fetched from.
            let text = text.replace("\"http://www.w3.org/2000/svg\"", "");
            for quoted in ["\"http", "'http", "(http", "`http", "\"//", "'//", "(//"] {
                assert!(!text.contains(quoted), "an external URL: {quoted}");
            }
        }
    }

    #[test]
    fn index_names_only_its_own_assets() {
        assert!(INDEX_HTML.contains("src=\"app.js\""));
        assert!(INDEX_HTML.contains("href=\"app.css\""));
        assert!(
            !INDEX_HTML.contains("style=\""),
            "inline styles break the CSP"
        );
        assert!(
            !INDEX_HTML.contains("onclick"),
            "inline handlers break the CSP"
        );
    }
}
