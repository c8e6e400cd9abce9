//! The one table from error code to HTTP status, and the contract's error body.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use par_core::{ErrorCode, InvokeError};

/// Seconds a client should wait before retrying a 503.
const RETRY_AFTER_SECS: &str = "1";

pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::AgentNotFound | ErrorCode::NotInvocable | ErrorCode::NotFound => {
            StatusCode::NOT_FOUND
        }
        ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
        ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::InvalidInput => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::AgentError | ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::WorkerCrashed | ErrorCode::AppUnavailable | ErrorCode::ResultTooLarge => {
            StatusCode::BAD_GATEWAY
        }
        ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        ErrorCode::Timeout => StatusCode::GATEWAY_TIMEOUT,
        // Only agent code sees this code (as an exception); 508 if it ever surfaces.
        ErrorCode::CallDepthExceeded => StatusCode::LOOP_DETECTED,
        ErrorCode::Overloaded | ErrorCode::Starting | ErrorCode::Draining | ErrorCode::Disabled => {
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

/// An error response: `{"status":"error","code","error","request_id"}`. The request id
/// is filled in by the request-id middleware, the one place that knows it, so handlers
/// never thread it through.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// `WWW-Authenticate` challenge for 401s.
    pub challenge: Option<&'static str>,
    /// Why the request was refused, for the log line only (never the body).
    pub reason: Option<String>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            challenge: None,
            reason: None,
        }
    }

    /// Adds the reason the log line gives (a denial's cause, say).
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    pub fn from_invoke(error: InvokeError) -> Self {
        ApiError::new(error.code, error.message)
    }

    /// The JSON body, also used as the data of an SSE `error` event.
    pub fn body(&self, request_id: &str) -> serde_json::Value {
        serde_json::json!({
            "status": "error",
            "code": self.code.as_str(),
            "error": self.message,
            "request_id": request_id,
        })
    }
}

impl IntoResponse for ApiError {
    /// The status and headers; the body is rendered by the request-id middleware, which
    /// finds this error in the response's extensions.
    fn into_response(self) -> Response {
        let status = status_of(self.code);
        let mut response = status.into_response();
        if let Some(challenge) = self.challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECS),
            );
        }
        response.extensions_mut().insert(self);
        response
    }
}

/// The error a response stands for: an [`ApiError`] a handler returned, or a bare error
/// status from the router or an extractor (405, a path or query that did not parse),
/// which gets the contract's body too. Responses of package apps are never touched.
pub(crate) fn error_of(response: &mut Response) -> Option<ApiError> {
    if let Some(error) = response.extensions_mut().remove::<ApiError>() {
        return Some(error);
    }
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.extensions().get::<PassThrough>().is_some()
    {
        return None;
    }
    Some(ApiError::new(code_for_status(status), describe(status)))
}

/// Marks a response whose body belongs to someone else (a package's app or UI).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PassThrough;

fn code_for_status(status: StatusCode) -> ErrorCode {
    match status.as_u16() {
        400 => ErrorCode::BadRequest,
        401 => ErrorCode::Unauthorized,
        403 => ErrorCode::Forbidden,
        405 => ErrorCode::MethodNotAllowed,
        408 => ErrorCode::RequestTimeout,
        409 => ErrorCode::Conflict,
        413 => ErrorCode::TooLarge,
        415 => ErrorCode::UnsupportedMediaType,
        422 => ErrorCode::InvalidInput,
        404 | 410 => ErrorCode::NotFound,
        _ if status.is_client_error() => ErrorCode::BadRequest,
        _ => ErrorCode::Internal,
    }
}

fn describe(status: StatusCode) -> String {
    match status.as_u16() {
        405 => "method not allowed on this route".into(),
        _ => status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_ascii_lowercase(),
    }
}
