//! Streaming a body to a temporary file in the cache while hashing it. Nothing is held
//! whole in memory; the size limit is enforced as bytes arrive (and up front when the
//! length is announced); a stalled transfer times out. The temporary file is deleted on
//! any failure, because it is only a `TempPath` until the caller installs it.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tempfile::TempPath;
use tokio::io::{AsyncWriteExt, BufWriter};

use crate::error::{FetchError, TimeoutKind};
use crate::transport::{Body, Opened};

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

/// A body read chunk by chunk under the limits: the announced length checked up front,
/// the running size against `max_bytes`, a stall after `read_timeout`, and an early end
/// reported as truncation. The one read loop of [`to_temp`] and [`to_memory`].
struct Limited<'a> {
    body: Body,
    length: Option<u64>,
    limits: &'a Limits,
    url: &'a str,
    size: u64,
}

impl<'a> Limited<'a> {
    fn new(opened: Opened, limits: &'a Limits, url: &'a str) -> Result<Self, FetchError> {
        let reader = Limited {
            body: opened.body,
            length: opened.length,
            limits,
            url,
            size: 0,
        };
        if opened.length.is_some_and(|len| len > limits.max_bytes) {
            return Err(reader.too_large());
        }
        Ok(reader)
    }

    /// The next chunk, `None` once the whole body has arrived.
    async fn next(&mut self) -> Result<Option<Bytes>, FetchError> {
        let (url, after) = (self.url, self.limits.read_timeout);
        let next = tokio::time::timeout(after, self.body.next_chunk(url, after)).await;
        let chunk = match next {
            Err(_) => return Err(stalled(url, after)),
            Ok(Err(e)) => return Err(truncation(e, self.size, self.length, url)),
            Ok(Ok(None)) => return self.ended().map(|()| None),
            Ok(Ok(Some(chunk))) => chunk,
        };
        self.size += chunk.len() as u64;
        if self.size > self.limits.max_bytes {
            return Err(self.too_large());
        }
        Ok(Some(chunk))
    }

    /// The body ended: short of an announced length is truncation.
    fn ended(&self) -> Result<(), FetchError> {
        match self.length.filter(|&len| self.size < len) {
            Some(expected) => Err(FetchError::Truncated {
                url: self.url.to_owned(),
                received: self.size,
                expected,
            }),
            None => Ok(()),
        }
    }

    fn too_large(&self) -> FetchError {
        FetchError::TooLarge {
            url: self.url.to_owned(),
            limit: self.limits.max_bytes,
        }
    }
}

pub(crate) async fn to_temp(
    opened: Opened,
    tmp_dir: &Path,
    limits: &Limits,
    url: &str,
) -> Result<Downloaded, FetchError> {
    let mut body = Limited::new(opened, limits, url)?;
    let named = tempfile::Builder::new()
        .prefix(".download-")
        .suffix(".part")
        .tempfile_in(tmp_dir)
        .map_err(|e| FetchError::io(url, tmp_dir, e))?;
    let (file, temp) = named.into_parts();
    let io_error = |e: std::io::Error| FetchError::io(url, &*temp, e);
    let mut out = BufWriter::with_capacity(WRITE_BUFFER, tokio::fs::File::from_std(file));
    let mut hasher = Sha256::new();
    while let Some(chunk) = body.next().await? {
        hasher.update(&chunk);
        out.write_all(&chunk).await.map_err(io_error)?;
    }
    out.flush().await.map_err(io_error)?;
    out.into_inner().sync_all().await.map_err(io_error)?;
    Ok(Downloaded {
        temp,
        sha256: hex::encode(hasher.finalize()),
        size: body.size,
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
    let mut body = Limited::new(opened, limits, url)?;
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await? {
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}
