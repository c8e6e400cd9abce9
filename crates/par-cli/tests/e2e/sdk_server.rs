//! A package built on pixell-sdk's `AgentServer`, served through PAR and driven by the
//! SDK's own `A2AClient` (discovery, agent card, `message/stream` events as they happen).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{workspace_root, TestRuntime};

/// The pixell-sdk 0.5.4 environment that `scripts/build-fixtures.py` built.
fn sdk_python() -> PathBuf {
    let tools = std::env::var("PAR_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join(".par-tools"));
    let python = tools.join("kits/pixell-sdk-0.5.4/bin/python");
    assert!(
        python.exists(),
        "no pixell-sdk environment at {}: run scripts/test.sh",
        python.display()
    );
    python
}

#[tokio::test]
async fn the_sdks_a2a_client_streams_agent_server_events_through_par() {
    let rt = TestRuntime::builder().fixture("sdk-server").start().await;
    let script = workspace_root().join("crates/par-cli/tests/e2e/clients/a2a_stream.py");
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(sdk_python())
            .arg(&script)
            .args([&rt.url(""), "sdk-server", "hello through par"])
            .output(),
    )
    .await
    .expect("the client finished")
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["card"], "SDK AgentServer fixture", "{stdout}");
    assert_eq!(lines[0]["url"], rt.url("/agents/sdk-server"));

    let events = &lines[1..];
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "status-update",
            "status-update",
            "status-update",
            "status-update",
            "complete"
        ],
        "{stdout}"
    );
    let percents: Vec<&Value> = events[1..4].iter().map(|e| &e["percent"]).collect();
    assert_eq!(percents, [&json!(33.0), &json!(66.0), &json!(99.0)]);
    let last = events.last().unwrap();
    assert_eq!(
        last["data"],
        json!({"steps": 3, "text": "hello through par"})
    );
    let session = &events[0]["session"];
    assert!(events.iter().all(|e| &e["session"] == session));
    // The handler emits 300 ms apart: events buffered by the proxy would arrive together.
    let first = events[0]["at"].as_f64().unwrap();
    let done = last["at"].as_f64().unwrap();
    assert!(
        done - first > 0.6,
        "events arrived together ({first} s, {done} s): {stdout}"
    );
}
