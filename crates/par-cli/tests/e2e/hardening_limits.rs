//! The hostile tester's low findings, closed: management-API sources limited to
//! configured roots and to public hosts, a package's log volume bounded, and a worker
//! whose threads are all held by abandoned calls replaced.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{fixture, wait_until, TestRuntime};

async fn load(rt: &TestRuntime, source: &str) -> (u16, Value) {
    rt.post_raw("/runtime/packages", json!({ "source": source }).to_string())
        .await
}

fn assert_refused(answer: &(u16, Value), needle: &str) {
    let (status, body) = answer;
    assert_eq!(*status, 403, "{body}");
    assert_eq!(body["code"], "forbidden", "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(error.contains(needle), "{body}");
}

#[tokio::test]
async fn management_sources_must_lie_under_a_root_and_reach_no_private_host() {
    // Default policy: the root is the startup source's folder (target/fixtures).
    let rt = TestRuntime::builder()
        .fixture("kit-minimal")
        .default_source_policy()
        .start()
        .await;
    let pinned = format!("/etc/passwd#sha256={}", "a".repeat(64));
    for secret in [
        "/etc/shadow",
        "/proc/self/environ",
        &pinned,
        "../../../../etc/hosts",
    ] {
        assert_refused(&load(&rt, secret).await, "not under a source root");
    }
    let beside = fixture("kit-async").display().to_string();
    let (status, body) = load(&rt, &beside).await;
    assert_eq!(
        status, 202,
        "a package beside the startup one loads: {body}"
    );
    crate::harness::wait_for_load(&rt, body["load_id"].as_u64().unwrap()).await;
    let own_port = rt.addr().rsplit(':').next().unwrap().to_string();
    for url in [
        format!("http://127.0.0.1:{own_port}/runtime/packages"),
        "http://localhost:1/x.apkg".to_string(),
        "https://[::1]/x.apkg".to_string(),
        "http://169.254.169.254/latest/meta-data/".to_string(),
    ] {
        assert_refused(&load(&rt, &url).await, "--allow-private-sources");
    }
    // Nothing refused was even attempted: no report names it.
    let (_, packages) = rt.get("/runtime/packages").await;
    let text = packages.to_string();
    assert!(
        !text.contains("/etc/") && !text.contains("169.254"),
        "{text}"
    );
}

#[tokio::test]
async fn configured_roots_resolve_symlinks_and_the_allow_flag_opens_loopback() {
    let root = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/etc", root.path().join("etc-link")).unwrap();
    std::fs::copy(fixture("kit-async"), root.path().join("kit-async.apkg")).unwrap();
    let root_arg = root.path().display().to_string();
    let rt = TestRuntime::builder()
        .args(&["--source-roots", &root_arg])
        .args(&["--allow-private-sources", "true"])
        .start()
        .await;
    let through_link = format!("{root_arg}/etc-link/passwd");
    assert_refused(&load(&rt, &through_link).await, "not under a source root");
    let climbing = format!("{root_arg}/../../etc/passwd");
    assert_refused(&load(&rt, &climbing).await, "not under a source root");
    // The configured roots replace the default: the fixtures folder is outside them.
    let outside = fixture("kit-minimal").display().to_string();
    assert_refused(&load(&rt, &outside).await, "not under a source root");
    let (status, body) = load(&rt, &format!("{root_arg}/kit-async.apkg")).await;
    assert_eq!(status, 202, "{body}");
    let job = crate::harness::wait_for_load(&rt, body["load_id"].as_u64().unwrap()).await;
    assert_eq!(job["state"], "ready", "{job}");
    // Allowed: a loopback URL is accepted (and fails as a fetch, not as a refusal).
    let url = format!("http://{}/no-such.apkg", rt.addr());
    let (status, body) = load(&rt, &url).await;
    assert_eq!(status, 202, "{body}");
}

/// `par_log_lines_dropped_total{package="kit-minimal"}`, 0 before the first drop.
fn dropped(metrics: &str) -> u64 {
    metrics
        .lines()
        .find(|l| l.starts_with("par_log_lines_dropped_total{") && l.contains("kit-minimal"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

#[tokio::test]
async fn a_package_flooding_the_log_is_rate_limited_and_its_drops_counted() {
    const FLOOD: u64 = 50_000;
    const RATE: u64 = 200;
    const BURST: u64 = 500;
    let rt = TestRuntime::builder()
        .fixture("kit-minimal")
        .args(&["--log-lines-per-sec", &RATE.to_string()])
        .args(&["--log-burst-lines", &BURST.to_string()])
        .start()
        .await;
    let started = Instant::now();
    let (status, body) = rt.invoke("kit-minimal", json!({"flood": FLOOD})).await;
    assert_eq!(status, 200, "{body}");
    let logged = |rt: &TestRuntime| rt.logs().matches("flood line ").count() as u64;
    // Every line is either logged or counted as dropped, once the summary has run.
    let (kept, lost) = wait_until(
        "every flood line logged or counted",
        Duration::from_secs(30),
        || async {
            let (kept, lost) = (logged(&rt), dropped(&rt.metrics().await));
            (kept + lost == FLOOD).then_some((kept, lost))
        },
    )
    .await;
    let allowed = BURST + RATE * (started.elapsed().as_secs() + 1);
    assert!(
        kept <= allowed,
        "{kept} lines logged, the budget allows {allowed}"
    );
    assert!(lost >= FLOOD - allowed, "{lost} dropped");
    rt.wait_log(
        &["log lines over its rate were dropped", "kit-minimal"],
        Duration::from_secs(10),
    )
    .await;
    let (status, health) = rt.get("/runtime/health").await;
    assert_eq!(status, 200, "{health}");
    let (status, body) = rt.invoke("kit-minimal", json!({"n": 1})).await;
    assert_eq!(status, 200, "the package still answers: {body}");
}

#[tokio::test]
async fn a_worker_whose_threads_are_all_held_by_abandoned_calls_is_replaced() {
    let rt = TestRuntime::builder()
        .fixture("kit-minimal")
        .args(&["--worker-threads", "2", "--call-timeout", "1"])
        .args(&[
            "--worker-health-interval",
            "0.2",
            "--worker-health-timeout",
            "1.5",
        ])
        .start()
        .await;
    let before = rt.package_report("kit-minimal.apkg").await["workers"].clone();
    // Two calls that never return on their own: both time out, both threads stay held.
    let forever = json!({"sleep": 1_000_000});
    let (a, b) = tokio::join!(
        rt.invoke("kit-minimal", forever.clone()),
        rt.invoke("kit-minimal", forever)
    );
    assert_eq!((a.0, b.0), (504, 504), "{a:?} {b:?}");
    let body = wait_until(
        "a normal call to succeed again",
        Duration::from_secs(30),
        || async {
            let (status, body) = rt.invoke("kit-minimal", json!({"n": 1})).await;
            (status == 200).then_some(body)
        },
    )
    .await;
    assert_eq!(body["data"]["echo"]["n"], 1, "{body}");
    rt.wait_log(
        &["worker stuck in abandoned calls", "kit-minimal"],
        Duration::from_secs(5),
    )
    .await;
    let after = rt.package_report("kit-minimal.apkg").await["workers"].clone();
    assert_ne!(before, after, "a new worker serves the package");
    let old = before[0].as_u64().unwrap();
    crate::harness::wait_dead(&[old], Duration::from_secs(10)).await;
    let metrics = rt.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("par_worker_stuck_replacements_total{")
                && l.contains("kit-minimal")
                && !l.ends_with(" 0")),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_abandoned_call_past_its_grace_gets_its_worker_replaced() {
    let rt = TestRuntime::builder()
        .fixture("kit-minimal")
        .args(&["--worker-threads", "4", "--call-timeout", "1"])
        .args(&["--abandoned-call-grace", "1"])
        .args(&[
            "--worker-health-interval",
            "0.2",
            "--worker-health-timeout",
            "1.5",
        ])
        .start()
        .await;
    let before = rt.package_report("kit-minimal.apkg").await["workers"].clone();
    let (status, body) = rt.invoke("kit-minimal", json!({"sleep": 1_000_000})).await;
    assert_eq!(status, 504, "{body}");
    rt.wait_log(
        &["held a thread for", "kit-minimal"],
        Duration::from_secs(30),
    )
    .await;
    let after = wait_until("a new worker", Duration::from_secs(30), || async {
        let workers = rt.package_report("kit-minimal.apkg").await["workers"].clone();
        (workers != before && workers.as_array().is_some_and(|w| !w.is_empty())).then_some(workers)
    })
    .await;
    assert_eq!(after.as_array().unwrap().len(), 1, "{after}");
    let (status, body) = rt.invoke("kit-minimal", json!({"n": 2})).await;
    assert_eq!(status, 200, "{body}");
}
