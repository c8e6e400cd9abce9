//! `multipart/form-data` invokes: files are streamed to a per-request temporary folder
//! (size-limited) and passed as `{"files": [{"field", "filename", "content_type", "size",
//! "path"}]}` beside the text fields. The folder is removed when the call is over,
//! whatever happened, because the caller holds the `TempDir` until then.

use axum::extract::{FromRequest, Multipart, Request};
use bytes::Bytes;
use par_core::ErrorCode;
use serde_json::{json, Map, Value};
use tokio::io::AsyncWriteExt;

use crate::error::ApiError;

pub(crate) fn is_multipart(request: &Request) -> bool {
    request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"))
}

/// The JSON body for the handler, and the folder holding the uploaded files.
pub(crate) async fn read(
    request: Request,
    parent: &std::path::Path,
    file_limit: u64,
    field_limit: usize,
) -> Result<(Bytes, tempfile::TempDir), ApiError> {
    let bad = |e: axum::extract::multipart::MultipartError| multipart_error(&e);
    // The whole form: every file, every text field, and the parts' own headers.
    let whole = file_limit.saturating_add(field_limit as u64 * 2);
    let request = crate::body_limit::limit(request, whole, "form")?;
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, e.body_text()))?;
    let folder = upload_folder(parent)?;
    let mut body = Map::new();
    let mut files = Vec::new();
    let mut total = 0u64;
    while let Some(mut field) = multipart.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or("").to_string();
        let Some(filename) = field.file_name().map(str::to_string) else {
            let text = field.text().await.map_err(bad)?;
            if text.len() > field_limit {
                return Err(ApiError::new(
                    ErrorCode::TooLarge,
                    format!("form field '{name}' is too large"),
                ));
            }
            body.insert(name, Value::String(text));
            continue;
        };
        let path = folder
            .path()
            .join(format!("{}-{}", files.len(), safe_name(&filename)));
        let size = store(&mut field, &path, &mut total, file_limit).await?;
        let content_type = field.content_type().map(str::to_string);
        files.push(json!({"field": name, "filename": filename, "content_type": content_type, "size": size, "path": path}));
    }
    body.insert("files".into(), Value::Array(files));
    Ok((
        Bytes::from(serde_json::to_vec(&body).expect("a map serialises")),
        folder,
    ))
}

/// A new folder for one call's files, under the package's uploads folder, which its
/// jail sees (created at load; again here in case it was removed).
pub(crate) fn upload_folder(parent: &std::path::Path) -> Result<tempfile::TempDir, ApiError> {
    let _ = std::fs::create_dir_all(parent);
    tempfile::Builder::new()
        .prefix("par-upload-")
        .tempdir_in(parent)
        .map_err(|e| {
            tracing::error!(error = %e, "cannot create an upload folder");
            ApiError::new(ErrorCode::Internal, "cannot store uploads")
        })
}

/// Writes one file field to `path`, counting its bytes into `total` (all the call's
/// files) against `file_limit`; returns the file's size.
async fn store(
    field: &mut axum::extract::multipart::Field<'_>,
    path: &std::path::Path,
    total: &mut u64,
    file_limit: u64,
) -> Result<u64, ApiError> {
    let bad = |m: String| ApiError::new(ErrorCode::BadRequest, m);
    let mut out = tokio::fs::File::create(path)
        .await
        .map_err(|e| bad(e.to_string()))?;
    let mut size = 0u64;
    while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(&e))? {
        size += chunk.len() as u64;
        *total += chunk.len() as u64;
        if *total > file_limit {
            return Err(ApiError::new(
                ErrorCode::TooLarge,
                format!("uploads are larger than {file_limit} bytes"),
            ));
        }
        out.write_all(&chunk)
            .await
            .map_err(|e| bad(e.to_string()))?;
    }
    out.flush().await.map_err(|e| bad(e.to_string()))?;
    Ok(size)
}

/// A multipart read error as the API answers it: 413 when the form went over its limit.
pub(crate) fn multipart_error(e: &axum::extract::multipart::MultipartError) -> ApiError {
    let code = if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ErrorCode::TooLarge
    } else {
        ErrorCode::BadRequest
    };
    ApiError::new(code, e.body_text())
}

/// The uploaded name without any directory part or odd characters.
pub(crate) fn safe_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("file");
    let cleaned: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    if cleaned.trim_matches('.').is_empty() {
        "file".into()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn file_names_cannot_escape_the_folder() {
        assert_eq!(super::safe_name("../../etc/passwd"), "passwd");
        assert_eq!(super::safe_name("..\\x.txt"), "x.txt");
        assert_eq!(super::safe_name(".."), "file");
        assert_eq!(super::safe_name("a b.pdf"), "a_b.pdf");
    }
}
