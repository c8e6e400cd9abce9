//! Sources to verified package files: local paths and folders, `https://`, `http://`
//! (loopback unless allowed) and `s3://`, all through the registry fetcher when one is
//! configured (digest, signature policy, content-addressed cache).

use std::sync::Arc;

use par_registry::{FetchError, Fetcher, Source, SourceKind};

use crate::error::{LoadError, LoadPhase};
use crate::runtime::Runtime;
use crate::source::{self, SourceFile};

impl Runtime {
    /// Every package file the sources name, fetched and verified. Failures are reported
    /// per source and skipped.
    pub(crate) async fn resolve_sources(self: &Arc<Self>, sources: &[String]) -> Vec<SourceFile> {
        let Some(fetcher) = self.fetcher.clone() else {
            return self.expand_all(sources);
        };
        let mut wanted: Vec<(String, Source)> = Vec::new();
        for text in sources {
            match to_sources(text) {
                Ok(found) => wanted.extend(found),
                Err(e) => self.fail(text, &e),
            }
        }
        let fetches = wanted
            .iter()
            .map(|(label, source)| self.fetch_one(&fetcher, label, source));
        futures_util::future::join_all(fetches)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    pub(crate) async fn fetch_one(
        &self,
        fetcher: &Fetcher,
        label: &str,
        source: &Source,
    ) -> Option<SourceFile> {
        self.reports.loading(label);
        let fetched = fetcher.fetch(source).await;
        self.forget_upload(source);
        match fetched {
            Ok(fetched) => {
                // Pinned until the package is retired: eviction never takes a blob
                // that a mounted (or about to be mounted) package came from.
                fetcher.pin(&fetched.sha256);
                if fetched.from_cache {
                    self.metrics().cache_hit();
                } else {
                    self.metrics().cache_miss();
                }
                self.metrics().cache_evicted(fetched.evicted);
                if let Some(bytes) = fetched.cache_bytes {
                    self.metrics().set_cache_bytes(bytes);
                }
                tracing::info!(source = label, sha256 = %fetched.sha256, signature = ?fetched.signature, cached = fetched.from_cache, "package fetched");
                Some(SourceFile {
                    label: label.to_string(),
                    path: fetched.path,
                    expected_sha256: Some(fetched.sha256),
                })
            }
            Err(e) => {
                self.fail(label, &LoadError::new(phase_of(&e), label, &e));
                None
            }
        }
    }
}

impl Runtime {
    /// An uploaded package (`<cache>/uploads/<sha256>.apkg`) is copied into the blob cache
    /// by its fetch: the upload itself is needed no more, whatever the load's outcome.
    fn forget_upload(&self, source: &Source) {
        let SourceKind::Local(path) = &source.kind else {
            return;
        };
        if path.parent() == Some(self.config.cache_dir.join("uploads").as_path()) {
            if let Err(e) = std::fs::remove_file(path) {
                tracing::debug!(path = %path.display(), error = %e, "upload already removed");
            }
        }
    }
}

/// A SOURCE argument as fetcher sources: a folder becomes one source per `*.apkg` in it.
fn to_sources(text: &str) -> Result<Vec<(String, Source)>, LoadError> {
    let fail = |reason: String| LoadError::new(LoadPhase::Fetch, text, reason);
    let is_local = !text.contains("://");
    let (base, _) = source::split_digest(text).map_err(fail)?;
    if is_local && std::path::Path::new(base).is_dir() {
        let files = source::expand(text)?;
        return files
            .into_iter()
            .map(|f| {
                let source =
                    par_registry::parse_source(&f.label).map_err(|e| fail(e.to_string()))?;
                Ok((f.label, source))
            })
            .collect();
    }
    let source = par_registry::parse_source(text).map_err(|e| fail(e.to_string()))?;
    let label = if is_local {
        base.to_string()
    } else {
        source.display.clone()
    };
    Ok(vec![(label, source)])
}

/// A wrong digest or signature is a verification failure; everything else is fetching.
fn phase_of(error: &FetchError) -> LoadPhase {
    match error {
        FetchError::DigestMismatch { .. } | FetchError::Signature { .. } => LoadPhase::Verify,
        _ => LoadPhase::Fetch,
    }
}
