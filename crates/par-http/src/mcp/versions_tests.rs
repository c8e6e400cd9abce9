use super::*;
use crate::jsonrpc::parse;

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.insert(*k, v.parse().unwrap());
    }
    map
}

fn modern_call(name: &str) -> RpcRequest {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": name, "arguments": {},
        "_meta": {VERSION_META: "2026-07-28", CAPABILITIES_META: {}}}});
    parse(body.to_string().as_bytes()).unwrap()
}

#[test]
fn initialize_keeps_a_served_revision_and_counters_others() {
    let answer =
        |v: &str| initialize(&json!({"protocolVersion": v})).unwrap()["protocolVersion"].clone();
    assert_eq!(answer("2025-06-18"), "2025-06-18");
    assert_eq!(answer("2025-11-25"), "2025-11-25");
    assert_eq!(answer("2024-11-05"), "2025-11-25");
    assert_eq!(initialize(&json!({})).unwrap_err().code, INVALID_PARAMS);
}

#[test]
fn a_modern_request_needs_headers_that_agree_with_its_body() {
    let good = headers(&[
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "echo"),
    ]);
    assert_eq!(era(&modern_call("echo"), &good).unwrap(), Era::Modern);
    let wrong_name = headers(&[
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "other"),
    ]);
    assert_eq!(
        era(&modern_call("echo"), &wrong_name).unwrap_err().code,
        HEADER_MISMATCH
    );
    let no_version = headers(&[("mcp-method", "tools/call"), ("mcp-name", "echo")]);
    assert_eq!(
        era(&modern_call("echo"), &no_version).unwrap_err().code,
        HEADER_MISMATCH
    );
}

#[test]
fn unknown_revisions_are_refused_with_the_supported_list() {
    let plain = parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).unwrap();
    assert_eq!(era(&plain, &HeaderMap::new()).unwrap(), Era::Handshake);
    let old = headers(&[("mcp-protocol-version", "2025-06-18")]);
    assert_eq!(era(&plain, &old).unwrap(), Era::Handshake);
    let future = headers(&[("mcp-protocol-version", "2099-01-01")]);
    let error = era(&plain, &future).unwrap_err();
    assert_eq!(error.code, UNSUPPORTED_PROTOCOL_VERSION);
    assert_eq!(error.data.unwrap()["supported"][2], "2026-07-28");
}

#[test]
fn modern_results_say_they_are_complete() {
    let list = finish_result(Era::Modern, "tools/list", json!({"tools": []}));
    assert_eq!(list["resultType"], "complete");
    assert_eq!(list["cacheScope"], "private");
    let old = finish_result(Era::Handshake, "tools/list", json!({"tools": []}));
    assert!(old.get("resultType").is_none());
}
