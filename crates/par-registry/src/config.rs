//! Fetcher settings with the runtime's defaults.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::error::ConfigError;

/// What to do about OpenPGP signatures (`--signature-policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignaturePolicy {
    /// Never look for signatures.
    Off,
    /// Verify a signature when one exists; a missing one is fine, a bad one is not.
    #[default]
    IfPresent,
    /// Every package must carry a valid signature by a trusted key.
    Required,
}

impl FromStr for SignaturePolicy {
    type Err = ConfigError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "off" => Ok(Self::Off),
            "if-present" => Ok(Self::IfPresent),
            "required" => Ok(Self::Required),
            other => Err(ConfigError::Policy(other.to_owned())),
        }
    }
}

impl fmt::Display for SignaturePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Off => "off",
            Self::IfPresent => "if-present",
            Self::Required => "required",
        })
    }
}

/// Overrides for the S3 client. Anything left `None` comes from the standard AWS chain
/// (`AWS_*` variables, profiles, web identity, container and instance roles).
#[derive(Clone, Default)]
pub struct S3Options {
    /// Replaces `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`.
    pub endpoint_url: Option<String>,
    /// Replaces `AWS_REGION`; without any region, `us-east-1` is used.
    pub region: Option<String>,
    /// Static credentials instead of the credential chain.
    pub credentials: Option<S3Credentials>,
}

#[derive(Clone)]
pub struct S3Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl fmt::Debug for S3Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Options")
            .field("endpoint_url", &self.endpoint_url)
            .field("region", &self.region)
            .field("credentials", &self.credentials.as_ref().map(|_| "static"))
            .finish()
    }
}

/// Everything a [`crate::Fetcher`] needs.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// Content-addressed blobs live in `cache_dir/blobs/sha256/<hex>.apkg`.
    pub cache_dir: PathBuf,
    pub max_download_bytes: u64,
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of a response (a stall).
    pub read_timeout: Duration,
    /// Longest time for one fetch, retries included.
    pub total_timeout: Duration,
    /// Extra attempts after a transient failure (connect errors, timeouts, 429, 5xx,
    /// S3 SlowDown).
    pub retries: u32,
    /// First backoff delay; doubled per attempt, jittered, capped by `backoff_cap`.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Longest `Retry-After` honoured.
    pub retry_after_cap: Duration,
    /// Plain `http://` to hosts other than loopback.
    pub allow_insecure_http: bool,
    /// Extra PEM CA certificates trusted for `https://`.
    pub ca_bundle: Option<PathBuf>,
    pub signature_policy: SignaturePolicy,
    /// OpenPGP public key files (armored or binary).
    pub trusted_keys: Vec<PathBuf>,
    /// Least-recently-used eviction keeps the blobs under this many bytes.
    pub cache_budget_bytes: Option<u64>,
    pub s3: S3Options,
}

impl FetchConfig {
    pub const DEFAULT_MAX_DOWNLOAD_BYTES: u64 = 512 * 1024 * 1024;

    /// The runtime's defaults for a cache directory.
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        Self {
            cache_dir: cache_dir.into(),
            max_download_bytes: Self::DEFAULT_MAX_DOWNLOAD_BYTES,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            total_timeout: Duration::from_secs(600),
            retries: 3,
            backoff_base: Duration::from_millis(200),
            backoff_cap: Duration::from_secs(5),
            retry_after_cap: Duration::from_secs(30),
            allow_insecure_http: false,
            ca_bundle: None,
            signature_policy: SignaturePolicy::default(),
            trusted_keys: Vec::new(),
            cache_budget_bytes: None,
            s3: S3Options::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_round_trips() {
        for text in ["off", "if-present", "required"] {
            let policy: SignaturePolicy = text.parse().unwrap();
            assert_eq!(policy.to_string(), text);
        }
        assert!("sometimes".parse::<SignaturePolicy>().is_err());
    }
}
