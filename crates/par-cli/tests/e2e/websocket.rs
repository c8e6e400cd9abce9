//! WebSocket upgrades through a package's HTTP app (kit-rest's `/api/ws` echo, served by
//! uvicorn behind PAR's proxy), with a real client: authenticated like every surface
//! request, credentials stripped, the caller's identity in `x-par-caller-*`, frames relayed
//! both ways, and closed after the idle timeout.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::auth::sha256_hex;
use crate::harness::TestRuntime;

const POLICY: &str = "[[grant]]\nrole = \"rest-user\"\ninvoke = [\"kit-rest\"]\n";
const KEY: &str = "ws-key-1";

async fn kit_rest_with_api_key(extra: &[&str]) -> (TestRuntime, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let keys = dir.path().join("keys.toml");
    let entry = format!(
        "[[key]]\nname = \"ws\"\nsha256 = \"{}\"\nroles = [\"rest-user\"]\n",
        sha256_hex(KEY)
    );
    std::fs::write(&keys, entry).unwrap();
    let rt = TestRuntime::builder()
        .fixture("kit-rest")
        .args(&["--auth", "api-key"])
        .args(&["--policy", policy.to_str().unwrap()])
        .args(&["--api-keys", keys.to_str().unwrap()])
        .args(extra)
        .start()
        .await;
    (rt, dir)
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(rt: &TestRuntime, key: Option<&str>) -> Result<Socket, WsError> {
    let url = format!("ws://{}/agents/kit-rest/api/ws", rt.addr());
    let mut request = url.into_client_request().unwrap();
    if let Some(key) = key {
        request
            .headers_mut()
            .insert("x-api-key", key.parse().unwrap());
        request
            .headers_mut()
            .insert("x-par-caller-subject", "forged".parse().unwrap());
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(socket, _)| socket)
}

/// The next text message, with a deadline so a broken relay fails instead of hanging.
async fn next_text(socket: &mut Socket) -> String {
    let next = tokio::time::timeout(Duration::from_secs(30), socket.next()).await;
    match next {
        Ok(Some(Ok(Message::Text(text)))) => text.to_string(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

#[tokio::test]
async fn a_websocket_reaches_the_package_app_and_echoes_both_ways() {
    let (rt, _dir) = kit_rest_with_api_key(&[]).await;
    let mut socket = connect(&rt, Some(KEY))
        .await
        .expect("the upgrade is accepted");
    let hello: Value = serde_json::from_str(&next_text(&mut socket).await).unwrap();
    let headers = hello["headers"].as_object().unwrap();
    let seen = serde_json::to_string(headers).unwrap();
    assert!(!seen.contains(KEY), "the key reached the app: {seen}");
    assert!(!headers.contains_key("x-api-key"), "{seen}");
    assert_eq!(headers["x-par-caller-subject"], "api-key:ws", "{seen}");
    assert_eq!(headers["x-par-caller-roles"], "rest-user", "{seen}");
    assert_eq!(
        headers["upgrade"]
            .as_str()
            .map(str::to_lowercase)
            .as_deref(),
        Some("websocket")
    );
    for i in 0..3 {
        let text = format!("message {i} {}", "x".repeat(i * 1000));
        socket.send(Message::text(text.clone())).await.unwrap();
        assert_eq!(next_text(&mut socket).await, format!("echo:{text}"));
    }
    socket.close(None).await.unwrap();
    // The runtime still serves ordinary requests to the same app after the relay ends.
    let r = rt
        .client
        .get(rt.url("/agents/kit-rest/api/hello"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn an_unauthenticated_websocket_upgrade_is_refused_401() {
    let (rt, _dir) = kit_rest_with_api_key(&[]).await;
    for key in [None, Some("wrong-key")] {
        match connect(&rt, key).await {
            Err(WsError::Http(response)) => {
                assert_eq!(response.status(), 401, "with {key:?}");
                let body: Value =
                    serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
                assert_eq!(body["code"], "unauthorized", "{body}");
            }
            other => panic!("with {key:?}: expected 401, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn an_idle_websocket_is_closed_after_the_idle_timeout() {
    let (rt, _dir) = kit_rest_with_api_key(&["--websocket-idle-timeout", "1"]).await;
    let mut socket = connect(&rt, Some(KEY))
        .await
        .expect("the upgrade is accepted");
    next_text(&mut socket).await;
    // Say nothing: the relay must close the connection on its own.
    match tokio::time::timeout(Duration::from_secs(30), socket.next()).await {
        Err(_) => panic!("the idle websocket was not closed"),
        Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => {}
        Ok(Some(Ok(other))) => panic!("unexpected message {other:?}"),
    }
}
