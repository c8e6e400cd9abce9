//! Agent-to-agent calls: `par_runtime.call` / `acall` from real packages, routed by the
//! runtime to private sub-agents of other packages, with errors, limits and metering.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::TestRuntime;

async fn callers() -> TestRuntime {
    TestRuntime::builder()
        .fixture("kit-minimal")
        .fixture("kit-caller")
        .fixture("kit-async")
        .args(&["--max-call-depth", "3"])
        .start()
        .await
}

/// Invokes kit-caller and returns its `data`.
async fn via_caller(rt: &TestRuntime, body: Value) -> Value {
    let (status, reply) = rt.invoke("kit-caller", body).await;
    assert_eq!(status, 200, "{reply}");
    reply["data"].clone()
}

#[tokio::test]
async fn agents_call_private_sub_agents_of_other_packages_in_every_form() {
    let rt = callers().await;
    let (status, _) = rt.invoke("mini-secret", json!({})).await;
    assert_eq!(status, 404, "private from outside");
    for mode in ["acall", "call", "own_loop"] {
        let data = via_caller(&rt, json!({"call": "mini-secret", "mode": mode})).await;
        assert_eq!(data["result"], json!({"secret": true}), "{mode}: {data}");
    }
    let data = via_caller(
        &rt,
        json!({"call": "kit-minimal", "payload": {"n": [1, 2]}}),
    )
    .await;
    assert_eq!(data["result"]["echo"], json!({"n": [1, 2]}), "{data}");
    let data = via_caller(&rt, json!({"call": "mini-secret", "mode": "loop"})).await;
    assert_eq!(data["error"]["type"], "RuntimeError", "{data}");
    assert!(
        data["error"]["message"].as_str().unwrap().contains("acall"),
        "the blocking form on the event loop is refused with advice: {data}"
    );
}

#[tokio::test]
async fn failures_raise_in_agent_code_with_the_runtime_error_code() {
    let rt = callers().await;
    let cases = [
        (json!({"call": "no-such-agent"}), "agent_not_found"),
        (
            json!({"call": "kit-minimal", "payload": {"raise": "inner boom"}}),
            "agent_error",
        ),
        (
            json!({"call": "kit-async", "payload": {"sleep": 5}, "timeout": 0.5}),
            "timeout",
        ),
    ];
    for (body, code) in cases {
        let data = via_caller(&rt, body.clone()).await;
        assert_eq!(data["error"]["type"], "AgentCallError", "{body}: {data}");
        assert_eq!(data["error"]["code"], code, "{body}: {data}");
    }
    let data = via_caller(
        &rt,
        json!({"call": "kit-minimal", "payload": {"raise": "inner boom"}}),
    )
    .await;
    assert_eq!(data["error"]["agent"], "kit-minimal");
    assert_eq!(data["error"]["message"], "ValueError: inner boom");

    let (status, reply) = rt
        .invoke(
            "kit-caller",
            json!({"call": "kit-minimal", "payload": {"raise": "x"}, "propagate": true}),
        )
        .await;
    assert_eq!(status, 500, "{reply}");
    assert_eq!(reply["code"], "agent_error");
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .starts_with("AgentCallError: [agent_error] kit-minimal"),
        "{reply}"
    );
    let (status, reply) = rt
        .invoke("kit-caller", json!({"call": "kit-minimal", "payload": [1]}))
        .await;
    assert_eq!(status, 500);
    assert!(
        reply["error"].as_str().unwrap().starts_with("TypeError"),
        "{reply}"
    );
}

#[tokio::test]
async fn call_chains_stop_at_the_depth_limit() {
    let rt = callers().await;
    let data = via_caller(&rt, json!({"level": 0})).await;
    assert_eq!(
        data,
        json!({"deepest": 3, "code": "call_depth_exceeded"}),
        "with --max-call-depth 3, levels 1-3 run and the 4th is refused"
    );
    let (status, _) = rt.invoke("kit-minimal", json!({})).await;
    assert_eq!(status, 200, "the runtime is unharmed");
}

#[tokio::test]
async fn nested_calls_carry_request_id_and_trace_and_are_metered() {
    let rt = callers().await;
    let outer_parent = "00f067aa0ba902b7";
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let body = json!({
        "trace": true,
        "report": 5,
        "call": "kit-minimal",
        "payload": {"trace": true, "usage": {"tokens_in": 7, "model": "inner"}},
    });
    let r = rt
        .client
        .post(rt.url("/agents/kit-caller/invoke"))
        .header("x-request-id", "a2a-req-1")
        .header("traceparent", format!("00-{trace_id}-{outer_parent}-01"))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let data = r.json::<Value>().await.unwrap()["data"].clone();
    assert_eq!(data["request_id"], "a2a-req-1");
    assert_eq!(data["result"]["request_id"], "a2a-req-1", "{data}");
    let outer_span = span_of(&data["traceparent"], trace_id);
    let inner_span = span_of(&data["result"]["traceparent"], trace_id);
    assert_ne!(outer_span, outer_parent);
    assert_ne!(inner_span, outer_span, "the nested call has its own span");

    let report = rt.usage_when("?limit=100", 2).await;
    let records = report["records"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{report}");
    let record = |agent: &str| records.iter().find(|r| r["agent"] == agent).unwrap();
    let (outer, inner) = (record("kit-caller"), record("kit-minimal"));
    assert_eq!(inner["request_id"], "a2a-req-1");
    assert_eq!(inner["caller_agent"], "kit-caller");
    assert_eq!(inner["outcome"], "ok");
    assert_eq!(
        inner["reported"],
        json!({"tokens_in": 14, "model": "inner"})
    );
    assert_eq!(outer["caller_agent"], Value::Null);
    assert_eq!(
        outer["reported"],
        json!({"tokens_in": 5, "model": "caller-model"})
    );
    assert!(inner["bytes_in"].as_u64().unwrap() > 0);

    let metrics = rt.metrics().await;
    assert!(
        metrics
            .contains(r#"par_invocations_total{agent="kit-minimal",version="1.0.0",code="ok"} 1"#),
        "{metrics}"
    );
    let logs = rt.logs();
    let line = logs
        .lines()
        .find(|l| l.contains("call finished") && l.contains(r#""caller_agent":"kit-caller""#))
        .unwrap_or_else(|| panic!("no nested call line in {logs}"));
    assert!(line.contains("a2a-req-1"), "{line}");
}

/// The span id of a traceparent in trace `trace_id`.
fn span_of(traceparent: &Value, trace_id: &str) -> String {
    let text = traceparent.as_str().unwrap();
    let parts: Vec<&str> = text.split('-').collect();
    assert_eq!(parts.len(), 4, "{text}");
    assert_eq!(parts[1], trace_id, "same trace: {text}");
    parts[2].to_string()
}

#[tokio::test]
async fn cancelling_the_outer_call_cancels_the_calls_it_made() {
    let rt = TestRuntime::builder()
        .fixture("kit-minimal")
        .fixture("kit-caller")
        .fixture("kit-async")
        .args(&["--max-call-depth", "3"])
        // The handler reports through a marker file in the test's temp dir, which a
        // jailed package cannot see (by design): run it unconfined.
        .args(&["--sandbox", "off"])
        .start()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker");
    let body =
        json!({"report": 9, "call": "kit-async", "payload": {"sleep": 10, "marker": marker}});
    let sent = rt
        .client
        .post(rt.url("/agents/kit-caller/invoke"))
        .timeout(Duration::from_millis(1500))
        .body(body.to_string())
        .send()
        .await;
    assert!(sent.is_err(), "the client gave up first");
    let text = crate::harness::marker_text(&marker, Duration::from_secs(5)).await;
    assert_eq!(text, "cancelled");
    // The nested call is still metered (it ran for a while), as cancelled.
    let usage = rt.usage_when("?agent=kit-async", 1).await;
    let records = usage["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{usage}");
    assert_eq!(records[0]["outcome"], "cancelled");
    assert_eq!(records[0]["caller_agent"], "kit-caller");
    assert_eq!(records[0]["version"], "1.0.0");
    // And the abandoned outer call, with the usage its handler reported before it stopped.
    let usage = rt.usage_when("?agent=kit-caller", 1).await;
    let outer = &usage["records"][0];
    assert_eq!(outer["outcome"], "client_closed", "{usage}");
    assert_eq!(outer["reported"]["tokens_in"], 9, "{usage}");
}
