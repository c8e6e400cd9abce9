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
/// Files up to this size are read in the same blocking step that finds them and sent
/// from memory; bigger ones are streamed.
const READ_WHOLE: u64 = 256 * 1024;
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

struct FoundFile {
    path: PathBuf,
    metadata: std::fs::Metadata,
    content: Option<Vec<u8>>,
}

/// What a request resolved to. Finding it takes several file-system calls; they run as
/// one blocking task, not one thread hand-off each.
enum Outcome {
    /// A file, with its content when it is small.
    File(Box<FoundFile>),
    RedirectToSlash,
    NotFound,
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
        let site = self.clone();
        let (segments, trailing_slash) = (path.segments.clone(), path.trailing_slash);
        let has_extension = path.has_extension();
        let outcome = tokio::task::spawn_blocking(move || {
            site.resolve(&segments, trailing_slash, has_extension, !head)
        })
        .await
        .unwrap_or(Outcome::NotFound);
        match outcome {
            Outcome::File(found) => {
                let FoundFile {
                    path,
                    metadata,
                    content,
                } = *found;
                send_file(&path, &metadata, content, head, headers).await
            }
            Outcome::RedirectToSlash => redirect_to_slash(&path),
            Outcome::NotFound => not_found(headers),
        }
    }

    /// The file for a request path: the file itself, a folder's `index.html`, else the
    /// UI's own `index.html` for paths without an extension (client-side routes).
    fn resolve(
        &self,
        segments: &[String],
        trailing_slash: bool,
        has_extension: bool,
        with_content: bool,
    ) -> Outcome {
        let mut path = self.root.clone();
        path.extend(segments);
        let fallback = match self.check(path) {
            Found::File(file, metadata) => return file_outcome(file, metadata, with_content),
            Found::Dir(_) if !trailing_slash => return Outcome::RedirectToSlash,
            Found::Dir(dir) => Some(dir),
            Found::Missing if has_extension => return Outcome::NotFound,
            Found::Missing => None,
        };
        for folder in fallback
            .iter()
            .map(PathBuf::as_path)
            .chain([self.root.as_path()])
        {
            if let Found::File(file, metadata) = self.check(folder.join(INDEX)) {
                return file_outcome(file, metadata, with_content);
            }
        }
        Outcome::NotFound
    }

    /// Resolves links and refuses anything whose real location is outside the folder.
    fn check(&self, path: PathBuf) -> Found {
        let Ok(real) = std::fs::canonicalize(&path) else {
            return Found::Missing;
        };
        if !real.starts_with(&self.root) {
            tracing::warn!(path = %path.display(), target = %real.display(), "ui link points outside the ui folder; refused");
            return Found::Missing;
        }
        match std::fs::metadata(&real) {
            Ok(m) if m.is_file() => Found::File(real, m),
            Ok(m) if m.is_dir() => Found::Dir(real),
            _ => Found::Missing,
        }
    }
}

/// A found file, read whole when it is small (and a body is wanted).
fn file_outcome(file: PathBuf, metadata: std::fs::Metadata, with_content: bool) -> Outcome {
    let content = (with_content && metadata.len() <= READ_WHOLE)
        .then(|| std::fs::read(&file).ok())
        .flatten();
    Outcome::File(Box::new(FoundFile {
        path: file,
        metadata,
        content,
    }))
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
    content: Option<Vec<u8>>,
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
    let (body, length) = match content {
        _ if head => (Body::empty(), metadata.len()),
        Some(bytes) => {
            let length = bytes.len() as u64;
            (Body::from(bytes), length)
        }
        None => match tokio::fs::File::open(file).await {
            Ok(opened) => (
                Body::from_stream(ReaderStream::with_capacity(opened, CHUNK)),
                metadata.len(),
            ),
            Err(_) => return not_found(headers),
        },
    };
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
    builder
        .header(header::CONTENT_TYPE, mime::content_type(name))
        .header(header::CONTENT_LENGTH, length)
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
