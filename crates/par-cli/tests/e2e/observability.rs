//! Metrics, call logs, trace context, usage records and streaming, after known traffic.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::TestRuntime;

/// The value of the sample whose name and labels are exactly `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metric_values_after_known_traffic() {
    let rt = TestRuntime::builder().fixture("kit-minimal").start().await;
    for _ in 0..3 {
        assert_eq!(rt.invoke("kit-minimal", json!({})).await.0, 200);
    }
    assert_eq!(rt.invoke("kit-minimal", json!({"raise": "x"})).await.0, 500);
    for i in 0..50 {
        rt.invoke(&format!("random-{i}-{}", uuid_like(i)), json!({}))
            .await;
    }
    let text = rt.metrics().await;
    let ok = r#"par_invocations_total{agent="kit-minimal",version="1.0.0",code="ok"}"#;
    assert_eq!(sample(&text, ok), Some(3.0), "{text}");
    let err = r#"par_invocations_total{agent="kit-minimal",version="1.0.0",code="agent_error"}"#;
    assert_eq!(sample(&text, err), Some(1.0));
    let count = r#"par_invocation_duration_seconds_count{agent="kit-minimal"}"#;
    assert_eq!(sample(&text, count), Some(4.0));
    let unknown =
        r#"par_invocations_total{agent="unknown",version="unknown",code="agent_not_found"}"#;
    assert_eq!(sample(&text, unknown), Some(50.0));
    assert!(
        !text.contains("random-"),
        "a caller-chosen id became a label"
    );
    let route = r#"par_http_requests_total{route="/agents/{id}/invoke",status="200"}"#;
    assert_eq!(sample(&text, route), Some(3.0));
    assert!(
        !text.contains("/agents/kit-minimal/invoke"),
        "raw path as a label"
    );
    assert_eq!(
        sample(&text, r#"par_package_loads_total{outcome="ok"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"par_worker_starts_total{package="kit-minimal"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"par_workers{package="kit-minimal"}"#),
        Some(1.0)
    );
    assert!(
        text.contains(r#"par_inflight_invocations{agent="kit-minimal"} 0"#),
        "{text}"
    );
}

fn uuid_like(i: usize) -> String {
    format!("{:x}", (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

#[tokio::test]
async fn each_call_logs_one_line_with_its_fields() {
    let rt = TestRuntime::builder().fixture("kit-minimal").start().await;
    let r = rt
        .client
        .post(rt.url("/agents/kit-minimal/invoke"))
        .header("x-request-id", "log-test-1")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let line = wait_for_log(&rt, "log-test-1").await;
    assert_eq!(line["message"], "call finished");
    assert_eq!(line["agent"], "kit-minimal");
    assert_eq!(line["version"], "1.0.0");
    assert_eq!(line["code"], "ok");
    assert!(line["latency_ms"].as_f64().unwrap() > 0.0);
    assert!(
        line["timestamp"].is_string() && line["level"] == "INFO",
        "{line}"
    );
}

async fn wait_for_log(rt: &TestRuntime, needle: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found = rt
            .logs()
            .lines()
            .filter(|l| l.contains(needle) && l.contains("call finished"))
            .find_map(|l| serde_json::from_str::<Value>(l).ok());
        if let Some(line) = found {
            return line;
        }
        assert!(Instant::now() < deadline, "no log line for {needle}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn traceparent_and_request_id_reach_agent_code() {
    let rt = TestRuntime::builder().fixture("kit-minimal").start().await;
    let r = rt
        .client
        .post(rt.url("/agents/kit-minimal/invoke"))
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .header("x-request-id", "trace-req")
        .body(r#"{"trace": true}"#)
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    let tp = body["data"]["traceparent"].as_str().unwrap();
    assert!(
        tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "{tp}"
    );
    assert!(
        !tp.contains("00f067aa0ba902b7"),
        "the runtime's own span is the parent"
    );
    assert_eq!(body["data"]["request_id"], "trace-req");
}

#[tokio::test]
async fn usage_records_for_sync_streaming_and_failed_calls() {
    let rt = TestRuntime::builder()
        .fixture("kit-minimal")
        .fixture("kit-stream")
        .start()
        .await;
    let sent = json!({"usage": {"tokens_in": 10, "model": "m1"}}).to_string();
    let r = rt
        .client
        .post(rt.url("/agents/kit-minimal/invoke"))
        .body(sent.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let received = r.bytes().await.unwrap().len() as u64;
    let (status, _) = rt.invoke("kit-minimal", json!({"raise": "no"})).await;
    assert_eq!(status, 500);
    let r = rt
        .client
        .post(rt.url("/agents/kit-stream/invoke"))
        .header("accept", "text/event-stream")
        .body(r#"{"n": 4}"#)
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert_eq!(text.matches("data: {\"i\"").count(), 4, "{text}");
    let report = rt.usage_when("?agent=kit-minimal", 2).await;
    let records = report["records"].as_array().unwrap();
    let ok = records.iter().find(|r| r["outcome"] == "ok").unwrap();
    assert_eq!(ok["reported"]["tokens_in"], 20, "two reports add up: {ok}");
    assert_eq!(ok["reported"]["model"], "m1");
    assert_eq!(ok["version"], "1.0.0");
    assert_eq!(ok["bytes_in"], sent.len() as u64, "{ok}");
    assert_eq!(
        ok["bytes_out"], received,
        "exactly the body the client got: {ok}"
    );
    assert!(records.iter().any(|r| r["outcome"] == "agent_error"));
    assert_eq!(report["totals"]["calls"], 2);
    let stream = rt.usage_when("?agent=kit-stream", 1).await;
    assert_eq!(
        stream["records"][0]["bytes_out"],
        text.len() as u64,
        "{stream}"
    );
    assert_eq!(
        stream["records"][0]["reported"]["tokens_out"], 4,
        "{stream}"
    );
    assert_eq!(stream["records"][0]["outcome"], "ok");
    let (_, grouped) = rt.get("/runtime/usage?group_by=agent").await;
    assert_eq!(grouped["totals"]["calls"], 3, "{grouped}");
    assert_eq!(grouped["groups"].as_array().unwrap().len(), 2, "{grouped}");
}

#[tokio::test]
async fn no_usage_record_is_lost_across_a_graceful_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("usage.sqlite3");
    let mut rt = TestRuntime::builder()
        .fixture("kit-minimal")
        .usage_db(&db)
        .start()
        .await;
    for i in 0..25 {
        assert_eq!(rt.invoke("kit-minimal", json!({"i": i})).await.0, 200);
    }
    assert!(rt.terminate().success());
    let rt = TestRuntime::builder()
        .fixture("kit-minimal")
        .usage_db(&db)
        .start()
        .await;
    let (_, report) = rt.get("/runtime/usage?agent=kit-minimal&limit=1000").await;
    assert_eq!(report["totals"]["calls"], 25, "{report}");
    drop(rt);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_par"))
        .args(["usage", "export", "--format", "csv", "--usage-db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8(out.stdout).unwrap();
    assert_eq!(csv.lines().count(), 26, "header + 25 rows:\n{csv}");
    assert!(csv.lines().next().unwrap().contains("request_id"));
}

#[tokio::test]
async fn stream_items_arrive_as_yielded_and_errors_end_the_stream() {
    let rt = TestRuntime::builder().fixture("kit-stream").start().await;
    let started = Instant::now();
    let mut r = rt
        .client
        .post(rt.url("/agents/kit-stream/invoke"))
        .header("accept", "text/event-stream")
        .body(r#"{"n": 3, "gap": 0.7}"#)
        .send()
        .await
        .unwrap();
    let first = r.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("\"i\":0"));
    assert!(
        started.elapsed() < Duration::from_millis(1200),
        "first event was held back"
    );
    let rest = r.text().await.unwrap();
    assert!(rest.contains("event: done"), "{rest}");
    let text = rt
        .client
        .post(rt.url("/agents/kit-stream/invoke"))
        .header("accept", "text/event-stream")
        .body(r#"{"n": 3, "fail_at": 1}"#)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("\"i\":0") && text.contains("event: error"),
        "{text}"
    );
    let error_data = text
        .lines()
        .skip_while(|l| *l != "event: error")
        .nth(1)
        .unwrap();
    let error: Value = serde_json::from_str(error_data.trim_start_matches("data: ")).unwrap();
    assert_eq!(error["code"], "agent_error");
    assert_eq!(error["error"], "RuntimeError: failed at 1");
}

#[tokio::test]
async fn client_disconnect_cancels_a_streaming_handler() {
    let rt = TestRuntime::builder()
        .fixture("kit-stream")
        // The handler reports through a marker file in the test's temp dir, which a
        // jailed package cannot see (by design): run it unconfined.
        .args(&["--sandbox", "off"])
        .start()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker");
    let body = json!({"n": 100, "gap": 0.2, "marker": marker}).to_string();
    let mut r = rt
        .client
        .post(rt.url("/agents/kit-stream/invoke"))
        .header("accept", "text/event-stream")
        .body(body)
        .send()
        .await
        .unwrap();
    r.chunk().await.unwrap();
    drop(r);
    let text = crate::harness::marker_text(&marker, Duration::from_secs(5)).await;
    assert_eq!(text, "cancelled");
}

#[tokio::test]
async fn log_level_changes_at_run_time() {
    let rt = TestRuntime::builder().fixture("kit-minimal").start().await;
    let r = rt
        .client
        .put(rt.url("/runtime/log-level"))
        .json(&json!({"level": "warn"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let call = |request_id: &'static str| {
        rt.client
            .post(rt.url("/agents/kit-minimal/invoke"))
            .header("x-request-id", request_id)
            .body("{}")
            .send()
    };
    assert_eq!(call("after-warn").await.unwrap().status(), 200);
    // Back to info: the next call's line is written, and lines are written in order, so
    // once it is there the call made at warn level had its chance to be logged.
    let r = rt
        .client
        .put(rt.url("/runtime/log-level"))
        .json(&json!({"level": "info"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(call("after-info").await.unwrap().status(), 200);
    wait_for_log(&rt, "after-info").await;
    assert!(
        !rt.logs().contains("after-warn"),
        "info line logged at warn level"
    );
    let r = rt
        .client
        .put(rt.url("/runtime/log-level"))
        .json(&json!({"level": "not a [filter"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn live_workers_gauge_counts_each_running_pool_once() {
    // The same package under two file names (as the kit and the fixture alias name it).
    let alias = crate::harness::fixture("kit-minimal");
    let kit_named = alias.with_file_name("kit-minimal-1.0.0.apkg");
    let rt = TestRuntime::builder()
        .source(&alias)
        .source(&kit_named)
        .start()
        .await;
    let live = r#"par_workers{package="kit-minimal"}"#;
    assert_eq!(
        sample(&rt.metrics().await, live),
        Some(1.0),
        "duplicate dropped"
    );

    // A hot swap: two versions run side by side, then the old one stops.
    let v2 = crate::harness::fixture("kit-minimal-v2");
    let (status, _) = rt
        .post_raw("/runtime/packages", json!({"source": v2}).to_string())
        .await;
    assert_eq!(status, 202);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, agent) = rt.get("/agents/kit-minimal").await;
        if agent["versions"] == json!(["2.0.0"]) {
            break;
        }
        assert!(Instant::now() < deadline, "v2 never replaced v1: {agent}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while sample(&rt.metrics().await, live) != Some(1.0) {
        assert!(Instant::now() < deadline, "{}", rt.metrics().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn queued_calls_are_counted_while_they_wait() {
    let rt = std::sync::Arc::new(
        TestRuntime::builder()
            .fixture("kit-async")
            .args(&["--max-concurrent-calls", "1", "--max-queued-calls", "4"])
            .start()
            .await,
    );
    let calls: Vec<_> = (0..2)
        .map(|_| {
            let rt = rt.clone();
            tokio::spawn(async move { rt.invoke("kit-async", json!({"sleep": 1.0})).await.0 })
        })
        .collect();
    let queued = r#"par_queued_invocations{agent="kit-async"}"#;
    let deadline = Instant::now() + Duration::from_secs(5);
    while sample(&rt.metrics().await, queued) != Some(1.0) {
        assert!(Instant::now() < deadline, "{}", rt.metrics().await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for call in calls {
        assert_eq!(call.await.unwrap(), 200);
    }
    let text = rt.metrics().await;
    assert_eq!(sample(&text, queued), Some(0.0), "{text}");
}

#[tokio::test]
async fn a_call_the_client_abandons_is_still_metered() {
    let rt = TestRuntime::builder().fixture("kit-async").start().await;
    let gave_up = rt
        .client
        .post(rt.url("/agents/kit-async/invoke"))
        .timeout(Duration::from_millis(500))
        .body(r#"{"sleep": 5}"#)
        .send()
        .await;
    assert!(gave_up.is_err(), "the client left before the answer");
    let deadline = Instant::now() + Duration::from_secs(5);
    let record = loop {
        let (_, usage) = rt.get("/runtime/usage?agent=kit-async").await;
        if let Some(record) = usage["records"].get(0) {
            break record.clone();
        }
        assert!(Instant::now() < deadline, "no usage record: {usage}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(record["outcome"], "client_closed", "{record}");
    assert_eq!(record["version"], "1.0.0");
    let text = rt.metrics().await;
    let closed = r#"par_invocations_total{agent="kit-async",version="1.0.0",code="client_closed"}"#;
    assert_eq!(sample(&text, closed), Some(1.0), "{text}");
}
