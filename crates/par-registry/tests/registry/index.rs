//! The registry index over HTTP and from a file: ETag polling, malformed documents,
//! the last good copy, and loading from the cache while the registry is down.

use par_registry::{parse_source, FetchError, IndexFetch};

use crate::support::server::{Route, TestServer};
use crate::support::{config, fetcher, package_bytes, sha256_hex};

fn index_json(entries: &[(&str, &str, &[u8])]) -> String {
    let packages: Vec<String> = entries
        .iter()
        .map(|(name, url, body)| {
            format!(
                r#"{{"name": "{name}", "version": "1.0.0", "url": "{url}", "sha256": "{}"}}"#,
                sha256_hex(body)
            )
        })
        .collect();
    format!(r#"{{"version": 1, "packages": [{}]}}"#, packages.join(","))
}

#[tokio::test]
async fn an_unchanged_index_answers_not_modified_via_if_none_match() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start().await;
    let doc = index_json(&[("kit", "pkgs/kit.apkg", b"k")]);
    server.put("/reg/index.json", Route::ok(doc).with_etag("\"v1\""));
    let fetcher = fetcher(config(dir.path())).await;
    let source = parse_source(&server.url("/reg/index.json")).unwrap();

    let first = fetcher.fetch_index(&source, None).await.unwrap();
    let IndexFetch::Updated { index, etag } = first else {
        panic!("expected an index")
    };
    assert_eq!(etag.as_deref(), Some("\"v1\""));
    assert_eq!(index.packages[0].url, server.url("/reg/pkgs/kit.apkg"));

    let second = fetcher.fetch_index(&source, etag.as_deref()).await.unwrap();
    assert_eq!(second, IndexFetch::NotModified);
    assert_eq!(server.hits("/reg/index.json"), 2);
}

#[tokio::test]
async fn malformed_indexes_are_errors_that_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start().await;
    let fetcher = fetcher(config(dir.path())).await;
    let good = index_json(&[("kit", "kit.apkg", b"k")]);
    server.put("/index.json", Route::ok(good.clone()));
    let source = parse_source(&server.url("/index.json")).unwrap();
    fetcher.fetch_index(&source, None).await.unwrap();
    let hex = sha256_hex(b"x");
    let cases = [
        ("{\"version\": 1, \"packages\": [".to_owned(), "not valid JSON"),
        (r#"{"version": 2, "packages": []}"#.to_owned(), "unsupported index version 2"),
        (
            r#"{"version": 1, "packages": [{"name": "kit", "version": "1", "url": "k", "sha256": "xyz"}]}"#.to_owned(),
            "packages[0] (kit): `sha256` must be 64 hex digits",
        ),
        (
            format!(r#"{{"version": 1, "packages": [{{"name": "kit", "version": "1", "sha256": "{hex}"}}]}}"#),
            "packages[0] (kit): missing `url`",
        ),
    ];
    for (doc, expected) in cases {
        server.put("/index.json", Route::ok(doc.clone()));
        let error = fetcher.fetch_index(&source, None).await.unwrap_err();
        assert!(matches!(error, FetchError::Index { .. }), "{doc}: {error}");
        let message = error.to_string();
        assert!(
            message.contains(expected) && message.contains("/index.json"),
            "{message}"
        );
    }
    // The last good index is still the good one.
    let saved = fetcher
        .load_last_good_index(&server.url("/index.json"))
        .unwrap();
    assert_eq!(saved.packages[0].name, "kit");
}

#[tokio::test]
async fn with_the_registry_down_the_last_good_index_and_cached_packages_still_load() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start().await;
    let kit = package_bytes(50, 30_000);
    server.put(
        "/index.json",
        Route::ok(index_json(&[("kit", "kit.apkg", &kit)])),
    );
    server.put("/kit.apkg", Route::ok(kit.clone()));
    let url = server.url("/index.json");
    {
        let fetcher = fetcher(config(dir.path())).await;
        let IndexFetch::Updated { index, .. } = fetcher
            .fetch_index(&parse_source(&url).unwrap(), None)
            .await
            .unwrap()
        else {
            panic!()
        };
        fetcher
            .fetch(&index.packages[0].to_source().unwrap())
            .await
            .unwrap();
    }
    drop(server);

    // A fresh start: the registry is unreachable.
    let mut cfg = config(dir.path());
    cfg.retries = 0;
    let fetcher = fetcher(cfg).await;
    let error = fetcher
        .fetch_index(&parse_source(&url).unwrap(), None)
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error}");
    let index = fetcher.load_last_good_index(&url).expect("last good index");
    let fetched = fetcher
        .fetch(&index.packages[0].to_source().unwrap())
        .await
        .unwrap();
    assert!(fetched.from_cache);
    assert_eq!(std::fs::read(&fetched.path).unwrap(), kit);
    assert!(fetcher
        .load_last_good_index("https://other.example/index.json")
        .is_none());
}

#[tokio::test]
async fn a_local_index_gets_a_content_etag() {
    let dir = tempfile::tempdir().unwrap();
    let index_path = dir.path().join("index.json");
    std::fs::write(&index_path, index_json(&[("kit", "kit.apkg", b"k")])).unwrap();
    let fetcher = fetcher(config(&dir.path().join("cache"))).await;
    let source = parse_source(index_path.to_str().unwrap()).unwrap();

    let IndexFetch::Updated { index, etag } = fetcher.fetch_index(&source, None).await.unwrap()
    else {
        panic!()
    };
    assert_eq!(
        index.packages[0].url,
        dir.path().join("kit.apkg").display().to_string()
    );
    let again = fetcher.fetch_index(&source, etag.as_deref()).await.unwrap();
    assert_eq!(again, IndexFetch::NotModified);

    std::fs::write(&index_path, index_json(&[("kit", "kit2.apkg", b"k2")])).unwrap();
    let changed = fetcher.fetch_index(&source, etag.as_deref()).await.unwrap();
    assert!(matches!(changed, IndexFetch::Updated { .. }));
}
