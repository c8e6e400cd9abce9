//! Durable runs through the public surface: events and resume, results, cancel (and its
//! race with the end), idempotency, deadlines and bad input. Restarts and access are in
//! `runs_durability.rs`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::TestRuntime;
use crate::run_client::{
    cancel, events_after, first_events, get_with, start, start_ok, wait_end, wait_run,
};

async fn runtime(fixtures: &[&str], args: &[&str]) -> TestRuntime {
    let mut builder = TestRuntime::builder();
    for f in fixtures {
        builder = builder.fixture(f);
    }
    builder.args(args).start().await
}

#[tokio::test]
async fn a_streamed_run_resumes_after_every_event_index() {
    let rt = runtime(&["kit-stream"], &[]).await;
    let id = start_ok(&rt, "kit-stream", json!({"n": 3})).await;
    let run = wait_end(&rt, &id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["result"], json!([{"i": 0}, {"i": 1}, {"i": 2}]));
    assert_eq!(run["agent"], "kit-stream");
    assert_eq!(run["version"], "1.0.0");
    for field in ["created_at", "started_at", "finished_at"] {
        assert!(run[field].is_string(), "{field}: {run}");
    }
    assert!(run["error"].is_null());

    let all = events_after(&rt, &id, None).await;
    let ids: Vec<i64> = all.iter().map(|e| e.id).collect();
    assert_eq!(ids, [1, 2, 3, 4]);
    assert_eq!(all[0].data, json!({"i": 0}));
    assert_eq!(all[3].kind, "done");
    for last in 0..=4 {
        let rest = events_after(&rt, &id, Some(last)).await;
        assert_eq!(rest, all[last as usize..].to_vec(), "after {last}");
    }
}

#[tokio::test]
async fn a_reader_that_leaves_mid_run_resumes_where_it_left_and_the_run_goes_on() {
    let rt = runtime(&["kit-stream"], &[]).await;
    let id = start_ok(&rt, "kit-stream", json!({"n": 6, "gap": 0.3})).await;
    // Leave after two events, while the run is still producing.
    let seen = first_events(&rt, &id, 2).await;
    assert_eq!(seen.iter().map(|e| e.id).collect::<Vec<_>>(), [1, 2]);
    let (_, during) = rt.get(&format!("/runs/{id}")).await;
    assert_eq!(during["status"], "running", "{during}");
    // Resumed during the run: the rest arrives live.
    let rest = events_after(&rt, &id, Some(2)).await;
    let ids: Vec<i64> = rest.iter().map(|e| e.id).collect();
    assert_eq!(ids, [3, 4, 5, 6, 7]);
    assert_eq!(rest[0].data, json!({"i": 2}));
    assert_eq!(rest[4].kind, "done");
    let run = wait_end(&rt, &id).await;
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["result"].as_array().unwrap().len(), 6);
}

#[tokio::test]
async fn a_plain_result_is_the_runs_result_and_failures_keep_their_code() {
    let rt = runtime(&["kit-minimal"], &[]).await;
    let id = start_ok(&rt, "mini-upper", json!({"text": "abc"})).await;
    let run = wait_end(&rt, &id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(
        run["result"],
        json!({"action": "mini-upper", "upper": "ABC"})
    );
    let events = events_after(&rt, &id, None).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].data["upper"], "ABC");

    let id = start_ok(&rt, "kit-minimal", json!({"raise": "nope"})).await;
    let run = wait_end(&rt, &id).await;
    assert_eq!(run["status"], "failed");
    assert_eq!(run["error"]["code"], "agent_error");
    assert_eq!(run["error"]["error"], "ValueError: nope");
    assert!(run["result"].is_null());
    let events = events_after(&rt, &id, None).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, "error");
    assert_eq!(events[0].data["code"], "agent_error");
}

#[tokio::test]
async fn cancel_stops_the_handler_and_ends_the_run_cancelled() {
    let rt = runtime(
        &["kit-stream"],
        // The handler reports through a marker file in the test's temp dir, which a
        // jailed package cannot see (by design): run it unconfined.
        &["--sandbox", "off"],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker");
    let id = start_ok(
        &rt,
        "kit-stream",
        json!({"n": 1000, "gap": 0.1, "marker": marker}),
    )
    .await;
    first_events(&rt, &id, 1).await;
    let (status, run) = cancel(&rt, &id, &[]).await;
    assert_eq!(status, 202, "{run}");
    assert_eq!(run["status"], "cancelled");
    assert_eq!(run["error"]["code"], "cancelled");
    let text = crate::harness::marker_text(&marker, Duration::from_secs(10)).await;
    assert_eq!(text, "cancelled");
    let events = events_after(&rt, &id, None).await;
    let last = events.last().unwrap();
    assert_eq!(last.kind, "error");
    assert_eq!(last.data["code"], "cancelled");
    // Nothing is added after the end, and a second cancel changes nothing.
    assert_eq!(events_after(&rt, &id, None).await, events);
    let (status, body) = cancel(&rt, &id, &[]).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "conflict");
    assert_eq!(wait_end(&rt, &id).await["status"], "cancelled");
}

#[tokio::test]
async fn a_cancel_racing_the_end_leaves_exactly_one_outcome() {
    let rt = runtime(&["kit-minimal"], &[]).await;
    let (mut cancelled, mut finished) = (0, 0);
    for _ in 0..20 {
        let id = start_ok(&rt, "kit-minimal", json!({"x": 1})).await;
        let (status, body) = cancel(&rt, &id, &[]).await;
        let run = wait_end(&rt, &id).await;
        let events = events_after(&rt, &id, None).await;
        let last = events.last().unwrap();
        match status {
            202 => {
                cancelled += 1;
                assert_eq!(run["status"], "cancelled", "{run}");
                assert_eq!(last.kind, "error");
            }
            409 => {
                finished += 1;
                assert_eq!(run["status"], "succeeded", "{run}");
                assert_eq!(last.kind, "done");
            }
            other => panic!("cancel answered {other}: {body}"),
        }
        // Exactly one last event, and it is the last.
        let ends = events.iter().filter(|e| e.kind != "message").count();
        assert_eq!(ends, 1, "{events:?}");
    }
    assert_eq!(cancelled + finished, 20);
}

#[tokio::test]
async fn an_idempotency_key_returns_the_same_run() {
    let rt = runtime(&["kit-minimal"], &[]).await;
    let key = [("idempotency-key", "order-42")];
    let (status, first, _) = start(&rt, "kit-minimal", json!({"a": 1}), &key).await;
    assert_eq!(status, 202, "{first}");
    let (status, again, location) = start(&rt, "kit-minimal", json!({"a": 1}), &key).await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(again["run_id"], first["run_id"]);
    assert_eq!(
        location.unwrap(),
        format!("/runs/{}", first["run_id"].as_str().unwrap())
    );
    // The same key with another body is a mistake, not a replay: 409, nothing started.
    let (status, reused, _) = start(&rt, "kit-minimal", json!({"a": 2}), &key).await;
    assert_eq!(status, 409, "{reused}");
    assert_eq!(reused["code"], "conflict");
    assert!(
        reused["error"]
            .as_str()
            .unwrap()
            .contains(first["run_id"].as_str().unwrap()),
        "{reused}"
    );
    let other = [("idempotency-key", "order-43")];
    let (_, third, _) = start(&rt, "kit-minimal", json!({"a": 3}), &other).await;
    assert_ne!(third["run_id"], first["run_id"]);
    // Only two runs exist, and the first kept its own body.
    let (status, list) = rt.get("/runs?agent=kit-minimal").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["runs"].as_array().unwrap().len(), 2, "{list}");
    let run = wait_end(&rt, first["run_id"].as_str().unwrap()).await;
    assert_eq!(run["result"]["echo"], json!({"a": 1}));
}

#[tokio::test]
async fn a_run_ends_at_its_own_deadline_or_the_run_timeout() {
    let rt = runtime(&["kit-async"], &["--run-timeout", "1"]).await;
    let (status, run, _) = start(&rt, "kit-async", json!({"sleep": 30}), &[]).await;
    assert_eq!(status, 202, "{run}");
    let id = run["run_id"].as_str().unwrap();
    let run = wait_end(&rt, id).await;
    assert_eq!(run["status"], "failed");
    assert_eq!(run["error"]["code"], "timeout");
    assert!(
        run["error"]["error"].as_str().unwrap().contains("1 s"),
        "{run}"
    );
    // A run's own (shorter) deadline.
    let r = rt
        .client
        .post(rt.url("/agents/kit-async/runs?timeout=0.3"))
        .body(json!({"sleep": 30}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let run = wait_end(&rt, &id).await;
    assert_eq!(run["error"]["code"], "timeout");
    assert!(
        run["error"]["error"].as_str().unwrap().contains("0.3 s"),
        "{run}"
    );
}

/// Agent, body, headers, expected status and code.
type BadStart<'a> = (&'a str, Value, &'a [(&'a str, &'a str)], u16, &'a str);

#[tokio::test]
async fn bad_input_on_every_runs_route_gets_the_contracts_error() {
    // A small body limit, so the refused body still fits the socket buffers.
    let rt = runtime(
        &["kit-minimal", "kit-schema"],
        &["--max-body-bytes", "4096"],
    )
    .await;
    let cases: Vec<BadStart> = vec![
        ("nobody", json!({}), &[], 404, "agent_not_found"),
        ("mini-secret", json!({}), &[], 404, "agent_not_found"),
        (
            "kit-minimal",
            json!({"action": "mini-secret"}),
            &[],
            404,
            "agent_not_found",
        ),
        ("kit-minimal", json!([1]), &[], 400, "bad_request"),
        ("kit-schema", json!({"times": 2}), &[], 422, "invalid_input"),
        (
            "kit-minimal",
            json!({}),
            &[("idempotency-key", "")],
            400,
            "bad_request",
        ),
    ];
    for (agent, body, headers, want, code) in cases {
        let (status, error, _) = start(&rt, agent, body.clone(), headers).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (want, Some(code)),
            "{agent} {body}: {error}"
        );
        assert!(error["request_id"].is_string(), "{error}");
    }
    let r = rt
        .client
        .post(rt.url("/agents/kit-minimal/runs?timeout=-1"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = rt.post_raw("/agents/kit-minimal/runs", "{".into()).await;
    assert_eq!(r.0, 400, "{}", r.1);
    let too_big = format!("{{\"x\": \"{}\"}}", "a".repeat(8192));
    assert_eq!(
        rt.post_raw("/agents/kit-minimal/runs", too_big).await.0,
        413
    );

    for path in ["/runs/nope", "/runs/nope/events"] {
        let (status, error) = rt.get(path).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (404, Some("not_found")),
            "{path}"
        );
    }
    assert_eq!(cancel(&rt, "nope", &[]).await.0, 404);
    let id = start_ok(&rt, "kit-minimal", json!({})).await;
    wait_run(&rt, &id, |r| r["status"] == "succeeded").await;
    for bad in ["x", "-1", "1.5"] {
        let path = format!("/runs/{id}/events");
        let (status, error) = get_with(&rt, &path, &[("last-event-id", bad)]).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (400, Some("bad_request")),
            "{bad}"
        );
    }
    for query in ["status=bogus", "limit=0", "limit=x"] {
        let (status, error) = rt.get(&format!("/runs?{query}")).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (400, Some("bad_request")),
            "{query}"
        );
    }
    let (status, list) = rt.get("/runs?status=succeeded&limit=1").await;
    assert_eq!(status, 200);
    assert_eq!(list["runs"][0]["run_id"], id.as_str());
}
