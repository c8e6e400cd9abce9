//! MCP tools are agents: `tools/list` lists the public agents the caller may invoke
//! (their declared input schema, else any object); `tools/call` invokes one through the
//! same path as `POST /agents/{id}/invoke` (checks, admission, deadline, metering).

use par_core::Target;
use serde_json::{json, Value};

use crate::accounting::CallRecord;
use crate::error::ApiError;
use crate::jsonrpc::{RpcError, INVALID_PARAMS};
use crate::routes::call_input;
use crate::state::AppState;

/// Who is asking and which agents this endpoint serves (`/mcp/{id}`: just that one).
pub(super) struct Scope<'a> {
    pub state: &'a AppState,
    pub caller: &'a Option<par_auth::Caller>,
    pub only: Option<&'a str>,
}

impl Scope<'_> {
    /// The agent `name` names, if it is a tool here for this caller.
    fn tool(&self, name: &str) -> Option<Target> {
        if self.only.is_some_and(|only| only != name) {
            return None;
        }
        let target = call_input::authorize_agent(self.state, self.caller, name).ok()?;
        target.package.manifest.entrypoint.as_ref()?;
        Some(target)
    }
}

/// `tools/list`.
pub(super) fn list(scope: &Scope<'_>) -> Value {
    let tools: Vec<Value> = scope
        .state
        .runtime
        .agents()
        .into_iter()
        .filter_map(|agent| {
            let target = scope.tool(&agent.id)?;
            let schema = scope.state.runtime.target_input_schema(&target);
            Some(json!({
                "name": agent.id,
                "description": agent.description,
                "inputSchema": schema.unwrap_or_else(|| json!({"type": "object"})),
            }))
        })
        .collect();
    json!({ "tools": tools })
}

/// `tools/call`: unknown tools and bad arguments are JSON-RPC errors; everything that
/// goes wrong with the call itself is a result with `isError`, as the spec wants (a
/// model can read it and try again).
pub(super) async fn call(
    scope: &Scope<'_>,
    params: &serde_json::Map<String, Value>,
    request_id: &str,
    traceparent: Option<&str>,
) -> Result<Value, RpcError> {
    let Some(name) = params.get("name").and_then(Value::as_str) else {
        return Err(RpcError::new(INVALID_PARAMS, "name must be a string"));
    };
    let Some(target) = scope.tool(name) else {
        return Err(RpcError::new(
            INVALID_PARAMS,
            format!("Unknown tool: {name}"),
        ));
    };
    let arguments = match params.get("arguments") {
        None | Some(Value::Null) => json!({}),
        Some(arguments @ Value::Object(_)) => arguments.clone(),
        Some(_) => return Err(RpcError::new(INVALID_PARAMS, "arguments must be an object")),
    };
    let body = serde_json::to_vec(&arguments).expect("a JSON value serialises");
    let mut record = CallRecord::start(scope.state, name, request_id, traceparent);
    record.set_caller(scope.caller.as_ref());
    record.bytes_in = body.len() as u64;
    match invoke(scope, &target, name, &body, &record).await {
        Ok(data) => {
            record.finish("ok", data.len() as u64);
            Ok(success(&data))
        }
        Err(error) => {
            record.finish(error.code.as_str(), 0);
            Ok(failure(&error))
        }
    }
}

async fn invoke(
    scope: &Scope<'_>,
    target: &Target,
    name: &str,
    body: &[u8],
    record: &CallRecord,
) -> Result<bytes::Bytes, ApiError> {
    call_input::check_not_draining(scope.state)?;
    call_input::check_body(scope.state, scope.caller, target, body)?;
    let call = scope
        .state
        .runtime
        .start_call(name, body, &record.meta)
        .await
        .map_err(ApiError::from_invoke)?;
    call.collect().await.map_err(ApiError::from_invoke)
}

/// The result as structured content (an object as is; anything else under `result`,
/// since structured content must be an object) and as one text block of its JSON.
fn success(data: &[u8]) -> Value {
    let text = String::from_utf8_lossy(data).into_owned();
    let value: Value = serde_json::from_slice(data).unwrap_or(Value::String(text.clone()));
    let structured = if value.is_object() {
        value
    } else {
        json!({ "result": value })
    };
    json!({
        "content": [{"type": "text", "text": text}],
        "structuredContent": structured,
        "isError": false,
    })
}

fn failure(error: &ApiError) -> Value {
    let code = error.code.as_str();
    json!({
        "content": [{"type": "text", "text": format!("{code}: {}", error.message)}],
        "isError": true,
    })
}
