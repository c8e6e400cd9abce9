//! Requests reuse pooled keep-alive connections (counted on both sides).

use std::sync::Arc;
use std::time::Instant;

use axum::http::StatusCode;
use par_surface::SurfaceProcess;

use crate::harness::{self, call, json};

/// Connections uvicorn has accepted (the startup readiness probe included).
async fn opened_by_app(app: &SurfaceProcess) -> u64 {
    json(call(app, "GET", "/conns").await).await["opened"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn sequential_requests_reuse_one_connection() {
    let (_pkg, app) = harness::rest_app().await;
    let before = opened_by_app(&app).await;
    let started = Instant::now();
    for _ in 0..100 {
        let response = call(&app, "GET", "/sleepy?ms=0").await;
        assert_eq!(response.status(), StatusCode::OK);
        json(response).await;
    }
    let elapsed = started.elapsed();
    let after = opened_by_app(&app).await;
    assert_eq!(
        after, before,
        "100 sequential requests opened new connections"
    );
    assert_eq!(app.connections_opened(), 1);
    eprintln!(
        "100 sequential proxied requests in {elapsed:?} ({:.0}/s)",
        100.0 / elapsed.as_secs_f64()
    );
}

#[tokio::test]
async fn concurrent_requests_share_pooled_connections() {
    let (_pkg, app) = harness::rest_app().await;
    let app = Arc::new(app);
    let before = opened_by_app(&app).await;
    burst(&app, 50).await;
    let first = opened_by_app(&app).await - before;
    assert!(
        first <= 50,
        "50 concurrent requests opened {first} connections"
    );
    burst(&app, 50).await;
    let second = opened_by_app(&app).await - before - first;
    assert!(
        second <= 2,
        "a second burst of 50 opened {second} new connections instead of reusing {first}"
    );
    assert_eq!(app.connections_opened(), first + second + 1);
}

async fn burst(app: &Arc<SurfaceProcess>, n: usize) {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                let response = call(&app, "GET", "/sleepy?ms=100").await;
                assert_eq!(response.status(), StatusCode::OK);
                json(response).await;
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}
