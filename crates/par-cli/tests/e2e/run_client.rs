//! Calling the durable-runs API from tests: start a run, wait for its end, read its
//! events (all at once, or as they arrive) and parse them.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::TestRuntime;

/// One Server-Sent Event of `GET /runs/{id}/events`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Event {
    pub id: i64,
    /// `message` for items, `done` or `error` for the last event.
    pub kind: String,
    pub data: Value,
}

/// Parses whole SSE frames out of `text`; comment lines (heartbeats) are skipped.
pub(crate) fn parse_events(text: &str) -> Vec<Event> {
    let mut events = Vec::new();
    for frame in text.split("\n\n").filter(|f| !f.trim().is_empty()) {
        let mut event = Event {
            id: -1,
            kind: "message".into(),
            data: Value::Null,
        };
        let mut data_lines = 0;
        for line in frame.lines() {
            if let Some(id) = line.strip_prefix("id: ") {
                event.id = id.parse().expect("numeric id");
            } else if let Some(kind) = line.strip_prefix("event: ") {
                event.kind = kind.into();
            } else if let Some(data) = line.strip_prefix("data: ") {
                event.data = serde_json::from_str(data).expect("JSON data");
                data_lines += 1;
            }
        }
        if data_lines > 0 {
            events.push(event);
        }
    }
    events
}

/// `POST /agents/{id}/runs` with extra headers; the status and body.
pub(crate) async fn start(
    rt: &TestRuntime,
    agent: &str,
    body: Value,
    headers: &[(&str, &str)],
) -> (u16, Value, Option<String>) {
    let mut request = rt
        .client
        .post(rt.url(&format!("/agents/{agent}/runs")))
        .header("content-type", "application/json")
        .body(body.to_string());
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    (status, r.json().await.unwrap_or(Value::Null), location)
}

/// Starts a run that must be accepted; its id.
pub(crate) async fn start_ok(rt: &TestRuntime, agent: &str, body: Value) -> String {
    let (status, run, location) = start(rt, agent, body, &[]).await;
    assert_eq!(status, 202, "{run}");
    let id = run["run_id"].as_str().unwrap().to_string();
    assert_eq!(location.as_deref(), Some(format!("/runs/{id}").as_str()));
    id
}

/// `GET {path}` with extra headers.
pub(crate) async fn get_with(
    rt: &TestRuntime,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut request = rt.client.get(rt.url(path));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Polls `GET /runs/{id}` until `done(run)` holds; the run then.
pub(crate) async fn wait_run(rt: &TestRuntime, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, run) = rt.get(&format!("/runs/{id}")).await;
        assert_eq!(status, 200, "{run}");
        if done(&run) {
            return run;
        }
        assert!(Instant::now() < deadline, "run never got there: {run}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for the run to reach a terminal status; the run.
pub(crate) async fn wait_end(rt: &TestRuntime, id: &str) -> Value {
    wait_run(rt, id, |run| {
        !matches!(run["status"].as_str(), Some("queued" | "running"))
    })
    .await
}

/// Every event after `last` (`None`: no `Last-Event-ID`), read to the end of the stream.
pub(crate) async fn events_after(rt: &TestRuntime, id: &str, last: Option<i64>) -> Vec<Event> {
    let mut request = rt.client.get(rt.url(&format!("/runs/{id}/events")));
    if let Some(last) = last {
        request = request.header("last-event-id", last.to_string());
    }
    let r = request.send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let text = tokio::time::timeout(Duration::from_secs(60), r.text())
        .await
        .expect("the event stream ended")
        .unwrap();
    parse_events(&text)
}

/// Reads the live stream until `count` events arrived, then drops the connection.
pub(crate) async fn first_events(rt: &TestRuntime, id: &str, count: usize) -> Vec<Event> {
    let mut r = rt
        .client
        .get(rt.url(&format!("/runs/{id}/events")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let events = parse_events(&text[..text.rfind("\n\n").map_or(0, |i| i + 2)]);
        if events.len() >= count {
            return events[..count].to_vec();
        }
        assert!(
            Instant::now() < deadline,
            "only {} events: {text}",
            events.len()
        );
        let chunk = tokio::time::timeout(Duration::from_secs(30), r.chunk())
            .await
            .expect("an event arrived")
            .unwrap()
            .expect("the stream is still open");
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

/// `POST /runs/{id}/cancel` with extra headers.
pub(crate) async fn cancel(rt: &TestRuntime, id: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = rt.client.post(rt.url(&format!("/runs/{id}/cancel")));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}
