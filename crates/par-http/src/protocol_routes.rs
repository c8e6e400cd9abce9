//! The durable-run, A2A and MCP routes of the route table (`route_table.rs`), each with its
//! handler and its OpenAPI description side by side.

use axum::routing::{get, post};
use serde_json::{json, Value};

use crate::openapi::Op;
use crate::route_table::{route, Route};
use crate::routes::{run_events, runs};

/// A run as `GET /runs/{id}` answers it (fields beyond these may be added).
fn run() -> Value {
    json!({"type": "object", "required": ["run_id", "agent", "status"],
           "properties": {"run_id": {"type": "string"}, "agent": {"type": "string"},
                          "status": {"type": "string"}}})
}

/// One server-sent event as clients parse it.
fn sse_event() -> Value {
    json!({"type": "object", "properties": {"data": {"type": "string"},
           "event": {"type": "string"}, "id": {"type": "string"}}})
}

/// A JSON-RPC answer: one JSON object, or a stream of them as server-sent events.
fn json_rpc_answer() -> Value {
    json!({"description": "A JSON-RPC response (errors in its `error` member), or an event stream",
           "content": {"application/json": {"schema": {"type": "object"}},
                       "text/event-stream": {"schema": sse_event()}}})
}

fn json_rpc_body() -> Value {
    json!({"application/json": {"schema": {"type": "object"}}})
}

pub(crate) fn routes() -> Vec<Route> {
    let mut table = run_routes();
    table.extend(protocol_routes());
    table
}

fn run_routes() -> Vec<Route> {
    vec![
        route(
            "/agents/{id}/runs",
            post(runs::create),
            vec![Op::new(
                "post",
                "create_run",
                "runs",
                "Start a durable run of an agent (Idempotency-Key honoured)",
            )
            .query(
                "timeout",
                json!({"type": "number", "exclusiveMinimum": 0}),
                "the run's own deadline in seconds",
            )
            .body(json!({"application/json": {"schema": {"type": "object"}}}))
            .answers(202, run())
            .errors(&[400, 404, 409, 413, 415, 422, 503])],
        ),
        route(
            "/runs",
            get(runs::list),
            vec![Op::new(
                "get",
                "list_runs",
                "runs",
                "The caller's runs (an admin's: everyone's), newest first",
            )
            .query("agent", json!({"type": "string"}), "only this agent")
            .query(
                "status",
                json!({"type": "string"}),
                "only runs in this state",
            )
            .query(
                "limit",
                json!({"type": "integer", "minimum": 0}),
                "at most this many",
            )
            .answers(
                200,
                json!({"type": "object", "required": ["runs"],
                    "properties": {"runs": {"type": "array", "items": run()}}}),
            )
            .errors(&[400])],
        ),
        route(
            "/runs/{run_id}",
            get(runs::get),
            vec![Op::new(
                "get",
                "get_run",
                "runs",
                "One run (404 for anyone but its creator or an admin)",
            )
            .answers(200, run())
            .errors(&[404])],
        ),
        route(
            "/runs/{run_id}/events",
            get(run_events::events),
            vec![Op::new(
                "get",
                "run_events",
                "runs",
                "The run's events as server-sent events; Last-Event-ID resumes",
            )
            .ok(
                200,
                json!({"description": "Server-sent events, one `id:` per event",
                    "content": {"text/event-stream": {"schema": sse_event()}}}),
            )
            .errors(&[400, 404])],
        ),
        route(
            "/runs/{run_id}/cancel",
            post(runs::cancel),
            vec![Op::new(
                "post",
                "cancel_run",
                "runs",
                "Cancel a run (409 once it has ended)",
            )
            .answers(200, run())
            .errors(&[404, 409, 415])],
        ),
    ]
}

fn protocol_routes() -> Vec<Route> {
    // Failures are the protocol's own JSON-RPC errors (with 4xx statuses where the
    // transport asks for them), not PAR's error body: no schema for other statuses.
    let rpc = |id: &str, summary: &str| {
        Op::new("post", id, "protocols", summary)
            .body(json_rpc_body())
            .ok(200, json_rpc_answer())
            .passthrough()
    };
    vec![
        route(
            "/a2a/{id}",
            post(crate::a2a::endpoint),
            vec![rpc(
                "a2a",
                "A2A JSON-RPC (protocol 1.0 and 0.3) for one agent; tasks are runs",
            )],
        ),
        route(
            "/a2a/{id}/.well-known/agent-card.json",
            get(crate::a2a::card),
            vec![
                Op::new("get", "a2a_card", "protocols", "The agent's A2A agent card")
                    .answers(200, json!({"type": "object", "required": ["name"]}))
                    .errors(&[404]),
            ],
        ),
        route(
            "/mcp",
            post(crate::mcp::all_agents),
            vec![rpc(
                "mcp",
                "MCP streamable HTTP: every agent the caller may invoke is a tool",
            )],
        ),
        route(
            "/mcp/{id}",
            post(crate::mcp::one_agent),
            vec![rpc("mcp_agent", "MCP streamable HTTP for one agent")],
        ),
    ]
}
