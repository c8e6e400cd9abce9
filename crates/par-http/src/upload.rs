//! Uploaded packages: streamed to a temporary file while hashed, size-limited, then
//! renamed to `<cache>/uploads/<sha256>.apkg` (the same upload twice is one file).

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use par_core::ErrorCode;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::error::ApiError;
use crate::state::AppState;

/// Stores the body and returns the path to load.
pub(crate) async fn store<S>(state: &AppState, mut body: S, name: &str) -> Result<String, ApiError>
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
{
    let internal = |e: std::io::Error| {
        tracing::error!(error = %e, "cannot store upload");
        ApiError::new(ErrorCode::Internal, "cannot store the upload")
    };
    let dir = state.runtime.config().cache_dir.join("uploads");
    tokio::fs::create_dir_all(&dir).await.map_err(internal)?;
    let temp = tempfile::Builder::new()
        .prefix(".upload-")
        .tempfile_in(&dir)
        .map_err(internal)?;
    let mut file = tokio::fs::File::from_std(temp.reopen().map_err(internal)?);
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let limit = state.limits.max_upload_bytes;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(ErrorCode::BadRequest, format!("upload interrupted: {e}"))
        })?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(ApiError::new(
                ErrorCode::TooLarge,
                format!("upload is larger than {limit} bytes"),
            ));
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(internal)?;
    }
    file.flush().await.map_err(internal)?;
    if size == 0 {
        return Err(ApiError::new(ErrorCode::BadRequest, "empty upload"));
    }
    let sha = hex::encode(hasher.finalize());
    let path = dir.join(format!("{sha}.apkg"));
    temp.persist(&path).map_err(|e| internal(e.error))?;
    tracing::info!(name, sha256 = %sha, size, "package uploaded");
    Ok(path.display().to_string())
}
