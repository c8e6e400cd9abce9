//! W3C Trace Context: accept a caller's `traceparent`, or start a trace, and hand the
//! worker a traceparent whose parent is this runtime's own span.

use axum::http::HeaderMap;

pub const HEADER: &str = "traceparent";

#[derive(Debug, Clone)]
pub struct TraceContext {
    pub trace_id: String,
    /// This runtime's span for the call; the worker sees it as the parent.
    pub span_id: String,
    pub flags: String,
}

impl TraceContext {
    pub fn from_headers(headers: &HeaderMap) -> TraceContext {
        let incoming = headers
            .get(HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse);
        let span_id = new_id()[..16].to_string();
        match incoming {
            Some((trace_id, flags)) => TraceContext {
                trace_id,
                span_id,
                flags,
            },
            None => TraceContext {
                trace_id: new_id(),
                span_id,
                flags: "01".into(),
            },
        }
    }

    /// The header value to pass on.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-{}", self.trace_id, self.span_id, self.flags)
    }
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`; all-zero ids are invalid.
fn parse(value: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = value.trim().split('-').collect();
    let [version, trace, parent, flags] = parts.as_slice() else {
        return None;
    };
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let valid = *version == "00"
        && hex(trace, 32)
        && hex(parent, 16)
        && hex(flags, 2)
        && trace.bytes().any(|b| b != b'0')
        && parent.bytes().any(|b| b != b'0');
    valid.then(|| (trace.to_string(), flags.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_callers_trace_and_starts_a_new_span() {
        let mut headers = HeaderMap::new();
        headers.insert(
            HEADER,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        let ctx = TraceContext::from_headers(&headers);
        assert_eq!(ctx.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(ctx.span_id, "00f067aa0ba902b7");
        assert!(ctx
            .traceparent()
            .starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
    }

    #[test]
    fn invalid_headers_start_a_new_trace() {
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-XYZ-00f067aa0ba902b7-01",
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(HEADER, bad.parse().unwrap());
            let ctx = TraceContext::from_headers(&headers);
            assert_eq!(ctx.trace_id.len(), 32);
            assert_ne!(ctx.trace_id, "00000000000000000000000000000000");
        }
    }
}
