//! The proxy behind a real axum server on port 0, wired the way the runtime wires it:
//! client address from `ConnectInfo`, SSE through both hyper halves.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use par_surface::SurfaceProcess;

use crate::harness::{self, json};
use crate::sse::{assert_streamed, events};

const PREFIX: &str = "/agents/test";

async fn forward(State(app): State<Arc<SurfaceProcess>>, req: Request) -> Response {
    let path = req.uri().path().strip_prefix(PREFIX).unwrap_or("/");
    let path = if path.is_empty() { "/" } else { path }.to_string();
    match app.proxy(req, &path).await {
        Ok(response) => response,
        Err(e) => (e.status(), e.to_string()).into_response(),
    }
}

async fn serve(app: SurfaceProcess) -> (String, tokio::task::JoinHandle<()>) {
    let router = Router::new()
        .route("/agents/test/{*rest}", any(forward))
        .with_state(Arc::new(app));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, service).await.unwrap();
    });
    (base, server)
}

#[tokio::test]
async fn through_an_axum_server_events_stream_and_the_client_address_is_forwarded() {
    let (_pkg, app) = harness::rest_app().await;
    let (base, server) = serve(app).await;
    let client: Client<_, Body> = Client::builder(TokioExecutor::new()).build_http();

    let uri = format!("{base}{PREFIX}/echo/x?q=1").parse().unwrap();
    let response = client.get(uri).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let echo = json(response.map(Body::new)).await;
    assert_eq!(echo["query"], "q=1");
    assert_eq!(echo["headers"]["x-forwarded-for"], "127.0.0.1");
    assert_eq!(echo["headers"]["x-forwarded-prefix"], PREFIX);

    let uri = format!("{base}{PREFIX}/sse?n=3&gap_ms=300")
        .parse()
        .unwrap();
    let response = client.get(uri).await.unwrap();
    assert_streamed(&events(response.map(Body::new)).await, 3);
    server.abort();
}
