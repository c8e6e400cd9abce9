//! MCP through the official SDK's streamable HTTP client (mcp 2.3.0) in every revision it
//! speaks, plus the protocol's own errors for bad input, and auth as for invoke.

use serde_json::{json, Value};

use crate::harness::TestRuntime;
use crate::protocol_clients;

async fn runtime() -> TestRuntime {
    runtime_with(&[]).await
}

async fn runtime_with(args: &[&str]) -> TestRuntime {
    TestRuntime::builder()
        .args(args)
        .fixture("kit-minimal")
        .fixture("kit-schema")
        .fixture("kit-stream")
        .start()
        .await
}

fn calls() -> String {
    json!([
        ["mini-upper", {"text": "abc"}],
        ["kit-stream", {"n": 2}],
        ["kit-minimal", {"raise": "nope"}],
        ["schema-count", {"numbers": "not a list"}],
        ["mini-secret", {}],
    ])
    .to_string()
}

fn tool<'a>(report: &'a Value, name: &str) -> Option<&'a Value> {
    report["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
}

fn check_report(report: &Value) {
    let upper = tool(report, "mini-upper").expect("mini-upper is a tool");
    assert_eq!(upper["description"], "Upper-cases the \"text\" field");
    assert_eq!(upper["inputSchema"], json!({"type": "object"}));
    let count = tool(report, "schema-count").expect("schema-count is a tool");
    assert_eq!(
        count["inputSchema"]["required"],
        json!(["numbers"]),
        "{count}"
    );
    assert!(
        tool(report, "mini-secret").is_none(),
        "private sub-agents are never tools"
    );
    let calls = report["calls"].as_array().unwrap();
    assert_eq!(calls[0]["isError"], false, "{report}");
    assert_eq!(
        calls[0]["structured"],
        json!({"action": "mini-upper", "upper": "ABC"})
    );
    let text: Value = serde_json::from_str(calls[0]["text"][0].as_str().unwrap()).unwrap();
    assert_eq!(text, calls[0]["structured"]);
    assert_eq!(
        calls[1]["structured"],
        json!({"result": [{"i": 0}, {"i": 1}]})
    );
    assert_eq!(calls[2]["isError"], true);
    assert!(calls[2]["text"][0]
        .as_str()
        .unwrap()
        .starts_with("agent_error: ValueError: nope"));
    assert_eq!(calls[3]["isError"], true);
    assert!(
        calls[3]["text"][0]
            .as_str()
            .unwrap()
            .starts_with("invalid_input"),
        "{report}"
    );
    assert!(
        calls[4]["message"]
            .as_str()
            .unwrap()
            .contains("Unknown tool"),
        "{report}"
    );
}

#[tokio::test]
async fn the_sdk_client_lists_and_calls_agents_in_every_revision() {
    let rt = runtime().await;
    let url = rt.url("/mcp");
    for (mode, version) in [
        ("legacy", "2025-11-25"),
        ("auto", "2026-07-28"),
        ("2026-07-28", "2026-07-28"),
    ] {
        let report = protocol_clients::run("mcp_client.py", &[&url, mode, &calls()]).await;
        assert_eq!(report["version"], version, "{mode}: {report}");
        check_report(&report);
    }
}

#[tokio::test]
async fn mcp_for_one_agent_serves_only_that_agent() {
    let rt = runtime().await;
    let url = rt.url("/mcp/mini-upper");
    let calls = json!([["mini-upper", {"text": "x"}], ["kit-stream", {}]]).to_string();
    let report = protocol_clients::run("mcp_client.py", &[&url, "legacy", &calls]).await;
    let names: Vec<&str> = report["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["mini-upper"]);
    assert_eq!(report["calls"][0]["structured"]["upper"], "X");
    assert!(report["calls"][1]["message"]
        .as_str()
        .unwrap()
        .contains("Unknown tool"));
    for id in ["mini-secret", "nobody"] {
        let (status, body) = rt
            .post_raw(&format!("/mcp/{id}"), rpc("tools/list", json!({})))
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (404, Some("agent_not_found")),
            "{id}"
        );
    }
}

fn rpc(method: &str, params: Value) -> String {
    json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}).to_string()
}

#[tokio::test]
async fn bad_input_gets_the_protocols_own_errors() {
    // A small body limit, so the refused body still fits the socket buffers.
    let rt = runtime_with(&["--max-body-bytes", "4096"]).await;
    let init = json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}});
    let (status, body) = rt.post_raw("/mcp", rpc("initialize", init)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["protocolVersion"], "2025-06-18");
    assert_eq!(
        body["result"]["capabilities"]["tools"],
        json!({"listChanged": false})
    );
    let too_big = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{{\"x\":\"{}\"}}}}",
        "a".repeat(8192)
    );
    let cases: Vec<(String, u16, i64)> = vec![
        ("{not json".into(), 400, -32700),
        ("[]".into(), 400, -32600),
        (
            json!([{"jsonrpc": "2.0", "id": 1, "method": "ping"}]).to_string(),
            400,
            -32600,
        ),
        (
            json!({"jsonrpc": "1.0", "id": 1, "method": "ping"}).to_string(),
            400,
            -32600,
        ),
        (rpc("no/such/method", json!({})), 200, -32601),
        (rpc("tools/call", json!({"name": "nobody"})), 200, -32602),
        (
            rpc(
                "tools/call",
                json!({"name": "mini-upper", "arguments": [1]}),
            ),
            200,
            -32602,
        ),
        (rpc("tools/call", json!({"arguments": {}})), 200, -32602),
        (rpc("initialize", json!({})), 200, -32602),
        (too_big, 413, -32600),
    ];
    for (body, want_status, want_code) in cases {
        let shown = &body[..body.len().min(80)];
        let (status, answer) = rt.post_raw("/mcp", body.clone()).await;
        assert_eq!(status, want_status, "{shown}: {answer}");
        assert_eq!(answer["jsonrpc"], "2.0", "{shown}: {answer}");
        assert_eq!(answer["error"]["code"], want_code, "{shown}: {answer}");
    }
    // A notification is acknowledged without a body.
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string();
    let r = rt
        .client
        .post(rt.url("/mcp"))
        .body(note)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    // A revision nobody serves is refused with the list of those served.
    let r = rt
        .client
        .post(rt.url("/mcp"))
        .header("mcp-protocol-version", "2099-01-01")
        .body(rpc("tools/list", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["error"]["code"], -32022);
    assert_eq!(
        answer["error"]["data"]["supported"],
        json!(["2025-06-18", "2025-11-25", "2026-07-28"])
    );
    // No server-to-client stream is offered.
    let r = rt.client.get(rt.url("/mcp")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    // The runtime still serves after all that.
    let (status, body) = rt
        .post_raw(
            "/mcp",
            rpc(
                "tools/call",
                json!({"name": "mini-upper", "arguments": {"text": "ok"}}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["structuredContent"]["upper"], "OK", "{body}");
}

#[tokio::test]
async fn mcp_tools_follow_invoke_auth_and_rbac() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[[grant]]\nrole = \"analyst\"\ninvoke = [\"kit-minimal\", \"mini-upper\", \"mini-ops\"]\n",
    )
    .unwrap();
    let keys = dir.path().join("keys.toml");
    let digest = crate::auth::sha256_hex("mcp-key-1");
    std::fs::write(
        &keys,
        format!("[[key]]\nname = \"m\"\nsha256 = \"{digest}\"\nroles = [\"analyst\"]\n"),
    )
    .unwrap();
    let rt = TestRuntime::builder()
        .fixture("kit-minimal")
        .fixture("kit-stream")
        .args(&["--auth", "api-key", "--api-keys", keys.to_str().unwrap()])
        .args(&["--policy", policy.to_str().unwrap()])
        .start()
        .await;
    let (status, body) = rt.post_raw("/mcp", rpc("tools/list", json!({}))).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
    let url = rt.url("/mcp");
    let calls =
        json!([["mini-upper", {"text": "k"}], ["kit-stream", {}], ["mini-ops", {}]]).to_string();
    let report =
        protocol_clients::run("mcp_client.py", &[&url, "legacy", &calls, "mcp-key-1"]).await;
    let mut names: Vec<&str> = report["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    names.sort();
    // kit-stream: no grant; mini-ops: granted but its role (ops) is missing.
    assert_eq!(names, ["kit-minimal", "mini-upper"], "{report}");
    assert_eq!(report["calls"][0]["structured"]["upper"], "K");
    assert!(report["calls"][1]["message"]
        .as_str()
        .unwrap()
        .contains("Unknown tool"));
    assert!(report["calls"][2]["message"]
        .as_str()
        .unwrap()
        .contains("Unknown tool"));
}
