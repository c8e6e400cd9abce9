//! HTTPS with a test CA, and the network faults: unknown CA, stalls, truncation,
//! 503 with Retry-After, 404, connection refused, bodies over the size limit.

use std::time::{Duration, Instant};

use par_registry::{parse_source, FetchError, SignatureStatus, TimeoutKind};

use crate::support::server::{closed_port_url, Fault, Route, TestServer};
use crate::support::tls::TestTls;
use crate::support::{config, fetcher, files_in, package_bytes, sha256_hex};

#[tokio::test]
async fn https_with_a_custom_ca_bundle_fetches_and_verifies_the_digest() {
    let dir = tempfile::tempdir().unwrap();
    let tls = TestTls::new(dir.path());
    let server = TestServer::start_tls(tls.acceptor.clone()).await;
    let body = package_bytes(1, 200_000);
    server.put("/kit-1.0.0.apkg", Route::ok(body.clone()));
    let mut cfg = config(&dir.path().join("cache"));
    cfg.ca_bundle = Some(tls.ca_pem.clone());
    let fetcher = fetcher(cfg).await;

    let text = format!(
        "{}#sha256={}",
        server.url("/kit-1.0.0.apkg"),
        sha256_hex(&body)
    );
    let fetched = fetcher.fetch(&parse_source(&text).unwrap()).await.unwrap();

    assert_eq!(std::fs::read(&fetched.path).unwrap(), body);
    assert_eq!(fetched.sha256, sha256_hex(&body));
    assert_eq!(fetched.size, body.len() as u64);
    assert!(!fetched.from_cache);
    assert_eq!(fetched.signature, SignatureStatus::NotChecked);
    assert!(files_in(&dir.path().join("cache"), "tmp").is_empty());
}

#[tokio::test]
async fn https_with_an_unknown_ca_is_a_tls_error_and_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    let tls = TestTls::new(dir.path());
    let server = TestServer::start_tls(tls.acceptor.clone()).await;
    server.put("/p.apkg", Route::ok(b"x".to_vec()));
    let fetcher = fetcher(config(&dir.path().join("cache"))).await;

    let error = fetcher
        .fetch(&parse_source(&server.url("/p.apkg")).unwrap())
        .await
        .unwrap_err();

    assert!(matches!(error, FetchError::Tls { .. }), "{error}");
    assert!(!error.is_retryable());
    let message = error.to_string();
    assert!(message.contains(&server.url("/p.apkg")), "{message}");
    assert!(message.contains("retrying will not help"), "{message}");
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn a_stalled_body_times_out_and_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start().await;
    let body = package_bytes(2, 100_000);
    server.put(
        "/slow.apkg",
        Route::ok(body).with_fault(Fault::StallAfter(1024)),
    );
    let mut cfg = config(&dir.path().join("cache"));
    cfg.read_timeout = Duration::from_millis(300);
    cfg.retries = 1;
    let fetcher = fetcher(cfg).await;

    let started = Instant::now();
    let error = fetcher
        .fetch(&parse_source(&server.url("/slow.apkg")).unwrap())
        .await
        .unwrap_err();

    assert!(
        matches!(
            error.last(),
            FetchError::Timeout {
                kind: TimeoutKind::Read,
                ..
            }
        ),
        "{error}"
    );
    assert!(
        error.to_string().contains("gave up after 2 attempts"),
        "{error}"
    );
    assert_eq!(server.hits("/slow.apkg"), 2);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(files_in(&dir.path().join("cache"), "tmp").is_empty());
}

#[tokio::test]
async fn a_truncated_body_is_retried_then_reported() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start().await;
    let body = package_bytes(3, 50_000);
    server.put(
        "/cut.apkg",
        Route::ok(body.clone()).with_fault(Fault::TruncateAt(1000)),
    );
    let mut cfg = config(&dir.path().join("cache"));
    cfg.retries = 2;
    let fetcher = fetcher(cfg).await;

    let error = fetcher
        .fetch(&parse_source(&server.url("/cut.apkg")).unwrap())
        .await
        .unwrap_err();

    match error.last() {
        FetchError::Truncated {
            expected, received, ..
        } => {
            assert_eq!(*expected, body.len() as u64);
            assert!(*received <= 1000);
        }
        other => panic!("expected truncation, got {other}"),
    }
    assert_eq!(server.hits("/cut.apkg"), 3);
    assert!(files_in(&dir.path().join("cache"), "tmp").is_empty());
    assert!(files_in(&dir.path().join("cache"), "blobs/sha256").is_empty());
}

#[tokio::test]
async fn a_503_with_retry_after_is_retried_after_the_given_delay() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start().await;
    let body = package_bytes(4, 10_000);
    let fault = Fault::FailFirst {
        times: 1,
        status: 503,
        retry_after: Some(1),
    };
    server.put("/busy.apkg", Route::ok(body.clone()).with_fault(fault));
    let fetcher = fetcher(config(&dir.path().join("cache"))).await;

    let started = Instant::now();
    let fetched = fetcher
        .fetch(&parse_source(&server.url("/busy.apkg")).unwrap())
        .await
        .unwrap();

    assert_eq!(std::fs::read(&fetched.path).unwrap(), body);
    assert_eq!(server.hits("/busy.apkg"), 2);
    // Backoff alone would wait at most 100 ms here.
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[tokio::test]
async fn a_404_is_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start().await;
    let fetcher = fetcher(config(&dir.path().join("cache"))).await;

    let error = fetcher
        .fetch(&parse_source(&server.url("/missing.apkg")).unwrap())
        .await
        .unwrap_err();

    assert!(matches!(error, FetchError::NotFound { .. }), "{error}");
    assert!(error.to_string().contains("/missing.apkg"));
    assert_eq!(server.hits("/missing.apkg"), 1);
}

#[tokio::test]
async fn a_server_that_is_down_is_retried_then_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&dir.path().join("cache"));
    cfg.retries = 2;
    let fetcher = fetcher(cfg).await;
    let url = closed_port_url("/p.apkg").await;

    let error = fetcher
        .fetch(&parse_source(&url).unwrap())
        .await
        .unwrap_err();

    assert!(
        matches!(error, FetchError::Exhausted { attempts: 3, .. }),
        "{error}"
    );
    assert!(
        matches!(error.last(), FetchError::Connect { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&url) && message.contains("a retry may help"),
        "{message}"
    );
}

#[tokio::test]
async fn a_body_over_the_limit_stops_early_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let server = TestServer::start().await;
    let body = package_bytes(5, 1024 * 1024);
    server.put("/big.apkg", Route::ok(body.clone()));
    server.put("/big-unannounced.apkg", Route::ok(body).without_length());
    let mut cfg = config(&cache);
    cfg.max_download_bytes = 64 * 1024;
    let fetcher = fetcher(cfg).await;

    for path in ["/big.apkg", "/big-unannounced.apkg"] {
        let error = fetcher
            .fetch(&parse_source(&server.url(path)).unwrap())
            .await
            .unwrap_err();
        assert!(
            matches!(error, FetchError::TooLarge { limit: 65536, .. }),
            "{error}"
        );
        assert_eq!(server.hits(path), 1, "{path} must not be retried");
    }
    assert!(files_in(&cache, "tmp").is_empty());
    assert!(files_in(&cache, "blobs/sha256").is_empty());
}

#[tokio::test]
async fn plain_http_to_a_remote_host_is_refused_without_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let fetcher = fetcher(config(dir.path())).await;
    let error = fetcher
        .fetch(&parse_source("http://registry.example.com/p.apkg").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(error, FetchError::Refused { .. }), "{error}");
    assert!(error.to_string().contains("plain http://"), "{error}");
}

#[tokio::test]
async fn credentials_and_query_signatures_never_appear_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start().await;
    let fetcher = fetcher(config(dir.path())).await;
    let url = format!(
        "http://user:hunter2@{}/missing.apkg?X-Amz-Signature=deadbeef",
        server.addr
    );

    let error = fetcher
        .fetch(&parse_source(&url).unwrap())
        .await
        .unwrap_err();

    let message = error.to_string();
    assert!(message.contains("/missing.apkg"), "{message}");
    assert!(
        !message.contains("hunter2") && !message.contains("deadbeef"),
        "{message}"
    );
    assert!(!format!("{error:?}").contains("hunter2"));
}
