//! What must not grow without bound: the usage ledger, failed load reports, uploaded
//! package bytes, a package's log output.

use std::time::{Duration, Instant};

use crate::harness::{wait_for_load, workspace_root, TestRuntime};

const DAY_MS: i64 = 86_400_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Adds a record that started `at_ms`, as an earlier run of the runtime would have.
fn insert_record(ledger: &std::path::Path, id: &str, at_ms: i64) {
    let conn = rusqlite::Connection::open(ledger).unwrap();
    conn.execute(
        "INSERT INTO usage_records (request_id, agent, version, started_at_ms, duration_ms, \
         outcome, bytes_in, bytes_out, reported) VALUES (?1, 'echo', '1.0.0', ?2, 1.0, 'ok', \
         1, 1, '{}')",
        rusqlite::params![id, at_ms],
    )
    .unwrap();
}

#[tokio::test]
async fn usage_records_past_the_retention_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("usage.sqlite3");
    // A first run creates the ledger.
    let mut first = TestRuntime::builder().usage_db(&ledger).start().await;
    assert!(first.terminate().success());
    insert_record(&ledger, "old", now_ms() - 31 * DAY_MS);
    insert_record(&ledger, "recent", now_ms() - 29 * DAY_MS);
    let rt = TestRuntime::builder()
        .usage_db(&ledger)
        .args(&["--usage-retention-days", "30"])
        .start()
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, report) = rt.get("/runtime/usage?from=2000-01-01T00:00:00Z").await;
        assert_eq!(status, 200, "{report}");
        let ids: Vec<&str> = report["records"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["request_id"].as_str())
            .collect();
        if ids == ["recent"] {
            break;
        }
        assert!(Instant::now() < deadline, "still there: {ids:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let docs = std::fs::read_to_string(workspace_root().join("docs/configuration.md")).unwrap();
    for name in [
        "--usage-retention-days",
        "PAR_USAGE_RETENTION_DAYS",
        "--usage-size-warning-mb",
    ] {
        assert!(docs.contains(name), "{name} is not documented");
    }
}

#[test]
fn a_retention_beyond_a_century_is_refused_naming_the_setting() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_par"))
        .args(["serve", "--listen", "127.0.0.1:0", "--usage-db", "off"])
        .env("PAR_USAGE_RETENTION_DAYS", "100000")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PAR_USAGE_RETENTION_DAYS"), "{err}");
}

fn sha256_hex(bytes: &[u8]) -> String {
    // `par verify --sha256` would do; the test binary has no hasher, so ask `sha256sum`.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bytes");
    std::fs::write(&file, bytes).unwrap();
    let out = std::process::Command::new("sha256sum")
        .arg(&file)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)[..64].to_string()
}

#[tokio::test]
async fn an_upload_is_kept_once_and_failed_reports_are_bounded() {
    let cache = tempfile::tempdir().unwrap();
    let rt = TestRuntime::builder()
        .cache(cache.path())
        .args(&["--max-failed-reports", "2"])
        .start()
        .await;
    let apkg = std::fs::read(crate::harness::fixture("kit-minimal")).unwrap();
    let sha = sha256_hex(&apkg);
    let r = rt
        .client
        .post(rt.url("/runtime/packages"))
        .header("content-type", "application/octet-stream")
        .header("x-par-upload", "1")
        .body(apkg)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<serde_json::Value>().await.unwrap()["load_id"]
        .as_u64()
        .unwrap();
    let job = wait_for_load(&rt, id).await;
    assert_eq!(job["state"], "ready", "{job}");
    let upload = cache.path().join("uploads").join(format!("{sha}.apkg"));
    let blob = cache
        .path()
        .join("downloads/blobs/sha256")
        .join(format!("{sha}.apkg"));
    assert!(blob.is_file(), "the package's one copy, {}", blob.display());
    assert!(!upload.exists(), "a second copy: {}", upload.display());
    let (status, _) = rt.invoke("kit-minimal", serde_json::json!({})).await;
    assert_eq!(status, 200);

    // Three sources that fail, one after the other: only the newest two are reported.
    let dir = tempfile::tempdir().unwrap();
    let mut sources = Vec::new();
    for name in ["a", "b", "c"] {
        let path = dir.path().join(format!("{name}.apkg"));
        std::fs::write(&path, format!("not a zip {name}")).unwrap();
        let body = serde_json::json!({"source": path}).to_string();
        let (status, answer) = rt.post_raw("/runtime/packages", body).await;
        assert_eq!(status, 202, "{answer}");
        let job = wait_for_load(&rt, answer["load_id"].as_u64().unwrap()).await;
        assert_eq!(job["state"], "failed", "{job}");
        sources.push(path.display().to_string());
    }
    let (status, body) = rt.get("/runtime/packages").await;
    assert_eq!(status, 200);
    let failed: Vec<&str> = body["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["state"] == "failed")
        .filter_map(|p| p["source"].as_str())
        .collect();
    assert_eq!(failed, [&sources[1], &sources[2]], "{body}");
    assert!(
        body["packages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["state"] == "ready"),
        "ready packages are never evicted: {body}"
    );
}
