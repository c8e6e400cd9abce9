//! Hostile archives never load, never write outside the cache, never stop the runtime.

use serde_json::json;

use crate::harness::TestRuntime;

const HOSTILE: [&str; 7] = [
    "hostile-zip-slip",
    "hostile-absolute",
    "hostile-backslash",
    "hostile-symlink",
    "hostile-bomb",
    "hostile-overlap",
    "hostile-duplicate",
];

#[tokio::test]
async fn every_hostile_archive_fails_in_extract_or_manifest_and_the_rest_serve() {
    let cache = tempfile::tempdir().unwrap();
    let mut builder = TestRuntime::builder()
        .cache(cache.path())
        .fixture("kit-minimal");
    for name in HOSTILE {
        builder = builder.fixture(name);
    }
    let rt = builder.start().await;
    for name in HOSTILE {
        let report = rt.package_report(&format!("{name}.apkg")).await;
        assert_eq!(report["state"], "failed", "{name}: {report}");
        let phase = report["failed_phase"].as_str().unwrap();
        assert!(
            phase == "extract" || phase == "manifest",
            "{name}: {report}"
        );
    }
    let (status, _) = rt.invoke("kit-minimal", json!({})).await;
    assert_eq!(status, 200);
    assert!(!std::path::Path::new("/tmp/par-evil.txt").exists());
    assert!(!cache.path().join("evil.txt").exists());
    assert!(!cache.path().join("packages/evil.txt").exists());
    // Only the good package was extracted, and no staging directory is left behind.
    let extracted: Vec<_> = std::fs::read_dir(cache.path().join("packages"))
        .unwrap()
        .filter_map(Result::ok)
        .collect();
    assert_eq!(extracted.len(), 1, "{extracted:?}");
}
