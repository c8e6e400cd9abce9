//! A request body's size limit, enforced twice: a declared `Content-Length` over it is
//! refused before a byte is read (so a client that sent `Expect: 100-continue` never gets
//! `100 Continue`), and a body without one is cut off when it passes the limit.

use axum::body::Body;
use axum::extract::Request;
use axum::http::header;
use par_core::ErrorCode;

use crate::error::ApiError;

/// The request with its body limited to `limit` bytes, or 413 when it says it is larger.
/// `what` names the body in the message ("form", "upload").
pub(crate) fn limit(request: Request, limit: u64, what: &str) -> Result<Request, ApiError> {
    if declared_length(&request).is_some_and(|n| n > limit) {
        return Err(too_large(limit, what));
    }
    let (parts, body) = request.into_parts();
    let limited = http_body_util::Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
    // Routes reading bodies this way disable axum's default limit (2 MiB): this one
    // replaces it.
    Ok(Request::from_parts(parts, Body::new(limited)))
}

pub(crate) fn too_large(limit: u64, what: &str) -> ApiError {
    ApiError::new(
        ErrorCode::TooLarge,
        format!("the {what} is larger than {limit} bytes"),
    )
}

pub(crate) fn declared_length(request: &Request) -> Option<u64> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}
