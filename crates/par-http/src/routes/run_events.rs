//! `GET /runs/{run_id}/events`: a run's events as Server-Sent Events, `id:` the event's
//! sequence number, from the store, then live as they are recorded, until the last one
//! (`done` or `error`). `Last-Event-ID` resumes after that event, during the run or
//! after it. Closing the stream never touches the run.

use std::convert::Infallible;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use par_core::ErrorCode;
use par_runs::{EventKind, RunEvent, Runs};
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::routes::invoke::{sse_response, HEARTBEAT};
use crate::runs;
use crate::state::AppState;

pub(crate) async fn events(
    State(state): State<AppState>,
    Path(run_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let store = runs::store(&state)?.clone();
    let caller = crate::auth::authenticate(&state, &headers).await?;
    let after = last_event_id(&headers)?;
    let run = runs::visible_run(&state, &caller, &run_id)?;
    Ok(stream_events(store, run.run_id, after))
}

/// `Last-Event-ID`: the sequence number of the last event the client has (0: none).
fn last_event_id(headers: &HeaderMap) -> Result<i64, ApiError> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(0);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|n| *n >= 0)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::BadRequest,
                "Last-Event-ID must be an event's sequence number",
            )
        })
}

type Frames = mpsc::Sender<Result<Bytes, Infallible>>;

fn stream_events(runs: Runs, run_id: String, after: i64) -> Response {
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(16);
    tokio::spawn(async move {
        if let Err(e) = pump(&runs, &run_id, after, &tx).await {
            tracing::debug!(run_id, reason = e, "run event stream ended early");
        }
    });
    sse_response(rx)
}

/// Sends stored events after `cursor`, then waits for more, until the last event is sent
/// or the client is gone.
async fn pump(runs: &Runs, run_id: &str, mut cursor: i64, tx: &Frames) -> Result<(), &'static str> {
    loop {
        // Subscribe before reading, so an event recorded in between still wakes us.
        let wake = runs.watch(run_id);
        let events = runs
            .events_after(run_id, cursor)
            .map_err(|_| "store failed")?;
        for event in &events {
            send(tx, frame(event)).await?;
            cursor = event.seq;
            if event.kind.is_last() {
                return Ok(());
            }
        }
        let Some(mut wake) = wake else {
            // Not in flight: everything it will ever have was just read.
            return Ok(());
        };
        let mut heartbeat =
            tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
        tokio::select! {
            _ = wake.changed() => {}
            _ = heartbeat.tick() => send(tx, Bytes::from_static(b": keep-alive\n\n")).await?,
        }
    }
}

async fn send(tx: &Frames, frame: Bytes) -> Result<(), &'static str> {
    tx.send(Ok(frame)).await.map_err(|_| "client gone")
}

fn frame(event: &RunEvent) -> Bytes {
    let mut out = format!("id: {}\n", event.seq);
    match event.kind {
        EventKind::Item => {}
        EventKind::Done => out.push_str("event: done\n"),
        EventKind::Error => out.push_str("event: error\n"),
    }
    // Stored JSON is compact (no raw newlines), so one data line suffices.
    out.push_str("data: ");
    out.push_str(&event.data);
    out.push_str("\n\n");
    Bytes::from(out)
}
