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
        ErrorCode::Timeout => StatusCode::GATEWAY_TIMEOUT,
        // Only agent code sees this code (as an exception); 508 if it ever surfaces.
        ErrorCode::CallDepthExceeded => StatusCode::LOOP_DETECTED,
        ErrorCode::Overloaded | ErrorCode::Starting | ErrorCode::Draining | ErrorCode::Disabled => {
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

/// An error response: `{"status":"error","code","error","request_id"}`.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub request_id: String,
    /// `WWW-Authenticate` challenge for 401s.
    pub challenge: Option<&'static str>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>, request_id: &str) -> Self {
        ApiError {
            code,
            message: message.into(),
            request_id: request_id.to_string(),
            challenge: None,
        }
    }

    pub fn from_invoke(error: InvokeError, request_id: &str) -> Self {
        ApiError::new(error.code, error.message, request_id)
    }

    /// The JSON body, also used as the data of an SSE `error` event.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "status": "error",
            "code": self.code.as_str(),
            "error": self.message,
            "request_id": self.request_id,
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(self.code);
        if status.is_server_error() {
            tracing::warn!(code = %self.code, error = %self.message, request_id = %self.request_id, "request failed");
        }
        let mut response = (status, axum::Json(self.body())).into_response();
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
        response
    }
}
