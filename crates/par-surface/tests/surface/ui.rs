//! The UI surface: static files served by the host, from the real kit-rest package and
//! from hand-made folders for the edge cases.

use std::path::Path;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::BodyExt;
use par_surface::UiSite;

use crate::harness::{self, bytes};

fn no_headers() -> HeaderMap {
    HeaderMap::new()
}

fn content_type(response: &Response<Body>) -> &str {
    response.headers()[header::CONTENT_TYPE].to_str().unwrap()
}

/// A package root with `web/` (index.html, app.js, style.css, sub/page.html, docs/
/// with its own index) plus files outside it that must stay unreachable.
fn site() -> (tempfile::TempDir, UiSite) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let write = |rel: &str, text: &str| {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("web/index.html", "<h1>root index</h1>");
    write("web/app.js", "console.log(1)");
    write("web/style.css", "body{}");
    write("web/logo.svg", "<svg/>");
    write("web/sub/page.html", "<p>page</p>");
    write("web/docs/index.html", "<h1>docs</h1>");
    write("web/.env", "SECRET=1");
    write(".env", "SECRET=outside");
    write("agent.yaml", "name: x");
    std::os::unix::fs::symlink(root.join("agent.yaml"), root.join("web/leak.yaml")).unwrap();
    std::os::unix::fs::symlink("app.js", root.join("web/alias.js")).unwrap();
    let site = UiSite::locate(root, Some("web")).expect("web/ is the ui folder");
    (dir, site)
}

#[tokio::test]
async fn the_kit_packages_dist_ui_is_served() {
    let pkg = harness::extract("kit-rest");
    let site = UiSite::locate(&pkg.root, Some("ui")).unwrap();
    assert!(
        site.root().ends_with("dist/ui"),
        "{}",
        site.root().display()
    );
    let index = site.serve("/", &no_headers()).await;
    assert_eq!(index.status(), StatusCode::OK);
    assert_eq!(content_type(&index), "text/html; charset=utf-8");
    assert!(String::from_utf8_lossy(&bytes(index).await).contains("kit-rest UI"));
    let js = site.serve("/app.js", &no_headers()).await;
    assert_eq!(content_type(&js), "text/javascript; charset=utf-8");
    assert!(String::from_utf8_lossy(&bytes(js).await).contains("/api/hello"));
}

#[test]
fn locate_prefers_dist_ui_and_refuses_paths_outside_the_package() {
    let (dir, _) = site();
    let root = dir.path();
    assert!(UiSite::locate(root, None).is_none());
    assert!(UiSite::locate(root, Some("missing")).is_none());
    assert!(UiSite::locate(root, Some("../")).is_none());
    assert!(UiSite::locate(root, Some("web/../..")).is_none());
    assert!(UiSite::locate(root, Some("/etc")).is_none());
    assert!(
        UiSite::locate(root, Some(".")).is_none(),
        "never the package root"
    );
    assert!(
        UiSite::locate(root, Some("agent.yaml")).is_none(),
        "a file is no folder"
    );
    std::fs::create_dir_all(root.join("dist/ui")).unwrap();
    let site = UiSite::locate(root, Some("web")).unwrap();
    assert!(site.root().ends_with("dist/ui"));
}

#[tokio::test]
async fn content_types_and_streamed_bodies() {
    let (_dir, site) = site();
    for (path, expected) in [
        ("/index.html", "text/html; charset=utf-8"),
        ("/style.css", "text/css; charset=utf-8"),
        ("/logo.svg", "image/svg+xml"),
        ("/sub/page.html", "text/html; charset=utf-8"),
        ("/alias.js", "text/javascript; charset=utf-8"),
    ] {
        let response = site.serve(path, &no_headers()).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(content_type(&response), expected, "{path}");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    }
    let big = site.root().join("big.bin");
    std::fs::write(&big, vec![3u8; 1 << 20]).unwrap();
    let response = site.serve("/big.bin", &no_headers()).await;
    assert_eq!(
        response.headers()[header::CONTENT_LENGTH],
        (1 << 20).to_string()
    );
    let mut body = response.into_body();
    let (mut frames, mut total) = (0, 0);
    while let Some(frame) = body.frame().await {
        total += frame.unwrap().into_data().unwrap().len();
        frames += 1;
    }
    assert_eq!(total, 1 << 20);
    assert!(frames > 1, "the file is streamed in chunks, not read whole");
}

#[tokio::test]
async fn index_for_directories_and_client_side_routes() {
    let (_dir, site) = site();
    let text = |response: Response<Body>| async move {
        String::from_utf8(bytes(response).await.to_vec()).unwrap()
    };
    assert_eq!(
        text(site.serve("/", &no_headers()).await).await,
        "<h1>root index</h1>"
    );
    assert_eq!(
        text(site.serve("/docs/", &no_headers()).await).await,
        "<h1>docs</h1>"
    );
    assert_eq!(
        text(site.serve("/sub/", &no_headers()).await).await,
        "<h1>root index</h1>"
    );
    for route in ["/settings", "/settings/profile/42", "/docs/deep/route"] {
        let response = site.serve(route, &no_headers()).await;
        assert_eq!(response.status(), StatusCode::OK, "{route}");
        assert_eq!(content_type(&response), "text/html; charset=utf-8");
    }
    for (path, location) in [("", "ui/"), ("/docs", "docs/"), ("/docs?x=1", "docs/?x=1")] {
        let response = site.serve(path, &no_headers()).await;
        assert_eq!(
            response.status(),
            StatusCode::PERMANENT_REDIRECT,
            "{path:?}"
        );
        assert_eq!(response.headers()[header::LOCATION], location);
    }
    let missing = site.serve("/missing.js", &no_headers()).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(content_type(&missing), "application/json");
    let body: serde_json::Value = serde_json::from_slice(&bytes(missing).await).unwrap();
    assert_eq!(body["code"], "not_found");
}

#[tokio::test]
async fn etag_and_last_modified_give_304() {
    let (_dir, site) = site();
    let first = site.serve("/app.js", &no_headers()).await;
    let etag = first.headers()[header::ETAG].clone();
    let modified = first.headers()[header::LAST_MODIFIED].clone();
    assert_eq!(first.headers()[header::CACHE_CONTROL], "no-cache");

    let mut conditional = HeaderMap::new();
    conditional.insert(header::IF_NONE_MATCH, etag.clone());
    let response = site.serve("/app.js", &conditional).await;
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(response.headers()[header::ETAG], etag);
    assert!(bytes(response).await.is_empty());

    let mut conditional = HeaderMap::new();
    conditional.insert(header::IF_MODIFIED_SINCE, modified);
    assert_eq!(
        site.serve("/app.js", &conditional).await.status(),
        StatusCode::NOT_MODIFIED
    );

    let mut stale = HeaderMap::new();
    stale.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"0-0\""));
    assert_eq!(site.serve("/app.js", &stale).await.status(), StatusCode::OK);

    std::fs::write(site.root().join("app.js"), "console.log(2) // changed").unwrap();
    let mut conditional = HeaderMap::new();
    conditional.insert(header::IF_NONE_MATCH, etag);
    assert_eq!(
        site.serve("/app.js", &conditional).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn traversal_attempts_are_refused() {
    let (_dir, site) = site();
    for path in [
        "/../agent.yaml",
        "/%2e%2e/agent.yaml",
        "/%2E%2E/%2e%2e/etc/passwd",
        "/..%2fagent.yaml",
        "/sub/..%5c..%5cagent.yaml",
        "/sub\\..\\..\\agent.yaml",
        "/app.js%00.html",
        "/./app.js",
    ] {
        let response = site.serve(path, &no_headers()).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
    }
    for path in ["/leak.yaml", "/.env", "/sub/.env", "/.git/config"] {
        let response = site.serve(path, &no_headers()).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    assert!(
        Path::new(&site.root().join("leak.yaml")).exists(),
        "the link is there"
    );
}

#[tokio::test]
async fn head_has_no_body_and_other_methods_get_405() {
    let (_dir, site) = site();
    let head = site
        .serve_method(&Method::HEAD, "/app.js", &no_headers())
        .await;
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()[header::CONTENT_LENGTH], "14");
    assert!(bytes(head).await.is_empty());
    let mut headers = HeaderMap::new();
    headers.insert("x-request-id", HeaderValue::from_static("rid-9"));
    let post = site.serve_method(&Method::POST, "/app.js", &headers).await;
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post.headers()[header::ALLOW], "GET, HEAD");
    let body: serde_json::Value = serde_json::from_slice(&bytes(post).await).unwrap();
    assert_eq!(body["request_id"], "rid-9");
}
