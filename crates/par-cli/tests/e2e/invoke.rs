//! Invoking main agents and sub-agents, and the error table.

use serde_json::json;

use crate::harness::TestRuntime;

#[tokio::test]
async fn main_agent_gets_body_unchanged_with_json_literals() {
    let rt = TestRuntime::builder().fixture("kit-minimal").start().await;
    let (status, body) = rt
        .invoke(
            "kit-minimal",
            json!({"t": true, "n": null, "x": 1.5, "s": "é"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "success");
    assert_eq!(body["error"], serde_json::Value::Null);
    assert_eq!(
        body["data"]["echo"],
        json!({"t": true, "n": null, "x": 1.5, "s": "é"})
    );
    assert_eq!(body["data"]["types"]["t"], "bool");
    assert_eq!(body["data"]["types"]["n"], "NoneType");
    assert!(
        body["data"]["echo"].get("action").is_none(),
        "main agent must not get an action"
    );
}

#[tokio::test]
async fn public_sub_agent_gets_action_and_private_is_hidden() {
    let rt = TestRuntime::builder().fixture("kit-minimal").start().await;
    let (status, body) = rt.invoke("mini-upper", json!({"text": "abc"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"],
        json!({"action": "mini-upper", "upper": "ABC"})
    );
    let (status, body) = rt.invoke("mini-secret", json!({})).await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "agent_not_found");
    let (status, _) = rt.get("/agents/mini-secret").await;
    assert_eq!(status, 404);
    let (_, list) = rt.get("/agents").await;
    let ids: Vec<&str> = list["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"kit-minimal") && ids.contains(&"mini-upper"),
        "{ids:?}"
    );
    assert!(!ids.contains(&"mini-secret"), "{ids:?}");
}

#[tokio::test]
async fn agent_listing_has_contract_fields() {
    let rt = TestRuntime::builder().fixture("kit-minimal").start().await;
    let (status, agent) = rt.get("/agents/kit-minimal").await;
    assert_eq!(status, 200);
    for field in [
        "id",
        "package",
        "version",
        "description",
        "capabilities",
        "surfaces",
        "public",
    ] {
        assert!(agent.get(field).is_some(), "missing {field}: {agent}");
    }
    assert_eq!(agent["version"], "1.0.0");
    assert_eq!(agent["package"], "kit-minimal");
    assert_eq!(agent["surfaces"], json!(["invoke"]));
    let (status, sub) = rt.get("/agents/mini-upper").await;
    assert_eq!(status, 200);
    assert_eq!(sub["package"], "kit-minimal");
}

#[tokio::test]
async fn error_table_for_bad_calls() {
    let rt = TestRuntime::builder()
        .fixture("kit-minimal")
        .arg("--max-body-bytes")
        .arg("1000")
        .start()
        .await;
    let cases = [
        (
            "/agents/nobody/invoke",
            "{}".to_string(),
            404,
            "agent_not_found",
        ),
        (
            "/agents/kit-minimal/invoke",
            "[1,2]".to_string(),
            400,
            "bad_request",
        ),
        (
            "/agents/kit-minimal/invoke",
            "{not json".to_string(),
            400,
            "bad_request",
        ),
        (
            "/agents/kit-minimal/invoke",
            format!("{{\"a\":\"{}\"}}", "x".repeat(2000)),
            413,
            "too_large",
        ),
        (
            "/agents/kit-minimal/invoke",
            r#"{"raise":"bad thing"}"#.to_string(),
            500,
            "agent_error",
        ),
    ];
    for (path, body, status, code) in cases {
        let (got, err) = rt.post_raw(path, body).await;
        assert_eq!(got, status, "{path}: {err}");
        assert_eq!(err["code"], code, "{err}");
        assert_eq!(err["status"], "error");
        assert!(
            err["request_id"].as_str().is_some_and(|s| !s.is_empty()),
            "{err}"
        );
        assert!(
            err["error"].as_str().is_some_and(|s| !s.is_empty()),
            "{err}"
        );
    }
    let (_, err) = rt
        .invoke("kit-minimal", json!({"raise": "bad thing"}))
        .await;
    assert_eq!(err["error"], "ValueError: bad thing");
    assert!(!err.to_string().contains("Traceback"));
}

#[tokio::test]
async fn request_id_is_echoed_and_generated() {
    let rt = TestRuntime::builder().fixture("kit-minimal").start().await;
    let r = rt
        .client
        .post(rt.url("/agents/nobody/invoke"))
        .header("x-request-id", "req-42")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "req-42");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["request_id"], "req-42");
    let r = rt
        .client
        .get(rt.url("/runtime/health"))
        .send()
        .await
        .unwrap();
    assert!(!r.headers()["x-request-id"].is_empty());
}

#[tokio::test]
async fn async_handler_is_awaited_and_calls_run_concurrently() {
    let rt = TestRuntime::builder().fixture("kit-async").start().await;
    let started = std::time::Instant::now();
    let calls = (0..20).map(|_| rt.invoke("kit-async", json!({"sleep": 1.0})));
    let results = futures_util::future::join_all(calls).await;
    for (status, body) in &results {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(body["data"]["async"], true);
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "calls were serialised"
    );
    let (status, body) = rt.invoke("kit-async", json!({"fail": true})).await;
    assert_eq!(status, 500);
    assert_eq!(body["error"], "RuntimeError: async boom");
}

#[tokio::test]
async fn sync_handlers_run_concurrently_in_threads() {
    let rt = TestRuntime::builder().fixture("kit-minimal").start().await;
    let started = std::time::Instant::now();
    let calls = (0..8).map(|_| rt.invoke("kit-minimal", json!({"sleep": 1})));
    for (status, body) in futures_util::future::join_all(calls).await {
        assert_eq!(status, 200, "{body}");
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(6),
        "sync calls were serialised"
    );
}

#[tokio::test]
async fn call_timeout_gives_504() {
    let rt = TestRuntime::builder()
        .fixture("kit-async")
        .arg("--call-timeout")
        .arg("0.5")
        .start()
        .await;
    let (status, body) = rt.invoke("kit-async", json!({"sleep": 5})).await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["code"], "timeout");
}

#[tokio::test]
async fn streaming_accept_gives_events_then_done() {
    let rt = TestRuntime::builder().fixture("kit-minimal").start().await;
    let r = rt
        .client
        .post(rt.url("/agents/kit-minimal/invoke"))
        .header("accept", "text/event-stream")
        .body(r#"{"a":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let text = r.text().await.unwrap();
    let data_line = text.lines().find(|l| l.starts_with("data: ")).unwrap();
    let item: serde_json::Value = serde_json::from_str(&data_line[6..]).unwrap();
    assert_eq!(item["echo"]["a"], 1);
    assert!(text.contains("event: done"), "{text}");
}

#[tokio::test]
async fn input_schemas_reject_bad_input_before_python_runs() {
    let rt = TestRuntime::builder().fixture("kit-schema").start().await;
    let (status, body) = rt
        .invoke("kit-schema", json!({"text": "ab", "times": 2}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["text"], "abab");
    let (status, body) = rt.invoke("kit-schema", json!({"times": 99})).await;
    assert_eq!(status, 422, "{body}");
    // Python never saw it: the handler logs every call it runs (times=2 above, times=3
    // below), and lines are logged in order, so once times=3 is there times=99 never ran.
    assert_eq!(body["code"], "invalid_input");
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains("text") && message.contains("/times"),
        "each violation listed: {message}"
    );
    let (status, body) = rt
        .invoke("schema-count", json!({"numbers": [1, 2, 3]}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["count"], 3);
    let (status, body) = rt.invoke("schema-count", json!({"numbers": ["x"]})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("invalid_input")),
        "{body}"
    );
    let (status, body) = rt
        .invoke("kit-schema", json!({"text": "c", "times": 3}))
        .await;
    assert_eq!(
        (status, &body["data"]["text"]),
        (200, &json!("ccc")),
        "{body}"
    );
    let limit = std::time::Duration::from_secs(5);
    rt.wait_log(&["kit-schema handler ran: times=3"], limit)
        .await;
    let logs = rt.logs();
    let ran: Vec<&str> = logs.lines().filter(|l| l.contains("handler ran")).collect();
    assert_eq!(ran.len(), 3, "only the valid calls reached Python: {ran:?}");
    assert!(!logs.contains("times=99"), "{logs}");
}

#[tokio::test]
async fn multipart_uploads_reach_the_handler_as_files_and_are_removed_after() {
    let rt = TestRuntime::builder().fixture("kit-minimal").start().await;
    let form = reqwest::multipart::Form::new()
        .text("note", "hello")
        .part(
            "doc",
            reqwest::multipart::Part::bytes(b"first file body".to_vec())
                .file_name("../../a.txt")
                .mime_str("text/plain")
                .unwrap(),
        )
        .part(
            "doc",
            reqwest::multipart::Part::bytes(vec![b'z'; 100_000]).file_name("big.bin"),
        );
    let r = rt
        .client
        .post(rt.url("/agents/kit-minimal/invoke"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    let files = body["data"]["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{body}");
    assert_eq!(files[0]["field"], "doc");
    assert_eq!(files[0]["filename"], "../../a.txt");
    assert_eq!(files[0]["content_type"], "text/plain");
    assert_eq!(files[0]["head"], "first file body");
    assert_eq!(files[1]["size"], 100_000);
    assert_eq!(body["data"]["fields"]["note"], "hello");
    for f in files {
        let path = std::path::Path::new(f["path"].as_str().unwrap());
        assert!(!path.to_string_lossy().contains(".."), "{path:?}");
        assert!(!path.exists(), "upload {path:?} outlived the call");
    }
    let rt2 = TestRuntime::builder()
        .fixture("kit-minimal")
        .args(&["--max-upload-bytes", "1000"])
        .start()
        .await;
    let form = reqwest::multipart::Form::new().part(
        "doc",
        reqwest::multipart::Part::bytes(vec![0u8; 5000]).file_name("x"),
    );
    let r = rt2
        .client
        .post(rt2.url("/agents/kit-minimal/invoke"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    drop(rt);
}
