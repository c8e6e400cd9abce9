//! Worker health checks: a worker that stops answering (SIGSTOP) is killed and replaced,
//! while a worker that is merely busy keeps running.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::TestRuntime;

async fn checked_runtime(fixture: &str) -> TestRuntime {
    TestRuntime::builder()
        .fixture(fixture)
        .args(&[
            "--worker-health-interval",
            "0.2",
            "--worker-health-timeout",
            "1.5",
        ])
        .start()
        .await
}

/// Every process below `pid` (in a jail: its PID 1 and the Python worker).
pub(crate) fn descendants(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut queue = vec![pid];
    while let Some(parent) = queue.pop() {
        let tasks = std::fs::read_dir(format!("/proc/{parent}/task"))
            .into_iter()
            .flatten();
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                found.push(child);
                queue.push(child);
            }
        }
    }
    found
}

/// A process that exists and is not a zombie waiting to be reaped.
fn running(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .trim_start()
        .chars()
        .next();
    matches!(state, Some(s) if s != 'Z' && s != 'X')
}

async fn worker_pids(rt: &TestRuntime, suffix: &str) -> Vec<u64> {
    let report = rt.package_report(suffix).await;
    let pids: Vec<u64> = report["workers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_u64())
        .collect();
    pids
}

#[tokio::test]
async fn a_stopped_worker_is_replaced_and_calls_recover() {
    let rt = checked_runtime("kit-minimal").await;
    let (status, body) = rt.invoke("kit-minimal", json!({"n": 1})).await;
    assert_eq!(status, 200, "{body}");
    let before = worker_pids(&rt, "kit-minimal.apkg").await;
    assert_eq!(before.len(), 1, "{before:?}");
    let launcher = u32::try_from(before[0]).unwrap();
    let mut stopped = descendants(launcher);
    if stopped.is_empty() {
        stopped.push(launcher); // unconfined: the worker itself
    }
    for pid in &stopped {
        let status = std::process::Command::new("kill")
            .args(["-STOP", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "SIGSTOP {pid}");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = worker_pids(&rt, "kit-minimal.apkg").await;
        if !now.is_empty() && now != before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stopped worker was never replaced: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body) = rt.invoke("kit-minimal", json!({"n": 2})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["echo"]["n"], json!(2), "{body}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Some(pid) = stopped.iter().find(|p| running(**p)) {
        assert!(
            Instant::now() < deadline,
            "the stopped process {pid} was never killed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        rt.logs().contains("stopped answering health checks"),
        "logged"
    );
}

#[tokio::test]
async fn a_busy_worker_answers_health_checks_and_keeps_its_call() {
    let rt = checked_runtime("kit-async").await;
    let before = worker_pids(&rt, "kit-async.apkg").await;
    let (status, body) = rt.invoke("kit-async", json!({"sleep": 3})).await;
    assert_eq!(
        status, 200,
        "a call longer than the health timeout finishes: {body}"
    );
    assert_eq!(
        worker_pids(&rt, "kit-async.apkg").await,
        before,
        "same worker"
    );
}
