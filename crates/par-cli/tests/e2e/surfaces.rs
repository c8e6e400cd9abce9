//! A package's REST surface, pixell-sdk ASGI app and UI, through PAR.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::TestRuntime;

#[tokio::test]
async fn rest_surface_and_ui_of_a_kit_package() {
    let rt = TestRuntime::builder().fixture("kit-rest").start().await;
    let report = rt.package_report("kit-rest.apkg").await;
    assert_eq!(report["state"], "ready", "{report}");
    let r = rt
        .client
        .get(rt.url("/agents/kit-rest/api/hello?x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"hello": "rest"}));
    let r = rt
        .client
        .get(rt.url("/agents/kit-rest/api/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "the app's own 404 passes through");

    let r = rt
        .client
        .get(rt.url("/agents/kit-rest/ui/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let etag = r.headers()["etag"].clone();
    let r = rt
        .client
        .get(rt.url("/agents/kit-rest/ui/app.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("javascript"));
    let r = rt
        .client
        .get(rt.url("/agents/kit-rest/ui/"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let r = rt
        .client
        .get(rt.url("/agents/kit-rest/ui/some/client/route"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "client-side routes get index.html");
    for attack in [
        "/agents/kit-rest/ui/%2e%2e/agent.yaml",
        "/agents/kit-rest/ui/..%2f.env",
        "/agents/kit-rest/ui/.env",
    ] {
        let r = rt.client.get(rt.url(attack)).send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert!(status == 404 || status == 400, "{attack}: {status}");
        assert!(
            !text.contains("kit-rest") || !text.contains("entrypoint"),
            "{attack} leaked the manifest"
        );
    }
    // The package's invoke surface still works beside its app.
    assert_eq!(rt.invoke("kit-rest", json!({})).await.0, 200);
}

#[tokio::test]
async fn sdk_asgi_app_json_rpc_agent_card_and_sse() {
    let rt = TestRuntime::builder().fixture("sdk-http").start().await;
    let (status, card) = rt.get("/agents/sdk-http/.well-known/agent.json").await;
    assert_eq!(status, 200, "{card}");
    assert_card(&card);
    let rpc = json!({"jsonrpc": "2.0", "id": 7, "method": "message/send", "params": {"q": "hi"}});
    let (status, reply) = rt.post_raw("/agents/sdk-http", rpc.to_string()).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["id"], 7);
    assert_eq!(reply["result"]["echo"], json!({"q": "hi"}));

    let started = Instant::now();
    let mut r = rt
        .client
        .get(rt.url("/agents/sdk-http/stream?n=3&gap_ms=600"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let first = r.chunk().await.unwrap().unwrap();
    assert!(
        String::from_utf8_lossy(&first).contains("\"i\": 0"),
        "{first:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "the first event was buffered"
    );
    let rest = r.text().await.unwrap();
    assert!(rest.contains("\"i\": 2"), "{rest}");
}

#[tokio::test]
async fn a_dead_app_is_restarted_on_the_next_request() {
    let rt = TestRuntime::builder().fixture("sdk-http").start().await;
    let (status, card) = rt.get("/agents/sdk-http/.well-known/agent.json").await;
    assert_eq!(status, 200, "{card}");
    assert_card(&card);
    let pid = rt.package_report("sdk-http.apkg").await["app_pid"]
        .as_u64()
        .unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // The runtime has seen its app exit (the report names no live app process).
    crate::harness::wait_until(
        "the app's exit noticed",
        Duration::from_secs(10),
        || async {
            let report = rt.package_report("sdk-http.apkg").await;
            report["app_pid"].is_null().then_some(())
        },
    )
    .await;
    let (status, body) = rt.get("/agents/sdk-http/.well-known/agent.json").await;
    assert_eq!(status, 200, "{body}");
    assert_card(&body);
    let new_pid = rt.package_report("sdk-http.apkg").await["app_pid"]
        .as_u64()
        .unwrap();
    assert_ne!(new_pid, pid);
}

#[tokio::test]
async fn packages_without_surfaces_say_so() {
    let rt = TestRuntime::builder().fixture("kit-minimal").start().await;
    let (status, body) = rt.get("/agents/kit-minimal/api/x").await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "not_found");
    let (status, _) = rt.get("/agents/kit-minimal/ui/").await;
    assert_eq!(status, 404);
    let (status, body) = rt.get("/agents/nobody/api/x").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("agent_not_found"))
    );
}

#[tokio::test]
async fn a_pixell_init_scaffold_serves_its_handler_rest_route_and_ui() {
    let rt = TestRuntime::builder()
        .fixture("init-scaffold")
        .start()
        .await;
    let (status, reply) = rt.invoke("init-scaffold", json!({"q": 1})).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["data"]["message"], "Hello from handler");
    assert_eq!(reply["data"]["received"], json!({"q": 1}));
    let (status, hello) = rt.get("/agents/init-scaffold/api/hello").await;
    assert_eq!(
        (status, hello),
        (200, json!({"message": "Hello from REST"}))
    );
    for path in [
        "/agents/init-scaffold/ui/",
        "/agents/init-scaffold/ui/some/client/route",
    ] {
        let r = rt.client.get(rt.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        assert!(r.text().await.unwrap().contains("<h1>Pixell Agent UI</h1>"));
    }
}

/// The card the sdk-http app serves: its own JSON, passed through unchanged.
fn assert_card(card: &serde_json::Value) {
    assert_eq!(card["name"], "sdk-http", "{card}");
    assert_eq!(card["version"], "1.0.0", "{card}");
    assert_eq!(
        card["description"], "Fixture agent serving a pixell-sdk http_server ASGI app",
        "{card}"
    );
}
