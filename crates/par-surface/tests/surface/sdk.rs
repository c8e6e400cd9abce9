//! The pixell-sdk fixture's `http_server` ASGI app: agent card and JSON-RPC.

use axum::http::StatusCode;
use par_surface::SurfaceMode;

use crate::harness::{self, call, json, request};

#[tokio::test]
async fn agent_card_and_json_rpc() {
    let pkg = harness::extract("sdk-http");
    let app = harness::start(&pkg, SurfaceMode::Asgi, "src.app:app").await;

    let card = call(&app, "GET", "/.well-known/agent.json").await;
    assert_eq!(card.status(), StatusCode::OK);
    assert_eq!(json(card).await["name"], "sdk-http");

    let rpc =
        r#"{"jsonrpc":"2.0","id":7,"method":"message/send","params":{"a":[1,true,null],"s":"é"}}"#;
    let mut req = request("POST", "/agents/sdk-http", rpc);
    req.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    let response = app.proxy(req, "/").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let answer = json(response).await;
    assert_eq!(answer["id"], 7);
    assert_eq!(answer["result"]["method"], "message/send");
    assert_eq!(
        answer["result"]["echo"],
        serde_json::json!({"a": [1, true, null], "s": "é"})
    );

    let bad = app
        .proxy(request("POST", "/", "{not json"), "/")
        .await
        .unwrap();
    assert_eq!(json(bad).await["error"]["code"], -32700);

    let missing = call(&app, "GET", "/nope").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn app_factories_and_server_objects_are_served() {
    let pkg = harness::extract("sdk-http");
    for entry in ["par_test_shapes:create_app", "par_test_shapes:server"] {
        let app = harness::start(&pkg, SurfaceMode::Asgi, entry).await;
        let response = call(&app, "GET", "/x").await;
        assert_eq!(
            json(response).await["served_by"],
            "par_test_shapes",
            "{entry}"
        );
    }
}
