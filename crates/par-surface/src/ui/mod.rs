//! The UI surface: a package's static files, served by the host (no Python on this path).

mod conditional;
mod mime;
mod resolve;

use std::path::{Component, Path, PathBuf};

use axum::body::Body;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, Response, StatusCode};
use tokio_util::io::ReaderStream;

use conditional::Validators;
use resolve::RequestPath;

/// Read size when streaming a file.
const CHUNK: usize = 64 * 1024;
const INDEX: &str = "index.html";

/// A package's UI folder, canonicalised; every file served is checked to be inside it.
#[derive(Debug, Clone)]
pub struct UiSite {
    root: PathBuf,
}

enum Found {
    File(PathBuf, std::fs::Metadata),
    Dir(PathBuf),
    Missing,
}

impl UiSite {
    /// The UI folder of an extracted package: `dist/ui/` when it exists (kit 0.4 builds),
    /// else `ui_path` (`ui.path` of the manifest). `None` when neither is a folder inside
    /// the package, or when `ui_path` names the package root itself (that would publish
    /// the package's code and `.env`).
    pub fn locate(package_root: &Path, ui_path: Option<&str>) -> Option<UiSite> {
        let root = fs_err::canonicalize(package_root).ok()?;
        let candidates = [Some("dist/ui"), ui_path];
        candidates
            .into_iter()
            .flatten()
            .find_map(|rel| inside(&root, rel))
            .map(|root| UiSite { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Serves a GET for `request_path`, the raw (still percent-encoded) part of the URL
    /// after `/agents/{package}/ui`: `""` for `/ui` itself (answered with a redirect to
    /// `ui/` so relative asset URLs resolve), `/` for the index, `/app.js`, ...
    pub async fn serve(&self, request_path: &str, headers: &HeaderMap) -> Response<Body> {
        self.serve_method(&Method::GET, request_path, headers).await
    }

    /// Like [`UiSite::serve`] for any method: HEAD has no body, others get 405.
    pub async fn serve_method(
        &self,
        method: &Method,
        request_path: &str,
        headers: &HeaderMap,
    ) -> Response<Body> {
        let head = *method == Method::HEAD;
        if *method != Method::GET && !head {
            let mut response = error(
                headers,
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "the UI serves GET and HEAD only",
            );
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        let path = match resolve::parse(request_path) {
            Ok(path) => path,
            Err(why) => return error(headers, StatusCode::BAD_REQUEST, "bad_request", why),
        };
        if path.is_hidden() {
            return not_found(headers);
        }
        match self.lookup(&path.segments).await {
            Found::File(file, metadata) => send_file(&file, &metadata, head, headers).await,
            Found::Dir(_) if !path.trailing_slash => redirect_to_slash(&path),
            Found::Dir(dir) => self.index_of(&dir, head, headers).await,
            Found::Missing if path.has_extension() => not_found(headers),
            Found::Missing => self.index_of(&self.root, head, headers).await,
        }
    }

    /// A folder's `index.html`, else the UI's own (client-side routes), else 404.
    async fn index_of(&self, dir: &Path, head: bool, headers: &HeaderMap) -> Response<Body> {
        for folder in [dir, self.root.as_path()] {
            if let Found::File(file, metadata) = self.check(folder.join(INDEX)).await {
                return send_file(&file, &metadata, head, headers).await;
            }
        }
        not_found(headers)
    }

    async fn lookup(&self, segments: &[String]) -> Found {
        let mut path = self.root.clone();
        path.extend(segments);
        self.check(path).await
    }

    /// Resolves links and refuses anything whose real location is outside the folder.
    async fn check(&self, path: PathBuf) -> Found {
        let Ok(real) = tokio::fs::canonicalize(&path).await else {
            return Found::Missing;
        };
        if !real.starts_with(&self.root) {
            tracing::warn!(path = %path.display(), target = %real.display(), "ui link points outside the ui folder; refused");
            return Found::Missing;
        }
        match tokio::fs::metadata(&real).await {
            Ok(m) if m.is_file() => Found::File(real, m),
            Ok(m) if m.is_dir() => Found::Dir(real),
            _ => Found::Missing,
        }
    }
}

/// `root/rel` canonicalised, when `rel` is a plain relative path to a folder strictly
/// inside `root`.
fn inside(root: &Path, rel: &str) -> Option<PathBuf> {
    let plain = Path::new(rel)
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !plain || rel.contains(['\\', '\0']) {
        return None;
    }
    let dir = fs_err::canonicalize(root.join(rel)).ok()?;
    (dir != root && dir.starts_with(root) && dir.is_dir()).then_some(dir)
}

async fn send_file(
    file: &Path,
    metadata: &std::fs::Metadata,
    head: bool,
    headers: &HeaderMap,
) -> Response<Body> {
    let validators = Validators::of(metadata);
    let mut builder = Response::builder()
        .header(header::ETAG, &validators.etag)
        .header(header::CACHE_CONTROL, "no-cache");
    if let Some(date) = validators.last_modified() {
        builder = builder.header(header::LAST_MODIFIED, date);
    }
    if validators.not_modified(headers) {
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .expect("valid response");
    }
    let opened = match tokio::fs::File::open(file).await {
        Ok(opened) => opened,
        Err(_) => return not_found(headers),
    };
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let body = if head {
        Body::empty()
    } else {
        Body::from_stream(ReaderStream::with_capacity(opened, CHUNK))
    };
    builder
        .header(header::CONTENT_TYPE, mime::content_type(name))
        .header(header::CONTENT_LENGTH, metadata.len())
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .body(body)
        .expect("valid response")
}

/// `/ui/docs` names a folder: send the browser to `docs/` (relative, so it works under
/// any prefix), and `/ui` itself to `ui/`.
fn redirect_to_slash(path: &RequestPath<'_>) -> Response<Body> {
    let last = if path.segments.is_empty() {
        "ui"
    } else {
        path.last_raw
    };
    let mut location = format!("{last}/");
    if let Some(query) = path.query {
        location.push('?');
        location.push_str(query);
    }
    Response::builder()
        .status(StatusCode::PERMANENT_REDIRECT)
        .header(header::LOCATION, location)
        .body(Body::empty())
        .expect("valid response")
}

fn not_found(headers: &HeaderMap) -> Response<Body> {
    error(
        headers,
        StatusCode::NOT_FOUND,
        "not_found",
        "no such file in the package's UI",
    )
}

/// The contract's error body; the request id is the caller's `x-request-id`, if any.
fn error(headers: &HeaderMap, status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let body = serde_json::json!({
        "status": "error",
        "code": code,
        "error": message,
        "request_id": request_id,
    });
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("valid response")
}
