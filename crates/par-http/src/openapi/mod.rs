//! `GET /openapi.json`: an OpenAPI 3.1 document built from the route table the router is
//! built from (`server::route_table`), so a route cannot be served without being
//! described; each mounted public agent gets its own invoke operation carrying the input
//! schema it declares, generated at request time from the routing table.

pub(crate) mod components;
pub(crate) mod op;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

pub(crate) use op::{Access, Op};

use crate::state::AppState;

/// Paths and their operations, as the router registers them.
pub(crate) struct Described {
    pub path: &'static str,
    pub ops: Vec<Op>,
}

/// `GET /openapi.json`: it lists the mounted agents, so it asks for credentials as
/// `GET /agents` does.
pub(crate) async fn serve(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<Response, crate::error::ApiError> {
    crate::auth::authenticate(&state, &headers).await?;
    let table: Vec<Described> = crate::route_table::route_table()
        .into_iter()
        .map(|route| route.described)
        .collect();
    Ok(Json(document(&state, &table)).into_response())
}

/// The whole document for this server's configuration and mounted agents.
pub(crate) fn document(state: &AppState, table: &[Described]) -> Value {
    let auth_off = state.access.is_none();
    let mut paths = Map::new();
    for described in table.iter().filter(|d| !d.ops.is_empty()) {
        // axum's catch-all `{*path}` is OpenAPI's `{path}`.
        let path = described.path.replace("{*", "{");
        let item = path_item(&path, &described.ops, auth_off);
        paths.insert(path, item);
    }
    for agent in state.runtime.agents() {
        let schema = state
            .runtime
            .input_schema(&agent.id)
            .unwrap_or_else(|| json!({"type": "object"}));
        let op = op::agent_invoke(&agent.id, &agent.description, schema);
        let path = format!("/agents/{}/invoke", agent.id);
        paths.insert(path.clone(), path_item(&path, &[op], auth_off));
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "PAR — the Pixell agent runtime",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every error answers the ErrorBody schema. Each mounted public \
                agent has its own invoke operation with the input schema it declares.",
        },
        "paths": paths,
        "components": components::components(),
    })
}

fn path_item(path: &str, ops: &[Op], auth_off: bool) -> Value {
    let mut item = Map::new();
    let params = op::path_parameters(path);
    if !params.is_empty() {
        item.insert("parameters".into(), Value::Array(params));
    }
    for op in ops {
        item.insert(op.method.into(), op.to_json(auth_off));
    }
    Value::Object(item)
}
