//! The fetcher: from a [`Source`] to a verified blob in the cache.
//!
//! Order of checks for a download: size limit while streaming, then the expected
//! digest, then the signature, and only then the rename into `blobs/`. A blob that is
//! already cached under the expected digest (and still hashes to it) needs no network.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cache::{Cache, EvictionReport, Slots};
use crate::config::FetchConfig;
use crate::download::{self, Downloaded, Limits};
use crate::error::{ConfigError, FetchError, TimeoutKind};
use crate::openpgp::PublicKeyFile;
use crate::retry::{with_retries, Backoff};
use crate::source::Source;
use crate::transport::{Open, Transports};
use par_filelock::lock_file;

/// A package in the cache, ready to be extracted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// `cache_dir/blobs/sha256/<sha256>.apkg` (read-only; never modified).
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
    pub signature: SignatureStatus,
    /// True when this call did not download the package itself.
    pub from_cache: bool,
    /// Blobs evicted to make room for this download.
    pub evicted: u64,
    /// Bytes the cache holds after this download (`None` when nothing was downloaded).
    pub cache_bytes: Option<u64>,
}

/// The outcome of the signature check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureStatus {
    /// A good signature by the trusted key with this fingerprint (uppercase hex).
    Verified { fingerprint: String },
    /// No signature was published (policy `if-present`).
    Absent,
    /// Policy `off`.
    NotChecked,
}

/// Fetches packages and registry indexes. Cheap to clone; clones share one HTTP
/// connection pool, one S3 client, the in-process download slots and the pins.
#[derive(Clone)]
pub struct Fetcher {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub config: FetchConfig,
    pub keys: Vec<PublicKeyFile>,
    pub cache: Cache,
    pub transports: Transports,
    slots: Slots,
    pins: Mutex<HashMap<String, usize>>,
}

impl Fetcher {
    /// Loads the trusted keys, prepares the cache directory and the HTTP client.
    pub async fn new(config: FetchConfig) -> Result<Fetcher, ConfigError> {
        let keys = config
            .trusted_keys
            .iter()
            .map(|path| PublicKeyFile::load(path))
            .collect::<Result<Vec<_>, _>>()?;
        if config.signature_policy == crate::SignaturePolicy::Required && keys.is_empty() {
            return Err(ConfigError::RequiredWithoutKeys);
        }
        let cache = Cache::open(&config.cache_dir).map_err(|source| ConfigError::CacheDir {
            path: config.cache_dir.clone(),
            source,
        })?;
        remove_stale_downloads(&cache, config.total_timeout * 2);
        let transports = Transports::new(&config)?;
        Ok(Fetcher {
            inner: Arc::new(Inner {
                config,
                keys,
                cache,
                transports,
                slots: Slots::default(),
                pins: Mutex::default(),
            }),
        })
    }

    pub fn config(&self) -> &FetchConfig {
        &self.inner.config
    }

    /// Fetches `source` into the cache and verifies it (digest, signature per policy).
    /// Concurrent calls for the same source in this process share one download;
    /// processes sharing the cache directory take turns through a file lock.
    pub async fn fetch(&self, source: &Source) -> Result<Fetched, FetchError> {
        let total = self.inner.config.total_timeout;
        match tokio::time::timeout(total, self.fetch_shared(source)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout {
                url: source.display.clone(),
                kind: TimeoutKind::Total,
                after: total,
            }),
        }
    }

    async fn fetch_shared(&self, source: &Source) -> Result<Fetched, FetchError> {
        if let Some(hit) = self.cached(source).await? {
            return Ok(hit);
        }
        let key = download_key(source);
        let handle = self.inner.slots.get(&key);
        let seen = handle.slot.completed();
        let mut memo = handle.slot.memo.lock().await;
        if handle.slot.completed() > seen {
            // Someone downloaded this very source while we waited: share the outcome.
            if let Some(outcome) = memo.clone() {
                return outcome.map(|fetched| Fetched {
                    from_cache: true,
                    evicted: 0,
                    cache_bytes: None,
                    ..fetched
                });
            }
        }
        let lock_path = self.inner.cache.lock_path(&key);
        let _file_lock = lock_file(lock_path.clone())
            .await
            .map_err(|e| FetchError::io(&source.display, lock_path, e))?;
        let outcome = self.fetch_locked(source).await;
        *memo = Some(outcome.clone());
        handle.slot.finish();
        outcome
    }

    async fn fetch_locked(&self, source: &Source) -> Result<Fetched, FetchError> {
        // Another process may have fetched it while we waited for the file lock.
        if let Some(hit) = self.cached(source).await? {
            return Ok(hit);
        }
        let downloaded = self.download(source).await?;
        if let Some(expected) = &source.expected_sha256 {
            if *expected != downloaded.sha256 {
                return Err(FetchError::DigestMismatch {
                    url: source.display.clone(),
                    expected: expected.clone(),
                    actual: downloaded.sha256,
                });
            }
        }
        let (signature, sig_bytes) = self.check_signature(source, &downloaded.temp).await?;
        let Downloaded { temp, sha256, size } = downloaded;
        let path = self.install(source, temp, &sha256).await?;
        self.record_signature(&sha256, &signature, sig_bytes).await;
        let (evicted, cache_bytes) = self.evict_after_download(&sha256).await;
        tracing::info!(source = %source.display, %sha256, size, "fetched package");
        Ok(Fetched {
            path,
            sha256,
            size,
            signature,
            from_cache: false,
            evicted,
            cache_bytes,
        })
    }

    /// The cached blob for the source's expected digest, with its signature status.
    async fn cached(&self, source: &Source) -> Result<Option<Fetched>, FetchError> {
        let Some(expected) = &source.expected_sha256 else {
            return Ok(None);
        };
        let cache = self.inner.cache.clone();
        let sha = expected.clone();
        let size = blocking(move || cache.verified_blob(&sha))
            .await
            .map_err(|e| {
                FetchError::io(&source.display, self.inner.cache.blob_path(expected), e)
            })?;
        let Some(size) = size else { return Ok(None) };
        let path = self.inner.cache.blob_path(expected);
        let signature = self.cached_signature(source, expected, &path).await?;
        Ok(Some(Fetched {
            path,
            sha256: expected.clone(),
            size,
            signature,
            from_cache: true,
            evicted: 0,
            cache_bytes: None,
        }))
    }

    /// Streams the source into a temporary file, retrying transient failures.
    async fn download(&self, source: &Source) -> Result<Downloaded, FetchError> {
        let config = &self.inner.config;
        let limits = Limits {
            max_bytes: config.max_download_bytes,
            read_timeout: config.read_timeout,
        };
        let tmp_dir = self.inner.cache.tmp_dir();
        with_retries(self.backoff(), || async {
            let url = &source.display;
            match self
                .inner
                .transports
                .open(&source.kind, url, None, config)
                .await?
            {
                Open::Body(opened) => download::to_temp(opened, &tmp_dir, &limits, url).await,
                Open::NotModified => Err(FetchError::Other {
                    url: url.clone(),
                    detail: "unexpected 304 Not Modified".into(),
                }),
            }
        })
        .await
    }

    async fn install(
        &self,
        source: &Source,
        temp: tempfile::TempPath,
        sha256: &str,
    ) -> Result<PathBuf, FetchError> {
        let cache = self.inner.cache.clone();
        let sha = sha256.to_owned();
        blocking(move || cache.install(temp, &sha))
            .await
            .map_err(|e| FetchError::io(&source.display, self.inner.cache.blob_path(sha256), e))
    }

    pub(crate) fn backoff(&self) -> Backoff {
        let config = &self.inner.config;
        Backoff {
            retries: config.retries,
            base: config.backoff_base,
            cap: config.backoff_cap,
            retry_after_cap: config.retry_after_cap,
        }
    }

    /// Marks a blob as in use: eviction never removes it. Pins are counted.
    pub fn pin(&self, sha256: &str) {
        let mut pins = self.pins();
        *pins.entry(sha256.to_ascii_lowercase()).or_default() += 1;
    }

    pub fn unpin(&self, sha256: &str) {
        let mut pins = self.pins();
        let key = sha256.to_ascii_lowercase();
        if let Some(count) = pins.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                pins.remove(&key);
            }
        }
    }

    /// Removes least-recently-used blobs that are not pinned until the cache fits the
    /// budget. Without a budget, removes nothing. Blocks: call it on a blocking thread.
    pub fn evict_to_budget(&self) -> io::Result<EvictionReport> {
        self.evict_keeping(None)
    }

    fn evict_keeping(&self, extra: Option<&str>) -> io::Result<EvictionReport> {
        let Some(budget) = self.inner.config.cache_budget_bytes else {
            return Ok(EvictionReport::default());
        };
        let mut keep: HashSet<String> = self.pins().keys().cloned().collect();
        keep.extend(extra.map(str::to_owned));
        self.inner.cache.evict(budget, &keep)
    }

    /// Eviction after a download, sparing the new blob (its caller has not pinned it yet):
    /// how many blobs went and how many bytes the cache holds now, for metrics.
    async fn evict_after_download(&self, sha256: &str) -> (u64, Option<u64>) {
        let this = self.clone();
        let sha = sha256.to_owned();
        let outcome = blocking(move || match this.inner.config.cache_budget_bytes {
            Some(_) => this.evict_keeping(Some(&sha)),
            None => Ok(EvictionReport {
                remaining_bytes: this.inner.cache.total_bytes()?,
                ..EvictionReport::default()
            }),
        })
        .await;
        match outcome {
            Ok(report) => (report.removed.len() as u64, Some(report.remaining_bytes)),
            Err(error) => {
                tracing::warn!(%error, "cache eviction failed");
                (0, None)
            }
        }
    }

    fn pins(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.inner.pins.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Identifies one download: the location and what it must match.
fn download_key(source: &Source) -> String {
    let identity = format!(
        "{}\n{}\n{}",
        source.kind.identity(),
        source.expected_sha256.as_deref().unwrap_or(""),
        source
            .signature
            .as_ref()
            .map(|s| s.kind.identity())
            .unwrap_or_default(),
    );
    crate::source::key_for(&identity)
}

/// Runs blocking file work off the async threads.
pub(crate) async fn blocking<T, F>(work: F) -> io::Result<T>
where
    F: FnOnce() -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(io::Error::other)?
}

/// Deletes leftovers of downloads interrupted by a crash. Files younger than `age` may
/// belong to another process's download in progress and stay.
fn remove_stale_downloads(cache: &Cache, age: Duration) {
    let Ok(entries) = fs_err::read_dir(cache.tmp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|elapsed| elapsed > age);
        if stale {
            let _ = fs_err::remove_file(entry.path());
        }
    }
}
