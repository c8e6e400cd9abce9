//! Durable runs across restarts (stopped and killed runtimes), and who may see a run.

use std::path::Path;

use serde_json::json;

use crate::harness::TestRuntime;
use crate::run_client::{cancel, events_after, first_events, get_with, start, start_ok, wait_end};

async fn with_store(db: &Path, fixtures: &[&str]) -> TestRuntime {
    // The ledger beside the run store, so usage outlives the runtime too.
    let ledger = db.with_file_name("usage.sqlite3");
    let mut builder = TestRuntime::builder().usage_db(&ledger).args(&[
        "--runs-db",
        db.to_str().unwrap(),
        "--shutdown-grace",
        "6",
    ]);
    for f in fixtures {
        builder = builder.fixture(f);
    }
    builder.start().await
}

/// Starts a long streamed run and waits until it is running (an event arrived).
async fn long_run(rt: &TestRuntime) -> String {
    let id = start_ok(rt, "kit-stream", json!({"n": 1000, "gap": 0.2})).await;
    first_events(rt, &id, 1).await;
    id
}

#[tokio::test]
async fn finished_runs_survive_a_stop_and_runs_in_flight_become_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("runs.sqlite3");
    let mut rt = with_store(&db, &["kit-stream"]).await;
    let done = start_ok(&rt, "kit-stream", json!({"n": 2})).await;
    let before = wait_end(&rt, &done).await;
    assert_eq!(before["status"], "succeeded");
    let done_events = events_after(&rt, &done, None).await;
    let cut = long_run(&rt).await;
    // A run that ends within the shutdown grace is let finish, as calls in flight are.
    let short = start_ok(&rt, "kit-stream", json!({"n": 8, "gap": 0.25})).await;
    first_events(&rt, &short, 1).await;
    assert!(rt.terminate().success());

    let rt = with_store(&db, &["kit-stream"]).await;
    let (status, after) = rt.get(&format!("/runs/{done}")).await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after, before);
    assert_eq!(events_after(&rt, &done, None).await, done_events);
    let run = wait_end(&rt, &cut).await;
    assert_eq!(run["status"], "interrupted", "{run}");
    assert_eq!(run["error"]["code"], "interrupted");
    let events = events_after(&rt, &cut, None).await;
    let last = events.last().unwrap();
    assert_eq!(last.kind, "error");
    assert_eq!(last.data["code"], "interrupted");
    // Resuming after the last item still gets the end.
    let resumed = events_after(&rt, &cut, Some(last.id - 1)).await;
    assert_eq!(resumed, vec![last.clone()]);
    assert_eq!(cancel(&rt, &cut, &[]).await.0, 409);
    let finished = wait_end(&rt, &short).await;
    assert_eq!(finished["status"], "succeeded", "{finished}");
    assert_eq!(finished["result"].as_array().map(Vec::len), Some(8));
    // Metered as what happened: the finished run ok, the cut one interrupted (not cancelled).
    let (status, usage) = rt.get("/runtime/usage?agent=kit-stream&limit=100").await;
    assert_eq!(status, 200, "{usage}");
    let outcomes: Vec<&str> = usage["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["outcome"].as_str())
        .collect();
    assert_eq!(
        outcomes.iter().filter(|o| **o == "interrupted").count(),
        1,
        "{usage}"
    );
    assert_eq!(
        outcomes.iter().filter(|o| **o == "ok").count(),
        2,
        "{usage}"
    );
    assert!(!outcomes.contains(&"cancelled"), "{usage}");
}

#[tokio::test]
async fn a_killed_runtime_leaves_its_runs_interrupted_on_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("runs.sqlite3");
    let mut rt = with_store(&db, &["kit-stream"]).await;
    let cut = long_run(&rt).await;
    rt.kill();
    let rt = with_store(&db, &["kit-stream"]).await;
    let run = wait_end(&rt, &cut).await;
    assert_eq!(run["status"], "interrupted", "{run}");
    let (status, list) = rt.get("/runs?status=interrupted").await;
    assert_eq!(status, 200);
    assert_eq!(list["runs"][0]["run_id"], cut.as_str());
}

const POLICY: &str = r#"
[[grant]]
role = "analyst"
invoke = ["kit-minimal", "mini-upper"]

[[grant]]
role = "ops"
admin = true
"#;

fn key_entry(name: &str, secret: &str, role: &str) -> String {
    let digest = crate::auth::sha256_hex(secret);
    format!("[[key]]\nname = \"{name}\"\nsha256 = \"{digest}\"\nroles = [\"{role}\"]\n")
}

#[tokio::test]
async fn only_the_creator_or_an_admin_sees_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let keys = dir.path().join("keys.toml");
    let entries = [
        key_entry("alice", "alice-key-1", "analyst"),
        key_entry("bob", "bob-key-1", "analyst"),
        key_entry("root", "root-key-1", "ops"),
    ];
    std::fs::write(&keys, entries.concat()).unwrap();
    let rt = TestRuntime::builder()
        .fixture("kit-minimal")
        .args(&["--auth", "api-key", "--api-keys", keys.to_str().unwrap()])
        .args(&["--policy", policy.to_str().unwrap()])
        .start()
        .await;
    let alice = [("x-api-key", "alice-key-1")];
    let bob = [("x-api-key", "bob-key-1")];
    let root = [("x-api-key", "root-key-1")];

    // As for invoke: 401 without credentials, 404 for private, 403 without the role.
    assert_eq!(start(&rt, "kit-minimal", json!({}), &[]).await.0, 401);
    assert_eq!(start(&rt, "mini-secret", json!({}), &alice).await.0, 404);
    assert_eq!(start(&rt, "mini-ops", json!({}), &alice).await.0, 403);
    let (status, run, _) = start(&rt, "kit-minimal", json!({"n": 1}), &alice).await;
    assert_eq!(status, 202, "{run}");
    let id = run["run_id"].as_str().unwrap();
    let path = format!("/runs/{id}");
    let (status, seen) = get_with(&rt, &path, &alice).await;
    assert_eq!(status, 200, "{seen}");
    for (who, want) in [(&bob, 404), (&root, 200)] {
        assert_eq!(get_with(&rt, &path, who).await.0, want);
        assert_eq!(get_with(&rt, &format!("{path}/events"), who).await.0, want);
    }
    assert_eq!(get_with(&rt, &path, &[]).await.0, 401);
    assert_eq!(cancel(&rt, id, &bob).await.0, 404);
    // An idempotency key is per caller: Bob's same key is a run of his own.
    let key = ("idempotency-key", "same");
    let (_, a, _) = start(&rt, "kit-minimal", json!({}), &[alice[0], key]).await;
    let (_, b, _) = start(&rt, "kit-minimal", json!({}), &[bob[0], key]).await;
    assert_ne!(a["run_id"], b["run_id"]);
    let count = |list: serde_json::Value| list["runs"].as_array().unwrap().len();
    assert_eq!(count(get_with(&rt, "/runs", &alice).await.1), 2);
    assert_eq!(count(get_with(&rt, "/runs", &bob).await.1), 1);
    assert_eq!(count(get_with(&rt, "/runs", &root).await.1), 3);
}
