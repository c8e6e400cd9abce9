//! Validators (ETag, Last-Modified) for a file and the conditional-GET decision.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::header::{self, HeaderMap};

pub(super) struct Validators {
    pub etag: String,
    /// Whole seconds: HTTP dates have no finer resolution.
    pub modified: Option<SystemTime>,
}

impl Validators {
    /// From size and modification time: cheap, and the UI folder is immutable once
    /// extracted, so they change exactly when the content does.
    pub(super) fn of(metadata: &std::fs::Metadata) -> Validators {
        let since_epoch = metadata
            .modified()
            .ok()
            .and_then(|m| m.duration_since(UNIX_EPOCH).ok());
        let nanos = since_epoch.map_or(0, |d| d.as_nanos());
        Validators {
            etag: format!("\"{:x}-{:x}\"", metadata.len(), nanos),
            modified: since_epoch.map(|d| UNIX_EPOCH + Duration::from_secs(d.as_secs())),
        }
    }

    pub(super) fn last_modified(&self) -> Option<String> {
        self.modified.map(httpdate::fmt_http_date)
    }

    /// True when the client's copy is current (answer 304). `If-None-Match` wins over
    /// `If-Modified-Since` when both are sent (RFC 9110 13.2.2).
    pub(super) fn not_modified(&self, headers: &HeaderMap) -> bool {
        if headers.contains_key(header::IF_NONE_MATCH) {
            return headers
                .get_all(header::IF_NONE_MATCH)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .any(|tag| self.matches(tag.trim()));
        }
        let since = headers
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok());
        match (since, self.modified) {
            (Some(since), Some(modified)) => modified <= since,
            _ => false,
        }
    }

    /// Weak comparison, as `If-None-Match` requires.
    fn matches(&self, tag: &str) -> bool {
        tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == self.etag
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn validators() -> Validators {
        Validators {
            etag: "\"10-abc\"".into(),
            modified: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
        }
    }

    fn with(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn etag_matching() {
        let v = validators();
        assert!(v.not_modified(&with(header::IF_NONE_MATCH, "\"10-abc\"")));
        assert!(v.not_modified(&with(header::IF_NONE_MATCH, "\"x\", W/\"10-abc\"")));
        assert!(v.not_modified(&with(header::IF_NONE_MATCH, "*")));
        assert!(!v.not_modified(&with(header::IF_NONE_MATCH, "\"10-abd\"")));
        assert!(!v.not_modified(&HeaderMap::new()));
    }

    #[test]
    fn modified_since() {
        let v = validators();
        let date = v.last_modified().unwrap();
        assert!(v.not_modified(&with(header::IF_MODIFIED_SINCE, &date)));
        let earlier = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(1_600_000_000));
        assert!(!v.not_modified(&with(header::IF_MODIFIED_SINCE, &earlier)));
        assert!(!v.not_modified(&with(header::IF_MODIFIED_SINCE, "garbage")));
        let mut both = with(header::IF_MODIFIED_SINCE, &date);
        both.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        assert!(!v.not_modified(&both), "If-None-Match takes precedence");
    }
}
