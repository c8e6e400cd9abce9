//! Server-sent events pass through event by event, from a FastAPI route and from the
//! pixell-sdk fixture's pure ASGI app.

use axum::body::Body;
use axum::http::{Response, StatusCode};
use http_body_util::BodyExt;
use par_surface::SurfaceMode;

use crate::harness::{self, call, now_secs};

/// One event as received: its JSON data and when it arrived (seconds since the epoch).
pub(crate) struct Received {
    pub data: serde_json::Value,
    pub at: f64,
}

/// Reads the body frame by frame, splitting events on blank lines as they arrive.
pub(crate) async fn events(response: Response<Body>) -> Vec<Received> {
    let mut body = response.into_body();
    let mut buffer = String::new();
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.unwrap();
        let Some(data) = frame.data_ref() else {
            continue;
        };
        buffer.push_str(std::str::from_utf8(data).unwrap());
        let at = now_secs();
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            let line = event
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap();
            out.push(Received {
                data: serde_json::from_str(line).unwrap(),
                at,
            });
        }
    }
    out
}

pub(crate) fn assert_streamed(events: &[Received], count: usize) {
    assert_eq!(events.len(), count);
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event.data["i"], i);
    }
    let last_produced = events[count - 1].data["produced_at"].as_f64().unwrap();
    assert!(
        events[0].at < last_produced,
        "the first event arrived at {} but the last was produced at {last_produced}: buffered",
        events[0].at
    );
    for pair in events.windows(2) {
        assert!(pair[0].at < pair[1].at, "events arrived one by one");
    }
}

#[tokio::test]
async fn sdk_app_streams_sse_event_by_event() {
    let pkg = harness::extract("sdk-http");
    let app = harness::start(&pkg, SurfaceMode::Asgi, "src.app:app").await;
    let response = call(&app, "GET", "/stream").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_streamed(&events(response).await, 3);
}

#[tokio::test]
async fn rest_streaming_response_passes_event_by_event() {
    let (_pkg, app) = harness::rest_app().await;
    let response = call(&app, "GET", "/sse?n=4&gap_ms=250").await;
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    assert_streamed(&events(response).await, 4);
}

#[tokio::test]
async fn a_dropped_stream_does_not_poison_the_pool() {
    let (_pkg, app) = harness::rest_app().await;
    let response = call(&app, "GET", "/sse?n=50&gap_ms=100").await;
    let mut body = response.into_body();
    body.frame().await.unwrap().unwrap();
    drop(body); // the client went away mid-stream
    let again = call(&app, "GET", "/sleepy?ms=0").await;
    assert_eq!(again.status(), StatusCode::OK);
}
