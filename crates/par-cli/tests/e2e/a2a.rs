//! A2A through the official SDK client (a2a-sdk 1.3.0) in protocol 1.0 and 0.3: card
//! resolution, send, stream, get, cancel; plus the spec's error codes for bad input.

use serde_json::{json, Value};

use std::time::Duration;

use crate::harness::{wait_until, TestRuntime};
use crate::protocol_clients;

async fn runtime() -> TestRuntime {
    TestRuntime::builder()
        .fixture("kit-minimal")
        .fixture("kit-stream")
        .start()
        .await
}

async fn client(rt: &TestRuntime, agent: &str, version: &str, mode: &str, payload: Value) -> Value {
    let url = rt.url(&format!("/a2a/{agent}"));
    protocol_clients::run(
        "a2a_client.py",
        &[&url, version, mode, &payload.to_string()],
    )
    .await
}

fn artifact_data(task: &Value) -> &Value {
    &task["artifacts"][0]["parts"][0]["data"]
}

#[tokio::test]
async fn the_sdk_client_sends_streams_gets_and_cancels_in_both_versions() {
    let rt = runtime().await;
    for version in ["1.0", "0.3"] {
        let sent = client(&rt, "mini-upper", version, "send", json!({"text": "abc"})).await;
        assert_eq!(sent["card"]["name"], "mini-upper", "{sent}");
        assert_eq!(sent["card"]["capabilities"]["streaming"], true);
        assert_eq!(
            sent["task"]["status"]["state"], "TASK_STATE_COMPLETED",
            "{version}: {sent}"
        );
        assert_eq!(
            artifact_data(&sent["task"])["upper"],
            "ABC",
            "{version}: {sent}"
        );
        // Text-only messages arrive as {"text": ...}.
        let text = client(&rt, "mini-upper", version, "send", json!("hello")).await;
        assert_eq!(
            artifact_data(&text["task"])["upper"],
            "HELLO",
            "{version}: {text}"
        );

        let streamed = client(&rt, "kit-stream", version, "stream", json!({"n": 3})).await;
        let events = streamed["events"].as_array().unwrap();
        let items: Vec<&Value> = events
            .iter()
            .filter_map(|e| e.get("artifactUpdate"))
            .map(|u| &u["artifact"]["parts"][0]["data"])
            .collect();
        // ProtoJSON numbers are doubles: the SDK hands back 0.0 for 0.
        assert_eq!(
            items,
            [&json!({"i": 0.0}), &json!({"i": 1.0}), &json!({"i": 2.0})],
            "{version}: {streamed}"
        );
        let last = events.last().unwrap();
        assert_eq!(
            last["statusUpdate"]["status"]["state"], "TASK_STATE_COMPLETED",
            "{streamed}"
        );
        assert_eq!(streamed["task"]["status"]["state"], "TASK_STATE_COMPLETED");
        // The task is a durable run with the same id.
        let task_id = streamed["task"]["id"].as_str().unwrap();
        let (status, run) = rt.get(&format!("/runs/{task_id}")).await;
        assert_eq!(status, 200, "{run}");
        assert_eq!(run["result"], json!([{"i": 0}, {"i": 1}, {"i": 2}]));

        let cancelled = client(
            &rt,
            "kit-stream",
            version,
            "cancel",
            json!({"n": 1000, "gap": 0.1}),
        )
        .await;
        assert_eq!(
            cancelled["task"]["status"]["state"], "TASK_STATE_CANCELED",
            "{version}: {cancelled}"
        );
    }
}

fn rpc(method: &str, params: Value) -> String {
    json!({"jsonrpc": "2.0", "id": 3, "method": method, "params": params}).to_string()
}

async fn post(rt: &TestRuntime, path: &str, version: Option<&str>, body: String) -> (u16, Value) {
    let mut request = rt
        .client
        .post(rt.url(path))
        .header("content-type", "application/json")
        .body(body);
    if let Some(version) = version {
        request = request.header("a2a-version", version);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The handler's view of a file part: kit-minimal reads every listed file's head back.
fn handler_files(task: &Value) -> &Vec<Value> {
    artifact_data(task)["files"]
        .as_array()
        .unwrap_or_else(|| panic!("no files in {task}"))
}

#[tokio::test]
async fn file_parts_reach_the_handler_as_files_in_both_versions() {
    let rt = runtime().await;
    let mut uploads_root = None;
    for version in ["1.0", "0.3"] {
        let file =
            json!({"filename": "notes.txt", "media_type": "text/plain", "content": "file body"});
        let sent = client(&rt, "kit-minimal", version, "file", file).await;
        assert_eq!(
            sent["task"]["status"]["state"], "TASK_STATE_COMPLETED",
            "{version}: {sent}"
        );
        let files = handler_files(&sent["task"]);
        assert_eq!(files.len(), 1, "{version}: {sent}");
        assert_eq!(files[0]["head"], "file body", "{version}: {sent}");
        assert_eq!(files[0]["filename"], "notes.txt");
        assert_eq!(files[0]["content_type"], "text/plain");
        // Protobuf Struct numbers come back as doubles through the SDK.
        assert_eq!(files[0]["size"].as_f64(), Some(9.0), "{sent}");
        // The data part travels beside the file, as form fields do in multipart.
        assert_eq!(
            artifact_data(&sent["task"])["fields"]["note"],
            "with a file"
        );
        // The file is gone once the run has ended (the run's record held its folder).
        let path = std::path::PathBuf::from(files[0]["path"].as_str().unwrap());
        uploads_root = path
            .parent()
            .and_then(|run| run.parent())
            .map(|p| p.to_path_buf());
        wait_until("the A2A upload is removed", Duration::from_secs(10), || {
            let gone = !path.exists();
            async move { gone.then_some(()) }
        })
        .await;
    }
    // A hostile file name cannot place the file outside its run's upload folder.
    let body = rpc(
        "message/send",
        json!({"message": {"role": "user", "messageId": "h", "parts": [
            {"kind": "data", "data": {"note": "hostile"}},
            {"kind": "file", "file": {"bytes": "aG9zdGlsZQ==", "name": "../../../escape.txt"}}
        ]}}),
    );
    let (status, answer) = post(&rt, "/a2a/kit-minimal", None, body).await;
    assert_eq!(status, 200, "{answer}");
    let file = &answer["result"]["artifacts"][0]["parts"][0]["data"]["files"][0];
    assert_eq!(file["head"], "hostile", "{answer}");
    let path = std::path::Path::new(file["path"].as_str().unwrap());
    assert!(
        path.components()
            .all(|c| c != std::path::Component::ParentDir),
        "{answer}"
    );
    let root = uploads_root.expect("the uploads folder of the first run");
    assert!(
        path.starts_with(&root),
        "{} is outside {}",
        path.display(),
        root.display()
    );
    // A file given by URL is listed, never fetched by the runtime.
    let body = rpc(
        "message/send",
        json!({"message": {"role": "user", "messageId": "m", "parts": [
            {"kind": "data", "data": {"print": "x"}},
            {"kind": "file", "file": {"uri": "http://127.0.0.1:1/secret", "name": "r.bin"}}
        ]}}),
    );
    let (_, answer) = post(&rt, "/a2a/kit-minimal", None, body).await;
    assert_eq!(answer["result"]["status"]["state"], "failed", "{answer}");
    let failure = answer["result"]["status"]["message"]["parts"][0]["text"].to_string();
    assert!(
        failure.contains("'path'"),
        "the handler saw no path: {answer}"
    );
    // Inline files count against --max-upload-bytes.
    let limited = TestRuntime::builder()
        .fixture("kit-minimal")
        .args(&["--max-upload-bytes", "4"])
        .start()
        .await;
    let body = rpc(
        "message/send",
        json!({"message": {"role": "user", "messageId": "m", "parts": [
            {"kind": "file", "file": {"bytes": "aGVsbG8gd29ybGQ=", "name": "big.txt"}}
        ]}}),
    );
    let (_, answer) = post(&limited, "/a2a/kit-minimal", None, body).await;
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    assert!(
        answer["error"]["message"].to_string().contains("too_large"),
        "{answer}"
    );
}

#[tokio::test]
async fn bad_input_gets_the_specs_error_codes() {
    let rt = TestRuntime::builder()
        .fixture("kit-minimal")
        .args(&["--max-body-bytes", "4096"])
        .start()
        .await;
    let message = json!({"message": {"role": "ROLE_USER", "messageId": "m", "parts": [{"data": {"text": "x"}}]}});
    let too_big = rpc(
        "SendMessage",
        json!({"message": {"parts": [{"text": "a".repeat(8192)}]}}),
    );
    let cases: Vec<(Option<&str>, String, i64)> = vec![
        (None, "{oops".into(), -32700),
        (None, "[]".into(), -32600),
        (Some("1.0"), too_big, -32600),
        (Some("1.0"), rpc("NoSuchMethod", json!({})), -32601),
        (None, rpc("SendMessage", message.clone()), -32601),
        (Some("1.0"), rpc("message/send", message.clone()), -32601),
        (
            Some("1.0"),
            rpc("GetTask", json!({"id": "no-such-task"})),
            -32001,
        ),
        (
            Some("1.0"),
            rpc("CancelTask", json!({"id": "no-such-task"})),
            -32001,
        ),
        (
            None,
            rpc("tasks/get", json!({"id": "no-such-task"})),
            -32001,
        ),
        (Some("1.0"), rpc("GetTask", json!({})), -32602),
        (Some("1.0"), rpc("SendMessage", json!({})), -32602),
        (
            Some("1.0"),
            rpc("SendMessage", json!({"message": {"parts": []}})),
            -32602,
        ),
        (
            Some("1.0"),
            rpc(
                "SendMessage",
                json!({"message": {"parts": [{"raw": "not base64!"}]}}),
            ),
            -32602,
        ),
        (
            None,
            rpc(
                "message/send",
                json!({"message": {"parts": [{"kind": "file", "file": {"name": "x"}}]}}),
            ),
            -32602,
        ),
        (
            Some("1.0"),
            rpc("CreateTaskPushNotificationConfig", json!({})),
            -32003,
        ),
        (Some("1.0"), rpc("GetExtendedAgentCard", json!({})), -32007),
        (Some("9.9"), rpc("GetTask", json!({"id": "x"})), -32009),
    ];
    for (version, body, want) in cases {
        let shown = body[..body.len().min(80)].to_string();
        let (_, answer) = post(&rt, "/a2a/kit-minimal", version, body).await;
        assert_eq!(
            answer["error"]["code"], want,
            "{version:?} {shown}: {answer}"
        );
    }
    // A finished task cannot be cancelled or subscribed to.
    let (_, sent) = post(
        &rt,
        "/a2a/mini-upper",
        Some("1.0"),
        rpc("SendMessage", message),
    )
    .await;
    let id = sent["result"]["task"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        sent["result"]["task"]["status"]["state"], "TASK_STATE_COMPLETED",
        "{sent}"
    );
    let (_, answer) = post(
        &rt,
        "/a2a/mini-upper",
        Some("1.0"),
        rpc("CancelTask", json!({"id": id})),
    )
    .await;
    assert_eq!(answer["error"]["code"], -32002, "{answer}");
    let (_, answer) = post(
        &rt,
        "/a2a/mini-upper",
        Some("1.0"),
        rpc("SubscribeToTask", json!({"id": id})),
    )
    .await;
    assert_eq!(answer["error"]["code"], -32004, "{answer}");
    // Another agent's endpoint does not know this task.
    let (_, answer) = post(
        &rt,
        "/a2a/kit-minimal",
        Some("1.0"),
        rpc("GetTask", json!({"id": id})),
    )
    .await;
    assert_eq!(answer["error"]["code"], -32001, "{answer}");
    let (_, listed) = post(
        &rt,
        "/a2a/mini-upper",
        Some("1.0"),
        rpc("ListTasks", json!({})),
    )
    .await;
    assert_eq!(listed["result"]["tasks"][0]["id"], id.as_str(), "{listed}");
    // Private sub-agents have no card and no endpoint.
    for path in [
        "/a2a/mini-secret/.well-known/agent-card.json",
        "/a2a/nobody/.well-known/agent-card.json",
    ] {
        let (status, body) = rt.get(path).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (404, Some("agent_not_found")),
            "{path}"
        );
    }
    let (status, _) = post(
        &rt,
        "/a2a/mini-secret",
        Some("1.0"),
        rpc("GetTask", json!({"id": "x"})),
    )
    .await;
    assert_eq!(status, 404);
}
