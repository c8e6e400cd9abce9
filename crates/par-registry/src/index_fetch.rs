//! Fetching the registry index with ETags, and keeping the last good copy on disk so a
//! runtime that starts while the registry is unreachable can still load what it knew.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::download::{self, Limits};
use crate::error::{FetchError, TimeoutKind};
use crate::fetcher::{blocking, Fetcher};
use crate::index::RegistryIndex;
use crate::retry::with_retries;
use crate::source::{parse_source, Source};
use crate::transport::Open;

/// An index larger than this is refused.
const MAX_INDEX_BYTES: u64 = 16 * 1024 * 1024;
const LAST_GOOD_FILE: &str = "last-good.json";

/// The outcome of polling the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexFetch {
    /// Same ETag as given: nothing changed.
    NotModified,
    Updated {
        index: RegistryIndex,
        /// Pass it to the next poll. Sources without ETags (local files, some servers)
        /// get one made from the content's digest.
        etag: Option<String>,
    },
}

#[derive(Serialize, Deserialize)]
struct LastGood {
    /// Identifies the index URL without storing it in the clear twice.
    url_key: String,
    /// Redacted, for people reading the file.
    url: String,
    etag: Option<String>,
    index: RegistryIndex,
}

enum Document {
    NotModified,
    Body(Vec<u8>, Option<String>),
}

impl Fetcher {
    /// Fetches the index at `url` unless its ETag still equals `etag`. A malformed index
    /// is an error naming the problem; the last good index on disk is left alone.
    pub async fn fetch_index(
        &self,
        url: &Source,
        etag: Option<&str>,
    ) -> Result<IndexFetch, FetchError> {
        let total = self.inner.config.total_timeout;
        match tokio::time::timeout(total, self.fetch_index_inner(url, etag)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout {
                url: url.display.clone(),
                kind: TimeoutKind::Total,
                after: total,
            }),
        }
    }

    async fn fetch_index_inner(
        &self,
        url: &Source,
        etag: Option<&str>,
    ) -> Result<IndexFetch, FetchError> {
        let (bytes, served_etag) = match self.read_document(url, etag).await? {
            Document::NotModified => return Ok(IndexFetch::NotModified),
            Document::Body(bytes, served_etag) => (bytes, served_etag),
        };
        let digest = hex::encode(Sha256::digest(&bytes));
        let new_etag = served_etag.unwrap_or_else(|| format!("\"sha256:{digest}\""));
        if etag == Some(new_etag.as_str()) {
            return Ok(IndexFetch::NotModified);
        }
        if let Some(expected) = url.expected_sha256.as_ref().filter(|e| **e != digest) {
            return Err(FetchError::DigestMismatch {
                url: url.display.clone(),
                expected: expected.clone(),
                actual: digest,
            });
        }
        let index =
            RegistryIndex::parse(&bytes, &url.kind).map_err(|source| FetchError::Index {
                url: url.display.clone(),
                source,
            })?;
        self.save_last_good(url, &index, Some(&new_etag)).await;
        Ok(IndexFetch::Updated {
            index,
            etag: Some(new_etag),
        })
    }

    async fn read_document(
        &self,
        url: &Source,
        etag: Option<&str>,
    ) -> Result<Document, FetchError> {
        let config = &self.inner.config;
        let limits = Limits {
            max_bytes: MAX_INDEX_BYTES,
            read_timeout: config.read_timeout,
        };
        let shown = &url.display;
        with_retries(self.backoff(), || async {
            match self
                .inner
                .transports
                .open(&url.kind, shown, etag, config)
                .await?
            {
                Open::NotModified => Ok(Document::NotModified),
                Open::Body(opened) => {
                    let served_etag = opened.etag.clone();
                    let bytes = download::to_memory(opened, &limits, shown).await?;
                    Ok(Document::Body(bytes, served_etag))
                }
            }
        })
        .await
    }

    /// The index last fetched successfully from `url` (a source string as configured),
    /// if one was saved for that same URL.
    pub fn load_last_good_index(&self, url: &str) -> Option<RegistryIndex> {
        let source = parse_source(url).ok()?;
        let path = self.inner.cache.index_dir().join(LAST_GOOD_FILE);
        let bytes = fs_err::read(&path).ok()?;
        let saved: LastGood = match serde_json::from_slice(&bytes) {
            Ok(saved) => saved,
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "ignoring unreadable last good index");
                return None;
            }
        };
        (saved.url_key == source.kind.key()).then_some(saved.index)
    }

    async fn save_last_good(&self, url: &Source, index: &RegistryIndex, etag: Option<&str>) {
        let record = LastGood {
            url_key: url.kind.key(),
            url: url.display.clone(),
            etag: etag.map(str::to_owned),
            index: index.clone(),
        };
        let dir = self.inner.cache.index_dir();
        let saved = blocking(move || {
            let json = serde_json::to_vec_pretty(&record).map_err(std::io::Error::other)?;
            // Private (0600) temporary file, renamed over the old copy.
            let mut temp = tempfile::NamedTempFile::new_in(&dir)?;
            std::io::Write::write_all(&mut temp, &json)?;
            temp.as_file().sync_all()?;
            temp.persist(dir.join(LAST_GOOD_FILE))
                .map_err(|e| e.error)?;
            Ok(())
        })
        .await;
        if let Err(error) = saved {
            tracing::warn!(%error, "could not save the last good registry index");
        }
    }
}
