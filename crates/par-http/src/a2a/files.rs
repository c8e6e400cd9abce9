//! A2A file parts, handed to the handler as multipart invoke hands uploads: inline bytes
//! are written to a per-call folder under the package's uploads folder (which its jail
//! sees) and listed as `{"field", "filename", "content_type", "size", "path"}`; a file
//! given by URL is listed with `url` instead of `path`, unfetched (the runtime fetches
//! nothing on a caller's behalf; the agent may, through its own egress policy). The
//! folder lives as long as the run's call record, so it is removed when the run ends.

use serde_json::{json, Map, Value};

use super::wire::{FileContent, FilePart};
use crate::error::ApiError;
use crate::state::AppState;

/// The field name file parts are listed under (A2A parts have no form field name).
const FIELD: &str = "file";

/// Stores `files` and adds them to `payload` as `files`; the folder, if one was needed.
pub(super) async fn attach(
    state: &AppState,
    package: &str,
    files: Vec<FilePart>,
    payload: &mut Map<String, Value>,
) -> Result<Option<tempfile::TempDir>, ApiError> {
    if files.is_empty() {
        return Ok(None);
    }
    check_total(state, &files)?;
    let needs_folder = files
        .iter()
        .any(|f| matches!(f.content, FileContent::Inline(_)));
    let folder = if needs_folder {
        let uploads = state.runtime.config().uploads_dir(package);
        Some(crate::multipart::upload_folder(&uploads)?)
    } else {
        None
    };
    let mut listed = Vec::with_capacity(files.len());
    for (index, file) in files.into_iter().enumerate() {
        let mut entry = json!({
            "field": FIELD,
            "filename": file.filename,
            "content_type": file.media_type,
        });
        match file.content {
            FileContent::Inline(bytes) => {
                let folder = folder.as_ref().expect("made for inline files");
                let name = file.filename.as_deref().unwrap_or("file");
                let path = folder
                    .path()
                    .join(format!("{index}-{}", crate::multipart::safe_name(name)));
                write(&path, &bytes).await?;
                entry["size"] = json!(bytes.len());
                entry["path"] = json!(path);
            }
            FileContent::Url(url) => entry["url"] = json!(url),
        }
        listed.push(entry);
    }
    payload.insert("files".into(), Value::Array(listed));
    Ok(folder)
}

/// Inline files count against `--max-upload-bytes` as multipart uploads do.
fn check_total(state: &AppState, files: &[FilePart]) -> Result<(), ApiError> {
    let total: u64 = files
        .iter()
        .map(|f| match &f.content {
            FileContent::Inline(bytes) => bytes.len() as u64,
            FileContent::Url(_) => 0,
        })
        .sum();
    let limit = state.limits.max_upload_bytes;
    if total > limit {
        return Err(ApiError::new(
            par_core::ErrorCode::TooLarge,
            format!("file parts are larger than {limit} bytes"),
        ));
    }
    Ok(())
}

async fn write(path: &std::path::Path, bytes: &[u8]) -> Result<(), ApiError> {
    tokio::fs::write(path, bytes).await.map_err(|e| {
        tracing::error!(error = %e, "cannot store an A2A file part");
        ApiError::new(par_core::ErrorCode::Internal, "cannot store file parts")
    })
}
