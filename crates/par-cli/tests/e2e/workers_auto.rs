//! `--workers auto`: a package keeps one worker, starts another while every live worker
//! is busy (up to `--workers-max`), and stops the extra one after `--worker-idle-shrink`
//! seconds without a call; `--idle-timeout` and unloading stop them all, a wake starts
//! one, and extra workers that crash never put the package in a crash loop.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{alive, wait_dead, wait_until, TestRuntime};

const LIMIT: Duration = Duration::from_secs(60);
/// Long enough for the pool to grow and for a probe call to reach the new worker.
const SLOW_CALL_SECS: u64 = 8;

async fn auto_runtime(extra: &[&str]) -> TestRuntime {
    TestRuntime::builder()
        .fixture("kit-minimal")
        .args(&["--workers", "auto", "--workers-max", "2"])
        .args(extra)
        .start()
        .await
}

async fn worker_pids(rt: &TestRuntime) -> Vec<u64> {
    let report = rt.package_report("kit-minimal.apkg").await;
    let pids = report["workers"].as_array().cloned().unwrap_or_default();
    pids.iter().filter_map(Value::as_u64).collect()
}

/// Waits until the package report lists `count` live workers; returns their pids.
async fn workers_when(rt: &TestRuntime, count: usize) -> Vec<u64> {
    let what = format!("{count} workers in the package report");
    wait_until(&what, LIMIT, || async {
        let pids = worker_pids(rt).await;
        (pids.len() == count).then_some(pids)
    })
    .await
}

/// The `par_workers{package="kit-minimal"}` gauge.
async fn workers_gauge(rt: &TestRuntime) -> f64 {
    let series = r#"par_workers{package="kit-minimal"} "#;
    let text = rt.metrics().await;
    let line = text.lines().find_map(|l| l.strip_prefix(series));
    line.and_then(|v| v.trim().parse().ok()).unwrap_or(0.0)
}

/// A sync call that sleeps; answers with the pid (in the worker's namespace) it ran in.
async fn slow_call(rt: &TestRuntime, secs: u64) -> u64 {
    let (status, body) = rt.invoke("kit-minimal", json!({"sleep": secs})).await;
    assert_eq!(status, 200, "{body}");
    body["data"]["pid"].as_u64().expect("the handler's pid")
}

/// Four slow calls at once (every worker busy: the pool grows); while they run, waits
/// for the second worker and sends a quick call, which goes to the less busy one.
/// Returns the pids the slow calls and the quick call ran in, and the two workers.
async fn grow_under_load(rt: &TestRuntime) -> (Vec<u64>, u64, Vec<u64>) {
    let slow = futures_util::future::join_all((0..4).map(|_| slow_call(rt, SLOW_CALL_SECS)));
    let probe = async {
        let both = workers_when(rt, 2).await;
        assert_eq!(workers_gauge(rt).await, 2.0, "par_workers follows the pool");
        assert_same_jail(both[0], both[1]);
        (slow_call(rt, 0).await, both)
    };
    let (slow_pids, (quick_pid, both)) = tokio::join!(slow, probe);
    (slow_pids, quick_pid, both)
}

/// The extra worker runs in the first one's jail: the same namespaces, none the host's.
/// (Checked while the calls run: an extra worker that got one quick call may shrink
/// before the slow ones end.)
fn assert_same_jail(first: u64, extra: u64) {
    for name in ["user", "mnt", "net", "ipc", "uts"] {
        let ns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/{name}")).unwrap();
        let (host, first, extra) = (ns("self"), ns(&first.to_string()), ns(&extra.to_string()));
        assert_eq!(first, extra, "{name} namespace");
        assert_ne!(first, host, "a worker in the host's {name} namespace");
    }
}

#[tokio::test]
async fn a_busy_package_grows_to_its_cap_and_shrinks_back_when_idle() {
    let rt = auto_runtime(&["--worker-idle-shrink", "1"]).await;
    let first = workers_when(&rt, 1).await;
    assert_eq!(workers_gauge(&rt).await, 1.0);

    let (slow_pids, quick_pid, both) = grow_under_load(&rt).await;
    assert!(both.contains(&first[0]), "the first worker stays: {both:?}");
    // The new worker took calls: the quick one (it was idle), or slow ones sent after it
    // started (then the quick one went to whichever had fewer).
    let mut served: Vec<u64> = slow_pids.iter().copied().chain([quick_pid]).collect();
    served.sort_unstable();
    served.dedup();
    assert_eq!(served.len(), 2, "calls ran in {served:?}: one worker only");
    let extra: Vec<u64> = both.iter().copied().filter(|p| *p != first[0]).collect();
    assert_eq!(extra.len(), 1, "{both:?}");

    // No calls now: the extra worker stops after a second idle, the first one stays.
    assert_eq!(workers_when(&rt, 1).await, first);
    wait_dead(&extra, LIMIT).await;
    assert!(alive(first[0]), "the fixed worker was stopped");
    assert_eq!(workers_gauge(&rt).await, 1.0);
    let report = rt.package_report("kit-minimal.apkg").await;
    assert_eq!(report["crashes"], 0, "a shrink is not a crash: {report}");
    assert_eq!(report["state"], "ready", "{report}");
}

#[tokio::test]
async fn idle_timeout_stops_every_worker_and_a_wake_starts_one() {
    // Extra workers would stay 60 s: the idle timeout comes first and takes them too.
    let rt = auto_runtime(&["--worker-idle-shrink", "60", "--idle-timeout", "2"]).await;
    slow_call(&rt, 0).await; // it starts asleep after the load: this call wakes it
    workers_when(&rt, 1).await;
    let (_, _, both) = grow_under_load(&rt).await;

    wait_until("the package idle", LIMIT, || async {
        let report = rt.package_report("kit-minimal.apkg").await;
        (report["state"] == "idle").then_some(())
    })
    .await;
    wait_dead(&both, LIMIT).await;
    assert!(worker_pids(&rt).await.is_empty());
    assert_eq!(workers_gauge(&rt).await, 0.0);

    slow_call(&rt, 0).await;
    let woken = workers_when(&rt, 1).await;
    assert!(!both.contains(&woken[0]), "a new worker: {woken:?}");
    assert_eq!(workers_gauge(&rt).await, 1.0);
}

/// Waits for a second worker, sending a quick call each time it looks: while the first
/// worker has a call in flight, any call makes the pool grow.
async fn grown_by_quick_calls(rt: &TestRuntime) -> Vec<u64> {
    wait_until("a second worker", LIMIT, || async {
        slow_call(rt, 0).await;
        let pids = worker_pids(rt).await;
        (pids.len() == 2).then_some(pids)
    })
    .await
}

/// Sends a 60 s call in the background (abort it when done) and waits until it is in
/// flight, so the first worker stays busier than any extra one.
async fn keep_busy(
    rt: &TestRuntime,
) -> tokio::task::JoinHandle<reqwest::Result<reqwest::Response>> {
    let busy = tokio::spawn(
        rt.client
            .post(rt.url("/agents/kit-minimal/invoke"))
            .body(r#"{"sleep": 60}"#)
            .send(),
    );
    wait_until("the busy call in flight", LIMIT, || async {
        let report = rt.package_report("kit-minimal.apkg").await;
        (report["inflight"] == 1).then_some(())
    })
    .await;
    busy
}

#[tokio::test]
async fn unloading_a_grown_package_stops_its_extra_workers_too() {
    let rt = auto_runtime(&["--worker-idle-shrink", "60", "--drain-timeout", "1"]).await;
    workers_when(&rt, 1).await;
    let busy = keep_busy(&rt).await;
    let both = grown_by_quick_calls(&rt).await;
    assert_eq!(rt.unload("kit-minimal").await, 202);
    wait_dead(&both, LIMIT).await;
    assert_eq!(workers_gauge(&rt).await, 0.0);
    busy.abort();
}

#[tokio::test]
async fn crashing_extra_workers_never_put_the_package_in_a_crash_loop() {
    // Two crashes of one fixed worker would be a crash loop; of extra workers they are not.
    let rt = auto_runtime(&["--worker-idle-shrink", "60", "--crash-loop-threshold", "2"]).await;
    let first = workers_when(&rt, 1).await;
    // The first worker busier than any extra one for the whole test, so the crashing
    // calls go to the extra workers.
    let busy = keep_busy(&rt).await;
    for round in 1..=2 {
        let both = grown_by_quick_calls(&rt).await;
        // The extra worker has nothing in flight, the first one the slow call: the
        // least busy worker takes the crashing call.
        let (status, body) = rt.invoke("kit-minimal", json!({"exit": 1})).await;
        assert_eq!(status, 502, "{body}");
        assert_eq!(workers_when(&rt, 1).await, first, "round {round}: {both:?}");
        let report = rt.package_report("kit-minimal.apkg").await;
        assert_eq!(report["crashes"], round, "{report}");
        assert_eq!(report["crash_loop"], false, "{report}");
    }
    // The first worker served throughout and still does.
    assert!(!busy.is_finished(), "the busy call ended early");
    busy.abort();
    slow_call(&rt, 0).await;
    assert_eq!(worker_pids(&rt).await, first);
}
