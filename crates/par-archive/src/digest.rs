//! Content hashing. A package is identified by the SHA-256 of its exact bytes: the
//! registry index pins it, and the extraction directory is named after it.

use std::io;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::ArchiveError;

/// Hex sha256 of a file, streamed (never whole in memory).
pub fn sha256_file(path: &Path) -> Result<String, ArchiveError> {
    let io_error = |source| ArchiveError::Io {
        archive: path.to_owned(),
        source,
    };
    let mut file = fs_err::File::open(path).map_err(io_error)?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher).map_err(io_error)?;
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_known_digests() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        fs_err::write(&path, b"abc").unwrap();
        let expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(sha256_file(&path).unwrap(), expected);
        fs_err::write(&path, b"").unwrap();
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(sha256_file(&path).unwrap(), empty);
    }

    #[test]
    fn streams_files_larger_than_one_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        let data = vec![7u8; 3 * 1024 * 1024 + 17];
        fs_err::write(&path, &data).unwrap();
        assert_eq!(
            sha256_file(&path).unwrap(),
            hex::encode(Sha256::digest(&data))
        );
    }

    #[test]
    fn a_missing_file_names_its_path() {
        let err = sha256_file(Path::new("/nonexistent/p.apkg")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/p.apkg"), "{err}");
    }
}
