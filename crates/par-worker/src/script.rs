//! The Python worker program, shipped inside the binary and written out on demand.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Source of the worker program, kept in the repository as Python.
pub const WORKER_SOURCE: &str = include_str!("../../../python/par_worker.py");

/// Writes the worker program under `dir` in a content-addressed file and returns its path.
pub fn materialize(dir: &Path) -> std::io::Result<PathBuf> {
    write_program(dir, "par_worker.py", WORKER_SOURCE)
}

/// Writes `source` as `dir/<first 16 hex of its sha256>/<name>` (once: an existing file is
/// reused) and returns its path. Content addressing lets several runtime versions share
/// one cache directory safely. Also used for `par-surface`'s host program.
pub fn write_program(dir: &Path, name: &str, source: &str) -> std::io::Result<PathBuf> {
    let digest = hex::encode(Sha256::digest(source.as_bytes()));
    let folder = dir.join(&digest[..16]);
    let path = folder.join(name);
    if path.exists() {
        return Ok(path);
    }
    fs_err::create_dir_all(&folder)?;
    let tmp = tempfile::NamedTempFile::new_in(&folder)?;
    fs_err::write(tmp.path(), source)?;
    tmp.persist(&path).map_err(|e| e.error)?;
    Ok(path)
}
