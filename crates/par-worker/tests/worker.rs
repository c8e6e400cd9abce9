//! Drives the real Python worker program with small handler modules.

use std::path::Path;
use std::time::Duration;

use par_worker::protocol::CallRequest;
use par_worker::{script, Reply, Worker, WorkerError, WorkerSpec};

/// A call of the handler with `payload` (JSON) and no request metadata.
fn request(payload: &str) -> CallRequest<'_> {
    CallRequest {
        request_id: "test",
        traceparent: "",
        payload: payload.as_bytes(),
    }
}

fn spec(root: &Path, entry: &str) -> WorkerSpec {
    WorkerSpec {
        program: par_worker::child::Program {
            label: "test@0".into(),
            python: "python3".into(),
            script: script::materialize(&root.join(".worker")).unwrap(),
            package_root: root.to_path_buf(),
            env: vec![("PATH".into(), std::env::var("PATH").unwrap_or_default())],
            cwd: root.to_path_buf(),
            startup_timeout: Duration::from_secs(20),
            jail: None,
            log_budget: par_worker::log_budget::LogBudget::unlimited("test@0"),
        },
        entrypoint: entry.into(),
        max_frame: 1 << 20,
        threads: 4,
    }
}

fn package(code: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("agentmod.py"), code).unwrap();
    dir
}

async fn call_once(worker: &Worker, body: &str) -> Reply {
    let mut call = worker.call(request(body)).await.unwrap();
    call.next().await
}

const CODE: &str = r#"
import asyncio, os
def sync_handler(ctx):
    if ctx.get("die"):
        os._exit(9)
    if ctx.get("raise"):
        raise ValueError(ctx["raise"])
    return {"echo": ctx, "none": ctx.get("n") is None, "true": ctx.get("t") is True}
async def async_handler(ctx):
    await asyncio.sleep(float(ctx.get("sleep", 0)))
    return {"async": True}
async def stream_handler(ctx):
    for i in range(int(ctx.get("n", 3))):
        yield {"i": i}
        await asyncio.sleep(float(ctx.get("gap", 0)))
"#;

#[tokio::test]
async fn sync_handler_round_trips_json_literals() {
    let dir = package(CODE);
    let worker = Worker::spawn(&spec(dir.path(), "agentmod:sync_handler"))
        .await
        .unwrap();
    assert_eq!(worker.info().kind, "sync");
    let Reply::Result(bytes) = call_once(&worker, r#"{"n":null,"t":true}"#).await else {
        panic!("expected a result")
    };
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(value["none"], true);
    assert_eq!(value["true"], true);
    assert_eq!(value["echo"]["t"], true);
}

#[tokio::test]
async fn handler_exception_is_reported_with_type() {
    let dir = package(CODE);
    let worker = Worker::spawn(&spec(dir.path(), "agentmod:sync_handler"))
        .await
        .unwrap();
    let Reply::Error(failure) = call_once(&worker, r#"{"raise":"nope"}"#).await else {
        panic!("expected an error")
    };
    assert_eq!(failure.kind, "ValueError");
    assert_eq!(failure.message, "nope");
}

#[tokio::test]
async fn many_concurrent_async_calls_share_one_worker() {
    let dir = package(CODE);
    let worker = Worker::spawn(&spec(dir.path(), "agentmod:async_handler"))
        .await
        .unwrap();
    assert_eq!(worker.info().kind, "async");
    let started = std::time::Instant::now();
    let mut calls = Vec::new();
    for _ in 0..50 {
        calls.push(worker.call(request(r#"{"sleep":0.5}"#)).await.unwrap());
    }
    for call in calls.iter_mut() {
        let reply = call.next().await;
        assert!(matches!(reply, Reply::Result(_)), "{reply:?}");
    }
    // 50 sequential calls would take 25 s; concurrency makes it about one sleep.
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn async_generator_streams_items_then_end() {
    let dir = package(CODE);
    let worker = Worker::spawn(&spec(dir.path(), "agentmod:stream_handler"))
        .await
        .unwrap();
    let mut call = worker.call(request(r#"{"n":3}"#)).await.unwrap();
    for i in 0..3 {
        let Reply::Item(item) = call.next().await else {
            panic!("expected item {i}")
        };
        assert_eq!(&item[..], format!("{{\"i\":{i}}}").as_bytes());
    }
    assert!(matches!(call.next().await, Reply::End));
}

#[tokio::test]
async fn dead_worker_fails_calls_in_flight_and_new_calls() {
    let dir = package(CODE);
    let worker = Worker::spawn(&spec(dir.path(), "agentmod:sync_handler"))
        .await
        .unwrap();
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        call_once(&worker, r#"{"die":true}"#),
    )
    .await
    .expect("a dead worker must not hang the call");
    assert!(matches!(reply, Reply::Crashed));
    assert!(!worker.is_alive());
    assert!(matches!(
        worker.call(request("{}")).await,
        Err(WorkerError::Gone)
    ));
}

#[tokio::test]
async fn missing_module_is_an_entrypoint_error() {
    let dir = package(CODE);
    let err = Worker::spawn(&spec(dir.path(), "nothere:handler"))
        .await
        .err()
        .unwrap();
    let text = err.to_string();
    assert!(text.contains("ModuleNotFoundError"), "{text}");
    assert!(text.contains("nothere"), "{text}");
}

#[tokio::test]
async fn stop_ends_the_process() {
    let dir = package(CODE);
    let worker = Worker::spawn(&spec(dir.path(), "agentmod:sync_handler"))
        .await
        .unwrap();
    let pid = worker.info().pid;
    worker.stop(Duration::from_secs(5)).await;
    assert!(!Path::new(&format!("/proc/{pid}")).exists() || zombie_free(pid));
}

fn zombie_free(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_err()
}
