//! One cross-process lock per file: what `par-pyenv` holds while it builds an environment
//! and `par-registry` while it downloads a blob, so two runtimes sharing a cache directory
//! do the work once.

use std::io;
use std::path::PathBuf;

/// Takes an exclusive lock on `path` (created if needed), waiting for other processes on a
/// blocking thread so the async threads keep running. The lock is released when the
/// returned file is dropped.
pub async fn lock_file(path: PathBuf) -> io::Result<std::fs::File> {
    tokio::task::spawn_blocking(move || {
        let file = fs_err::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?
            .into_parts()
            .0;
        file.lock()
            .map_err(|e| io::Error::new(e.kind(), format!("locking {}: {e}", path.display())))?;
        Ok(file)
    })
    .await
    .map_err(io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_held_lock_excludes_a_second_holder_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.lock");
        let held = lock_file(path.clone()).await.unwrap();
        let other = std::fs::File::open(&path).unwrap();
        assert!(other.try_lock().is_err());
        drop(held);
        assert!(other.try_lock().is_ok());
    }
}
