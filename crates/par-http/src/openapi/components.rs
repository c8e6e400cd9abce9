//! Shared pieces of the document: the error body and its codes, error answers by status,
//! security schemes, and the schemas of the runtime's own answers.

use par_core::ErrorCode;
use serde_json::{json, Map, Value};

/// Statuses that have a named error answer (`#/components/responses/Error{status}`).
pub(crate) const ERROR_STATUSES: [u16; 13] = [
    400, 401, 403, 404, 405, 409, 413, 415, 422, 500, 502, 503, 504,
];

/// Every error code, in the order of `par_core::ErrorCode`.
const CODES: [ErrorCode; 23] = [
    ErrorCode::AgentNotFound,
    ErrorCode::NotInvocable,
    ErrorCode::BadRequest,
    ErrorCode::TooLarge,
    ErrorCode::InvalidInput,
    ErrorCode::Unauthorized,
    ErrorCode::Forbidden,
    ErrorCode::AgentError,
    ErrorCode::WorkerCrashed,
    ErrorCode::AppUnavailable,
    ErrorCode::Timeout,
    ErrorCode::Overloaded,
    ErrorCode::Starting,
    ErrorCode::Draining,
    ErrorCode::Disabled,
    ErrorCode::NotFound,
    ErrorCode::CallDepthExceeded,
    ErrorCode::ResultTooLarge,
    ErrorCode::UnsupportedMediaType,
    ErrorCode::MethodNotAllowed,
    ErrorCode::Conflict,
    ErrorCode::RequestTimeout,
    ErrorCode::Internal,
];

/// Fails to compile when a code is added to `ErrorCode` and not to [`CODES`].
#[allow(dead_code)]
fn listed(code: ErrorCode) {
    use ErrorCode::*;
    match code {
        AgentNotFound | NotInvocable | BadRequest | TooLarge | InvalidInput | Unauthorized
        | Forbidden | AgentError | WorkerCrashed | AppUnavailable | Timeout | Overloaded
        | Starting | Draining | Disabled | NotFound | CallDepthExceeded | ResultTooLarge
        | UnsupportedMediaType | MethodNotAllowed | Conflict | RequestTimeout | Internal => {}
    }
}

pub(crate) fn components() -> Value {
    let mut responses = Map::new();
    responses.insert("Error".into(), error_answer("An error", &CODES));
    for status in ERROR_STATUSES {
        let codes: Vec<ErrorCode> = CODES
            .into_iter()
            .filter(|c| crate::error::status_of(*c).as_u16() == status)
            .collect();
        let about = format!("Error ({})", status_text(status));
        responses.insert(format!("Error{status}"), error_answer(&about, &codes));
    }
    json!({
        "schemas": {"ErrorBody": error_body(&CODES)},
        "responses": responses,
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer",
                       "description": "An OIDC access token (JWT) or an API key"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
        },
    })
}

fn status_text(status: u16) -> &'static str {
    axum::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("error")
}

fn error_body(codes: &[ErrorCode]) -> Value {
    let names: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
    json!({
        "type": "object",
        "required": ["status", "code", "error", "request_id"],
        "properties": {
            "status": {"const": "error"},
            "code": {"type": "string", "enum": names},
            "error": {"type": "string"},
            "request_id": {"type": "string"},
        },
    })
}

fn error_answer(description: &str, codes: &[ErrorCode]) -> Value {
    // A status some codes map to gets exactly those; the generic answer takes any code.
    let schema = if codes.len() == CODES.len() || codes.is_empty() {
        json!({"$ref": "#/components/schemas/ErrorBody"})
    } else {
        error_body(codes)
    };
    json!({
        "description": description,
        "headers": {"x-request-id": {"schema": {"type": "string"}}},
        "content": {"application/json": {"schema": schema}},
    })
}

pub(crate) fn invoke_success() -> Value {
    json!({
        "description": "The handler's result; with `Accept: text/event-stream`, one event per item",
        "content": {
            "application/json": {"schema": {
                "type": "object",
                "required": ["status", "data"],
                "properties": {"status": {"const": "success"}, "data": {}, "error": {"type": "null"}},
            }},
            "text/event-stream": {"schema": {"type": "object", "properties": {"data": {"type": "string"}, "event": {"type": "string"}, "id": {"type": "string"}}}},
        },
    })
}

pub(crate) fn agent() -> Value {
    json!({
        "type": "object",
        "required": ["id", "package", "version", "description", "capabilities", "surfaces", "public"],
        "properties": {
            "id": {"type": "string"}, "package": {"type": "string"},
            "version": {"type": "string"}, "description": {"type": "string"},
            "capabilities": {"type": "array", "items": {"type": "string"}},
            "surfaces": {"type": "array", "items": {"type": "string"}},
            "public": {"type": "boolean"},
            "versions": {"type": "array", "items": {"type": "string"}},
        },
    })
}

/// An agent as the management API lists it: [`agent`] plus `enabled` and the declared
/// `input_schema` (`null` when the agent takes any object).
pub(crate) fn admin_agent() -> Value {
    let mut schema = agent();
    schema["required"]
        .as_array_mut()
        .expect("required")
        .extend([json!("enabled"), json!("input_schema")]);
    schema["properties"]["enabled"] = json!({"type": "boolean"});
    schema["properties"]["input_schema"] = json!({"type": ["object", "boolean", "null"]});
    schema
}

pub(crate) fn package_report() -> Value {
    let phases = [
        "fetch",
        "verify",
        "manifest",
        "extract",
        "environment",
        "start",
        "mount",
    ];
    json!({
        "type": "object",
        "required": ["source", "state"],
        "properties": {
            "source": {"type": "string"},
            "state": {"enum": ["loading", "ready", "failed", "draining"]},
            "phase": {"enum": phases},
            "failed_phase": {"enum": phases.iter().map(|p| json!(p)).chain([Value::Null]).collect::<Vec<_>>()},
            "error": {"type": ["string", "null"]},
            "name": {"type": ["string", "null"]},
            "version": {"type": ["string", "null"]},
            "sha256": {"type": ["string", "null"]},
            "workers": {"type": "array", "items": {"type": "integer"}},
        },
    })
}

pub(crate) fn load_job() -> Value {
    json!({
        "type": "object",
        "required": ["load_id", "state", "packages"],
        "properties": {
            "load_id": {"type": "integer"},
            "state": {"enum": ["loading", "ready", "failed"]},
            "packages": {"type": "array", "items": package_report()},
            "error": {"type": ["string", "null"]},
        },
    })
}

pub(crate) fn usage_report() -> Value {
    json!({
        "type": "object",
        "required": ["records", "totals"],
        "properties": {
            "records": {"type": "array", "items": {"type": "object"}},
            "totals": {"type": "object", "required": ["calls"]},
            "groups": {"type": "array", "items": {"type": "object"}},
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_named_status_lists_exactly_its_codes() {
        let all = components();
        let not_found = &all["responses"]["Error404"]["content"]["application/json"]["schema"];
        let codes = not_found["properties"]["code"]["enum"].as_array().unwrap();
        assert_eq!(
            codes,
            &[
                json!("agent_not_found"),
                json!("not_invocable"),
                json!("not_found")
            ]
        );
        for status in ERROR_STATUSES {
            assert!(
                all["responses"][format!("Error{status}")].is_object(),
                "{status}"
            );
        }
    }
}
