//! The signature policy applied to a fetch: where to look for a detached signature,
//! what a missing one means, and what the cache remembers about it so that a cached
//! package can be re-verified without the network.

use std::path::Path;

use crate::config::SignaturePolicy;
use crate::download::{self, Limits};
use crate::error::{FetchError, SignatureError};
use crate::fetcher::{blocking, Fetcher, SignatureStatus};
use crate::openpgp::verify_detached;
use crate::retry::with_retries;
use crate::source::{Source, SourceKind};
use crate::transport::Open;

/// Detached signatures are a few hundred bytes; anything this large is not one.
const MAX_SIGNATURE_BYTES: u64 = 1024 * 1024;

impl Fetcher {
    /// Applies the policy to a downloaded file. Returns the status and, when verified,
    /// the signature bytes to remember.
    pub(crate) async fn check_signature(
        &self,
        source: &Source,
        file: &Path,
    ) -> Result<(SignatureStatus, Option<Vec<u8>>), FetchError> {
        let policy = self.inner.config.signature_policy;
        if policy == SignaturePolicy::Off {
            return Ok((SignatureStatus::NotChecked, None));
        }
        let explicit = source.signature.is_some();
        let candidates = signature_candidates(source);
        for candidate in &candidates {
            if let Some(bytes) = self.fetch_signature(candidate).await? {
                let fingerprint = self.verify(source, file, bytes.clone()).await?;
                return Ok((SignatureStatus::Verified { fingerprint }, Some(bytes)));
            }
        }
        let tried: Vec<String> = candidates.iter().map(SourceKind::display).collect();
        let missing = match (explicit, policy) {
            (true, _) => SignatureError::NotFound {
                location: tried.join(", "),
            },
            (false, SignaturePolicy::Required) => SignatureError::Missing { tried },
            (false, _) => return Ok((SignatureStatus::Absent, None)),
        };
        Err(FetchError::Signature {
            url: source.display.clone(),
            source: missing,
        })
    }

    /// The signature status of a blob found in the cache. What was recorded when it was
    /// fetched is re-checked locally; only a blob never seen with a signature under
    /// `required` (or with an explicit signature location) goes to the network.
    pub(crate) async fn cached_signature(
        &self,
        source: &Source,
        sha256: &str,
        blob: &Path,
    ) -> Result<SignatureStatus, FetchError> {
        let policy = self.inner.config.signature_policy;
        if policy == SignaturePolicy::Off {
            return Ok(SignatureStatus::NotChecked);
        }
        let cache = &self.inner.cache;
        if let Ok(bytes) = fs_err::tokio::read(cache.sig_path(sha256)).await {
            let fingerprint = self.verify(source, blob, bytes).await?;
            return Ok(SignatureStatus::Verified { fingerprint });
        }
        let recorded_unsigned = cache.unsigned_marker(sha256).exists();
        if recorded_unsigned && policy == SignaturePolicy::IfPresent && source.signature.is_none() {
            return Ok(SignatureStatus::Absent);
        }
        let (status, bytes) = self.check_signature(source, blob).await?;
        self.record_signature(sha256, &status, bytes).await;
        Ok(status)
    }

    /// Remembers a verified signature (or that none was published) beside the blob.
    pub(crate) async fn record_signature(
        &self,
        sha256: &str,
        status: &SignatureStatus,
        bytes: Option<Vec<u8>>,
    ) {
        let cache = self.inner.cache.clone();
        let (path, contents) = match (status, bytes) {
            (SignatureStatus::Verified { .. }, Some(bytes)) => (cache.sig_path(sha256), bytes),
            (SignatureStatus::Absent, _) => (cache.unsigned_marker(sha256), Vec::new()),
            _ => return,
        };
        let tmp_dir = cache.tmp_dir();
        let written = blocking(move || {
            let mut temp = tempfile::NamedTempFile::new_in(tmp_dir)?;
            std::io::Write::write_all(&mut temp, &contents)?;
            temp.persist(&path).map_err(|e| e.error)?;
            Ok(())
        })
        .await;
        if let Err(error) = written {
            tracing::warn!(%error, sha256, "could not record the signature in the cache");
        }
    }

    async fn verify(
        &self,
        source: &Source,
        file: &Path,
        signature: Vec<u8>,
    ) -> Result<String, FetchError> {
        let this = self.clone();
        let file = file.to_path_buf();
        let outcome = tokio::task::spawn_blocking(move || {
            verify_detached(&file, &signature, &this.inner.keys)
        })
        .await
        .map_err(|e| FetchError::Other {
            url: source.display.clone(),
            detail: format!("signature check did not finish: {e}"),
        })?;
        outcome.map_err(|source_error| FetchError::Signature {
            url: source.display.clone(),
            source: source_error,
        })
    }

    /// Downloads a signature; `None` when it does not exist.
    async fn fetch_signature(&self, kind: &SourceKind) -> Result<Option<Vec<u8>>, FetchError> {
        let config = &self.inner.config;
        let limits = Limits {
            max_bytes: MAX_SIGNATURE_BYTES,
            read_timeout: config.read_timeout,
        };
        let url = kind.display();
        let result = with_retries(self.backoff(), || async {
            match self.inner.transports.open(kind, &url, None, config).await? {
                Open::Body(opened) => download::to_memory(opened, &limits, &url).await,
                Open::NotModified => Err(FetchError::Other {
                    url: url.clone(),
                    detail: "unexpected 304 Not Modified".into(),
                }),
            }
        })
        .await;
        match result {
            Ok(bytes) => Ok(Some(bytes)),
            Err(FetchError::NotFound { .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }
}

/// The explicit signature location, else `<location>.sig` then `<location>.asc`.
fn signature_candidates(source: &Source) -> Vec<SourceKind> {
    match &source.signature {
        Some(sig) => vec![sig.kind.clone()],
        None => vec![
            source.kind.with_suffix(".sig"),
            source.kind.with_suffix(".asc"),
        ],
    }
}
