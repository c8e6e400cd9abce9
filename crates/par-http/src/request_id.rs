//! Every request gets an id: the caller's `x-request-id` when it is sane, else a new one.
//! It is stored for handlers (the [`RequestId`] extractor), echoed on every response, and
//! written into every error body here, in one place.

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::BodyExt;

use crate::error::{error_of, status_of, ApiError};

pub(crate) const HEADER: &str = "x-request-id";
const MAX_LEN: usize = 128;
/// Bytes of a bare error's text body kept as the error message.
const MAX_MESSAGE: usize = 512;

#[derive(Debug, Clone, Default)]
pub(crate) struct RequestId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(parts
            .extensions
            .get::<RequestId>()
            .cloned()
            .unwrap_or_default())
    }
}

pub(crate) async fn assign(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_acceptable(v))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    request.extensions_mut().insert(RequestId(id.clone()));
    // A readiness probe answering 503 `starting`/`draining` is the probe working, not a
    // failure: probes poll every second or so and would flood the log with warnings.
    let quiet = request.uri().path() == "/runtime/ready";
    let mut response = next.run(request).await;
    if let Some(error) = error_of(&mut response) {
        response = render_error(response, error, &id, quiet).await;
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}

/// Gives an error response the contract's JSON body, keeping its status and headers.
/// A bare error from the router or an extractor keeps its short text as the message.
async fn render_error(response: Response, mut error: ApiError, id: &str, quiet: bool) -> Response {
    let (mut parts, body) = response.into_parts();
    let is_text = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    if is_text {
        if let Ok(collected) = http_body_util::Limited::new(body, MAX_MESSAGE)
            .collect()
            .await
        {
            let text = String::from_utf8_lossy(&collected.to_bytes())
                .trim()
                .to_string();
            if !text.is_empty() {
                error.message = text;
            }
        }
    }
    if quiet {
        tracing::debug!(code = %error.code, request_id = %id, "probe answered not ready");
    } else if let Some(reason) = &error.reason {
        tracing::warn!(code = %error.code, reason = %reason, request_id = %id, "request denied");
    } else if status_of(error.code).is_server_error() {
        tracing::warn!(code = %error.code, error = %error.message, request_id = %id, "request failed");
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = Body::from(error.body(id).to_string());
    Response::from_parts(parts, body)
}

/// Visible ASCII only, bounded: the id ends up in logs and headers.
fn is_acceptable(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_LEN && id.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_empty_long_and_control_ids() {
        assert!(is_acceptable("abc-123"));
        assert!(!is_acceptable(""));
        assert!(!is_acceptable(&"a".repeat(129)));
        assert!(!is_acceptable("a b"));
        assert!(!is_acceptable("a\u{7}"));
    }
}
