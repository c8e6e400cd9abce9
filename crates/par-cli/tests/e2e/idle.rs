//! Idle packages cost nothing: with `--idle-timeout` a package is started and checked at
//! load and then stopped at once (state `idle`), a package without calls for the timeout
//! stops its processes again, it stays routable, and the next call or app request wakes it.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{wait_until, TestRuntime};

const DEADLINE: Duration = Duration::from_secs(30);

async fn idle_runtime(fixtures: &[&str]) -> TestRuntime {
    let mut builder = TestRuntime::builder().args(&["--idle-timeout", "2"]);
    for name in fixtures {
        builder = builder.fixture(name);
    }
    builder.start().await
}

/// Polls the package's report until its state is `state`; returns that report.
async fn report_when(rt: &TestRuntime, suffix: &str, state: &str) -> Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let report = rt.package_report(suffix).await;
        if report["state"] == state {
            return report;
        }
        assert!(Instant::now() < deadline, "never {state}: {report}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn pids(report: &Value, field: &str) -> Vec<u64> {
    match &report[field] {
        Value::Array(items) => items.iter().filter_map(Value::as_u64).collect(),
        Value::Number(n) => n.as_u64().into_iter().collect(),
        _ => Vec::new(),
    }
}

/// Waits until none of `pids` is a process any more.
async fn gone(pids: &[u64]) {
    assert!(!pids.is_empty(), "no pids to watch");
    let deadline = Instant::now() + DEADLINE;
    while pids
        .iter()
        .any(|p| std::path::Path::new(&format!("/proc/{p}")).exists())
    {
        assert!(Instant::now() < deadline, "processes {pids:?} still alive");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of one metric series, 0 when it does not exist yet.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Lets `suffix`'s package fall idle and checks its processes are gone.
async fn fall_idle(rt: &TestRuntime, suffix: &str, field: &str) {
    fall_idle_all(rt, &[suffix], field).await;
}

/// Notes the processes of every package while they are ready (woken by the caller, all
/// at once: they fall idle on the same clock), then waits for each to be idle with those
/// processes gone.
async fn fall_idle_all(rt: &TestRuntime, suffixes: &[&str], field: &str) {
    let mut before = Vec::new();
    for suffix in suffixes {
        let ready = report_when(rt, suffix, "ready").await;
        before.push(pids(&ready, field));
    }
    for (suffix, before) in suffixes.iter().zip(before) {
        report_when(rt, suffix, "idle").await;
        gone(&before).await;
        let idle = rt.package_report(suffix).await;
        assert_eq!(idle["state"], "idle", "{idle}");
        assert!(
            pids(&idle, field).is_empty(),
            "{field} still reported: {idle}"
        );
    }
}

/// Every package loaded at startup is idle (it starts asleep) before any call.
async fn all_idle(rt: &TestRuntime, suffixes: &[&str]) {
    for suffix in suffixes {
        let report = report_when(rt, suffix, "idle").await;
        assert!(pids(&report, "workers").is_empty(), "{report}");
    }
}

/// A call answers 200 (waking the package when it sleeps).
async fn call_ok(rt: &TestRuntime, agent: &str) {
    let (status, body) = rt.invoke(agent, json!({})).await;
    assert_eq!(status, 200, "{agent}: {body}");
}

fn wakes(metrics: &str, package: &str) -> f64 {
    metric(
        metrics,
        &format!(r#"par_package_wakes_total{{package="{package}"}}"#),
    )
}

/// Waits until the runtime has no child process left (no launcher, jail, zygote, worker).
async fn no_processes_below(rt: &TestRuntime) {
    wait_until("no process left below the runtime", DEADLINE, || async {
        crate::sandbox::descendants(rt.pid())
            .is_empty()
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn packages_loaded_at_startup_sleep_at_once_and_a_call_wakes_them() {
    // 300 s: only the load rule, not the timeout, can put them to sleep within the test.
    let rt = TestRuntime::builder()
        .args(&["--idle-timeout", "300"])
        .fixture("kit-minimal")
        .fixture("kit-caller")
        .fixture("kit-async")
        .fixture("kit-missing-module")
        .start()
        .await;
    let failed = rt.package_report("kit-missing-module.apkg").await;
    assert_eq!(failed["state"], "failed", "still checked at load: {failed}");
    let packages = ["kit-minimal.apkg", "kit-caller.apkg", "kit-async.apkg"];
    all_idle(&rt, &packages).await;
    no_processes_below(&rt).await;

    let (status, body) = rt.invoke("kit-minimal", json!({"n": 1})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["echo"]["n"], json!(1), "{body}");
    let awake = rt.package_report("kit-minimal.apkg").await;
    assert_eq!(awake["state"], "ready", "{awake}");
    assert!(!pids(&awake, "workers").is_empty(), "{awake}");
    assert_eq!(wakes(&rt.metrics().await, "kit-minimal"), 1.0);
    let still = rt.package_report("kit-caller.apkg").await;
    assert_eq!(
        still["state"], "idle",
        "an uncalled package sleeps on: {still}"
    );
}

#[tokio::test]
async fn an_idle_package_stops_and_concurrent_first_calls_share_one_wake() {
    let rt = idle_runtime(&["kit-minimal"]).await;
    call_ok(&rt, "kit-minimal").await;
    fall_idle(&rt, "kit-minimal.apkg", "workers").await;
    let before = wakes(&rt.metrics().await, "kit-minimal");
    let (status, _) = rt.get("/agents/kit-minimal").await;
    assert_eq!(status, 200, "an idle package stays listed");

    let calls = (0..8).map(|n| rt.invoke("kit-minimal", json!({"n": n})));
    for (n, (status, body)) in futures_util::future::join_all(calls)
        .await
        .into_iter()
        .enumerate()
    {
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["echo"]["n"], json!(n), "{body}");
    }
    let metrics = rt.metrics().await;
    let after = wakes(&metrics, "kit-minimal");
    assert_eq!(after, before + 1.0, "one wake for eight calls");
    assert_eq!(metric(&metrics, "par_package_wake_seconds_count"), after);
    let awake = rt.package_report("kit-minimal.apkg").await;
    assert_eq!(awake["state"], "ready", "{awake}");
    assert!(!pids(&awake, "workers").is_empty(), "{awake}");
}

#[tokio::test]
async fn an_app_request_wakes_the_app_process() {
    let rt = idle_runtime(&["kit-rest"]).await;
    all_idle(&rt, &["kit-rest.apkg"]).await;
    hello(&rt).await;
    fall_idle(&rt, "kit-rest.apkg", "app_pid").await;
    hello(&rt).await;
    let awake = rt.package_report("kit-rest.apkg").await;
    assert_eq!(awake["state"], "ready", "{awake}");
    assert_eq!(pids(&awake, "app_pid").len(), 1, "{awake}");
    let woken = wakes(&rt.metrics().await, "kit-rest");
    assert_eq!(woken, 2.0, "once after the load, once after the timeout");
}

/// kit-rest's app answers (waking it when it sleeps).
async fn hello(rt: &TestRuntime) {
    let r = rt
        .client
        .get(rt.url("/agents/kit-rest/api/hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"hello": "rest"}));
}

#[tokio::test]
async fn an_idle_package_unloads() {
    let rt = idle_runtime(&["kit-minimal"]).await;
    call_ok(&rt, "kit-minimal").await;
    fall_idle(&rt, "kit-minimal.apkg", "workers").await;
    assert_eq!(rt.unload("kit-minimal").await, 202);
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (status, body) = rt.get("/runtime/packages").await;
        assert_eq!(status, 200);
        let listed = body["packages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "kit-minimal");
        if !listed {
            break;
        }
        assert!(Instant::now() < deadline, "never unloaded: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body) = rt.invoke("kit-minimal", json!({})).await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test]
async fn an_agent_call_wakes_the_idle_package_it_calls() {
    let rt = idle_runtime(&["kit-minimal", "kit-caller"]).await;
    all_idle(&rt, &["kit-minimal.apkg", "kit-caller.apkg"]).await;
    let (status, reply) = rt
        .invoke("kit-caller", json!({"call": "mini-secret"}))
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["data"]["result"], json!({"secret": true}), "{reply}");
    let metrics = rt.metrics().await;
    for package in ["kit-minimal", "kit-caller"] {
        assert_eq!(wakes(&metrics, package), 1.0, "{package}");
    }
}

#[tokio::test]
async fn an_idle_package_is_replaced_disabled_and_enabled() {
    let rt = idle_runtime(&["kit-minimal"]).await;
    all_idle(&rt, &["kit-minimal.apkg"]).await;
    let (status, body) = rt
        .post_raw("/runtime/agents/kit-minimal/disable", String::new())
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = rt.invoke("kit-minimal", json!({})).await;
    assert_eq!((status, body["code"].as_str()), (503, Some("disabled")));
    let (status, body) = rt
        .post_raw("/runtime/agents/kit-minimal/enable", String::new())
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = rt.invoke("kit-minimal", json!({})).await;
    assert_eq!(status, 200, "enabled again, the call wakes it: {body}");

    fall_idle(&rt, "kit-minimal.apkg", "workers").await;
    let source = crate::harness::fixture("kit-minimal-v2")
        .display()
        .to_string();
    let body = json!({ "source": source }).to_string();
    let (status, accepted) = rt.post_raw("/runtime/packages", body).await;
    assert_eq!(status, 202, "{accepted}");
    let load = accepted["load_id"].as_u64().unwrap();
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (status, job) = rt.get(&format!("/runtime/loads/{load}")).await;
        assert_eq!(status, 200, "{job}");
        if job["state"] != "loading" {
            assert_eq!(job["state"], "ready", "{job}");
            break;
        }
        assert!(Instant::now() < deadline, "load never finished: {job}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Loaded through the API with the old version asleep: the new one sleeps too.
    all_idle(&rt, &["kit-minimal-v2.apkg"]).await;
    let (status, body) = rt.invoke("kit-minimal", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["version"], 2, "the new version serves: {body}");
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (status, body) = rt.get("/runtime/packages").await;
        assert_eq!(status, 200, "{body}");
        let old = body["packages"].as_array().unwrap().iter().any(|p| {
            p["source"]
                .as_str()
                .unwrap_or_default()
                .ends_with("/kit-minimal.apkg")
        });
        if !old {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the idle old version never stopped: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether a zygote forked `pid`: its parent runs `par_worker.py` (a fresh worker's parent
/// is its jail's PID 1, or the runtime without a jail).
fn forked(pid: u64) -> bool {
    let parent = crate::zygote::parent_of(pid);
    let cmdline = std::fs::read(format!("/proc/{parent}/cmdline")).unwrap();
    String::from_utf8_lossy(&cmdline).contains("par_worker.py")
}

/// The workers of `fixture` once a call has woken it (300 s: it stays awake meanwhile).
async fn woken_workers(extra: &[&str]) -> (TestRuntime, Vec<u64>) {
    let rt = TestRuntime::builder()
        .args(&["--idle-timeout", "300"])
        .args(extra)
        .fixture("kit-minimal")
        .start()
        .await;
    report_when(&rt, "kit-minimal.apkg", "idle").await;
    call_ok(&rt, "kit-minimal").await;
    let awake = report_when(&rt, "kit-minimal.apkg", "ready").await;
    let workers = pids(&awake, "workers");
    (rt, workers)
}

#[tokio::test]
async fn a_lone_worker_of_an_idle_stopping_package_starts_fresh_and_several_fork() {
    // `--worker-start auto`: a zygote would only ever fork this one worker per wake.
    let (_rt, lone) = woken_workers(&[]).await;
    assert_eq!(lone.len(), 1, "{lone:?}");
    assert!(
        !forked(lone[0]),
        "a zygote started the lone worker {lone:?}"
    );

    // Two workers share their zygote's pages: forked.
    let (_rt, two) = woken_workers(&["--workers", "2"]).await;
    assert_eq!(two.len(), 2, "{two:?}");
    assert!(two.iter().all(|&p| forked(p)), "not forked: {two:?}");

    // The operator's explicit choice stands.
    let (_rt, chosen) = woken_workers(&["--worker-start", "fork"]).await;
    assert_eq!(chosen.len(), 1, "{chosen:?}");
    assert!(forked(chosen[0]), "--worker-start fork ignored: {chosen:?}");
}
