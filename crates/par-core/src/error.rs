use std::fmt;

/// The contract's machine codes. `par-http` owns the mapping to HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    AgentNotFound,
    NotInvocable,
    BadRequest,
    TooLarge,
    InvalidInput,
    Unauthorized,
    Forbidden,
    AgentError,
    WorkerCrashed,
    AppUnavailable,
    Timeout,
    Overloaded,
    Starting,
    Draining,
    Disabled,
    NotFound,
    /// An agent-to-agent call chain went deeper than the configured limit.
    CallDepthExceeded,
    /// A handler's result (or one streamed item) is larger than a worker frame may be.
    ResultTooLarge,
    /// A state-changing management call in a body type a web page could forge.
    UnsupportedMediaType,
    /// The route exists, the method does not.
    MethodNotAllowed,
    /// The request contradicts the resource's state (cancelling a run that has ended).
    Conflict,
    /// The client stopped sending the request body (`--body-read-timeout`).
    RequestTimeout,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::AgentNotFound => "agent_not_found",
            ErrorCode::NotInvocable => "not_invocable",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::AgentError => "agent_error",
            ErrorCode::WorkerCrashed => "worker_crashed",
            ErrorCode::AppUnavailable => "app_unavailable",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::Starting => "starting",
            ErrorCode::Draining => "draining",
            ErrorCode::Disabled => "disabled",
            ErrorCode::NotFound => "not_found",
            ErrorCode::CallDepthExceeded => "call_depth_exceeded",
            ErrorCode::ResultTooLarge => "result_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Conflict => "conflict",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a call failed; the message is safe to show the caller.
#[derive(Debug, Clone)]
pub struct InvokeError {
    pub code: ErrorCode,
    pub message: String,
}

impl InvokeError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        InvokeError {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for InvokeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for InvokeError {}

/// The step of loading a package that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadPhase {
    Fetch,
    Verify,
    Manifest,
    Extract,
    Environment,
    Start,
    Mount,
}

/// A package that could not be loaded: which step, and why, naming the file or field.
#[derive(Debug, Clone, serde::Serialize, thiserror::Error)]
#[error("{phase:?} failed for {source_name}: {reason}")]
pub struct LoadError {
    pub phase: LoadPhase,
    pub source_name: String,
    pub reason: String,
}

impl LoadError {
    pub fn new(phase: LoadPhase, source_name: &str, reason: impl fmt::Display) -> Self {
        LoadError {
            phase,
            source_name: source_name.to_string(),
            reason: reason.to_string(),
        }
    }
}
