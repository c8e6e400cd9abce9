//! Least-recently-used eviction down to a byte budget. Pinned blobs (packages mounted
//! by this process) and the blob just fetched are never removed, even if the budget
//! stays exceeded; the report says so.

use std::collections::HashSet;
use std::io;
use std::time::SystemTime;

use super::Cache;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvictionReport {
    /// Digests of the blobs removed, oldest use first.
    pub removed: Vec<String>,
    pub freed_bytes: u64,
    /// Bytes of blobs left in the cache.
    pub remaining_bytes: u64,
    /// Whether pinned blobs alone keep the cache over budget.
    pub over_budget: bool,
}

struct Entry {
    sha256: String,
    size: u64,
    used: SystemTime,
}

impl Cache {
    /// Removes least-recently-used blobs not in `keep` until at most `budget` bytes remain.
    pub(crate) fn evict(&self, budget: u64, keep: &HashSet<String>) -> io::Result<EvictionReport> {
        let mut entries = self.entries()?;
        entries.sort_by_key(|e| e.used);
        let mut report = EvictionReport {
            remaining_bytes: entries.iter().map(|e| e.size).sum(),
            ..EvictionReport::default()
        };
        for entry in entries {
            if report.remaining_bytes <= budget {
                break;
            }
            if keep.contains(&entry.sha256) {
                continue;
            }
            self.remove_blob(&entry.sha256)?;
            tracing::info!(sha256 = %entry.sha256, bytes = entry.size, "evicted cached package");
            report.remaining_bytes -= entry.size;
            report.freed_bytes += entry.size;
            report.removed.push(entry.sha256);
        }
        report.over_budget = report.remaining_bytes > budget;
        Ok(report)
    }

    /// Bytes of every blob in the cache.
    pub(crate) fn total_bytes(&self) -> io::Result<u64> {
        Ok(self.entries()?.iter().map(|e| e.size).sum())
    }

    fn entries(&self) -> io::Result<Vec<Entry>> {
        let mut entries = Vec::new();
        for item in fs_err::read_dir(self.blob_dir())? {
            let item = item?;
            let name = item.file_name().to_string_lossy().into_owned();
            let Some(sha256) = name.strip_suffix(".apkg") else {
                continue;
            };
            let Ok(meta) = item.metadata() else { continue };
            entries.push(Entry {
                sha256: sha256.to_owned(),
                size: meta.len(),
                used: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            });
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn blob(cache: &Cache, name: &str, size: usize, age_secs: u64) {
        let path = cache.blob_path(name);
        fs_err::write(&path, vec![0u8; size]).unwrap();
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(SystemTime::now() - Duration::from_secs(age_secs))
            .unwrap();
    }

    #[test]
    fn evicts_oldest_first_and_spares_kept_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        blob(&cache, "old", 100, 300);
        blob(&cache, "pinned", 100, 200);
        blob(&cache, "new", 100, 100);
        let keep = HashSet::from(["pinned".to_owned()]);
        let report = cache.evict(150, &keep).unwrap();
        assert_eq!(report.removed, vec!["old".to_owned(), "new".to_owned()]);
        assert_eq!(report.remaining_bytes, 100);
        assert!(!report.over_budget);
        assert!(cache.blob_path("pinned").exists());
        let report = cache.evict(50, &keep).unwrap();
        assert!(report.over_budget);
    }
}
