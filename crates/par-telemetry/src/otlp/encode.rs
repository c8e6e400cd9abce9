//! From [`CallSpan`]s to an OTLP request body, with the official generated types.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use flate2::write::GzEncoder;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span, status, ResourceSpans, ScopeSpans, Span, Status,
};
use prost::Message;

use super::config::{Compression, Protocol};
use super::span::{AttrValue, CallSpan, SpanKind};

/// The resource (built once) and the instrumentation scope every request carries.
#[derive(Debug, Clone)]
pub(crate) struct Envelope {
    resource: Resource,
    scope: InstrumentationScope,
}

impl Envelope {
    pub(crate) fn new(resource: &[(String, String)]) -> Envelope {
        let attributes = resource
            .iter()
            .map(|(k, v)| key_value(k, AttrValue::Str(v.clone())))
            .collect();
        Envelope {
            resource: Resource {
                attributes,
                ..Default::default()
            },
            scope: InstrumentationScope {
                name: "par".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                ..Default::default()
            },
        }
    }

    /// One request holding `spans` under this resource and scope.
    pub(crate) fn request(&self, spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(self.resource.clone()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(self.scope.clone()),
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    }
}

/// The wire span, or why it cannot be sent (an id that is not valid hex of the right size).
pub(crate) fn span(call: CallSpan) -> Result<Span, &'static str> {
    let trace_id = id(&call.trace_id, 16).ok_or("trace id is not 32 hex digits")?;
    let span_id = id(&call.span_id, 8).ok_or("span id is not 16 hex digits")?;
    let parent_span_id = match &call.parent_span_id {
        Some(parent) => id(parent, 8).ok_or("parent span id is not 16 hex digits")?,
        None => Vec::new(),
    };
    let start = unix_nanos(call.start);
    // A clock stepped backwards must not produce a span that ends before it starts.
    let end = unix_nanos(call.end).max(start);
    Ok(Span {
        trace_id,
        span_id,
        parent_span_id,
        name: call.name,
        kind: kind(call.kind) as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes: call
            .attributes
            .into_iter()
            .map(|(k, v)| key_value(k, v))
            .collect(),
        status: call.error.map(|message| Status {
            message,
            code: status::StatusCode::Error as i32,
        }),
        ..Default::default()
    })
}

/// The body to POST: protobuf or OTLP JSON, gzipped when configured.
pub(crate) fn body(
    request: &ExportTraceServiceRequest,
    protocol: Protocol,
    compression: Compression,
) -> Vec<u8> {
    let raw = match protocol {
        Protocol::HttpProtobuf => request.encode_to_vec(),
        // The generated types' serde mapping is OTLP's JSON encoding (hex ids, integer
        // enums, 64-bit integers as strings); serialising them cannot fail.
        Protocol::HttpJson => serde_json::to_vec(request).unwrap_or_default(),
    };
    match compression {
        Compression::None => raw,
        Compression::Gzip => gzip(&raw),
    }
}

fn gzip(raw: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(raw.len() / 4), Default::default());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(raw);
    encoder.finish().unwrap_or_default()
}

fn kind(kind: SpanKind) -> span::SpanKind {
    match kind {
        SpanKind::Server => span::SpanKind::Server,
        SpanKind::Client => span::SpanKind::Client,
        SpanKind::Internal => span::SpanKind::Internal,
    }
}

fn key_value(key: &str, value: AttrValue) -> KeyValue {
    let value = match value {
        AttrValue::Str(s) => any_value::Value::StringValue(s),
        AttrValue::Int(i) => any_value::Value::IntValue(i),
        AttrValue::F64(f) => any_value::Value::DoubleValue(f),
        AttrValue::Bool(b) => any_value::Value::BoolValue(b),
    };
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

/// `bytes` bytes from lowercase or uppercase hex; all-zero ids are invalid in W3C and OTLP.
fn id(hex_id: &str, bytes: usize) -> Option<Vec<u8>> {
    let decoded = hex::decode(hex_id).ok()?;
    (decoded.len() == bytes && decoded.iter().any(|&b| b != 0)).then_some(decoded)
}

fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
