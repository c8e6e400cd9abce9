//! OTLP span export from `par serve`, configured only by the standard `OTEL_*` variables.
//!
//! The collector here is an in-process OTLP/HTTP receiver taking the JSON encoding
//! (`http/json`), so the test reads spans without protobuf code; the exporter's own tests
//! in par-telemetry cover the protobuf encoding against a real collector (rotel).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::post;
use serde_json::{json, Value};

use crate::harness::TestRuntime;

/// Every span the receiver got, flattened out of the OTLP envelopes.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<Value>>>);

impl Received {
    async fn start(&self) -> String {
        let store = self.0.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            post(move |body: axum::body::Bytes| {
                let store = store.clone();
                async move {
                    let request: Value = serde_json::from_slice(&body).unwrap();
                    let mut spans = store.lock().unwrap();
                    for resource in request["resourceSpans"].as_array().unwrap() {
                        for scope in resource["scopeSpans"].as_array().unwrap() {
                            spans.extend(scope["spans"].as_array().unwrap().iter().cloned());
                        }
                    }
                    "{}"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    async fn wait_for(&self, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let spans = self.0.lock().unwrap().clone();
            if spans.len() >= count || Instant::now() > deadline {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn attribute<'a>(span: &'a Value, key: &str) -> &'a Value {
    span["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| &a["value"])
        .unwrap_or(&Value::Null)
}

#[tokio::test]
async fn calls_and_the_calls_they_make_are_exported_as_spans() {
    let received = Received::default();
    let endpoint = received.start().await;
    let rt = TestRuntime::builder()
        .fixture("kit-minimal")
        .fixture("kit-caller")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("OTEL_SERVICE_NAME", "par-e2e")
        .start()
        .await;
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let incoming = "b7ad6b7169203331";
    let post = |traceparent: String, body: Value| {
        rt.client
            .post(rt.url("/agents/kit-caller/invoke"))
            .header("traceparent", traceparent)
            .header("x-request-id", "span-req")
            .body(body.to_string())
            .send()
    };
    let body = json!({"call": "mini-secret"});
    let r = post(format!("00-{trace_id}-{incoming}-01"), body.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let unsampled = post(format!("00-{}-{incoming}-00", "1".repeat(32)), body)
        .await
        .unwrap();
    assert_eq!(unsampled.status(), 200);
    let failing = json!({"call": "kit-minimal", "payload": {"raise": "x"}, "propagate": true});
    let r = post(format!("00-{}-{incoming}-01", "2".repeat(32)), failing)
        .await
        .unwrap();
    assert_eq!(r.status(), 500);

    let spans = received.wait_for(4).await;
    assert_eq!(
        spans.len(),
        4,
        "two per sampled call, none unsampled: {spans:#?}"
    );
    let in_trace =
        |id: &str| -> Vec<&Value> { spans.iter().filter(|s| s["traceId"] == id).collect() };
    let ok = in_trace(trace_id);
    let server = ok
        .iter()
        .find(|s| s["name"] == "invoke kit-caller")
        .unwrap();
    let nested = ok
        .iter()
        .find(|s| s["name"] == "invoke mini-secret")
        .unwrap();
    assert_eq!(server["parentSpanId"], incoming);
    assert_eq!(server["kind"], 2, "SPAN_KIND_SERVER");
    assert_eq!(nested["parentSpanId"], server["spanId"], "{nested}");
    assert_eq!(nested["kind"], 1, "SPAN_KIND_INTERNAL");
    assert_eq!(
        attribute(nested, "par.caller_agent")["stringValue"],
        "kit-caller"
    );
    assert_eq!(
        attribute(server, "par.request_id")["stringValue"],
        "span-req"
    );
    assert_eq!(attribute(server, "par.outcome")["stringValue"], "ok");

    let failed = in_trace(&"2".repeat(32));
    assert_eq!(failed.len(), 2, "{failed:#?}");
    for span in failed {
        assert_eq!(span["status"]["code"], 2, "STATUS_CODE_ERROR: {span}");
        assert_eq!(span["status"]["message"], "agent_error");
    }
    let text = rt.metrics().await;
    assert!(text.contains("par_otlp_spans_exported_total 4\n"), "{text}");
    assert!(text.contains("par_otlp_spans_dropped_total 0\n"), "{text}");
}
