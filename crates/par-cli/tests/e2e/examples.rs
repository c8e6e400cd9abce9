//! The bundled examples, served as `scripts/serve-examples.sh` serves them, answer what
//! the README's quick tour shows.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{workspace_root, TestRuntime};

fn examples_dir() -> PathBuf {
    let dir = workspace_root().join("target/examples");
    assert!(
        dir.join("countdown.apkg").is_file(),
        "examples not built: run scripts/test.sh (it runs scripts/build-fixtures.py)"
    );
    dir
}

async fn examples() -> TestRuntime {
    TestRuntime::builder().source(examples_dir()).start().await
}

#[tokio::test]
async fn the_tours_calls_answer_as_documented() {
    let rt = examples().await;
    let (_, listed) = rt.get("/agents").await;
    let mut ids: Vec<&str> = listed["agents"]
        .as_array()
        .unwrap_or_else(|| panic!("{listed}"))
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        ["countdown", "echo", "echo-upper", "greeter", "word-stats"]
    );

    let (_, echo) = rt.invoke("echo", json!({"hello": "world"})).await;
    assert_eq!(echo["data"]["echo"], json!({"hello": "world"}));
    let (_, upper) = rt.invoke("echo-upper", json!({"text": "shout"})).await;
    assert_eq!(upper["data"]["text"], "SHOUT");
    let (_, greeting) = rt.invoke("greeter", json!({"name": "Ada"})).await;
    assert_eq!(greeting["data"]["message"], "Hello, Ada!", "{greeting}");
    let (_, stats) = rt
        .invoke("word-stats", json!({"text": "to be or not to be"}))
        .await;
    assert_eq!(stats["data"]["words"], 6);

    let (status, rest) = rt
        .get("/agents/word-stats/api/stats?text=to+be+or+not+to+be&top=1")
        .await;
    assert_eq!(status, 200, "{rest}");
    assert_eq!(rest["top"], json!([["to", 2]]));
}

#[tokio::test]
async fn countdown_streams_one_event_per_item_as_it_is_yielded() {
    let rt = examples().await;
    let started = Instant::now();
    let mut response = rt
        .client
        .post(rt.url("/agents/countdown/invoke"))
        .header("accept", "text/event-stream")
        .body(json!({"from": 3, "gap": 0.4}).to_string())
        .send()
        .await
        .unwrap();
    let mut text = String::new();
    let mut first_at = None;
    while let Some(chunk) = response.chunk().await.unwrap() {
        text.push_str(&String::from_utf8_lossy(&chunk));
        first_at = first_at.or_else(|| text.contains("data: {\"n\":3}").then(|| started.elapsed()));
    }
    let items: Vec<Value> = text
        .split("\n\n")
        .filter(|event| !event.starts_with("event:") && event.starts_with("data: "))
        .map(|event| serde_json::from_str(&event["data: ".len()..]).unwrap())
        .collect();
    assert_eq!(
        items,
        [
            json!({"n": 3}),
            json!({"n": 2}),
            json!({"n": 1}),
            json!({"n": 0, "label": "liftoff", "label_words": 1}),
        ],
        "{text}"
    );
    assert!(text.ends_with("event: done\ndata: {}\n\n"), "{text}");
    let total = started.elapsed();
    let first = first_at.expect("the first item arrived");
    assert!(
        total - first > Duration::from_millis(800),
        "the first event came {first:?} into a {total:?} stream: it was held back"
    );
    let usage = rt.usage_when("?agent=countdown", 1).await;
    assert_eq!(usage["records"][0]["reported"]["ticks"], 3, "{usage}");
    let nested = rt.usage_when("?agent=word-stats", 1).await;
    assert_eq!(
        nested["records"][0]["caller_agent"], "countdown",
        "{nested}"
    );
}

/// The README's first command serves `target/examples`: each example is there once, and
/// the first start's log is a success story (no duplicates, warnings or errors), ending
/// with the line saying where the agents are served.
#[tokio::test]
async fn serving_the_examples_logs_no_duplicates_or_warnings() {
    let packages: Vec<String> = std::fs::read_dir(examples_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".apkg"))
        .collect();
    assert_eq!(packages.len(), 4, "each example once: {packages:?}");

    let rt = examples().await;
    let serving = wait_for_log_line(&rt, "serving").await;
    assert_eq!(serving["agents"], 5, "{serving}");
    assert_eq!(serving["url"], rt.base.as_str(), "{serving}");
    let logs = rt.logs();
    for line in logs.lines() {
        let entry: Value = serde_json::from_str(line).unwrap_or_else(|_| json!({"raw": line}));
        let level = entry["level"].as_str().unwrap_or("none");
        assert!(
            level == "INFO" || level == "DEBUG",
            "a first start should log no {level} line: {line}\n{logs}"
        );
        assert!(!line.contains("duplicate"), "{line}");
    }
}

async fn wait_for_log_line(rt: &TestRuntime, message: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = rt
            .logs()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .find(|entry| entry["message"] == message);
        if let Some(entry) = found {
            return entry;
        }
        assert!(
            Instant::now() < deadline,
            "no '{message}' line:\n{}",
            rt.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
