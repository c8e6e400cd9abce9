//! JSON-RPC 2.0 as MCP and A2A use it over HTTP: one request per POST, answered with
//! one response. The bodies are the protocol's own (never the contract's error body),
//! so every response is marked as passing through the error middleware untouched.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::error::PassThrough;

pub(crate) const PARSE_ERROR: i64 = -32700;
pub(crate) const INVALID_REQUEST: i64 = -32600;
pub(crate) const METHOD_NOT_FOUND: i64 = -32601;
pub(crate) const INVALID_PARAMS: i64 = -32602;

/// One JSON-RPC request (or notification: no `id`).
#[derive(Debug, Clone)]
pub(crate) struct RpcRequest {
    /// `None` for a notification.
    pub id: Option<Value>,
    pub method: String,
    pub params: Value,
}

/// A JSON-RPC error object, with the HTTP status its response goes out with.
#[derive(Debug, Clone)]
pub(crate) struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
    pub status: StatusCode,
}

impl RpcError {
    pub(crate) fn new(code: i64, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
            data: None,
            status: StatusCode::OK,
        }
    }

    pub(crate) fn with_data(mut self, data: Value) -> RpcError {
        self.data = Some(data);
        self
    }

    pub(crate) fn with_status(mut self, status: StatusCode) -> RpcError {
        self.status = status;
        self
    }

    fn object(&self) -> Value {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(data) = &self.data {
            error["data"] = data.clone();
        }
        error
    }
}

/// Reads and parses one request, answering malformed input with the protocol's own
/// errors: too large (-32600, 413), not JSON (-32700, 400), not a request object
/// (-32600, 400; batches included, which neither protocol supports here).
pub(crate) async fn read(request: Request, limit: usize) -> Result<RpcRequest, RpcError> {
    let body = crate::routes::call_input::read_body(request, limit)
        .await
        .map_err(|e| {
            let status = crate::error::status_of(e.code);
            RpcError::new(INVALID_REQUEST, e.message).with_status(status)
        })?;
    parse(&body)
}

pub(crate) fn parse(body: &[u8]) -> Result<RpcRequest, RpcError> {
    let bad = |code, message: &str| {
        Err(RpcError::new(code, message).with_status(StatusCode::BAD_REQUEST))
    };
    let value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(e) => return bad(PARSE_ERROR, &format!("parse error: {e}")),
    };
    let Value::Object(mut object) = value else {
        return bad(
            INVALID_REQUEST,
            "the request must be one JSON-RPC request object",
        );
    };
    if object.get("jsonrpc") != Some(&json!("2.0")) {
        return bad(INVALID_REQUEST, "jsonrpc must be \"2.0\"");
    }
    let id = object.remove("id");
    if !matches!(id, None | Some(Value::String(_) | Value::Number(_))) {
        return bad(INVALID_REQUEST, "id must be a string or a number");
    }
    let Some(Value::String(method)) = object.remove("method") else {
        return bad(INVALID_REQUEST, "method must be a string");
    };
    let params = object.remove("params").unwrap_or(Value::Null);
    if !matches!(params, Value::Null | Value::Object(_) | Value::Array(_)) {
        return bad(INVALID_REQUEST, "params must be an object or an array");
    }
    Ok(RpcRequest { id, method, params })
}

/// A successful response.
pub(crate) fn result(id: &Value, result: Value) -> Response {
    json_response(
        StatusCode::OK,
        &json!({"jsonrpc": "2.0", "id": id, "result": result}),
    )
}

/// An error response (`id` null when the request's id could not be read).
pub(crate) fn error(id: Option<&Value>, error: &RpcError) -> Response {
    let id = id.cloned().unwrap_or(Value::Null);
    json_response(
        error.status,
        &json!({"jsonrpc": "2.0", "id": id, "error": error.object()}),
    )
}

/// `202 Accepted` with no body: a notification was received.
pub(crate) fn accepted() -> Response {
    let mut response = StatusCode::ACCEPTED.into_response();
    response.extensions_mut().insert(PassThrough);
    response
}

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, Body::from(body.to_string())).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response.extensions_mut().insert(PassThrough);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_requests_get_the_protocols_codes() {
        let code = |body: &str| parse(body.as_bytes()).unwrap_err().code;
        assert_eq!(code("{"), PARSE_ERROR);
        assert_eq!(code("[]"), INVALID_REQUEST);
        assert_eq!(
            code(r#"[{"jsonrpc":"2.0","id":1,"method":"a"}]"#),
            INVALID_REQUEST
        );
        assert_eq!(code(r#"{"id":1,"method":"a"}"#), INVALID_REQUEST);
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","id":{},"method":"a"}"#),
            INVALID_REQUEST
        );
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","id":1,"method":3}"#),
            INVALID_REQUEST
        );
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","id":1,"method":"a","params":3}"#),
            INVALID_REQUEST
        );
    }

    #[test]
    fn requests_and_notifications_parse() {
        let request =
            parse(br#"{"jsonrpc":"2.0","id":"x","method":"m","params":{"a":1}}"#).unwrap();
        assert_eq!(request.id, Some(json!("x")));
        assert_eq!(request.method, "m");
        assert_eq!(request.params, json!({"a": 1}));
        let note = parse(br#"{"jsonrpc":"2.0","method":"n"}"#).unwrap();
        assert!(note.id.is_none());
        assert!(note.params.is_null());
    }
}
