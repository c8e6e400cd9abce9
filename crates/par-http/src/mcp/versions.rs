//! MCP protocol revisions: the `initialize` handshake (2025-06-18, 2025-11-25) and the
//! per-request envelope of 2026-07-28 (`server/discover`, `_meta` carrying the version,
//! routing headers that must agree with the body).

use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Map, Value};

use crate::jsonrpc::{RpcError, RpcRequest, INVALID_PARAMS, INVALID_REQUEST};

/// Revisions reached through `initialize`, oldest first.
pub(super) const HANDSHAKE: [&str; 2] = ["2025-06-18", "2025-11-25"];
/// Revisions that send their version with every request.
pub(super) const MODERN: [&str; 1] = ["2026-07-28"];

const VERSION_HEADER: &str = "mcp-protocol-version";
const METHOD_HEADER: &str = "mcp-method";
const NAME_HEADER: &str = "mcp-name";
const VERSION_META: &str = "io.modelcontextprotocol/protocolVersion";
const CAPABILITIES_META: &str = "io.modelcontextprotocol/clientCapabilities";

/// The routing headers disagree with the body (2026-07-28).
pub(super) const HEADER_MISMATCH: i64 = -32020;
/// The requested revision is not served here.
pub(super) const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// Which kind of request this is: results of modern requests carry `resultType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Era {
    Handshake,
    Modern,
}

fn all_versions() -> Vec<&'static str> {
    HANDSHAKE.iter().chain(MODERN.iter()).copied().collect()
}

/// Classifies a request and checks its envelope: a modern request's `_meta` must name a
/// modern revision and client capabilities, and its headers must agree with the body;
/// a handshake-era request's `MCP-Protocol-Version` header, when sent, must be one of
/// ours (400 otherwise, as the 2025 revisions require).
pub(super) fn era(request: &RpcRequest, headers: &HeaderMap) -> Result<Era, RpcError> {
    let meta = request.params.get("_meta").and_then(Value::as_object);
    let version_header = header(headers, VERSION_HEADER);
    let modern_header = version_header.is_some_and(|v| MODERN.contains(&v));
    let Some(meta) = meta.filter(|m| m.contains_key(VERSION_META) || modern_header) else {
        if modern_header {
            return Err(bad(
                INVALID_PARAMS,
                "params._meta must carry the protocol version",
            ));
        }
        if let Some(version) = version_header {
            if !all_versions().contains(&version) && request.method != "initialize" {
                return Err(unsupported(version));
            }
        }
        return Ok(Era::Handshake);
    };
    check_modern(request, headers, meta)?;
    Ok(Era::Modern)
}

fn check_modern(
    request: &RpcRequest,
    headers: &HeaderMap,
    meta: &Map<String, Value>,
) -> Result<(), RpcError> {
    let (Some(version), true) = (meta.get(VERSION_META), meta.contains_key(CAPABILITIES_META))
    else {
        return Err(bad(
            INVALID_PARAMS,
            "params._meta is missing the protocol version or client capabilities",
        ));
    };
    let mismatch = |what: &str| {
        bad(
            HEADER_MISMATCH,
            &format!("the {what} header does not match the request body"),
        )
    };
    if header(headers, VERSION_HEADER) != version.as_str() {
        return Err(mismatch("MCP-Protocol-Version"));
    }
    if header(headers, METHOD_HEADER) != Some(request.method.as_str()) {
        return Err(mismatch("Mcp-Method"));
    }
    if request.method == "tools/call" {
        let name = request.params.get("name").and_then(Value::as_str);
        if name.is_some() && header(headers, NAME_HEADER) != name {
            return Err(mismatch("Mcp-Name"));
        }
    }
    let Some(version) = version.as_str() else {
        return Err(bad(INVALID_PARAMS, "the protocol version must be a string"));
    };
    if !MODERN.contains(&version) {
        return Err(unsupported(version));
    }
    Ok(())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn bad(code: i64, message: &str) -> RpcError {
    RpcError::new(code, message).with_status(StatusCode::BAD_REQUEST)
}

fn unsupported(requested: &str) -> RpcError {
    bad(
        UNSUPPORTED_PROTOCOL_VERSION,
        &format!("protocol version '{requested}' is not supported"),
    )
    .with_data(json!({"supported": all_versions(), "requested": requested}))
}

fn capabilities() -> Value {
    json!({"tools": {"listChanged": false}})
}

fn server_info() -> Value {
    json!({"name": "par", "title": "PAR agent runtime", "version": env!("CARGO_PKG_VERSION")})
}

/// `initialize`: the client's revision when we serve it, else our newest handshake one
/// (the client then decides whether it can go on).
pub(super) fn initialize(params: &Value) -> Result<Value, RpcError> {
    let Some(requested) = params.get("protocolVersion").and_then(Value::as_str) else {
        return Err(RpcError::new(INVALID_PARAMS, "protocolVersion is required"));
    };
    let version = if HANDSHAKE.contains(&requested) {
        requested
    } else {
        HANDSHAKE[HANDSHAKE.len() - 1]
    };
    Ok(json!({
        "protocolVersion": version,
        "capabilities": capabilities(),
        "serverInfo": server_info(),
    }))
}

/// `server/discover` (2026-07-28): every revision served here, and what the server can do.
pub(super) fn discover() -> Value {
    json!({
        "supportedVersions": all_versions(),
        "capabilities": capabilities(),
        "serverInfo": server_info(),
        "resultType": "complete",
        "ttlMs": 0,
        "cacheScope": "private",
    })
}

/// A result as the request's era wants it: modern results say they are complete; the
/// cacheable ones (`tools/list`) also say they may not be cached across callers.
pub(super) fn finish_result(era: Era, method: &str, mut result: Value) -> Value {
    if era == Era::Modern {
        result["resultType"] = json!("complete");
        if method == "tools/list" {
            result["ttlMs"] = json!(0);
            result["cacheScope"] = json!("private");
        }
    }
    result
}

/// The HTTP status of a method's error: 2026-07-28 maps codes onto statuses (400 for
/// bad params, 404 for unknown methods); earlier revisions send errors with 200, where
/// a 404 would mean "session expired" to the client.
pub(super) fn with_status(era: Era, error: RpcError) -> RpcError {
    let status = match (era, error.code) {
        (Era::Handshake, _) => StatusCode::OK,
        (Era::Modern, crate::jsonrpc::METHOD_NOT_FOUND) => StatusCode::NOT_FOUND,
        (Era::Modern, code)
            if [
                crate::jsonrpc::PARSE_ERROR,
                INVALID_REQUEST,
                INVALID_PARAMS,
                HEADER_MISMATCH,
                UNSUPPORTED_PROTOCOL_VERSION,
            ]
            .contains(&code) =>
        {
            StatusCode::BAD_REQUEST
        }
        (Era::Modern, _) => StatusCode::OK,
    };
    error.with_status(status)
}

/// A JSON-RPC request whose `params` are not an object where one is required.
pub(super) fn params_object(request: &RpcRequest) -> Result<&Map<String, Value>, RpcError> {
    match &request.params {
        Value::Object(map) => Ok(map),
        _ => Err(RpcError::new(INVALID_REQUEST, "params must be an object")),
    }
}

#[cfg(test)]
#[path = "versions_tests.rs"]
mod tests;
