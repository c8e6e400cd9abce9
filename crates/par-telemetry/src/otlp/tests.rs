//! Environment parsing and span encoding; sending is tested against a receiver in
//! `tests/otlp.rs`.

use std::collections::HashMap;
use std::time::{Duration, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message;

use super::config::{Compression, OtlpConfig, Protocol};
use super::encode::{self, Envelope};
use super::span::{AttrValue, CallSpan, SpanKind};

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn config(pairs: &[(&str, &str)]) -> OtlpConfig {
    OtlpConfig::from_env(&vars(pairs))
        .expect("valid settings")
        .expect("export on")
}

fn error(pairs: &[(&str, &str)]) -> String {
    OtlpConfig::from_env(&vars(pairs)).expect_err("a bad setting")
}

const BASE: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
const TRACES: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";

#[test]
fn off_without_an_endpoint() {
    assert!(OtlpConfig::from_env(&vars(&[])).unwrap().is_none());
    // Empty counts as unset.
    assert!(OtlpConfig::from_env(&vars(&[(BASE, " ")]))
        .unwrap()
        .is_none());
    // Settings other than the endpoint do not turn export on.
    let others = vars(&[
        ("OTEL_SERVICE_NAME", "x"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "a=b"),
    ]);
    assert!(OtlpConfig::from_env(&others).unwrap().is_none());
}

#[test]
fn disabled_by_sdk_disabled_or_exporter_none() {
    for off in [
        vec![(BASE, "http://c:4318"), ("OTEL_SDK_DISABLED", "TRUE")],
        vec![(BASE, "http://c:4318"), ("OTEL_TRACES_EXPORTER", "none")],
        vec![
            (BASE, "http://c:4318"),
            ("OTEL_TRACES_EXPORTER", "otlp, None"),
        ],
    ] {
        assert!(
            OtlpConfig::from_env(&vars(&off)).unwrap().is_none(),
            "{off:?}"
        );
    }
    // Not "true": enabled (the specification's boolean rule).
    let on = vars(&[(BASE, "http://c:4318"), ("OTEL_SDK_DISABLED", "yes")]);
    assert!(OtlpConfig::from_env(&on).unwrap().is_some());
}

#[test]
fn explicit_otlp_exporter_without_endpoint_uses_the_default() {
    let config = config(&[("OTEL_TRACES_EXPORTER", "otlp")]);
    assert_eq!(config.endpoint, "http://localhost:4318/v1/traces");
}

#[test]
fn unsupported_exporter_is_an_error() {
    let e = error(&[(BASE, "http://c:4318"), ("OTEL_TRACES_EXPORTER", "zipkin")]);
    assert!(
        e.contains("OTEL_TRACES_EXPORTER") && e.contains("zipkin"),
        "{e}"
    );
}

#[test]
fn base_endpoint_gets_v1_traces_appended() {
    let cases = [
        ("http://c:4318", "http://c:4318/v1/traces"),
        ("http://c:4318/", "http://c:4318/v1/traces"),
        ("https://c/otlp", "https://c/otlp/v1/traces"),
        ("https://c/otlp/", "https://c/otlp/v1/traces"),
        ("http://c:4318/a?x=1", "http://c:4318/a/v1/traces?x=1"),
    ];
    for (base, want) in cases {
        assert_eq!(config(&[(BASE, base)]).endpoint, want, "{base}");
    }
}

#[test]
fn traces_endpoint_is_used_as_is_and_wins() {
    let config = config(&[
        (BASE, "http://base:4318"),
        (TRACES, "http://t:9/custom/path"),
    ]);
    assert_eq!(config.endpoint, "http://t:9/custom/path");
    let root = self::config(&[(TRACES, "http://t:9")]);
    assert_eq!(root.endpoint, "http://t:9/");
}

#[test]
fn bad_endpoints_are_errors_that_name_the_variable() {
    let e = error(&[(TRACES, "not a url")]);
    assert!(e.starts_with(TRACES), "{e}");
    let e = error(&[(BASE, "ftp://c/")]);
    assert!(e.starts_with(BASE) && e.contains("http or https"), "{e}");
}

#[test]
fn protocols() {
    assert_eq!(
        config(&[(BASE, "http://c")]).protocol,
        Protocol::HttpProtobuf
    );
    let json = config(&[
        (BASE, "http://c"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
    ]);
    assert_eq!(json.protocol, Protocol::HttpJson);
    // The traces variable wins over the general one.
    let both = config(&[
        (BASE, "http://c"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
    ]);
    assert_eq!(both.protocol, Protocol::HttpProtobuf);
}

#[test]
fn grpc_is_refused_with_advice() {
    let e = error(&[
        (BASE, "http://c:4317"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
    ]);
    assert!(e.starts_with("OTEL_EXPORTER_OTLP_PROTOCOL"), "{e}");
    assert!(
        e.contains("not supported") && e.contains("http/protobuf"),
        "{e}"
    );
    let e = error(&[
        (BASE, "http://c"),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "thrift"),
    ]);
    assert!(e.starts_with("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"), "{e}");
}

#[test]
fn headers_are_percent_decoded_and_the_traces_list_replaces_the_general_one() {
    let config = config(&[
        (BASE, "http://c"),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "api-key=a%20b%2Cc , x-tenant = t1,",
        ),
    ]);
    assert_eq!(
        config.headers,
        vec![
            ("api-key".to_string(), "a b,c".to_string()),
            ("x-tenant".to_string(), "t1".to_string())
        ]
    );
    let specific = self::config(&[
        (BASE, "http://c"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "a=1"),
        ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "b=2"),
    ]);
    assert_eq!(specific.headers, vec![("b".to_string(), "2".to_string())]);
}

#[test]
fn bad_headers_are_errors_that_never_show_the_value() {
    let e = error(&[
        (BASE, "http://c"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "a=1,secret"),
    ]);
    assert!(e.contains("entry 2") && !e.contains("secret"), "{e}");
    let e = error(&[
        (BASE, "http://c"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "bad name=s3cret"),
    ]);
    assert!(e.contains("\"bad name\"") && !e.contains("s3cret"), "{e}");
    let e = error(&[
        (BASE, "http://c"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "k=s3cret%0A"),
    ]);
    assert!(
        e.contains("not a valid HTTP header value") && !e.contains("s3cret"),
        "{e}"
    );
    // Debug output of a config names headers without values.
    let c = config(&[
        (BASE, "http://c"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "k=s3cret"),
    ]);
    assert!(!format!("{c:?}").contains("s3cret"));
}

#[test]
fn timeouts_in_milliseconds() {
    assert_eq!(
        config(&[(BASE, "http://c")]).timeout,
        Duration::from_secs(10)
    );
    let general = config(&[(BASE, "http://c"), ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500")]);
    assert_eq!(general.timeout, Duration::from_millis(2500));
    let specific = config(&[
        (BASE, "http://c"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
        ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "700"),
    ]);
    assert_eq!(specific.timeout, Duration::from_millis(700));
    let e = error(&[(BASE, "http://c"), ("OTEL_EXPORTER_OTLP_TIMEOUT", "10s")]);
    assert!(
        e.starts_with("OTEL_EXPORTER_OTLP_TIMEOUT") && e.contains("milliseconds"),
        "{e}"
    );
    let e = error(&[
        (BASE, "http://c"),
        ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "0"),
    ]);
    assert!(e.starts_with("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"), "{e}");
}

#[test]
fn compression() {
    assert_eq!(config(&[(BASE, "http://c")]).compression, Compression::None);
    let gzip = config(&[
        (BASE, "http://c"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
    ]);
    assert_eq!(gzip.compression, Compression::Gzip);
    let e = error(&[
        (BASE, "http://c"),
        ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "zstd"),
    ]);
    assert!(
        e.starts_with("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION"),
        "{e}"
    );
}

#[test]
fn batch_settings() {
    let c = config(&[(BASE, "http://c")]);
    assert_eq!((c.max_queue_size, c.max_batch_size), (2048, 512));
    assert_eq!(c.schedule_delay, Duration::from_secs(5));
    let c = config(&[
        (BASE, "http://c"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "100"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "500"),
        ("OTEL_BSP_SCHEDULE_DELAY", "250"),
    ]);
    // The batch is clamped to the queue.
    assert_eq!((c.max_queue_size, c.max_batch_size), (100, 100));
    assert_eq!(c.schedule_delay, Duration::from_millis(250));
    let e = error(&[(BASE, "http://c"), ("OTEL_BSP_MAX_QUEUE_SIZE", "0")]);
    assert!(e.starts_with("OTEL_BSP_MAX_QUEUE_SIZE"), "{e}");
}

fn attr<'a>(resource: &'a [(String, String)], key: &str) -> Option<&'a str> {
    resource
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[test]
fn resource_service_name_precedence() {
    let c = config(&[(BASE, "http://c")]);
    assert_eq!(attr(&c.resource, "service.name"), Some("par"));
    assert_eq!(
        attr(&c.resource, "service.version"),
        Some(env!("CARGO_PKG_VERSION"))
    );

    let c = config(&[
        (BASE, "http://c"),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "service.name=from-attrs,deployment.environment=prod%20eu,service.version=9",
        ),
    ]);
    assert_eq!(attr(&c.resource, "service.name"), Some("from-attrs"));
    assert_eq!(attr(&c.resource, "deployment.environment"), Some("prod eu"));
    assert_eq!(attr(&c.resource, "service.version"), Some("9"));
    assert_eq!(
        c.resource
            .iter()
            .filter(|(k, _)| k == "service.name")
            .count(),
        1
    );

    let c = config(&[
        (BASE, "http://c"),
        ("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs"),
        ("OTEL_SERVICE_NAME", "from-name"),
    ]);
    assert_eq!(attr(&c.resource, "service.name"), Some("from-name"));
    assert_eq!(
        c.resource
            .iter()
            .filter(|(k, _)| k == "service.name")
            .count(),
        1
    );

    let e = error(&[(BASE, "http://c"), ("OTEL_RESOURCE_ATTRIBUTES", "a=1,=2")]);
    assert!(
        e.starts_with("OTEL_RESOURCE_ATTRIBUTES") && e.contains("empty key"),
        "{e}"
    );
}

fn call(error: Option<&str>) -> CallSpan {
    CallSpan {
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
        span_id: "00f067aa0ba902b7".into(),
        parent_span_id: Some("a3ce929d0e0e4736".into()),
        name: "invoke echo".into(),
        kind: SpanKind::Server,
        start: UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789),
        end: UNIX_EPOCH + Duration::from_nanos(1_700_000_000_223_456_789),
        attributes: vec![
            ("par.agent", AttrValue::from("echo")),
            ("http.response.status_code", AttrValue::Int(200)),
            ("par.ratio", AttrValue::F64(0.5)),
            ("par.stream", AttrValue::Bool(false)),
        ],
        error: error.map(str::to_string),
    }
}

#[test]
fn span_fields_map_to_the_wire() {
    let span = encode::span(call(Some("boom"))).unwrap();
    assert_eq!(
        hex::encode(&span.trace_id),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(hex::encode(&span.span_id), "00f067aa0ba902b7");
    assert_eq!(hex::encode(&span.parent_span_id), "a3ce929d0e0e4736");
    assert_eq!(span.kind, 2); // SPAN_KIND_SERVER
    assert_eq!(span.start_time_unix_nano, 1_700_000_000_123_456_789);
    assert_eq!(span.end_time_unix_nano, 1_700_000_000_223_456_789);
    let status = span.status.unwrap();
    assert_eq!((status.code, status.message.as_str()), (2, "boom"));
    let values: Vec<_> = span
        .attributes
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.clone().unwrap().value.unwrap()))
        .collect();
    assert_eq!(values[0], ("par.agent", Value::StringValue("echo".into())));
    assert_eq!(
        values[1],
        ("http.response.status_code", Value::IntValue(200))
    );
    assert_eq!(values[2], ("par.ratio", Value::DoubleValue(0.5)));
    assert_eq!(values[3], ("par.stream", Value::BoolValue(false)));

    let ok = encode::span(call(None)).unwrap();
    assert!(ok.status.is_none());
}

#[test]
fn root_internal_span_and_backwards_clock() {
    let mut c = call(None);
    c.parent_span_id = None;
    c.kind = SpanKind::Internal;
    c.end = c.start - Duration::from_secs(1);
    let span = encode::span(c).unwrap();
    assert!(span.parent_span_id.is_empty());
    assert_eq!(span.kind, 1); // SPAN_KIND_INTERNAL
    assert_eq!(span.end_time_unix_nano, span.start_time_unix_nano);
}

#[test]
fn malformed_ids_are_refused() {
    for (trace, span, parent) in [
        ("4bf92f3577b34da6", "00f067aa0ba902b7", None),
        ("00000000000000000000000000000000", "00f067aa0ba902b7", None),
        ("4bf92f3577b34da6a3ce929d0e0e4736", "zzf067aa0ba902b7", None),
        (
            "4bf92f3577b34da6a3ce929d0e0e4736",
            "00f067aa0ba902b7",
            Some("12"),
        ),
    ] {
        let mut c = call(None);
        c.trace_id = trace.into();
        c.span_id = span.into();
        c.parent_span_id = parent.map(str::to_string);
        assert!(encode::span(c).is_err(), "{trace} {span} {parent:?}");
    }
}

#[test]
fn bodies_decode_as_protobuf_json_and_gzip() {
    let envelope = Envelope::new(&[("service.name".into(), "par".into())]);
    let request = envelope.request(vec![encode::span(call(None)).unwrap()]);

    let proto = encode::body(&request, Protocol::HttpProtobuf, Compression::None);
    assert_eq!(
        ExportTraceServiceRequest::decode(proto.as_slice()).unwrap(),
        request
    );

    let json = encode::body(&request, Protocol::HttpJson, Compression::None);
    let text: serde_json::Value = serde_json::from_slice(&json).unwrap();
    // OTLP JSON: hex ids, integer enum, 64-bit times as strings, lowerCamelCase.
    let span = &text["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
    assert_eq!(span["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(span["spanId"], "00f067aa0ba902b7");
    assert_eq!(span["kind"], 2);
    assert_eq!(span["startTimeUnixNano"], "1700000000123456789");
    let back: ExportTraceServiceRequest = serde_json::from_slice(&json).unwrap();
    assert_eq!(back, request);

    let gz = encode::body(&request, Protocol::HttpProtobuf, Compression::Gzip);
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz.as_slice()), &mut raw).unwrap();
    assert_eq!(raw, proto);
}
