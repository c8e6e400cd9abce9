//! Streaming a body to a temporary file in the cache while hashing it. Nothing is held
//! whole in memory; the size limit is enforced as bytes arrive (and up front when the
//! length is announced); a stalled transfer times out. The temporary file is deleted on
//! any failure, because it is only a `TempPath` until the caller installs it.

use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tempfile::TempPath;
use tokio::io::{AsyncWriteExt, BufWriter};

use crate::error::{FetchError, TimeoutKind};
use crate::transport::Opened;

const WRITE_BUFFER: usize = 256 * 1024;

pub(crate) struct Downloaded {
    pub temp: TempPath,
    pub sha256: String,
    pub size: u64,
}

pub(crate) struct Limits {
    pub max_bytes: u64,
    pub read_timeout: Duration,
}

pub(crate) async fn to_temp(
    opened: Opened,
    tmp_dir: &Path,
    limits: &Limits,
    url: &str,
) -> Result<Downloaded, FetchError> {
    let too_large = || FetchError::TooLarge {
        url: url.to_owned(),
        limit: limits.max_bytes,
    };
    if opened.length.is_some_and(|len| len > limits.max_bytes) {
        return Err(too_large());
    }
    let named = tempfile::Builder::new()
        .prefix(".download-")
        .suffix(".part")
        .tempfile_in(tmp_dir)
        .map_err(|e| FetchError::io(url, tmp_dir, e))?;
    let (file, temp) = named.into_parts();
    let io_error = |e: std::io::Error| FetchError::io(url, &*temp, e);
    let mut out = BufWriter::with_capacity(WRITE_BUFFER, tokio::fs::File::from_std(file));
    let mut body = opened.body;
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    loop {
        let next = tokio::time::timeout(
            limits.read_timeout,
            body.next_chunk(url, limits.read_timeout),
        )
        .await;
        let chunk = match next {
            Err(_) => return Err(stalled(url, limits.read_timeout)),
            Ok(Err(e)) => return Err(truncation(e, size, opened.length, url)),
            Ok(Ok(None)) => break,
            Ok(Ok(Some(chunk))) => chunk,
        };
        size += chunk.len() as u64;
        if size > limits.max_bytes {
            return Err(too_large());
        }
        hasher.update(&chunk);
        out.write_all(&chunk).await.map_err(io_error)?;
    }
    if let Some(expected) = opened.length.filter(|&len| size < len) {
        return Err(FetchError::Truncated {
            url: url.to_owned(),
            received: size,
            expected,
        });
    }
    out.flush().await.map_err(io_error)?;
    out.into_inner().sync_all().await.map_err(io_error)?;
    Ok(Downloaded {
        temp,
        sha256: hex::encode(hasher.finalize()),
        size,
    })
}

fn stalled(url: &str, after: Duration) -> FetchError {
    FetchError::Timeout {
        url: url.to_owned(),
        kind: TimeoutKind::Read,
        after,
    }
}

/// A transfer error before the announced length arrived is reported as truncation.
fn truncation(error: FetchError, size: u64, length: Option<u64>, url: &str) -> FetchError {
    match (error, length) {
        (FetchError::Transfer { .. }, Some(expected)) if size < expected => FetchError::Truncated {
            url: url.to_owned(),
            received: size,
            expected,
        },
        (other, _) => other,
    }
}

/// Reads a small body (signature, index) into memory, refusing more than `max_bytes`.
pub(crate) async fn to_memory(
    opened: Opened,
    limits: &Limits,
    url: &str,
) -> Result<Vec<u8>, FetchError> {
    if opened.length.is_some_and(|len| len > limits.max_bytes) {
        return Err(FetchError::TooLarge {
            url: url.to_owned(),
            limit: limits.max_bytes,
        });
    }
    let mut body = opened.body;
    let mut out = Vec::new();
    loop {
        let next = tokio::time::timeout(
            limits.read_timeout,
            body.next_chunk(url, limits.read_timeout),
        )
        .await;
        let chunk = match next {
            Err(_) => return Err(stalled(url, limits.read_timeout)),
            Ok(Err(e)) => return Err(truncation(e, out.len() as u64, opened.length, url)),
            Ok(Ok(None)) => break,
            Ok(Ok(Some(chunk))) => chunk,
        };
        if out.len() as u64 + chunk.len() as u64 > limits.max_bytes {
            return Err(FetchError::TooLarge {
                url: url.to_owned(),
                limit: limits.max_bytes,
            });
        }
        out.extend_from_slice(&chunk);
    }
    if let Some(expected) = opened.length.filter(|&len| (out.len() as u64) < len) {
        return Err(FetchError::Truncated {
            url: url.to_owned(),
            received: out.len() as u64,
            expected,
        });
    }
    Ok(out)
}
