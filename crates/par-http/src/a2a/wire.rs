//! A2A's two wire forms: protocol 1.0 (ProtoJSON: `TASK_STATE_*`, parts without `kind`,
//! stream responses wrapped in `task`/`statusUpdate`/`artifactUpdate`) and 0.3 (`kind`
//! on every object, lower-case states). Runs map onto tasks: the run id is the task id.

use par_runs::{RunRecord, RunStatus};
use serde_json::{json, Map, Value};

use crate::jsonrpc::{RpcError, INVALID_PARAMS};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Version {
    V1,
    V03,
}

/// Spec error codes.
pub(super) const TASK_NOT_FOUND: i64 = -32001;
pub(super) const TASK_NOT_CANCELABLE: i64 = -32002;
pub(super) const PUSH_NOT_SUPPORTED: i64 = -32003;
pub(super) const UNSUPPORTED_OPERATION: i64 = -32004;
pub(super) const EXTENDED_CARD_NOT_CONFIGURED: i64 = -32007;
pub(super) const VERSION_NOT_SUPPORTED: i64 = -32009;

/// What a message carries for the handler: the payload (its first `data` part holding a
/// JSON object, else its text parts joined as `{"text": ...}`, else `{}` when it holds
/// only files) and its file parts, which the caller stores before the call.
#[derive(Debug)]
pub(super) struct Incoming {
    pub payload: Map<String, Value>,
    pub files: Vec<FilePart>,
}

/// A file part: inline bytes (1.0 `raw`, 0.3 `file.bytes`, base64 on the wire) or a
/// reference (1.0 `url`, 0.3 `file.uri`), which the runtime never fetches.
#[derive(Debug)]
pub(super) struct FilePart {
    pub filename: Option<String>,
    pub media_type: Option<String>,
    pub content: FileContent,
}

#[derive(Debug)]
pub(super) enum FileContent {
    Inline(Vec<u8>),
    Url(String),
}

pub(super) fn incoming(message: &Value) -> Result<Incoming, RpcError> {
    let Some(parts) = message.get("parts").and_then(Value::as_array) else {
        return Err(RpcError::new(
            INVALID_PARAMS,
            "message.parts must be a list",
        ));
    };
    let mut data = None;
    let mut texts = Vec::new();
    let mut files = Vec::new();
    for part in parts {
        if let Some(value) = part.get("data") {
            // 0.3 nests nothing; 1.0 may carry the object directly too.
            let Value::Object(object) = value else {
                return Err(RpcError::new(
                    INVALID_PARAMS,
                    "a data part must hold a JSON object",
                ));
            };
            data.get_or_insert_with(|| object.clone());
        } else if let Some(text) = part.get("text").and_then(Value::as_str) {
            texts.push(text.to_string());
        } else if let Some(file) = file_part(part)? {
            files.push(file);
        }
    }
    let payload = match data {
        Some(object) => object,
        None if !texts.is_empty() => Map::from_iter([("text".into(), json!(texts.join("\n")))]),
        None if !files.is_empty() => Map::new(),
        None => {
            return Err(RpcError::new(
                INVALID_PARAMS,
                "the message has no data, text or file part",
            ))
        }
    };
    Ok(Incoming { payload, files })
}

/// A part as a file, if it is one: 1.0 puts `raw`/`url` beside `filename`/`mediaType`,
/// 0.3 nests `{bytes|uri, name, mimeType}` under `file`.
fn file_part(part: &Value) -> Result<Option<FilePart>, RpcError> {
    let (holder, bytes, url, name, media) = match part.get("file") {
        Some(file) => (file, "bytes", "uri", "name", "mimeType"),
        None => (part, "raw", "url", "filename", "mediaType"),
    };
    let text = |key: &str| holder.get(key).and_then(Value::as_str).map(str::to_string);
    let content = if let Some(encoded) = holder.get(bytes) {
        let encoded = encoded.as_str().unwrap_or_default();
        FileContent::Inline(decode_base64(encoded)?)
    } else if let Some(url) = text(url) {
        FileContent::Url(url)
    } else if part.get("file").is_some() {
        return Err(RpcError::new(
            INVALID_PARAMS,
            "a file part needs bytes or a uri",
        ));
    } else {
        return Ok(None);
    };
    Ok(Some(FilePart {
        filename: text(name),
        media_type: text(media),
        content,
    }))
}

fn decode_base64(encoded: &str) -> Result<Vec<u8>, RpcError> {
    use base64::Engine;
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::URL_SAFE,
    ];
    engines
        .iter()
        .find_map(|engine| engine.decode(encoded.trim()).ok())
        .ok_or_else(|| RpcError::new(INVALID_PARAMS, "a file part's bytes are not base64"))
}

fn state(version: Version, status: RunStatus) -> &'static str {
    match (version, status) {
        (Version::V1, RunStatus::Queued) => "TASK_STATE_SUBMITTED",
        (Version::V1, RunStatus::Running) => "TASK_STATE_WORKING",
        (Version::V1, RunStatus::Succeeded) => "TASK_STATE_COMPLETED",
        (Version::V1, RunStatus::Cancelled) => "TASK_STATE_CANCELED",
        (Version::V1, _) => "TASK_STATE_FAILED",
        (Version::V03, RunStatus::Queued) => "submitted",
        (Version::V03, RunStatus::Running) => "working",
        (Version::V03, RunStatus::Succeeded) => "completed",
        (Version::V03, RunStatus::Cancelled) => "canceled",
        (Version::V03, _) => "failed",
    }
}

/// A value as a message part: a string as text, anything else as data (0.3 data parts
/// hold only objects: anything else goes under `result`).
pub(super) fn part(version: Version, value: &Value) -> Value {
    let mut part = match value {
        Value::String(text) => json!({ "text": text }),
        Value::Object(_) => json!({ "data": value }),
        other if version == Version::V03 => json!({ "data": { "result": other } }),
        other => json!({ "data": other }),
    };
    if version == Version::V03 {
        part["kind"] = json!(if value.is_string() { "text" } else { "data" });
    }
    part
}

fn agent_message(version: Version, task_id: &str, text: &str) -> Value {
    let mut message = json!({
        "messageId": format!("{task_id}-status"),
        "taskId": task_id,
        "contextId": task_id,
        "parts": [part(version, &json!(text))],
    });
    match version {
        Version::V1 => message["role"] = json!("ROLE_AGENT"),
        Version::V03 => {
            message["role"] = json!("agent");
            message["kind"] = json!("message");
        }
    }
    message
}

/// A task's status: its state, and for failures a message naming the error code.
pub(super) fn status(version: Version, run: &RunRecord) -> Value {
    let at = run.finished_ms.or(run.started_ms).unwrap_or(run.created_ms);
    let mut status = json!({
        "state": state(version, run.status),
        "timestamp": par_runs::rfc3339(at),
    });
    if let Some(error) = &run.error {
        let text = format!("{}: {}", error.code, error.error);
        status["message"] = agent_message(version, &run.run_id, &text);
    }
    status
}

pub(super) fn artifact(version: Version, value: &Value) -> Value {
    json!({
        "artifactId": "result",
        "name": "result",
        "parts": [part(version, value)],
    })
}

/// The run as a task: the result (when succeeded) as its one artifact.
pub(super) fn task(version: Version, run: &RunRecord) -> Value {
    let mut task = json!({
        "id": run.run_id,
        "contextId": run.run_id,
        "status": status(version, run),
    });
    let result = run
        .result
        .as_deref()
        .and_then(|r| serde_json::from_str::<Value>(r).ok());
    if let Some(result) = result {
        task["artifacts"] = json!([artifact(version, &result)]);
    }
    if version == Version::V03 {
        task["kind"] = json!("task");
    }
    task
}

/// One streamed item as an artifact update (appending after the first).
pub(super) fn artifact_update(version: Version, task_id: &str, item: &Value, first: bool) -> Value {
    let mut update = json!({
        "taskId": task_id,
        "contextId": task_id,
        "artifact": artifact(version, item),
        "append": !first,
    });
    match version {
        Version::V1 => json!({ "artifactUpdate": update }),
        Version::V03 => {
            update["kind"] = json!("artifact-update");
            update
        }
    }
}

pub(super) fn status_update(version: Version, run: &RunRecord) -> Value {
    let mut update = json!({
        "taskId": run.run_id,
        "contextId": run.run_id,
        "status": status(version, run),
    });
    match version {
        Version::V1 => json!({ "statusUpdate": update }),
        Version::V03 => {
            update["kind"] = json!("status-update");
            update["final"] = json!(run.status.is_terminal());
            update
        }
    }
}

/// A whole task as a stream response or a send result.
pub(super) fn task_response(version: Version, run: &RunRecord) -> Value {
    match version {
        Version::V1 => json!({ "task": task(version, run) }),
        Version::V03 => task(version, run),
    }
}

/// `params.id` of a task method (1.0 `id`, 0.3 `id` too).
pub(super) fn task_id(params: &Value) -> Result<&str, RpcError> {
    params
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::new(INVALID_PARAMS, "params.id must be a task id"))
}

pub(super) fn params(params: &Value) -> Result<&Map<String, Value>, RpcError> {
    params
        .as_object()
        .ok_or_else(|| RpcError::new(INVALID_PARAMS, "params must be an object"))
}
