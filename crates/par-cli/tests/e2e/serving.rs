//! Serving several packages: side by side, failures isolated, readiness, shutdown.

use serde_json::json;

use crate::harness::{fixture, TestRuntime};

#[tokio::test]
async fn two_packages_with_the_same_module_names_serve_side_by_side() {
    let rt = TestRuntime::builder()
        .fixture("twin-a")
        .fixture("twin-b")
        .start()
        .await;
    let (_, a) = rt.invoke("twin-a", json!({})).await;
    let (_, b) = rt.invoke("twin-b", json!({})).await;
    assert_eq!(a["data"]["twin"], "a", "{a}");
    assert_eq!(b["data"]["twin"], "b", "{b}");
}

#[tokio::test]
async fn broken_packages_are_reported_and_the_rest_serve() {
    let rt = TestRuntime::builder()
        .fixture("kit-minimal")
        .fixture("kit-missing-module")
        .fixture("bad-manifest")
        .fixture("not-a-zip")
        .start()
        .await;
    let missing = rt.package_report("kit-missing-module.apkg").await;
    assert_eq!(missing["state"], "failed");
    assert_eq!(missing["failed_phase"], "start");
    assert!(
        missing["error"].as_str().unwrap().contains("nothere"),
        "{missing}"
    );
    let manifest = rt.package_report("bad-manifest.apkg").await;
    assert_eq!(manifest["failed_phase"], "manifest");
    assert!(
        manifest["error"]
            .as_str()
            .unwrap()
            .contains("metadata.version"),
        "{manifest}"
    );
    let zip = rt.package_report("not-a-zip.apkg").await;
    assert_eq!(zip["state"], "failed");
    let (status, _) = rt.invoke("kit-minimal", json!({})).await;
    assert_eq!(status, 200);
    assert!(rt.logs().contains("package failed to load"));
}

#[tokio::test]
async fn invalid_generated_setup_py_is_never_executed() {
    let rt = TestRuntime::builder()
        .fixture("kit-bad-setup")
        .start()
        .await;
    let (status, body) = rt.invoke("kit-bad-setup", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["ok"], true);
}

#[tokio::test]
async fn kit_03_and_sdk_05_packages_serve() {
    let rt = TestRuntime::builder()
        .fixture("kit03-legacy")
        .fixture("sdk-basic")
        .start()
        .await;
    let (status, body) = rt.invoke("legacy-public", json!({"q": 1})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["action"], "legacy-public");
    let (status, _) = rt.invoke("legacy-private", json!({})).await;
    assert_eq!(status, 404);
    let (status, body) = rt.invoke("sdk-basic", json!({"q": 2})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["sdk"], true);
}

#[tokio::test]
async fn directory_source_and_versions() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("kit-minimal"), dir.path().join("a.apkg")).unwrap();
    std::fs::copy(fixture("kit-minimal-v2"), dir.path().join("b.apkg")).unwrap();
    std::fs::write(dir.path().join("readme.txt"), "not a package").unwrap();
    let rt = TestRuntime::builder().source(dir.path()).start().await;
    let (_, newest) = rt.invoke("kit-minimal", json!({})).await;
    assert_eq!(
        newest["data"]["version"], 2,
        "the newest version is active: {newest}"
    );
    let (status, old) = rt.invoke("kit-minimal@1.0.0", json!({"z": 1})).await;
    assert_eq!(status, 200, "{old}");
    assert_eq!(old["data"]["echo"]["z"], 1);
    let (status, _) = rt.invoke("kit-minimal@9.9.9", json!({})).await;
    assert_eq!(status, 404);
    let (_, agent) = rt.get("/agents/kit-minimal").await;
    assert_eq!(agent["version"], "2.0.0");
}

#[tokio::test]
async fn sha256_fragment_is_enforced() {
    let path = fixture("kit-minimal");
    let wrong = format!("{}#sha256={}", path.display(), "0".repeat(64));
    let rt = TestRuntime::builder().source(&wrong).start().await;
    let (_, body) = rt.get("/runtime/packages").await;
    let report = &body["packages"][0];
    assert_eq!(report["failed_phase"], "verify", "{body}");
    assert!(
        report["error"].as_str().unwrap().contains("expected 0000"),
        "{report}"
    );
    let (status, _) = rt.invoke("kit-minimal", json!({})).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn id_clash_with_another_package_is_refused() {
    // kit-clash is another package whose sub-agent is also called `mini-upper`; sources
    // mount in the order given, so the earlier one keeps the id.
    let rt = TestRuntime::builder()
        .fixture("kit-minimal")
        .fixture("kit-clash")
        .start()
        .await;
    let clash = rt.package_report("kit-clash.apkg").await;
    assert_eq!(clash["state"], "failed", "{clash}");
    assert_eq!(clash["failed_phase"], "mount");
    assert!(
        clash["error"].as_str().unwrap().contains("mini-upper"),
        "{clash}"
    );
    let (_, body) = rt.invoke("mini-upper", json!({"text": "x"})).await;
    assert_eq!(body["data"]["upper"], "X", "the first package keeps its id");
    assert!(
        clash["workers"].as_array().unwrap().is_empty(),
        "refused package's workers stopped"
    );
}

#[tokio::test]
async fn sigterm_stops_workers_and_exits_zero() {
    let mut rt = TestRuntime::builder().fixture("kit-minimal").start().await;
    let pids = rt.package_report("kit-minimal.apkg").await["workers"].clone();
    let pid = pids[0].as_u64().unwrap();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    let status = rt.terminate();
    assert!(status.success(), "{status:?}");
    crate::harness::wait_dead(&[pid], std::time::Duration::from_secs(5)).await;
}

#[tokio::test]
async fn unknown_route_is_json_404() {
    let rt = TestRuntime::builder().start().await;
    let (status, body) = rt.get("/nope").await;
    assert_eq!(status, 404);
    assert_eq!(body["status"], "error");
}

#[tokio::test]
async fn worker_output_reaches_the_log_tagged_with_the_package() {
    let rt = TestRuntime::builder().fixture("kit-minimal").start().await;
    let (status, _) = rt
        .invoke("kit-minimal", json!({"print": "hello-from-agent"}))
        .await;
    assert_eq!(status, 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let logs = rt.logs();
        let lines: Vec<serde_json::Value> = logs
            .lines()
            .filter(|l| l.contains("hello-from-agent"))
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let streams: Vec<&str> = lines.iter().filter_map(|v| v["stream"].as_str()).collect();
        if streams.contains(&"stdout") && streams.contains(&"stderr") {
            assert!(
                lines.iter().all(|v| v["package"] == "kit-minimal@1.0.0"),
                "{lines:?}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "worker output not logged:\n{logs}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_dead_worker_fails_its_call_with_502_and_the_next_call_restarts_it() {
    let rt = TestRuntime::builder().fixture("kit-minimal").start().await;
    let (status, body) = rt.invoke("kit-minimal", json!({"exit": 7})).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["code"], "worker_crashed");
    let (status, body) = rt.invoke("kit-minimal", json!({"a": 1})).await;
    assert_eq!(status, 200, "{body}");
    let report = rt.package_report("kit-minimal.apkg").await;
    assert_eq!(report["restarts"], 1, "{report}");
}

#[tokio::test]
async fn the_same_file_under_two_names_runs_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("kit-minimal"), dir.path().join("a.apkg")).unwrap();
    std::fs::copy(fixture("kit-minimal"), dir.path().join("b.apkg")).unwrap();
    let rt = TestRuntime::builder().source(dir.path()).start().await;
    let a = rt.package_report("a.apkg").await;
    let b = rt.package_report("b.apkg").await;
    assert_eq!(a["state"], "ready");
    assert_eq!(b["state"], "ready");
    assert_eq!(
        a["workers"], b["workers"],
        "one set of workers serves both names"
    );
    assert_eq!(a["workers"].as_array().unwrap().len(), 1);
}
