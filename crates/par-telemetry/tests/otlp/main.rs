//! OTLP trace export against receivers: the in-process one of `receiver.rs` (scripted
//! answers, exact request counts) and, when installed, a real third-party collector
//! (`rotel.rs`).

mod receiver;
mod rotel;

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use axum::http::StatusCode;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use par_telemetry::otlp::{AttrValue, CallSpan, OtlpExporter, SpanKind};
use receiver::{Received, Receiver};

pub const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
pub const PARENT_ID: &str = "00f067aa0ba902b7";

pub fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn start(pairs: &[(&str, &str)]) -> OtlpExporter {
    OtlpExporter::from_env(&vars(pairs))
        .expect("valid settings")
        .expect("export on")
}

/// A span with distinct, checkable values; `n` makes its span id unique.
pub fn call_span(n: u64) -> CallSpan {
    let start = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_700_000_000_000_000_000 + n);
    CallSpan {
        trace_id: TRACE_ID.into(),
        span_id: format!("{:016x}", 0xa000_0000_0000_0000 + n),
        parent_span_id: Some(PARENT_ID.into()),
        name: "invoke echo".into(),
        kind: SpanKind::Server,
        start,
        end: start + Duration::from_millis(42),
        attributes: vec![
            ("par.agent", AttrValue::from("echo")),
            ("http.response.status_code", AttrValue::Int(200)),
            ("par.duration_ratio", AttrValue::F64(0.25)),
            ("par.streamed", AttrValue::Bool(true)),
        ],
        error: None,
    }
}

pub fn spans(received: &[Received]) -> Vec<Span> {
    received
        .iter()
        .flat_map(|r| &r.request.resource_spans)
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| s.spans.clone())
        .collect()
}

pub fn attr(attributes: &[KeyValue], key: &str) -> Option<Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.clone())
        .and_then(|v| v.value)
}

fn string(value: &str) -> Option<Value> {
    Some(Value::StringValue(value.into()))
}

fn total_spans(received: &[Received]) -> usize {
    received.iter().map(Received::span_count).sum()
}

#[tokio::test]
async fn spans_arrive_complete_and_shutdown_flushes_them() {
    let receiver = Receiver::start(vec![]).await;
    let base = receiver.base_url();
    let exporter = start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &base),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "authorization=Bearer%20t0ken,x-tenant=acme",
        ),
        ("OTEL_SERVICE_NAME", "par-test"),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment=ci,host.name=h%2C1",
        ),
        // Only shutdown can send these: nothing else would before a minute.
        ("OTEL_BSP_SCHEDULE_DELAY", "60000"),
    ]);
    let server = call_span(1);
    let mut child = call_span(2);
    child.parent_span_id = Some(server.span_id.clone());
    child.name = "invoke echo-upper".into();
    child.kind = SpanKind::Internal;
    child.error = Some("agent_error: ValueError: bad input".into());
    exporter.export(server.clone());
    exporter.export(child.clone());

    let shutdown_at = std::time::Instant::now();
    exporter.shutdown(Duration::from_secs(5)).await;

    let received = receiver.received();
    assert_eq!(received.len(), 1);
    // Both spans in one request that arrived after shutdown began: shutdown sent them.
    assert_eq!(received[0].span_count(), 2);
    assert!(
        received[0].at >= shutdown_at,
        "sent before the delay or shutdown"
    );
    let request = &received[0];
    assert_eq!(request.path, "/v1/traces");
    assert_eq!(
        request.header("content-type"),
        Some("application/x-protobuf")
    );
    assert_eq!(request.header("authorization"), Some("Bearer t0ken"));
    assert_eq!(request.header("x-tenant"), Some("acme"));
    assert!(request
        .header("user-agent")
        .unwrap()
        .starts_with("par-otlp-exporter/"));

    let resource = request.request.resource_spans[0].resource.as_ref().unwrap();
    assert_eq!(
        attr(&resource.attributes, "service.name"),
        string("par-test")
    );
    assert_eq!(
        attr(&resource.attributes, "deployment.environment"),
        string("ci")
    );
    assert_eq!(attr(&resource.attributes, "host.name"), string("h,1"));

    let spans = spans(&received);
    assert_eq!(spans.len(), 2);
    let (s, c) = (&spans[0], &spans[1]);
    assert_eq!(hex::encode(&s.trace_id), TRACE_ID);
    assert_eq!(hex::encode(&s.span_id), server.span_id);
    assert_eq!(hex::encode(&s.parent_span_id), PARENT_ID);
    assert_eq!((s.name.as_str(), s.kind), ("invoke echo", 2));
    assert_eq!(s.start_time_unix_nano, 1_700_000_000_000_000_001);
    assert_eq!(s.end_time_unix_nano, 1_700_000_000_042_000_001);
    assert_eq!(attr(&s.attributes, "par.agent"), string("echo"));
    assert_eq!(
        attr(&s.attributes, "http.response.status_code"),
        Some(Value::IntValue(200))
    );
    assert_eq!(
        attr(&s.attributes, "par.duration_ratio"),
        Some(Value::DoubleValue(0.25))
    );
    assert_eq!(
        attr(&s.attributes, "par.streamed"),
        Some(Value::BoolValue(true))
    );
    assert!(s.status.is_none());

    assert_eq!(hex::encode(&c.parent_span_id), server.span_id);
    assert_eq!((c.name.as_str(), c.kind), ("invoke echo-upper", 1));
    let status = c.status.as_ref().unwrap();
    assert_eq!(status.code, 2);
    assert_eq!(status.message, "agent_error: ValueError: bad input");

    assert_eq!((exporter.exported(), exporter.dropped()), (2, 0));
    // After shutdown, spans are only counted.
    exporter.export(call_span(3));
    assert_eq!(exporter.dropped(), 1);
}

#[tokio::test]
async fn traces_endpoint_is_used_as_is_and_base_paths_get_v1_traces() {
    let receiver = Receiver::start(vec![]).await;
    let base = receiver.base_url();
    let cases = [
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            format!("{base}/custom/ingest"),
            "/custom/ingest",
        ),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("{base}/otlp/"),
            "/otlp/v1/traces",
        ),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", base.clone(), "/v1/traces"),
    ];
    for (i, (variable, url, path)) in cases.iter().enumerate() {
        let exporter = start(&[(variable, url)]);
        exporter.export(call_span(i as u64));
        exporter.shutdown(Duration::from_secs(5)).await;
        let received = receiver.received();
        assert_eq!(received[i].path, *path, "{variable}={url}");
    }
    // The traces variable wins over the base one.
    let exporter = start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9/"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &format!("{base}/t")),
    ]);
    exporter.export(call_span(9));
    exporter.shutdown(Duration::from_secs(5)).await;
    assert_eq!(receiver.received().last().unwrap().path, "/t");
}

#[tokio::test]
async fn http_json_with_gzip() {
    let receiver = Receiver::start(vec![]).await;
    let exporter = start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.base_url()),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
    ]);
    exporter.export(call_span(7));
    exporter.shutdown(Duration::from_secs(5)).await;
    let received = receiver.received();
    assert_eq!(received[0].header("content-type"), Some("application/json"));
    assert_eq!(received[0].header("content-encoding"), Some("gzip"));
    let span = &spans(&received)[0];
    assert_eq!(hex::encode(&span.trace_id), TRACE_ID);
    assert_eq!(hex::encode(&span.span_id), call_span(7).span_id);
    assert_eq!(span.start_time_unix_nano, 1_700_000_000_000_000_007);
    assert_eq!(
        attr(&span.attributes, "http.response.status_code"),
        Some(Value::IntValue(200))
    );
}

#[tokio::test]
async fn batches_by_size_then_by_interval() {
    let receiver = Receiver::start(vec![]).await;
    let exporter = start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.base_url()),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "2"),
        // Long enough that a descheduled test thread cannot split the first pair.
        ("OTEL_BSP_SCHEDULE_DELAY", "500"),
    ]);
    for n in 0..5 {
        exporter.export(call_span(n));
    }
    // Two full batches, then the fifth span on its own once the delay has passed; no
    // shutdown involved.
    let received = receiver
        .wait_for("three batches", |r| total_spans(r) == 5)
        .await;
    let sizes: Vec<usize> = received.iter().map(Received::span_count).collect();
    assert_eq!(sizes, [2, 2, 1]);
    exporter.shutdown(Duration::from_secs(5)).await;
    assert_eq!(exporter.exported(), 5);
}

#[tokio::test]
async fn one_retry_for_retryable_statuses_none_for_others() {
    // 503 then 200: delivered on the retry (Retry-After: 0 keeps the test fast).
    let receiver = Receiver::start(vec![(StatusCode::SERVICE_UNAVAILABLE, Some(0))]).await;
    let exporter = start(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.base_url())]);
    exporter.export(call_span(1));
    exporter.shutdown(Duration::from_secs(5)).await;
    assert_eq!(receiver.received().len(), 2);
    assert_eq!((exporter.exported(), exporter.dropped()), (1, 0));

    // 429 twice: one retry only, then the batch is dropped and counted.
    let receiver = Receiver::start(vec![
        (StatusCode::TOO_MANY_REQUESTS, Some(0)),
        (StatusCode::TOO_MANY_REQUESTS, Some(0)),
    ])
    .await;
    let exporter = start(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.base_url())]);
    exporter.export(call_span(1));
    exporter.export(call_span(2));
    exporter.shutdown(Duration::from_secs(5)).await;
    assert_eq!(receiver.received().len(), 2);
    assert_eq!((exporter.exported(), exporter.dropped()), (0, 2));

    // 400 is final: no retry.
    let receiver = Receiver::start(vec![(StatusCode::BAD_REQUEST, None)]).await;
    let exporter = start(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.base_url())]);
    exporter.export(call_span(1));
    exporter.shutdown(Duration::from_secs(5)).await;
    assert_eq!(receiver.received().len(), 1);
    assert_eq!((exporter.exported(), exporter.dropped()), (0, 1));
}

/// A port nobody listens on.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

#[tokio::test]
async fn down_collector_never_blocks_export_and_the_queue_bound_drops() {
    let exporter = start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &closed_port_url()),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "16"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4"),
        ("OTEL_BSP_SCHEDULE_DELAY", "1"),
    ]);
    let started = Instant::now();
    for n in 0..10_000 {
        exporter.export(call_span(n));
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "export blocked: {took:?}");
    // The queue holds 16 and the batcher at most one batch of 4 plus one in flight.
    assert!(
        exporter.dropped() >= 10_000 - 16 - 8,
        "dropped {}",
        exporter.dropped()
    );

    let started = Instant::now();
    exporter.shutdown(Duration::from_millis(500)).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "shutdown took {:?}",
        started.elapsed()
    );
    assert_eq!(exporter.exported(), 0);
}

#[tokio::test]
async fn shutdown_is_bounded_when_the_collector_hangs() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let exporter = start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &url),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "30000"),
    ]);
    exporter.export(call_span(1));
    let started = Instant::now();
    exporter.shutdown(Duration::from_millis(300)).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "shutdown took {took:?}");
    assert_eq!(exporter.exported(), 0);
}

#[test]
fn no_endpoint_means_off_and_bad_settings_are_clear_errors() {
    assert!(OtlpExporter::from_env(&vars(&[])).unwrap().is_none());
    assert!(OtlpExporter::from_env(&vars(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
        ("OTEL_SDK_DISABLED", "true"),
    ]))
    .unwrap()
    .is_none());
    let error = OtlpExporter::from_env(&vars(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
    ]))
    .unwrap_err();
    assert!(error.contains("grpc is not supported"), "{error}");
    assert!(error.contains("http/protobuf"), "{error}");
    let error = OtlpExporter::from_env(&vars(&[(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "localhost:4318",
    )]))
    .unwrap_err();
    assert!(
        error.starts_with("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
        "{error}"
    );
}
