//! Converging to a registry index: poll it (ETag), load new and changed entries (each
//! replaces the older version without dropping calls), unload removed ones. An
//! unreachable registry keeps what serves; at startup the last good index is used.

use std::sync::Arc;

use par_registry::{IndexEntry, IndexFetch, RegistryIndex, Source};
use par_telemetry::metrics::PollResult;

use crate::convergence::{self, RegistrySettings};
use crate::routing::MountOptions;
use crate::runtime::Runtime;

impl Runtime {
    /// The first convergence (before readiness), falling back to the last good index.
    pub(crate) async fn registry_startup(self: &Arc<Self>, settings: &RegistrySettings) {
        if !self.poll_registry(settings).await {
            let fetcher = self.fetcher.as_ref();
            let last = fetcher.and_then(|f| f.load_last_good_index(&settings.index));
            match last {
                Some(index) => {
                    tracing::warn!(index = %settings.index, "registry unreachable: serving its last good index from the cache");
                    self.converge(&index).await;
                }
                None => {
                    tracing::error!(index = %settings.index, "registry unreachable and no last good index")
                }
            }
        }
    }

    /// Polls forever at the configured interval.
    pub(crate) async fn registry_loop(self: Arc<Self>, settings: RegistrySettings) {
        loop {
            tokio::time::sleep(settings.interval).await;
            self.poll_registry(&settings).await;
        }
    }

    /// One poll; false when the index could not be had (nothing changes then).
    pub(crate) async fn poll_registry(self: &Arc<Self>, settings: &RegistrySettings) -> bool {
        let Some(fetcher) = self.fetcher.clone() else {
            return false;
        };
        let source = match par_registry::parse_source(&settings.index) {
            Ok(source) => source,
            Err(e) => {
                tracing::error!(error = %e, "registry index URL is invalid");
                return false;
            }
        };
        let etag = self.registry_state.lock().await.etag.clone();
        match fetcher.fetch_index(&source, etag.as_deref()).await {
            Ok(IndexFetch::NotModified) => {
                self.metrics().registry_polled(PollResult::NotModified);
                true
            }
            Ok(IndexFetch::Updated { index, etag }) => {
                self.metrics().registry_polled(PollResult::Updated);
                self.registry_state.lock().await.etag = etag;
                self.converge(&index).await;
                true
            }
            Err(e) => {
                self.metrics().registry_polled(PollResult::Failed);
                tracing::error!(index = %source.display, error = %e, "registry poll failed: nothing changes");
                false
            }
        }
    }

    async fn converge(self: &Arc<Self>, index: &RegistryIndex) {
        let Some(fetcher) = self.fetcher.clone() else {
            return;
        };
        let plan = {
            let state = self.registry_state.lock().await;
            convergence::plan(index, &state.managed, |entry| self.serves(entry))
        };
        let mut files = Vec::new();
        for entry in plan.load {
            match entry.to_source() {
                Ok(source) => files.extend(self.fetch_entry(&fetcher, entry, &source).await),
                Err(e) => tracing::error!(package = %entry.name, error = %e, "bad index entry"),
            }
        }
        // The index is the authority: it may move a package to a lower version.
        self.load_files(files, MountOptions::authoritative()).await;
        self.registry_state.lock().await.managed = plan.listed;
        for name in plan.gone {
            tracing::info!(package = %name, "removed from the registry index: unloading");
            self.unload(&name, None).await;
        }
    }

    async fn fetch_entry(
        &self,
        fetcher: &par_registry::Fetcher,
        entry: &IndexEntry,
        source: &Source,
    ) -> Option<crate::source::SourceFile> {
        let label = format!("registry:{}@{}", entry.name, entry.version);
        self.fetch_one(fetcher, &label, source).await
    }

    /// Already mounted with exactly these bytes.
    fn serves(&self, entry: &IndexEntry) -> bool {
        let table = self.routing.table();
        table
            .lookup(&format!("{}@{}", entry.name, entry.version))
            .is_some_and(|r| r.package.sha256 == entry.sha256)
    }
}
