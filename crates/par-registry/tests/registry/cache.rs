//! The content-addressed cache: no network for known digests, one download for many
//! concurrent requests (in one process and across fetchers sharing the directory),
//! corrupt entries refetched, LRU eviction with pins, wrong digests leave nothing.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use par_registry::{parse_source, FetchError, SignaturePolicy, SignatureStatus};

use crate::support::server::{Fault, Route, TestServer};
use crate::support::{config, fetcher, files_in, package_bytes, sha256_hex};

#[tokio::test]
async fn a_second_fetch_with_a_known_digest_uses_no_network() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start().await;
    let body = package_bytes(10, 40_000);
    server.put("/kit.apkg", Route::ok(body.clone()));
    let mut cfg = config(dir.path());
    cfg.signature_policy = SignaturePolicy::IfPresent;
    let fetcher = fetcher(cfg).await;
    let source = parse_source(&format!(
        "{}#sha256={}",
        server.url("/kit.apkg"),
        sha256_hex(&body)
    ))
    .unwrap();

    let first = fetcher.fetch(&source).await.unwrap();
    let hits_after_first = server.total_hits();
    let second = fetcher.fetch(&source).await.unwrap();

    // The first fetch looked for kit.apkg.sig and kit.apkg.asc too.
    assert_eq!(hits_after_first, 3);
    assert_eq!(
        server.total_hits(),
        hits_after_first,
        "second fetch used the network"
    );
    assert!(!first.from_cache && second.from_cache);
    assert_eq!(first.path, second.path);
    assert_eq!(second.signature, SignatureStatus::Absent);
}

#[tokio::test]
async fn eight_concurrent_fetches_of_one_url_make_one_request() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start().await;
    let body = package_bytes(11, 100_000);
    let slow = Fault::Delay(Duration::from_millis(300));
    server.put("/shared.apkg", Route::ok(body.clone()).with_fault(slow));
    let fetcher = fetcher(config(dir.path())).await;
    // No digest given: the waiters cannot find it in the cache by content; they must
    // share the download in flight.
    let source = parse_source(&server.url("/shared.apkg")).unwrap();

    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let fetcher = fetcher.clone();
            let source = source.clone();
            tokio::spawn(async move { fetcher.fetch(&source).await })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap().unwrap());
    }

    assert_eq!(server.hits("/shared.apkg"), 1);
    assert!(results.iter().all(|r| r.sha256 == sha256_hex(&body)));
    assert_eq!(results.iter().filter(|r| !r.from_cache).count(), 1);
}

#[tokio::test]
async fn fetchers_sharing_a_cache_directory_download_once() {
    // Two fetchers stand in for two processes: they share nothing but the directory,
    // so only the file lock keeps the second from downloading again.
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start().await;
    let body = package_bytes(12, 100_000);
    let slow = Fault::Delay(Duration::from_millis(300));
    server.put("/two.apkg", Route::ok(body.clone()).with_fault(slow));
    let a = fetcher(config(dir.path())).await;
    let b = fetcher(config(dir.path())).await;
    let source = parse_source(&format!(
        "{}#sha256={}",
        server.url("/two.apkg"),
        sha256_hex(&body)
    ))
    .unwrap();

    let (ra, rb) = tokio::join!(a.fetch(&source), b.fetch(&source));

    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(server.hits("/two.apkg"), 1);
    assert_eq!(ra.path, rb.path);
    assert!(ra.from_cache != rb.from_cache);
}

#[tokio::test]
async fn a_corrupted_cache_entry_is_detected_and_refetched() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start().await;
    let body = package_bytes(13, 30_000);
    server.put("/kit.apkg", Route::ok(body.clone()));
    let fetcher = fetcher(config(dir.path())).await;
    let source = parse_source(&format!(
        "{}#sha256={}",
        server.url("/kit.apkg"),
        sha256_hex(&body)
    ))
    .unwrap();
    let first = fetcher.fetch(&source).await.unwrap();

    std::fs::set_permissions(&first.path, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&first.path, b"bit rot").unwrap();
    let second = fetcher.fetch(&source).await.unwrap();

    assert!(!second.from_cache);
    assert_eq!(server.hits("/kit.apkg"), 2);
    assert_eq!(std::fs::read(&second.path).unwrap(), body);
}

#[tokio::test]
async fn lru_eviction_keeps_pinned_blobs_and_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start().await;
    let size = 10_000;
    let mut cfg = config(dir.path());
    cfg.cache_budget_bytes = Some(2 * size as u64 + size as u64 / 2);
    let fetcher = fetcher(cfg).await;
    let mut fetched = Vec::new();
    for (i, name) in ["a", "b", "c", "d"].iter().enumerate() {
        let path = format!("/{name}.apkg");
        server.put(&path, Route::ok(package_bytes(20 + i as u8, size)));
        let result = fetcher
            .fetch(&parse_source(&server.url(&path)).unwrap())
            .await
            .unwrap();
        if *name == "a" {
            fetcher.pin(&result.sha256);
        }
        fetched.push(result);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let exists = |i: usize| fetched[i].path.exists();

    // Budget 2.5 blobs: a is pinned, so b (then c) made room.
    assert!(exists(0) && !exists(1) && !exists(2) && exists(3));

    fetcher.unpin(&fetched[0].sha256);
    let report = fetcher.evict_to_budget().unwrap();
    assert!(
        report.removed.is_empty(),
        "two blobs fit the budget: {report:?}"
    );
    assert_eq!(report.remaining_bytes, 2 * size as u64);
}

#[tokio::test]
async fn pins_beyond_the_budget_are_kept_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start().await;
    let mut cfg = config(dir.path());
    cfg.cache_budget_bytes = Some(1);
    let fetcher = fetcher(cfg).await;
    server.put("/a.apkg", Route::ok(package_bytes(30, 1000)));
    let a = fetcher
        .fetch(&parse_source(&server.url("/a.apkg")).unwrap())
        .await
        .unwrap();
    // The fresh blob survives the eviction its own download triggered.
    assert!(a.path.exists());
    fetcher.pin(&a.sha256);

    let report = fetcher.evict_to_budget().unwrap();

    assert!(a.path.exists());
    assert!(report.over_budget);
    fetcher.unpin(&a.sha256);
    let report = fetcher.evict_to_budget().unwrap();
    assert_eq!(report.removed, vec![a.sha256.clone()]);
    assert!(!a.path.exists());
}

#[tokio::test]
async fn a_wrong_digest_names_both_digests_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start().await;
    let body = package_bytes(14, 20_000);
    server.put("/kit.apkg", Route::ok(body.clone()));
    let fetcher = fetcher(config(dir.path())).await;
    let wrong = sha256_hex(b"something else");
    let source = parse_source(&format!("{}#sha256={wrong}", server.url("/kit.apkg"))).unwrap();

    let error = fetcher.fetch(&source).await.unwrap_err();

    assert!(
        matches!(error, FetchError::DigestMismatch { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&wrong) && message.contains(&sha256_hex(&body)),
        "{message}"
    );
    assert!(message.contains("/kit.apkg"), "{message}");
    assert_eq!(
        server.hits("/kit.apkg"),
        1,
        "a digest mismatch is not retried"
    );
    assert!(files_in(dir.path(), "blobs/sha256").is_empty());
    assert!(files_in(dir.path(), "tmp").is_empty());
}

#[tokio::test]
async fn a_local_file_is_copied_into_the_cache_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let body = package_bytes(15, 5_000);
    let file = dir.path().join("kit-1.0.0.apkg");
    std::fs::write(&file, &body).unwrap();
    let fetcher = fetcher(config(&dir.path().join("cache"))).await;
    let text = format!("{}#sha256={}", file.display(), sha256_hex(&body));

    let fetched = fetcher.fetch(&parse_source(&text).unwrap()).await.unwrap();

    assert!(fetched
        .path
        .starts_with(dir.path().join("cache/blobs/sha256")));
    assert_eq!(std::fs::read(&fetched.path).unwrap(), body);
    let missing = dir.path().join("nope.apkg");
    let error = fetcher
        .fetch(&parse_source(missing.to_str().unwrap()).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(error, FetchError::NotFound { .. }), "{error}");
}
