//! W3C Trace Context: accept a caller's `traceparent`, or start a trace, and hand the
//! worker a traceparent whose parent is this runtime's own span for the call. An
//! agent-to-agent call gets a child span of its caller's span.

/// The HTTP header carrying the context.
pub const HEADER: &str = "traceparent";

#[derive(Debug, Clone)]
pub struct TraceContext {
    pub trace_id: String,
    /// This runtime's span for the call; the worker sees it as the parent.
    pub span_id: String,
    /// The span this call's span belongs under: the HTTP caller's, or the calling agent's
    /// call for an agent-to-agent call; `None` at the root of a trace.
    pub parent_span_id: Option<String>,
    pub flags: String,
}

impl TraceContext {
    /// Continues the caller's trace when `header` is a valid `traceparent`, or starts one.
    pub fn from_traceparent(header: Option<&str>) -> TraceContext {
        let span_id = new_span_id();
        match header.and_then(parse) {
            Some((trace_id, parent, flags)) => TraceContext {
                trace_id,
                span_id,
                parent_span_id: Some(parent),
                flags,
            },
            None => TraceContext {
                trace_id: new_id(),
                span_id,
                parent_span_id: None,
                flags: "01".into(),
            },
        }
    }

    /// The context of a call made from within this one.
    pub fn child(&self) -> TraceContext {
        TraceContext {
            trace_id: self.trace_id.clone(),
            span_id: new_span_id(),
            parent_span_id: Some(self.span_id.clone()),
            flags: self.flags.clone(),
        }
    }

    /// The header value to pass on.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-{}", self.trace_id, self.span_id, self.flags)
    }
}

impl Default for TraceContext {
    fn default() -> Self {
        TraceContext::from_traceparent(None)
    }
}

/// 32 hex digits from a v4 UUID (122 random bits; never all zero).
fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// 16 hex digits: the first half of a v4 UUID (60 random bits and the version digit).
fn new_span_id() -> String {
    new_id()[..16].to_string()
}

/// `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`; all-zero ids are invalid.
fn parse(value: &str) -> Option<(String, String, String)> {
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
    valid.then(|| (trace.to_string(), parent.to_string(), flags.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_callers_trace_and_starts_a_new_span() {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let ctx = TraceContext::from_traceparent(Some(header));
        assert_eq!(ctx.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(ctx.span_id, "00f067aa0ba902b7");
        assert_eq!(ctx.parent_span_id.as_deref(), Some("00f067aa0ba902b7"));
        assert_eq!(ctx.span_id.len(), 16);
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
            let ctx = TraceContext::from_traceparent(Some(bad));
            assert_eq!(ctx.trace_id.len(), 32);
            assert_eq!(ctx.parent_span_id, None);
            assert_ne!(ctx.trace_id, "00000000000000000000000000000000");
        }
    }
}

#[cfg(test)]
mod child_tests {
    use super::*;

    #[test]
    fn a_child_span_stays_in_the_trace_under_its_parent() {
        let root = TraceContext::from_traceparent(None);
        let child = root.child();
        assert_eq!(child.trace_id, root.trace_id);
        assert_eq!(child.parent_span_id.as_deref(), Some(root.span_id.as_str()));
        assert_ne!(child.span_id, root.span_id);
        assert_eq!(
            child.traceparent(),
            format!("00-{}-{}-01", root.trace_id, child.span_id)
        );
    }
}

#[cfg(test)]
mod header_tests {
    use super::*;

    #[test]
    fn an_unsampled_callers_flags_are_kept_down_the_chain() {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        let ctx = TraceContext::from_traceparent(Some(header));
        assert_eq!(ctx.flags, "00");
        assert_eq!(ctx.child().flags, "00");
        assert!(ctx.traceparent().ends_with("-00"));
    }

    #[test]
    fn uppercase_hex_and_a_zero_parent_are_refused() {
        for bad in [
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            let ctx = TraceContext::from_traceparent(Some(bad));
            assert_eq!(ctx.parent_span_id, None, "{bad}");
            assert_eq!(ctx.flags, "01", "a new trace is sampled");
        }
    }

    #[test]
    fn surrounding_whitespace_is_ignored() {
        let header = "  00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ";
        let ctx = TraceContext::from_traceparent(Some(header));
        assert_eq!(ctx.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn new_traces_have_well_formed_distinct_ids() {
        let a = TraceContext::from_traceparent(None);
        let b = TraceContext::from_traceparent(None);
        assert_ne!(a.trace_id, b.trace_id);
        let reparsed = TraceContext::from_traceparent(Some(&a.traceparent()));
        assert_eq!(reparsed.trace_id, a.trace_id);
        assert_eq!(reparsed.parent_span_id.as_deref(), Some(a.span_id.as_str()));
    }
}
