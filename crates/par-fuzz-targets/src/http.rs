//! The HTTP routes, driven in process: the whole router (site guard, auth, body limits,
//! JSON, multipart and upload parsing, error bodies) as `par serve` builds it, against a
//! runtime with no packages and API-key auth, one request per input.

use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// The admin key; its SHA-256 is configured. A second key has no roles.
const ADMIN_KEY: &str = "fuzz-admin-key";
const USER_KEY: &str = "fuzz-user-key";

/// Paths of the route table (with sample ids), so inputs reach every handler.
const PATHS: &[&str] = &[
    "/agents",
    "/agents/p",
    "/agents/p/",
    "/agents/p/invoke",
    "/agents/p/ui/",
    "/agents/p/ui/index.html",
    "/agents/p/api/x",
    "/agents/p/runs",
    "/metrics",
    "/openapi.json",
    "/runtime/agents/p/disable",
    "/runtime/agents/p/enable",
    "/runtime/health",
    "/runtime/ready",
    "/runtime/loads/1",
    "/runtime/log-level",
    "/runtime/packages",
    "/runtime/packages/p",
    "/runtime/packages/p/1.0.0",
    "/runtime/reload",
    "/runtime/usage",
    "/a2a/p",
    "/a2a/p/.well-known/agent-card.json",
    "/mcp",
    "/mcp/p",
    "/runs",
    "/runs/r1",
    "/runs/r1/cancel",
    "/runs/r1/events",
];

const METHODS: &[Method] = &[
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::HEAD,
    Method::OPTIONS,
    Method::PATCH,
];

const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "multipart/form-data; boundary=X",
    "multipart/form-data",
    "application/octet-stream",
    "text/plain",
    "application/x-www-form-urlencoded",
];

const HEADER_NAMES: &[&str] = &[
    "accept",
    "authorization",
    "x-api-key",
    "cookie",
    "host",
    "origin",
    "sec-fetch-site",
    "content-length",
    "expect",
    "x-request-id",
    "x-par-upload",
    "x-par-caller-id",
    "traceparent",
    "last-event-id",
    "mcp-session-id",
    "idempotency-key",
    "upgrade",
    "connection",
];

/// Reads the input as a request description (missing bytes read as zero):
///
/// `method` `path` `query` `credential` `content-type` `header-count` (`name` `value`)* `body`
///
/// where `path` is a byte below 0xE0 (an index into [`PATHS`]) followed by a suffix
/// chunk, or 0xE0 and above followed by a raw path chunk; a chunk is one length byte and
/// that many bytes; `query` is a flag byte (odd: a chunk follows); `credential` picks none,
/// the admin key, the user key or a raw `authorization` chunk; the body is the rest.
struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> u8 {
        let Some((&first, rest)) = self.data.split_first() else {
            return 0;
        };
        self.data = rest;
        first
    }

    fn chunk(&mut self) -> &'a [u8] {
        let len = (self.byte() as usize).min(self.data.len());
        let (chunk, rest) = self.data.split_at(len);
        self.data = rest;
        chunk
    }

    fn text(&mut self) -> String {
        String::from_utf8_lossy(self.chunk()).into_owned()
    }
}

fn pick<T: Clone>(options: &[T], byte: u8) -> T {
    options[byte as usize % options.len()].clone()
}

/// The request, or `None` when the bytes make no valid HTTP request (hyper would have
/// refused them before the router).
fn build_request(data: &[u8]) -> Option<Request<Body>> {
    let mut input = Reader { data };
    let method = pick(METHODS, input.byte());
    let which = input.byte();
    let mut uri = if which < 0xE0 {
        format!("{}{}", pick(PATHS, which), input.text())
    } else {
        input.text()
    };
    if input.byte() & 1 == 1 {
        uri.push('?');
        uri.push_str(&input.text());
    }
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "127.0.0.1:8080");
    builder = match input.byte() % 4 {
        0 => builder,
        1 => builder.header("x-api-key", ADMIN_KEY),
        2 => builder.header("authorization", format!("Bearer {USER_KEY}")),
        _ => builder.header(
            "authorization",
            HeaderValue::from_bytes(input.chunk()).ok()?,
        ),
    };
    let content_type = input.byte();
    if content_type > 0 {
        builder = builder.header("content-type", pick(CONTENT_TYPES, content_type - 1));
    }
    for _ in 0..input.byte() % 8 {
        let name = HeaderName::from_static(pick(HEADER_NAMES, input.byte()));
        builder = builder.header(name, HeaderValue::from_bytes(input.chunk()).ok()?);
    }
    builder.body(Body::from(input.data.to_vec())).ok()
}

fn app() -> &'static axum::Router {
    static APP: OnceLock<(axum::Router, tempfile::TempDir)> = OnceLock::new();
    &APP.get_or_init(|| {
        let cache = tempfile::Builder::new()
            .prefix("par-fuzz-http-")
            .tempdir()
            .expect("a cache folder");
        let router = super::current_thread().block_on(build_app(cache.path()));
        (router, cache)
    })
    .0
}

async fn build_app(cache: &std::path::Path) -> axum::Router {
    let mut config = par_core::RuntimeConfig::new(cache.to_path_buf(), "/nonexistent/uv".into());
    config.host_env = Vec::new();
    let runtime = par_core::Runtime::builder(config, par_telemetry::Metrics::new())
        .build()
        .expect("a runtime");
    let keys = par_auth::ApiKeyConfig {
        keys: vec![
            key_entry("admin", &sha256_hex(ADMIN_KEY), &["ops"]),
            key_entry("user", &sha256_hex(USER_KEY), &[]),
        ],
    };
    let authenticator = par_auth::Authenticator::new(
        par_auth::AuthMode::ApiKey,
        None,
        Some(keys),
        "roles".into(),
        None,
    )
    .await
    .expect("api-key auth");
    let policy =
        par_auth::Policy::from_toml("[[grant]]\nrole = \"ops\"\nadmin = true\ninvoke = [\"*\"]\n")
            .expect("a policy");
    let access = Some(std::sync::Arc::new(par_http::AccessControl {
        authenticator,
        policy,
        public_ui: Vec::new(),
    }));
    let config = par_http::HttpConfig {
        limits: par_http::HttpLimits {
            max_body_bytes: 64 * 1024,
            max_upload_bytes: 256 * 1024,
        },
        site: par_http::SiteRules::new(false, Vec::new()),
        access,
        ..Default::default()
    };
    par_http::app(par_http::AppState::new(runtime, config))
}

fn key_entry(name: &str, sha256: &str, roles: &[&str]) -> par_auth::ApiKeyEntry {
    par_auth::ApiKeyEntry {
        name: name.into(),
        sha256: sha256.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
    }
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// One request through the router; the response (and a bounded part of its body) is read
/// so streaming handlers run too. A 5xx other than the documented ones would be a bug.
pub fn http_routes(data: &[u8]) {
    let Some(request) = build_request(data) else {
        return;
    };
    let router = app().clone();
    super::current_thread().block_on(async move {
        let response = router
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        assert!(
            status != axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "500 from the router: {response:?}"
        );
        let body = response.into_body().collect();
        let _ = tokio::time::timeout(Duration::from_millis(200), body).await;
    });
}
