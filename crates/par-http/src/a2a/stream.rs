//! A2A streaming: a run's progress as JSON-RPC responses in Server-Sent Events — the
//! task, then an artifact update per item, then the final status. Closing the stream
//! never touches the run (a client can `SubscribeToTask` again).

use std::convert::Infallible;

use axum::body::Body;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use par_runs::{EventKind, Runs};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::wire::{self, Version};

type Frames = mpsc::Sender<Result<Bytes, Infallible>>;

/// Streams run `run_id` from its events after `after`, each answer to request `id`.
pub(super) fn events(
    runs: Runs,
    run_id: String,
    after: i64,
    id: Value,
    version: Version,
) -> Response {
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(16);
    tokio::spawn(async move {
        let _ = pump(&runs, &run_id, after, &id, version, &tx).await;
    });
    let mut response =
        Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response.extensions_mut().insert(crate::error::PassThrough);
    response
}

async fn send(tx: &Frames, id: &Value, result: Value) -> Result<(), ()> {
    let message = json!({"jsonrpc": "2.0", "id": id, "result": result});
    tx.send(Ok(Bytes::from(format!("data: {message}\n\n"))))
        .await
        .map_err(drop)
}

async fn pump(
    runs: &Runs,
    run_id: &str,
    mut cursor: i64,
    id: &Value,
    version: Version,
    tx: &Frames,
) -> Result<(), ()> {
    let run = runs.get(run_id).ok().flatten().ok_or(())?;
    send(tx, id, wire::task_response(version, &run)).await?;
    let mut first = cursor == 0;
    loop {
        let wake = runs.watch(run_id);
        let events = runs.events_after(run_id, cursor).map_err(drop)?;
        for event in &events {
            cursor = event.seq;
            if event.kind == EventKind::Item {
                let item: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
                send(tx, id, wire::artifact_update(version, run_id, &item, first)).await?;
                first = false;
                continue;
            }
            let run = runs.get(run_id).ok().flatten().ok_or(())?;
            return send(tx, id, wire::status_update(version, &run)).await;
        }
        let Some(mut wake) = wake else {
            return Ok(());
        };
        if wake.changed().await.is_err() {
            continue;
        }
    }
}
