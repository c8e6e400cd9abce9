//! Turning a raw request path into file-name segments, refusing anything that could
//! name a file outside the UI folder.

use percent_encoding::percent_decode_str;

/// A request path split into decoded segments.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct RequestPath<'a> {
    pub segments: Vec<String>,
    /// The raw path ended with `/` (a directory was asked for as such).
    pub trailing_slash: bool,
    /// The raw last segment, still encoded: a relative redirect target.
    pub last_raw: &'a str,
    pub query: Option<&'a str>,
}

impl RequestPath<'_> {
    /// Dot-files (`.env`, `.git/...`) are never served, whatever the UI folder holds;
    /// `.well-known` is the exception the web relies on.
    pub(super) fn is_hidden(&self) -> bool {
        self.segments
            .iter()
            .any(|s| s.starts_with('.') && s != ".well-known")
    }

    /// The last segment has a file extension: a missing asset, not a client-side route.
    pub(super) fn has_extension(&self) -> bool {
        self.segments
            .last()
            .and_then(|s| s.rsplit_once('.'))
            .is_some_and(|(stem, ext)| !stem.is_empty() && !ext.is_empty())
    }
}

/// Splits and percent-decodes `raw` (the part after the UI prefix, as sent). Refused
/// (the reason is returned): `.`/`..` segments in any encoding, backslashes, NUL and
/// other control characters, encoded slashes, invalid UTF-8.
pub(super) fn parse(raw: &str) -> Result<RequestPath<'_>, &'static str> {
    let (path, query) = match raw.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (raw, None),
    };
    let mut segments = Vec::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        segments.push(segment(part)?);
    }
    Ok(RequestPath {
        segments,
        trailing_slash: path.ends_with('/'),
        last_raw: path.rsplit('/').next().unwrap_or(""),
        query,
    })
}

fn segment(raw: &str) -> Result<String, &'static str> {
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| "path is not valid UTF-8")?;
    if decoded.contains(['/', '\\']) {
        return Err("path segments may not contain slashes or backslashes");
    }
    if decoded.chars().any(char::is_control) {
        return Err("path contains control characters");
    }
    if decoded == "." || decoded == ".." {
        return Err("path may not contain '.' or '..' segments");
    }
    Ok(decoded.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(raw: &str) -> Vec<String> {
        parse(raw).unwrap().segments
    }

    #[test]
    fn splits_and_decodes() {
        assert_eq!(segments("/a/b%20c.js"), ["a", "b c.js"]);
        assert_eq!(segments("//a///b/"), ["a", "b"]);
        assert!(segments("").is_empty());
        let p = parse("/docs/?x=1").unwrap();
        assert!(p.trailing_slash);
        assert_eq!(p.query, Some("x=1"));
        assert_eq!(parse("/docs").unwrap().last_raw, "docs");
    }

    #[test]
    fn refuses_traversal_in_every_spelling() {
        for raw in [
            "/../etc/passwd",
            "/a/..",
            "/%2e%2e/x",
            "/%2E%2e/x",
            "/.%2e/x",
            "/a%2f..%2fb",
            "/a\\..\\b",
            "/a%5c..%5cb",
            "/a%00.js",
            "/./a",
            "/%ff%fe",
            "/a%0a",
        ] {
            assert!(parse(raw).is_err(), "{raw} should be refused");
        }
    }

    #[test]
    fn hidden_and_extension() {
        assert!(parse("/.env").unwrap().is_hidden());
        assert!(parse("/a/.git/config").unwrap().is_hidden());
        assert!(!parse("/.well-known/x").unwrap().is_hidden());
        assert!(parse("/app.js").unwrap().has_extension());
        assert!(!parse("/settings/profile").unwrap().has_extension());
        assert!(!parse("/").unwrap().has_extension());
    }
}
