//! Test harness: real servers on 127.0.0.1 and helpers to build fetchers against them.

pub(crate) mod gpg;
pub(crate) mod s3;
pub(crate) mod server;
pub(crate) mod tls;

use std::path::{Path, PathBuf};
use std::time::Duration;

use par_registry::{FetchConfig, Fetcher, SignaturePolicy};
use sha2::{Digest, Sha256};

/// Defaults with short backoff and timeouts so fault tests stay fast; signatures off
/// unless a test turns them on.
pub(crate) fn config(cache_dir: &Path) -> FetchConfig {
    let mut config = FetchConfig::new(cache_dir);
    config.connect_timeout = Duration::from_secs(2);
    config.read_timeout = Duration::from_secs(2);
    config.total_timeout = Duration::from_secs(30);
    config.backoff_base = Duration::from_millis(20);
    config.backoff_cap = Duration::from_millis(100);
    config.signature_policy = SignaturePolicy::Off;
    config
}

pub(crate) async fn fetcher(config: FetchConfig) -> Fetcher {
    Fetcher::new(config).await.expect("fetcher")
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Files in a cache subdirectory (`blobs/sha256`, `tmp`, ...).
pub(crate) fn files_in(cache_dir: &Path, sub: &str) -> Vec<PathBuf> {
    match std::fs::read_dir(cache_dir.join(sub)) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

/// Deterministic bytes standing in for a package.
pub(crate) fn package_bytes(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2_654_435_761)
                .rotate_left(seed as u32) as u8
        })
        .collect()
}
