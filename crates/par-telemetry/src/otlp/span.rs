//! What the runtime hands the exporter: one finished call, in the runtime's own terms
//! (hex ids as carried in `traceparent`, wall-clock times), not the wire format.

use std::time::SystemTime;

/// The span's role, as OTLP `Span.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    /// An HTTP call the runtime served.
    Server,
    /// A call the runtime made to another service.
    Client,
    /// Work inside the runtime, such as an agent-to-agent call.
    Internal,
}

/// An attribute value; OTLP also has arrays and maps, which no call attribute needs.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Str(String),
    Int(i64),
    F64(f64),
    Bool(bool),
}

impl From<&str> for AttrValue {
    fn from(value: &str) -> Self {
        AttrValue::Str(value.to_string())
    }
}

impl From<String> for AttrValue {
    fn from(value: String) -> Self {
        AttrValue::Str(value)
    }
}

impl From<i64> for AttrValue {
    fn from(value: i64) -> Self {
        AttrValue::Int(value)
    }
}

impl From<f64> for AttrValue {
    fn from(value: f64) -> Self {
        AttrValue::F64(value)
    }
}

impl From<bool> for AttrValue {
    fn from(value: bool) -> Self {
        AttrValue::Bool(value)
    }
}

/// One finished call. Ids are lowercase hex as in W3C `traceparent`; a span whose ids are
/// not valid (wrong length, not hex, all zero) is dropped and counted, never sent.
#[derive(Debug, Clone)]
pub struct CallSpan {
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits: the runtime's own span for the call.
    pub span_id: String,
    /// The caller's span (16 hex digits), when the call carried a `traceparent`.
    pub parent_span_id: Option<String>,
    /// For example `invoke echo`.
    pub name: String,
    pub kind: SpanKind,
    pub start: SystemTime,
    pub end: SystemTime,
    pub attributes: Vec<(&'static str, AttrValue)>,
    /// `Some(message)` sets the span status to ERROR with that message; `None` leaves it
    /// unset, as the semantic conventions ask for successful server spans.
    pub error: Option<String>,
}
