//! Opening a location for reading, whatever its kind, and reading it chunk by chunk.
//! Callers see one `Body` type and one error type; each kind's quirks stay in its module.

mod http;
mod s3;

use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncReadExt;
use tokio::sync::OnceCell;

use crate::config::FetchConfig;
use crate::error::{ConfigError, FetchError, TimeoutKind};
use crate::source::SourceKind;

/// A response body being read.
pub(crate) enum Body {
    Http(reqwest::Response),
    S3(aws_sdk_s3::primitives::ByteStream),
    Local(tokio::fs::File),
}

pub(crate) struct Opened {
    pub body: Body,
    /// The announced length, when known.
    pub length: Option<u64>,
    pub etag: Option<String>,
}

pub(crate) enum Open {
    Body(Opened),
    /// The conditional request matched the given ETag.
    NotModified,
}

const LOCAL_CHUNK: usize = 256 * 1024;

impl Body {
    /// The next chunk, `None` at the end. `read_timeout` only labels a stall that the
    /// HTTP client itself detects.
    pub(crate) async fn next_chunk(
        &mut self,
        url: &str,
        read_timeout: Duration,
    ) -> Result<Option<Bytes>, FetchError> {
        let transfer = |detail: String| FetchError::Transfer {
            url: url.to_owned(),
            detail,
        };
        match self {
            Self::Http(response) => response.chunk().await.map_err(|e| match e.is_timeout() {
                true => FetchError::Timeout {
                    url: url.to_owned(),
                    kind: TimeoutKind::Read,
                    after: read_timeout,
                },
                false => transfer(http::error_chain(&e.without_url())),
            }),
            Self::S3(stream) => match stream.next().await {
                Some(chunk) => chunk.map(Some).map_err(|e| transfer(http::error_chain(&e))),
                None => Ok(None),
            },
            Self::Local(file) => {
                let mut buf = vec![0u8; LOCAL_CHUNK];
                let n = file
                    .read(&mut buf)
                    .await
                    .map_err(|e| transfer(e.to_string()))?;
                buf.truncate(n);
                Ok((n > 0).then(|| Bytes::from(buf)))
            }
        }
    }
}

/// The clients for every kind of location: one pooled HTTP client, one S3 client made
/// on first use (loading AWS configuration can take a moment and is often not needed).
pub(crate) struct Transports {
    http: reqwest::Client,
    s3: OnceCell<aws_sdk_s3::Client>,
    /// `--ca-bundle`, read once, for the S3 client made later.
    ca_pem: Option<Vec<u8>>,
}

impl Transports {
    pub(crate) fn new(config: &FetchConfig) -> Result<Self, ConfigError> {
        let ca_pem = match &config.ca_bundle {
            Some(path) => Some(fs_err::read(path).map_err(|e| ConfigError::CaBundle {
                path: path.clone(),
                problem: e.to_string(),
            })?),
            None => None,
        };
        Ok(Self {
            http: http::build_client(config, ca_pem.as_deref())?,
            s3: OnceCell::new(),
            ca_pem,
        })
    }

    /// Opens `kind` for reading; with `etag`, a matching remote copy answers NotModified.
    /// Errors name the location as `shown` (redacted, perhaps with the package name).
    pub(crate) async fn open(
        &self,
        kind: &SourceKind,
        shown: &str,
        etag: Option<&str>,
        config: &FetchConfig,
    ) -> Result<Open, FetchError> {
        match kind {
            SourceKind::Http(url) => http::open(&self.http, url, shown, etag, config).await,
            SourceKind::S3 { bucket, key } => {
                let ca_pem = self.ca_pem.as_deref();
                let client = self
                    .s3
                    .get_or_init(|| s3::build_client(config, ca_pem))
                    .await;
                s3::open(client, bucket, key, shown, etag, config).await
            }
            SourceKind::Local(path) => open_local(path, shown).await,
        }
    }
}

async fn open_local(path: &std::path::Path, shown: &str) -> Result<Open, FetchError> {
    let file = match tokio::fs::File::open(path).await {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(FetchError::NotFound {
                url: shown.to_owned(),
            })
        }
        Err(e) => return Err(FetchError::io(shown, path, e)),
    };
    let meta = file
        .metadata()
        .await
        .map_err(|e| FetchError::io(shown, path, e))?;
    if meta.is_dir() {
        return Err(FetchError::Refused {
            url: shown.to_owned(),
            reason: "is a directory; list its *.apkg files as separate sources".into(),
        });
    }
    Ok(Open::Body(Opened {
        body: Body::Local(file),
        length: Some(meta.len()),
        etag: None,
    }))
}
