//! One error enum per concern. Every message names the (redacted) URL or path involved,
//! and fetch errors say whether a retry could help, so an operator reading a log line
//! knows whether to wait or to fix something.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

/// A source string that cannot be understood. Never retryable.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SourceError {
    #[error("empty package source")]
    Empty,
    #[error("source {source_text}: {problem}")]
    Invalid {
        source_text: String,
        problem: String,
    },
    #[error("source {source_text}: `#sha256=` must be followed by 64 hex digits, got {digest:?}")]
    BadDigest { source_text: String, digest: String },
}

/// A setting that prevents a [`crate::Fetcher`] from being built.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cache directory {path}: {source}")]
    CacheDir { path: PathBuf, source: io::Error },
    #[error("CA bundle {path}: {problem}")]
    CaBundle { path: PathBuf, problem: String },
    #[error("trusted key: {0}")]
    TrustedKey(#[from] SignatureError),
    #[error("signature policy `required` needs at least one trusted key file")]
    RequiredWithoutKeys,
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(String),
    #[error("invalid signature policy {0:?} (expected off, if-present or required)")]
    Policy(String),
}

/// Why an OpenPGP signature check failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SignatureError {
    #[error("bad signature: the file does not match the signature made by key {fingerprint}")]
    Bad { fingerprint: String },
    #[error("signed by unknown key {key_id}: it is not among the trusted keys")]
    UnknownKey { key_id: String },
    #[error("malformed signature: {0}")]
    Malformed(String),
    #[error("unsupported signature: {0}")]
    Unsupported(String),
    #[error("signature by key {fingerprint} expired")]
    Expired { fingerprint: String },
    #[error("no signature found (looked for {}) but the signature policy requires one", tried.join(", "))]
    Missing { tried: Vec<String> },
    #[error("the signature {location} listed for this package was not found")]
    NotFound { location: String },
    #[error("public key file {path}: {problem}")]
    Key { path: String, problem: String },
    #[error("reading {path}: {message}")]
    Io { path: String, message: String },
}

/// Which deadline ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutKind {
    Connect,
    /// No bytes arrived for `read_timeout`.
    Read,
    /// The whole fetch, retries included, took longer than `total_timeout`.
    Total,
}

/// A problem in a registry index document. Never retryable: the document must be fixed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum IndexError {
    #[error("not valid JSON for a registry index: {0}")]
    Json(String),
    #[error("unsupported index version {0} (this runtime reads version 1)")]
    Version(u64),
    #[error("packages[{position}]{}: {problem}", name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default())]
    Entry {
        position: usize,
        name: Option<String>,
        problem: String,
    },
    #[error("package {name} {version} is listed twice")]
    Duplicate { name: String, version: String },
}

/// Why a package, signature or index could not be fetched. `url` is always redacted.
#[derive(Debug, Error, Clone)]
pub enum FetchError {
    #[error("{url}: {reason} (retrying will not help)")]
    Refused { url: String, reason: String },
    #[error("{url}: cannot connect: {detail} (transient; a retry may help)")]
    Connect { url: String, detail: String },
    #[error("{url}: TLS failure: {detail} (retrying will not help; check the certificate or --ca-bundle)")]
    Tls { url: String, detail: String },
    #[error("{url}: {} timed out after {after:?} (transient; a retry may help)", timeout_what(*kind))]
    Timeout {
        url: String,
        kind: TimeoutKind,
        after: Duration,
    },
    #[error("{url}: not found (retrying will not help)")]
    NotFound { url: String },
    #[error("{url}: access denied ({detail}) (retrying will not help; check credentials)")]
    AccessDenied { url: String, detail: String },
    #[error("{url}: server answered {status}{} ({})", detail_suffix(detail), retry_hint(*retryable))]
    Status {
        url: String,
        status: u16,
        detail: String,
        retryable: bool,
        retry_after: Option<Duration>,
    },
    #[error("{url}: transfer failed: {detail} (transient; a retry may help)")]
    Transfer { url: String, detail: String },
    #[error(
        "{url}: body ended after {received} of {expected} bytes (transient; a retry may help)"
    )]
    Truncated {
        url: String,
        received: u64,
        expected: u64,
    },
    #[error("{url}: larger than the download limit of {limit} bytes (retrying will not help)")]
    TooLarge { url: String, limit: u64 },
    #[error("{url}: sha256 mismatch: expected {expected}, got {actual} (retrying will not help)")]
    DigestMismatch {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("{url}: signature check failed: {source} (retrying will not help)")]
    Signature { url: String, source: SignatureError },
    #[error("{url}: malformed registry index: {source} (retrying will not help)")]
    Index { url: String, source: IndexError },
    #[error("{url}: {detail} (retrying will not help)")]
    Other { url: String, detail: String },
    #[error("{url}: cache or file error at {path}: {source}")]
    Io {
        url: String,
        path: PathBuf,
        source: Arc<io::Error>,
    },
    #[error("{last} (gave up after {attempts} attempts)")]
    Exhausted {
        attempts: u32,
        last: Box<FetchError>,
    },
}

impl FetchError {
    /// Whether trying the same request again could succeed (network trouble, overload).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Connect { .. }
            | Self::Transfer { .. }
            | Self::Truncated { .. }
            | Self::Timeout { .. } => true,
            Self::Status { retryable, .. } => *retryable,
            Self::Exhausted { last, .. } => last.is_retryable(),
            _ => false,
        }
    }

    /// The server's `Retry-After`, when it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The underlying error, looking through [`FetchError::Exhausted`].
    pub fn last(&self) -> &FetchError {
        match self {
            Self::Exhausted { last, .. } => last.last(),
            other => other,
        }
    }

    pub(crate) fn io(url: &str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            url: url.to_owned(),
            path: path.into(),
            source: Arc::new(source),
        }
    }
}

fn timeout_what(kind: TimeoutKind) -> &'static str {
    match kind {
        TimeoutKind::Connect => "connecting",
        TimeoutKind::Read => "waiting for data",
        TimeoutKind::Total => "the whole download",
    }
}

fn retry_hint(retryable: bool) -> &'static str {
    if retryable {
        "transient; a retry may help"
    } else {
        "retrying will not help"
    }
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}
