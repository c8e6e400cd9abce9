//! The on-disk cache. Layout under the cache directory:
//!
//! ```text
//! blobs/sha256/<hex>.apkg   verified packages, read-only, named by content
//! sigs/sha256/<hex>.sig     the signature that verified a blob (raw, armored or not)
//! sigs/sha256/<hex>.none    marker: the blob was accepted with no signature published
//! tmp/                      downloads in progress (same filesystem, so rename is atomic)
//! locks/<key>.lock          cross-process locks, one per source location
//! index/last-good.json      the last registry index that parsed
//! ```
//!
//! Blobs are written once, by rename, and never modified. Their modification time records
//! the last use, which drives least-recently-used eviction. The functions here block; the
//! fetcher calls them on the blocking pool.

mod evict;
mod locks;

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest, Sha256};
use tempfile::TempPath;

pub use evict::EvictionReport;
pub(crate) use locks::Slots;

#[derive(Debug, Clone)]
pub(crate) struct Cache {
    root: PathBuf,
}

impl Cache {
    /// Opens (creating as needed) the cache at `root`.
    pub(crate) fn open(root: &Path) -> io::Result<Self> {
        let cache = Self {
            root: root.to_path_buf(),
        };
        for dir in [
            cache.blob_dir(),
            cache.sig_dir(),
            cache.tmp_dir(),
            cache.lock_dir(),
            cache.index_dir(),
        ] {
            fs_err::create_dir_all(dir)?;
        }
        Ok(cache)
    }

    pub(crate) fn blob_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    pub(crate) fn blob_path(&self, sha256: &str) -> PathBuf {
        self.blob_dir().join(format!("{sha256}.apkg"))
    }

    fn sig_dir(&self) -> PathBuf {
        self.root.join("sigs").join("sha256")
    }

    pub(crate) fn sig_path(&self, sha256: &str) -> PathBuf {
        self.sig_dir().join(format!("{sha256}.sig"))
    }

    pub(crate) fn unsigned_marker(&self, sha256: &str) -> PathBuf {
        self.sig_dir().join(format!("{sha256}.none"))
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn lock_dir(&self) -> PathBuf {
        self.root.join("locks")
    }

    pub(crate) fn lock_path(&self, key: &str) -> PathBuf {
        self.lock_dir().join(format!("{key}.lock"))
    }

    pub(crate) fn index_dir(&self) -> PathBuf {
        self.root.join("index")
    }

    /// The cached blob's size when it exists and still hashes to `sha256`. A corrupt
    /// blob is deleted (with its signature records) so that it gets fetched again.
    pub(crate) fn verified_blob(&self, sha256: &str) -> io::Result<Option<u64>> {
        let path = self.blob_path(sha256);
        let (actual, size) = match hash_file(&path) {
            Ok(found) => found,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if actual != sha256 {
            tracing::warn!(path = %path.display(), expected = sha256, %actual, "corrupt cache entry removed");
            self.remove_blob(sha256)?;
            return Ok(None);
        }
        touch(&path);
        Ok(Some(size))
    }

    /// Moves a verified download into place under its digest.
    pub(crate) fn install(&self, temp: TempPath, sha256: &str) -> io::Result<PathBuf> {
        let path = self.blob_path(sha256);
        read_only(&temp)?;
        temp.persist(&path).map_err(|e| e.error)?;
        Ok(path)
    }

    /// Deletes a blob and what is recorded about its signature.
    pub(crate) fn remove_blob(&self, sha256: &str) -> io::Result<()> {
        for path in [
            self.blob_path(sha256),
            self.sig_path(sha256),
            self.unsigned_marker(sha256),
        ] {
            match fs_err::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }
}

/// SHA-256 (lowercase hex) and size of a file, streamed.
pub(crate) fn hash_file(path: &Path) -> io::Result<(String, u64)> {
    let mut file = fs_err::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok((hex::encode(hasher.finalize()), size));
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
}

/// Records a use of `path` in its modification time (best effort).
pub(crate) fn touch(path: &Path) {
    if let Ok(file) = std::fs::File::open(path) {
        let _ = file.set_modified(SystemTime::now());
    }
}

fn read_only(path: &Path) -> io::Result<()> {
    let mut perms = fs_err::metadata(path)?.permissions();
    perms.set_readonly(true);
    fs_err::set_permissions(path, perms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_blob_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let sha = hex::encode(Sha256::digest(b"good"));
        fs_err::write(cache.blob_path(&sha), b"evil").unwrap();
        fs_err::write(cache.sig_path(&sha), b"sig").unwrap();
        assert_eq!(cache.verified_blob(&sha).unwrap(), None);
        assert!(!cache.blob_path(&sha).exists());
        assert!(!cache.sig_path(&sha).exists());
    }

    #[test]
    fn installed_blob_is_found_and_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let temp = tempfile::NamedTempFile::new_in(cache.tmp_dir()).unwrap();
        fs_err::write(temp.path(), b"good").unwrap();
        let sha = hex::encode(Sha256::digest(b"good"));
        let path = cache.install(temp.into_temp_path(), &sha).unwrap();
        assert!(fs_err::metadata(&path).unwrap().permissions().readonly());
        assert_eq!(cache.verified_blob(&sha).unwrap(), Some(4));
    }
}
