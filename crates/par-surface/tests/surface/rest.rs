//! The REST surface: `rest.entry` mounted once on a FastAPI app, everything passed through.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, StatusCode};
use par_surface::SurfaceMode;
use tokio_stream::wrappers::ReceiverStream;

use crate::harness::{self, bytes, call, json, request};

#[tokio::test]
async fn the_fixtures_own_rest_entry_serves_its_route() {
    let pkg = harness::extract("kit-rest");
    let app = harness::start(&pkg, SurfaceMode::Rest, "src.rest:mount").await;
    let response = call(&app, "GET", "/api/hello").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json(response).await, serde_json::json!({"hello": "rest"}));
    let missing = call(&app, "GET", "/api/nope").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn method_path_query_headers_body_and_status_pass_both_ways() {
    let (_pkg, app) = harness::rest_app().await;
    let mut req = request(
        "POST",
        "/agents/test/echo/a%20b/c?x=1&y=two",
        r#"{"k": [1, true, null]}"#,
    );
    let headers = req.headers_mut();
    for (name, value) in [
        ("content-type", "application/json"),
        ("x-custom", "kept"),
        ("x-request-id", "rid-123"),
        ("connection", "x-hop"),
        ("x-hop", "dropped"),
        ("keep-alive", "timeout=5"),
        ("proxy-authorization", "Basic Zm9vOmJhcg=="),
        ("x-forwarded-for", "10.1.2.3"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers.append("x-multi", HeaderValue::from_static("one"));
    headers.append("x-multi", HeaderValue::from_static("two"));
    let peer: SocketAddr = "192.0.2.7:5555".parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(peer));

    let response = app
        .proxy(req, "/echo/a%20b/c?x=1&y=two&status=201")
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["x-echo"], "yes");
    assert_eq!(response.headers()["set-cookie"], "a=1");
    assert!(response.headers().get("transfer-encoding").is_none());
    let echo = json(response).await;
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/echo/a b/c");
    assert_eq!(echo["raw_path"], "/echo/a%20b/c");
    assert_eq!(echo["query"], "x=1&y=two&status=201");
    assert_eq!(echo["body"], r#"{"k": [1, true, null]}"#);
    assert_eq!(echo["mounts"], 1, "mount(app) is called exactly once");
    let sent = &echo["headers"];
    assert_eq!(sent["content-type"], "application/json");
    assert_eq!(sent["x-custom"], "kept");
    assert_eq!(sent["x-request-id"], "rid-123");
    assert_eq!(sent["x-forwarded-for"], "10.1.2.3, 192.0.2.7");
    assert_eq!(sent["x-forwarded-proto"], "http");
    assert_eq!(sent["x-forwarded-prefix"], "/agents/test");
    for dropped in ["x-hop", "keep-alive", "proxy-authorization"] {
        assert!(
            sent.get(dropped).is_none(),
            "{dropped} must not be forwarded"
        );
    }
    let multi: Vec<&str> = echo["header_lists"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|pair| pair[0] == "x-multi")
        .map(|pair| pair[1].as_str().unwrap())
        .collect();
    assert_eq!(multi, ["one", "two"], "repeated headers keep their order");
}

#[tokio::test]
async fn every_method_and_the_requests_own_query_reach_the_app() {
    let (_pkg, app) = harness::rest_app().await;
    for method in ["GET", "PUT", "PATCH", "DELETE"] {
        let req = request(method, "/agents/test/echo/x?from=uri", Body::empty());
        let response = app.proxy(req, "/echo/x").await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let echo = json(response).await;
        assert_eq!(echo["method"], method);
        assert_eq!(echo["query"], "from=uri");
    }
    let no_content = call(&app, "GET", "/no-content").await;
    assert_eq!(no_content.status(), StatusCode::NO_CONTENT);
    assert!(bytes(no_content).await.is_empty());
}

#[tokio::test]
async fn large_bodies_stream_both_ways() {
    let (_pkg, app) = harness::rest_app().await;
    let chunk = vec![7u8; 256 * 1024];
    let chunks = 64; // 16 MiB
    let stream = chunked(chunk.clone(), chunks);
    let response = app
        .proxy(
            request("POST", "/upload", Body::from_stream(stream)),
            "/upload",
        )
        .await
        .unwrap();
    let answer = json(response).await;
    assert_eq!(answer["size"], (chunk.len() * chunks) as u64);
    let mut digest = <sha2::Sha256 as sha2::Digest>::new();
    for _ in 0..chunks {
        sha2::Digest::update(&mut digest, &chunk);
    }
    assert_eq!(
        answer["sha256"],
        hex::encode(sha2::Digest::finalize(digest))
    );

    let n = 16 * 1024 * 1024;
    let response = call(&app, "GET", &format!("/big?n={n}")).await;
    assert_eq!(bytes(response).await.len(), n);
}

#[tokio::test]
async fn uploads_are_streamed_not_buffered_whole() {
    let (_pkg, app) = harness::rest_app().await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(4);
    tx.send(Ok(bytes::Bytes::from(vec![1u8; 1000])))
        .await
        .unwrap();
    let body = Body::from_stream(ReceiverStream::new(rx));
    // The body never ends while we wait: a proxy that buffered it whole would hang here.
    let response = tokio::time::timeout(
        Duration::from_secs(10),
        app.proxy(request("POST", "/first-chunk", body), "/first-chunk"),
    )
    .await
    .expect("the app answered before the upload finished")
    .unwrap();
    assert_eq!(json(response).await["first"], 1000);
    drop(tx);
}

type Chunks = ReceiverStream<Result<bytes::Bytes, std::io::Error>>;

/// `count` copies of `chunk`, produced by a task as the proxy pulls them.
fn chunked(chunk: Vec<u8>, count: usize) -> Chunks {
    let chunk = bytes::Bytes::from(chunk);
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tokio::spawn(async move {
        for _ in 0..count {
            if tx.send(Ok(chunk.clone())).await.is_err() {
                return;
            }
        }
    });
    ReceiverStream::new(rx)
}
