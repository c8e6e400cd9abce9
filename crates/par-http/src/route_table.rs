//! Every route the server answers, each with its handler and its OpenAPI description side
//! by side: the router (`server::app`) and `GET /openapi.json` are both built from this one
//! list, so a route cannot be added without being described.

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{any, delete, get, post, put, MethodRouter};
use serde_json::json;

use crate::console;
use crate::openapi::components as schema;
use crate::openapi::{self, Access, Described, Op};
use crate::routes::{agents, invoke, management, observe, runtime, surface};
use crate::state::AppState;

pub(crate) struct Route {
    pub described: Described,
    pub handler: MethodRouter<AppState>,
    /// Behind the admin check (the management API).
    pub admin: bool,
}

pub(crate) fn route(path: &'static str, handler: MethodRouter<AppState>, ops: Vec<Op>) -> Route {
    Route {
        described: Described { path, ops },
        handler,
        admin: false,
    }
}

fn admin(path: &'static str, handler: MethodRouter<AppState>, ops: Vec<Op>) -> Route {
    let ops = ops.into_iter().map(|op| op.access(Access::Admin)).collect();
    Route {
        admin: true,
        ..route(path, handler, ops)
    }
}

pub(crate) fn route_table() -> Vec<Route> {
    let mut table = probes();
    table.extend(agent_routes());
    table.extend(crate::protocol_routes::routes());
    table.extend(surface_routes());
    table.extend(management_routes());
    table.extend(console_routes());
    table
}

/// The web console's files: public (they hold no data; every data call the page makes
/// needs the admin credential), each answer with the console's security headers.
fn console_routes() -> Vec<Route> {
    let secured = |handler: MethodRouter<AppState>| {
        handler.layer(middleware::map_response(console::security_headers))
    };
    let html = json!({"description": "The console page",
        "content": {"text/html": {"schema": {"type": "string"}}}});
    let file = json!({"description": "A console script or style sheet",
        "content": {"text/javascript": {"schema": {"type": "string"}},
                    "text/css": {"schema": {"type": "string"}}}});
    vec![
        route("/console", secured(get(console::redirect)), vec![]),
        route(
            "/console/",
            secured(get(console::index)),
            vec![Op::new(
                "get",
                "console",
                "console",
                "The web console (admin data calls)",
            )
            .access(Access::Open)
            .ok(200, html)],
        ),
        route(
            "/console/{file}",
            secured(get(console::asset)),
            vec![Op::new("get", "console_file", "console", "A console asset")
                .access(Access::Open)
                .ok(200, file)
                .errors(&[404])],
        ),
    ]
}

fn probes() -> Vec<Route> {
    let status = |value: &str| {
        json!({"type": "object", "required": ["status"],
                                      "properties": {"status": {"const": value}}})
    };
    vec![
        route(
            "/runtime/health",
            get(runtime::health),
            vec![Op::new("get", "health", "probes", "Liveness")
                .access(Access::Open)
                .answers(200, status("ok"))],
        ),
        route(
            "/runtime/ready",
            get(runtime::ready),
            vec![Op::new(
                "get",
                "ready",
                "probes",
                "Readiness: 503 while starting or draining",
            )
            .access(Access::Open)
            .answers(200, status("ready"))
            .errors(&[503])],
        ),
        route(
            "/metrics",
            get(observe::metrics),
            vec![Op::new(
                "get",
                "metrics",
                "probes",
                "Prometheus metrics (OpenMetrics text)",
            )
            .access(Access::Open)
            .ok(
                200,
                json!({"description": "OpenMetrics text",
                "content": {"application/openmetrics-text": {"schema": {"type": "string"}}}}),
            )],
        ),
        route(
            "/openapi.json",
            get(openapi::serve),
            vec![
                Op::new("get", "openapi", "probes", "This document").answers(
                    200,
                    json!({"type": "object", "required": ["openapi", "paths"]}),
                ),
            ],
        ),
    ]
}

fn agent_routes() -> Vec<Route> {
    let invoke_body = json!({
        "application/json": {"schema": {"type": "object"}},
        "multipart/form-data": {"schema": {"type": "object"}},
    });
    vec![
        route(
            "/agents",
            get(agents::list),
            vec![Op::new(
                "get",
                "list_agents",
                "agents",
                "Public agents, active versions",
            )
            .answers(
                200,
                json!({"type": "object", "required": ["agents"],
                "properties": {"agents": {"type": "array", "items": schema::agent()}}}),
            )],
        ),
        route(
            "/agents/{id}",
            get(agents::get).post(surface::app),
            vec![
                Op::new(
                    "get",
                    "get_agent",
                    "agents",
                    "One public agent (also id@version)",
                )
                .answers(200, schema::agent())
                .errors(&[404]),
                Op::new(
                    "post",
                    "package_app_root",
                    "package apps",
                    "The package app's POST / (A2A JSON-RPC)",
                )
                .ok(200, json!({"description": "The package app's answer"}))
                .passthrough(),
            ],
        ),
        route(
            "/agents/{id}/invoke",
            // Invoke bodies have their own limits (`--max-body-bytes`, `--max-upload-bytes`).
            post(invoke::invoke).layer(DefaultBodyLimit::disable()),
            vec![Op::new(
                "post",
                "invoke",
                "agents",
                "Call an agent (any id; each mounted agent also has its own operation)",
            )
            .body(invoke_body)
            .ok(200, schema::invoke_success())
            .errors(&[400, 404, 413, 415, 422, 500, 502, 503, 504])],
        ),
    ]
}

fn surface_routes() -> Vec<Route> {
    let app_answer = json!({"description": "The package app's answer, passed through"});
    let ui_answer = json!({"description": "A static file of the package's UI"});
    vec![
        // The app's `POST /` with a trailing slash, as without one (described above).
        route("/agents/{id}/", any(surface::app), vec![]),
        route("/agents/{id}/ui", any(surface::ui), vec![]),
        route("/agents/{id}/ui/", any(surface::ui), vec![]),
        route(
            "/agents/{id}/ui/{*path}",
            any(surface::ui),
            vec![Op::new(
                "get",
                "package_ui",
                "package apps",
                "The package's UI files (index.html for client routes)",
            )
            .ok(200, ui_answer)
            .passthrough()],
        ),
        route(
            "/agents/{id}/{*path}",
            any(surface::app),
            vec![
                Op::new(
                    "get",
                    "package_app_get",
                    "package apps",
                    "The package's HTTP app at /{path} (any method)",
                )
                .ok(200, app_answer.clone())
                .passthrough(),
                Op::new(
                    "post",
                    "package_app_post",
                    "package apps",
                    "The package's HTTP app at /{path} (any method)",
                )
                .ok(200, app_answer)
                .passthrough(),
            ],
        ),
    ]
}

fn management_routes() -> Vec<Route> {
    let packages = get(runtime::packages)
        .post(management::load)
        .layer(DefaultBodyLimit::disable());
    let accepted = |schema: serde_json::Value| openapi::op::json_answer("Accepted", schema);
    let load_body = json!({
        "application/json": {"schema": {"type": "object", "required": ["source"],
            "additionalProperties": false, "properties": {
            "source": {"type": "string"}, "sha256": {"type": ["string", "null"]},
            "replace": {"type": "boolean"}, "force": {"type": "boolean"},
            "filename": {"type": ["string", "null"]}}}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    });
    let agent_switch = |verb: &str| {
        Op::new(
            "post",
            &format!("{verb}_agent"),
            "management",
            &format!("{verb} an agent"),
        )
        .answers(200, json!({"type": "object"}))
        .errors(&[404, 415])
    };
    vec![
        admin("/runtime/packages", packages, vec![
            Op::new("get", "list_packages", "management", "Package reports")
                .answers(200, json!({"type": "object", "required": ["packages"],
                    "properties": {"packages": {"type": "array", "items": schema::package_report()}}})),
            Op::new("post", "load_package", "management", "Load a package (source, raw upload or multipart)")
                .query("sha256", json!({"type": "string"}), "expected digest of an upload")
                .query("replace", json!({"type": "boolean"}), "retire other versions (default true)")
                .query("force", json!({"type": "boolean"}), "allow a downgrade")
                .query("filename", json!({"type": "string"}), "name of an upload in reports")
                .body(load_body)
                .ok(202, accepted(json!({"type": "object", "required": ["load_id", "state"]})))
                .errors(&[400, 413, 415]),
        ]),
        admin("/runtime/packages/{name}", delete(management::unload), vec![
            Op::new("delete", "unload_package", "management", "Unload every version of a package")
                .ok(202, accepted(json!({"type": "object", "required": ["unloading"]})))
                .errors(&[404]),
        ]),
        admin("/runtime/packages/{name}/{version}", delete(management::unload), vec![
            Op::new("delete", "unload_package_version", "management", "Unload one version")
                .ok(202, accepted(json!({"type": "object", "required": ["unloading"]})))
                .errors(&[404]),
        ]),
        admin("/runtime/loads/{id}", get(management::load_status), vec![
            Op::new("get", "load_status", "management", "A load job and its package reports")
                .answers(200, schema::load_job())
                .errors(&[400, 404]),
        ]),
        admin("/runtime/reload", post(management::reload), vec![
            Op::new("post", "reload", "management", "Re-read the startup sources and the registry index")
                .ok(202, accepted(json!({"type": "object"})))
                .errors(&[415]),
        ]),
        admin("/runtime/shutdown", post(management::shutdown), vec![
            Op::new("post", "shutdown", "management", "Drain, then exit 0 (as SIGTERM)")
                .ok(202, accepted(json!({"type": "object"})))
                .errors(&[415]),
        ]),
        admin("/runtime/agents", get(management::agents), vec![
            Op::new("get", "list_agents_admin", "management",
                "Public agents with their enabled flag and declared input schema")
                .answers(200, json!({"type": "object", "required": ["agents"],
                    "properties": {"agents": {"type": "array", "items": schema::admin_agent()}}})),
        ]),
        admin("/runtime/agents/{id}/enable", post(management::enable), vec![agent_switch("enable")]),
        admin("/runtime/agents/{id}/disable", post(management::disable), vec![agent_switch("disable")]),
        admin("/runtime/usage", get(observe::usage), vec![
            Op::new("get", "usage", "management", "Usage records and totals")
                .query("agent", json!({"type": "string"}), "only this agent")
                .query("from", json!({"type": "string", "format": "date-time"}), "RFC 3339 start")
                .query("to", json!({"type": "string", "format": "date-time"}), "RFC 3339 end")
                .query("group_by", json!({"enum": ["agent", "caller", "day"]}), "totals by")
                .query("limit", json!({"type": "integer", "minimum": 0}), "at most this many records")
                .answers(200, schema::usage_report())
                .errors(&[400, 404]),
        ]),
        admin("/runtime/log-level", put(observe::set_log_level), vec![
            Op::new("put", "set_log_level", "management", "Change the log filter")
                .body(json!({"application/json": {"schema": {"type": "object", "required": ["level"],
                    "properties": {"level": {"type": "string"}}}}}))
                .answers(200, json!({"type": "object", "required": ["level"]}))
                .errors(&[400, 404, 415]),
        ]),
    ]
}
