//! S3 sources against s3s-fs, which checks SigV4 signatures like AWS does.

use par_registry::{parse_source, FetchError, IndexFetch, S3Credentials, S3Options};

use crate::support::s3::{S3Server, SECRET_KEY};
use crate::support::server::{Fault, Route, TestServer};
use crate::support::tls::{TestTls, TlsProxy};
use crate::support::{config, fetcher, package_bytes, sha256_hex};

const BUCKET: &str = "packages";

#[tokio::test]
async fn fetches_an_object_with_the_right_credentials() {
    let s3 = S3Server::start(BUCKET).await;
    let body = package_bytes(40, 150_000);
    s3.put(BUCKET, "kits/kit-1.0.0.apkg", &body).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.s3 = s3.options(SECRET_KEY);
    let fetcher = fetcher(cfg).await;

    let text = format!(
        "s3://{BUCKET}/kits/kit-1.0.0.apkg#sha256={}",
        sha256_hex(&body)
    );
    let fetched = fetcher.fetch(&parse_source(&text).unwrap()).await.unwrap();

    assert_eq!(std::fs::read(&fetched.path).unwrap(), body);
}

#[tokio::test]
async fn a_wrong_secret_is_access_denied_naming_the_object_and_not_retried() {
    let s3 = S3Server::start(BUCKET).await;
    s3.put(BUCKET, "kit.apkg", b"bytes").await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.s3 = s3.options("not-the-secret");
    let fetcher = fetcher(cfg).await;

    let error = fetcher
        .fetch(&parse_source(&format!("s3://{BUCKET}/kit.apkg")).unwrap())
        .await
        .unwrap_err();

    // Not wrapped in Exhausted: it was tried once.
    assert!(matches!(error, FetchError::AccessDenied { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains("s3://packages/kit.apkg"), "{message}");
    assert!(!message.contains("not-the-secret"), "{message}");
}

#[tokio::test]
async fn a_missing_object_is_not_found() {
    let s3 = S3Server::start(BUCKET).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.s3 = s3.options(SECRET_KEY);
    let fetcher = fetcher(cfg).await;

    let error = fetcher
        .fetch(&parse_source(&format!("s3://{BUCKET}/nope.apkg")).unwrap())
        .await
        .unwrap_err();

    assert!(matches!(error, FetchError::NotFound { .. }), "{error}");
    assert!(error.to_string().contains("s3://packages/nope.apkg"));
}

#[tokio::test]
async fn an_s3_index_resolves_relative_entries_in_its_bucket() {
    let s3 = S3Server::start(BUCKET).await;
    let a = package_bytes(41, 20_000);
    let b = package_bytes(42, 20_000);
    s3.put(BUCKET, "registry/pkgs/a-1.0.0.apkg", &a).await;
    s3.put(BUCKET, "shared/b-2.0.0.apkg", &b).await;
    let index = format!(
        r#"{{"version": 1, "packages": [
            {{"name": "a", "version": "1.0.0", "url": "pkgs/a-1.0.0.apkg", "sha256": "{}"}},
            {{"name": "b", "version": "2.0.0", "url": "../shared/b-2.0.0.apkg", "sha256": "{}"}},
            {{"name": "gone", "version": "1.0.0", "url": "pkgs/gone.apkg", "sha256": "{}"}}]}}"#,
        sha256_hex(&a),
        sha256_hex(&b),
        sha256_hex(b"gone")
    );
    s3.put(BUCKET, "registry/index.json", index.as_bytes())
        .await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.s3 = s3.options(SECRET_KEY);
    let fetcher = fetcher(cfg).await;
    let index_source = parse_source(&format!("s3://{BUCKET}/registry/index.json")).unwrap();

    let IndexFetch::Updated { index, etag } =
        fetcher.fetch_index(&index_source, None).await.unwrap()
    else {
        panic!("first fetch must return the index");
    };

    let urls: Vec<&str> = index.packages.iter().map(|p| p.url.as_str()).collect();
    assert_eq!(
        urls,
        [
            "s3://packages/registry/pkgs/a-1.0.0.apkg",
            "s3://packages/shared/b-2.0.0.apkg",
            "s3://packages/registry/pkgs/gone.apkg"
        ]
    );
    for (entry, body) in index.packages.iter().zip([&a, &b]) {
        let fetched = fetcher.fetch(&entry.to_source().unwrap()).await.unwrap();
        assert_eq!(&std::fs::read(&fetched.path).unwrap(), body);
    }
    // An index entry pointing at a missing object names the package.
    let error = fetcher
        .fetch(&index.packages[2].to_source().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(error, FetchError::NotFound { .. }), "{error}");
    assert!(error.to_string().contains("gone 1.0.0"), "{error}");
    // Unchanged object, same ETag (s3s-fs ignores If-None-Match; the ETag decides).
    let again = fetcher
        .fetch_index(&index_source, etag.as_deref())
        .await
        .unwrap();
    assert_eq!(again, IndexFetch::NotModified);
}

#[tokio::test]
async fn s3_over_https_trusts_the_ca_bundle() {
    let s3 = S3Server::start(BUCKET).await;
    let body = package_bytes(43, 50_000);
    s3.put(BUCKET, "kit.apkg", &body).await;
    let dir = tempfile::tempdir().unwrap();
    let tls = TestTls::new(dir.path());
    let proxy = TlsProxy::start(tls.acceptor.clone(), s3.addr).await;
    let source = parse_source(&format!("s3://{BUCKET}/kit.apkg")).unwrap();
    let mut cfg = config(&dir.path().join("cache"));
    cfg.s3 = s3.options(SECRET_KEY);
    cfg.s3.endpoint_url = Some(format!("https://{}", proxy.addr));

    let untrusted = fetcher(cfg.clone()).await;
    let error = untrusted.fetch(&source).await.unwrap_err();
    assert!(matches!(error, FetchError::Tls { .. }), "{error}");
    assert!(
        error.to_string().contains("s3://packages/kit.apkg"),
        "{error}"
    );

    cfg.ca_bundle = Some(tls.ca_pem.clone());
    let trusted = fetcher(cfg).await;
    let fetched = trusted.fetch(&source).await.unwrap();
    assert_eq!(std::fs::read(&fetched.path).unwrap(), body);
}

#[tokio::test]
async fn an_s3_503_slowdown_is_retried() {
    // s3s-fs cannot be told to fail, so the fault server plays the S3 endpoint here.
    let server = TestServer::start().await;
    let body = package_bytes(44, 10_000);
    let fault = Fault::FailFirst {
        times: 2,
        status: 503,
        retry_after: None,
    };
    server.put(
        "/packages/kit.apkg",
        Route::ok(body.clone()).with_fault(fault),
    );
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.s3 = S3Options {
        endpoint_url: Some(server.url("")),
        region: Some("us-east-1".into()),
        credentials: Some(S3Credentials {
            access_key_id: "a".into(),
            secret_access_key: "s".into(),
        }),
    };
    let fetcher = fetcher(cfg).await;

    let fetched = fetcher
        .fetch(&parse_source(&format!("s3://{BUCKET}/kit.apkg")).unwrap())
        .await
        .unwrap();

    assert_eq!(std::fs::read(&fetched.path).unwrap(), body);
    assert_eq!(server.hits("/packages/kit.apkg"), 3);
}
