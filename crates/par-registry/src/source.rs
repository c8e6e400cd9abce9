//! Package sources: what `par serve SOURCE`, `PACKAGES_URLS` and index entries name.
//! Parsing is purely syntactic; whether a source may be used (plain HTTP to a remote
//! host, for instance) is decided by the fetcher's configuration.

use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use url::Url;

use crate::error::SourceError;
use crate::redact::redact_url;

/// Where bytes live.
#[derive(Clone, PartialEq, Eq)]
pub enum SourceKind {
    Local(PathBuf),
    Http(Url),
    S3 { bucket: String, key: String },
}

/// A package source: its location, the digest it must have, and where its signature is.
#[derive(Clone, PartialEq, Eq)]
pub struct Source {
    pub kind: SourceKind,
    /// Lowercase hex; the bytes must match before anything else happens.
    pub expected_sha256: Option<String>,
    /// An explicit signature location; without one, `<location>.sig` and `.asc` are tried.
    pub signature: Option<SignatureRef>,
    /// What logs and errors show: the location with credentials redacted, prefixed by the
    /// package name when the source came from an index entry.
    pub display: String,
}

/// Where a detached signature lives.
#[derive(Clone, PartialEq, Eq)]
pub struct SignatureRef {
    pub kind: SourceKind,
    pub display: String,
}

/// Parses `path`, `https://...`, `http://...` or `s3://bucket/key`, each optionally
/// followed by `#sha256=<64 hex>`.
pub fn parse_source(text: &str) -> Result<Source, SourceError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(SourceError::Empty);
    }
    let (location, expected_sha256) = split_digest(text)?;
    let kind = parse_location(location)?;
    let display = kind.display();
    Ok(Source {
        kind,
        expected_sha256,
        signature: None,
        display,
    })
}

/// Parses a location without a digest suffix (used for signatures and index entries).
pub fn parse_location(text: &str) -> Result<SourceKind, SourceError> {
    let invalid = |problem: &str| SourceError::Invalid {
        source_text: shown(text),
        problem: problem.to_owned(),
    };
    if text.is_empty() {
        return Err(SourceError::Empty);
    }
    if let Some(rest) = text.strip_prefix("s3://") {
        let (bucket, key) = rest
            .split_once('/')
            .ok_or_else(|| invalid("expected s3://bucket/key"))?;
        if bucket.is_empty() || key.is_empty() {
            return Err(invalid("expected s3://bucket/key"));
        }
        return Ok(SourceKind::S3 {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        });
    }
    if text.starts_with("http://") || text.starts_with("https://") {
        let url = Url::parse(text).map_err(|e| invalid(&e.to_string()))?;
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("URL has no host"));
        }
        return Ok(SourceKind::Http(url));
    }
    if text.contains("://") {
        return Err(invalid(
            "unsupported scheme (use a path, https://, http:// or s3://)",
        ));
    }
    Ok(SourceKind::Local(PathBuf::from(text)))
}

/// Splits a trailing `#sha256=<hex>` off a source string.
fn split_digest(text: &str) -> Result<(&str, Option<String>), SourceError> {
    let Some((location, digest)) = text.rsplit_once("#sha256=") else {
        return Ok((text, None));
    };
    if !is_sha256_hex(digest) {
        return Err(SourceError::BadDigest {
            source_text: shown(location),
            digest: digest.to_owned(),
        });
    }
    Ok((location, Some(digest.to_ascii_lowercase())))
}

/// A file-name-safe key for any identity string.
pub(crate) fn key_for(identity: &str) -> String {
    hex::encode(Sha256::digest(identity.as_bytes()))
}

/// 64 hex digits, either case.
pub(crate) fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A source string as it may appear in an error: URLs redacted.
fn shown(text: &str) -> String {
    match Url::parse(text) {
        Ok(url) if url.scheme().starts_with("http") => redact_url(&url),
        _ => text.to_owned(),
    }
}

impl SourceKind {
    /// The location with credentials and query values redacted.
    pub fn display(&self) -> String {
        match self {
            Self::Local(path) => path.display().to_string(),
            Self::Http(url) => redact_url(url),
            Self::S3 { bucket, key } => format!("s3://{bucket}/{key}"),
        }
    }

    /// A stable identity for locks and memos (unredacted, never shown).
    pub(crate) fn identity(&self) -> String {
        match self {
            Self::Local(path) => format!("file:{}", absolute(path).display()),
            Self::Http(url) => url.as_str().to_owned(),
            Self::S3 { bucket, key } => format!("s3://{bucket}/{key}"),
        }
    }

    /// A file-name-safe key derived from [`SourceKind::identity`].
    pub(crate) fn key(&self) -> String {
        key_for(&self.identity())
    }

    /// The same location with `suffix` appended to its path (`x.apkg` → `x.apkg.sig`).
    pub(crate) fn with_suffix(&self, suffix: &str) -> SourceKind {
        match self {
            Self::Local(path) => {
                let mut name = path.as_os_str().to_owned();
                name.push(suffix);
                Self::Local(PathBuf::from(name))
            }
            Self::Http(url) => {
                let mut url = url.clone();
                let path = format!("{}{suffix}", url.path());
                url.set_path(&path);
                Self::Http(url)
            }
            Self::S3 { bucket, key } => Self::S3 {
                bucket: bucket.clone(),
                key: format!("{key}{suffix}"),
            },
        }
    }
}

impl SignatureRef {
    pub fn new(kind: SourceKind) -> Self {
        let display = kind.display();
        Self { kind, display }
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

// Debug shows only redacted forms: sources end up in logs through `{:?}` too.
impl fmt::Debug for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.display())
    }
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source")
            .field("location", &self.display)
            .field("expected_sha256", &self.expected_sha256)
            .field("signature", &self.signature)
            .finish()
    }
}

impl fmt::Debug for SignatureRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.display)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn parses_each_kind() {
        let s = parse_source("s3://bucket/dir/pkg.apkg").unwrap();
        assert_eq!(
            s.kind,
            SourceKind::S3 {
                bucket: "bucket".into(),
                key: "dir/pkg.apkg".into()
            }
        );
        let s = parse_source("https://example.com/p.apkg").unwrap();
        assert!(matches!(s.kind, SourceKind::Http(_)));
        let s = parse_source("./pkgs/p.apkg").unwrap();
        assert_eq!(s.kind, SourceKind::Local("./pkgs/p.apkg".into()));
    }

    #[test]
    fn digest_suffix_is_split_and_lowercased() {
        let upper = HEX.to_ascii_uppercase();
        let s = parse_source(&format!("https://example.com/p.apkg#sha256={upper}")).unwrap();
        assert_eq!(s.expected_sha256.as_deref(), Some(HEX));
        assert_eq!(s.display, "https://example.com/p.apkg");
    }

    #[test]
    fn rejects_bad_digests_and_schemes() {
        assert!(matches!(
            parse_source("p.apkg#sha256=abc"),
            Err(SourceError::BadDigest { .. })
        ));
        assert!(parse_source("ftp://example.com/p.apkg").is_err());
        assert!(parse_source("s3://bucket").is_err());
        assert!(parse_source("s3:///key").is_err());
        assert!(parse_source("  ").is_err());
    }

    #[test]
    fn display_redacts_credentials() {
        let s = parse_source("https://u:secret@example.com/p.apkg?sig=xyz").unwrap();
        assert!(!s.display.contains("secret"));
        assert!(!s.display.contains("xyz"));
        assert!(!format!("{s:?}").contains("secret"));
    }

    #[test]
    fn suffix_goes_on_the_path_not_the_query() {
        let kind = parse_location("https://example.com/p.apkg?token=1").unwrap();
        let SourceKind::Http(url) = kind.with_suffix(".sig") else {
            panic!()
        };
        assert_eq!(url.as_str(), "https://example.com/p.apkg.sig?token=1");
    }
}
