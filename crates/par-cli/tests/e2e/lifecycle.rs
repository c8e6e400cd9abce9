//! Lifecycle through the public surface: management API, hot swap under load,
//! supervision, limits, graceful shutdown, webhooks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{alive, fixture, wait_dead, wait_for_load, wait_until, TestRuntime};

async fn post_json(rt: &TestRuntime, path: &str, body: Value) -> (u16, Value) {
    rt.post_raw(path, body.to_string()).await
}

#[tokio::test]
async fn version_swap_under_continuous_load_drops_nothing() {
    let rt = Arc::new(TestRuntime::builder().fixture("kit-minimal").start().await);
    let old_pids = rt.package_report("kit-minimal.apkg").await["workers"].clone();
    let failures = Arc::new(AtomicUsize::new(0));
    let served = Arc::new(AtomicUsize::new(0));
    let served_v2 = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..16 {
        let (rt, failures, served, served_v2, stop) = (
            rt.clone(),
            failures.clone(),
            served.clone(),
            served_v2.clone(),
            stop.clone(),
        );
        clients.push(tokio::spawn(async move {
            let mut calls = 0;
            while !stop.load(Ordering::Relaxed) {
                let (status, body) = rt.invoke("kit-minimal", json!({"n": calls})).await;
                served.fetch_add(1, Ordering::Relaxed);
                if status != 200 {
                    failures.fetch_add(1, Ordering::Relaxed);
                    eprintln!("failed during swap: {status} {body}");
                } else if body["data"]["version"] == 2 {
                    served_v2.fetch_add(1, Ordering::Relaxed);
                }
                calls += 1;
            }
            calls
        }));
    }
    let limit = Duration::from_secs(30);
    wait_until("load before the swap", limit, || async {
        (served.load(Ordering::Relaxed) >= 50).then_some(())
    })
    .await;
    let source = fixture("kit-minimal-v2").display().to_string();
    let (status, accepted) = post_json(&rt, "/runtime/packages", json!({"source": source})).await;
    assert_eq!(status, 202, "{accepted}");
    let job = wait_for_load(&rt, accepted["load_id"].as_u64().unwrap()).await;
    assert_eq!(job["state"], "ready", "{job}");
    // Load goes on across the swap until the new version has served plenty of calls.
    wait_until("v2 serving under load", limit, || async {
        (served_v2.load(Ordering::Relaxed) >= 50).then_some(())
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for client in clients {
        total += client.await.unwrap();
    }
    assert!(total > 50, "load was not continuous: {total} calls");
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "requests failed during the swap"
    );
    assert!(
        served_v2.load(Ordering::Relaxed) > 0,
        "the new version never served"
    );
    let (_, agent) = rt.get("/agents/kit-minimal").await;
    assert_eq!(agent["version"], "2.0.0");
    assert_eq!(
        agent["versions"],
        json!(["2.0.0"]),
        "the old version is unloaded"
    );
    let old: Vec<u64> = old_pids
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect();
    assert!(!old.is_empty(), "{old_pids}");
    wait_dead(&old, Duration::from_secs(10)).await;
}

#[tokio::test]
async fn sigkill_mid_call_gives_502_and_the_next_call_is_served() {
    let rt = Arc::new(TestRuntime::builder().fixture("kit-async").start().await);
    let pid = rt.package_report("kit-async.apkg").await["workers"][0]
        .as_u64()
        .unwrap();
    let slow = tokio::spawn({
        let rt = rt.clone();
        async move {
            rt.invoke("kit-async", json!({"sleep": 5, "announce": "doomed"}))
                .await
        }
    });
    rt.wait_handler_started("doomed").await;
    std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    let started = Instant::now();
    let (status, body) = slow.await.unwrap();
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["code"], "worker_crashed");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the call hung on a dead worker"
    );
    let (status, body) = rt.invoke("kit-async", json!({"after": true})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["echo"]["after"], true, "{body}");
    let report = rt.package_report("kit-async.apkg").await;
    let workers = report["workers"].as_array().unwrap();
    assert!(
        !workers.is_empty() && !workers.contains(&json!(pid)),
        "served by a new worker: {report}"
    );
    assert_eq!(report["restarts"], 1, "{report}");
}

#[tokio::test]
async fn repeated_crashes_end_in_a_crash_loop() {
    let rt = TestRuntime::builder()
        .fixture("kit-minimal")
        .arg("--crash-loop-threshold")
        .arg("3")
        .start()
        .await;
    for _ in 0..3 {
        let (status, _) = rt.invoke("kit-minimal", json!({"exit": 3})).await;
        assert_eq!(status, 502);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let report = rt.package_report("kit-minimal.apkg").await;
        if report["crash_loop"] == true {
            assert_eq!(report["workers"], json!([]));
            break;
        }
        assert!(Instant::now() < deadline, "no crash loop: {report}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = rt.invoke("kit-minimal", json!({})).await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("crash loop"),
        "{body}"
    );
}

#[tokio::test]
async fn timeout_cancels_the_handler() {
    let rt = TestRuntime::builder()
        .fixture("kit-async")
        .arg("--call-timeout")
        .arg("0.5")
        // The handler reports through a marker file in the test's temp dir, which a
        // jailed package cannot see (by design): run it unconfined.
        .args(&["--sandbox", "off"])
        .start()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker");
    let (status, body) = rt
        .invoke("kit-async", json!({"sleep": 3, "marker": marker}))
        .await;
    assert_eq!(status, 504, "{body}");
    let text = crate::harness::marker_text(&marker, Duration::from_secs(5)).await;
    assert_eq!(text, "cancelled");
}

#[tokio::test]
async fn overload_gives_503_with_retry_after() {
    let rt = Arc::new(
        TestRuntime::builder()
            .fixture("kit-async")
            .args(&["--max-concurrent-calls", "1", "--max-queued-calls", "0"])
            .start()
            .await,
    );
    let busy = tokio::spawn({
        let rt = rt.clone();
        async move {
            rt.invoke("kit-async", json!({"sleep": 1.5, "announce": "busy"}))
                .await
        }
    });
    rt.wait_handler_started("busy").await;
    let r = rt
        .client
        .post(rt.url("/agents/kit-async/invoke"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_some());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "overloaded");
    assert_eq!(busy.await.unwrap().0, 200);
}

#[tokio::test]
async fn sigterm_lets_in_flight_calls_finish_then_exits_zero() {
    let rt = Arc::new(tokio::sync::Mutex::new(
        TestRuntime::builder().fixture("kit-async").start().await,
    ));
    let (url, client, pid) = {
        let rt = rt.lock().await;
        let pid = rt.package_report("kit-async.apkg").await["workers"][0]
            .as_u64()
            .unwrap();
        (rt.url("/agents/kit-async/invoke"), rt.client.clone(), pid)
    };
    let call = tokio::spawn(async move {
        client
            .post(url)
            .body(r#"{"sleep": 2, "announce": "in-flight"}"#)
            .send()
            .await
            .unwrap()
    });
    rt.lock().await.wait_handler_started("in-flight").await;
    let status = rt.lock().await.terminate();
    let response = call.await.unwrap();
    assert_eq!(response.status(), 200, "the in-flight call was dropped");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["echo"]["sleep"], 2, "{body}");
    assert!(status.success(), "{status:?}");
    assert!(!alive(pid), "worker {pid} survived shutdown");
}

#[tokio::test]
async fn a_memory_hungry_worker_is_killed_alone() {
    let rt = TestRuntime::builder()
        .fixture("kit-async")
        .fixture("kit-minimal")
        .arg("--worker-memory-limit")
        .arg(&(150 * 1024 * 1024).to_string())
        .start()
        .await;
    let neighbour = rt.package_report("kit-minimal.apkg").await["workers"][0]
        .as_u64()
        .unwrap();
    let (status, body) = rt
        .invoke("kit-async", json!({"hog_mb": 400, "sleep": 10}))
        .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["code"], "worker_crashed");
    // Killed by the runtime's own accounting or, where the jail has a cgroup memory
    // limit, by the kernel; either way the runtime's log says so (written just after).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !rt.logs().contains("memory limit") {
        assert!(
            Instant::now() < deadline,
            "no log of the kill: {}",
            rt.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(alive(neighbour), "the neighbour package's worker was hit");
    let (status, _) = rt.invoke("kit-minimal", json!({})).await;
    assert_eq!(status, 200);
    let (status, body) = rt.invoke("kit-async", json!({})).await;
    assert_eq!(status, 200, "the hungry package restarted: {body}");
}

#[tokio::test]
async fn management_load_unload_disable_and_dedupe() {
    let rt = TestRuntime::builder().start().await;
    let source = fixture("twin-a").display().to_string();
    let (a, b) = tokio::join!(
        post_json(&rt, "/runtime/packages", json!({"source": source})),
        post_json(&rt, "/runtime/packages", json!({"source": source})),
    );
    assert_eq!((a.0, b.0), (202, 202));
    assert_eq!(
        a.1["load_id"], b.1["load_id"],
        "the same request twice is one load: {a:?} {b:?}"
    );
    let job = wait_for_load(&rt, a.1["load_id"].as_u64().unwrap()).await;
    assert_eq!(job["state"], "ready", "{job}");
    assert_eq!(job["packages"][0]["name"], "twin-a");
    assert_eq!(rt.invoke("twin-a", json!({})).await.0, 200);

    let (status, _) = rt
        .post_raw("/runtime/agents/twin-a/disable", String::new())
        .await;
    assert_eq!(status, 200);
    let (status, body) = rt.invoke("twin-a", json!({})).await;
    assert_eq!((status, body["code"].as_str()), (503, Some("disabled")));
    rt.post_raw("/runtime/agents/twin-a/enable", String::new())
        .await;
    assert_eq!(rt.invoke("twin-a", json!({})).await.0, 200);

    assert_eq!(rt.unload("twin-a").await, 202);
    assert_eq!(rt.invoke("twin-a", json!({})).await.0, 404);
    assert_eq!(rt.unload("twin-a").await, 404);
}

#[tokio::test]
async fn upload_raw_and_multipart_and_downgrade_refused() {
    let rt = TestRuntime::builder().start().await;
    let v2 = std::fs::read(fixture("kit-minimal-v2")).unwrap();
    let r = rt
        .client
        .post(rt.url("/runtime/packages"))
        .header("content-type", "application/octet-stream")
        .body(v2)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["load_id"]
        .as_u64()
        .unwrap();
    assert_eq!(wait_for_load(&rt, id).await["state"], "ready");
    assert_eq!(
        rt.invoke("kit-minimal", json!({})).await.1["data"]["version"],
        2
    );

    let v1 = std::fs::read(fixture("kit-minimal")).unwrap();
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(v1.clone()).file_name("kit-minimal-1.0.0.apkg"),
    );
    let r = rt
        .client
        .post(rt.url("/runtime/packages"))
        .header("x-par-upload", "1")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["load_id"]
        .as_u64()
        .unwrap();
    let job = wait_for_load(&rt, id).await;
    assert_eq!(job["state"], "failed");
    assert!(
        job["error"].as_str().unwrap().contains("downgrade"),
        "{job}"
    );
    assert_eq!(
        rt.invoke("kit-minimal", json!({})).await.1["data"]["version"],
        2,
        "v2 still serves"
    );

    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(v1).file_name("kit-minimal-1.0.0.apkg"),
        )
        .text("force", "true");
    let r = rt
        .client
        .post(rt.url("/runtime/packages"))
        .header("x-par-upload", "1")
        .multipart(form)
        .send()
        .await
        .unwrap();
    let id = r.json::<Value>().await.unwrap()["load_id"]
        .as_u64()
        .unwrap();
    assert_eq!(wait_for_load(&rt, id).await["state"], "ready");
    let (_, body) = rt.invoke("kit-minimal", json!({"z": 1})).await;
    assert_eq!(
        body["data"]["echo"]["z"], 1,
        "forced downgrade serves v1: {body}"
    );
}

#[tokio::test]
async fn shutdown_through_the_api_drains_and_exits_zero() {
    let mut rt = TestRuntime::builder().fixture("kit-async").start().await;
    // A call is running in the handler when the shutdown is asked for ...
    let call = tokio::spawn({
        let (client, url) = (rt.client.clone(), rt.url("/agents/kit-async/invoke"));
        async move {
            let r = client
                .post(url)
                .body(r#"{"sleep": 1.5, "announce": "draining"}"#)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    });
    rt.wait_handler_started("draining").await;
    let (status, _) = rt.post_raw("/runtime/shutdown", String::new()).await;
    assert_eq!(status, 202);
    // ... and completes before the process exits cleanly.
    let (status, body) = call.await.unwrap();
    assert_eq!(status, 200, "the in-flight call was dropped: {body}");
    assert_eq!(body["data"]["echo"]["announce"], "draining", "{body}");
    let status = rt.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn webhooks_are_signed_and_delivered() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Vec<u8>)>();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let tx = tx.clone();
                async move {
                    let sig = headers
                        .get("x-par-signature")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    let _ = tx.send((sig, body.to_vec()));
                    "ok"
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let rt = TestRuntime::builder()
        .fixture("kit-minimal")
        .arg("--webhook-urls")
        .arg(&format!("http://{addr}/hook"))
        .env("PAR_WEBHOOK_SECRET", "hook-secret")
        .start()
        .await;
    let (sig, body) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    let event: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["event"], "package.loaded");
    assert_eq!(event["package"], "kit-minimal");
    assert_eq!(sig, expected_signature("hook-secret", &body));
    assert_eq!(rt.unload("kit-minimal").await, 202);
    let (_, body) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    let event: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["event"], "package.unloaded");
}

/// HMAC-SHA256 computed independently of the runtime, with the openssl CLI.
fn expected_signature(secret: &str, body: &[u8]) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", secret, "-hex"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap();
    format!("sha256={}", out.trim().rsplit(' ').next().unwrap())
}

#[tokio::test]
async fn workers_exit_when_the_runtime_is_killed() {
    let mut rt = TestRuntime::builder()
        .fixture("kit-minimal")
        .fixture("kit-async")
        .start()
        .await;
    let mut pids = Vec::new();
    for name in ["kit-minimal.apkg", "kit-async.apkg"] {
        pids.push(
            rt.package_report(name).await["workers"][0]
                .as_u64()
                .unwrap(),
        );
    }
    rt.kill();
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|p| alive(*p)) {
        assert!(Instant::now() < deadline, "orphaned workers: {pids:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// SIGTERM: readiness fails at once while calls still succeed for the drain grace, then
/// the listener closes and the process exits cleanly.
#[tokio::test]
async fn sigterm_drains_in_two_steps() {
    let mut rt = TestRuntime::builder()
        .fixture("kit-minimal")
        .args(&["--drain-grace", "3"])
        .start()
        .await;
    let pid = rt.pid().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let ready = loop {
        let (status, body) = rt.get("/runtime/ready").await;
        if status == 503 {
            break body;
        }
        assert!(Instant::now() < deadline, "still ready: {status} {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(ready["code"], "draining", "{ready}");
    // Within the grace everything else still serves.
    let (status, body) = rt.invoke("kit-minimal", json!({"during": "grace"})).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = rt.get("/runtime/health").await;
    assert_eq!(status, 200);
    assert!(rt.wait_exit(Duration::from_secs(30)).success());
}
