//! The task that drives one run: admission and the worker call through the same path as
//! invoke (`Runtime::start_call_within`), every event recorded as it happens, the end
//! recorded once. It belongs to no request: a client that goes away changes nothing,
//! a cancel (or shutdown) ends it by dropping the call, which cancels the handler.

use std::time::Duration;

use bytes::Bytes;
use par_core::{json_array, ActiveCall, InvokeError, StreamEvent};
use par_runs::{RunEnd, RunHandle, RunStatus};

use crate::accounting::CallRecord;
use crate::state::AppState;

/// The outcome metered for a run ended from outside: `interrupted` when shutdown ended
/// it, else `cancelled`.
fn ended_elsewhere(handle: &RunHandle) -> String {
    match handle.status() {
        Some(RunStatus::Interrupted) => "interrupted",
        _ => "cancelled",
    }
    .to_string()
}

pub(super) fn spawn(
    state: AppState,
    handle: RunHandle,
    mut record: CallRecord,
    id: String,
    body: Bytes,
    timeout: Duration,
) {
    tokio::spawn(async move {
        let ended = handle.ended_elsewhere();
        let (code, bytes_out) = tokio::select! {
            outcome = drive(&state, &handle, &mut record, &id, &body, timeout) => outcome,
            () = ended => (ended_elsewhere(&handle), 0),
        };
        record.finish(&code, bytes_out);
    });
}

/// Runs the call to its end; returns the outcome code to meter and the bytes produced.
async fn drive(
    state: &AppState,
    handle: &RunHandle,
    record: &mut CallRecord,
    id: &str,
    body: &[u8],
    timeout: Duration,
) -> (String, u64) {
    let started = state
        .runtime
        .start_call_within(id, body, &record.meta, timeout)
        .await;
    let mut call = match started {
        Ok(call) => call,
        Err(error) => return (fail(handle, &error), 0),
    };
    record.taken_by(&call);
    if let Err(e) = handle.mark_running(&call.version) {
        tracing::error!(run_id = handle.run_id(), error = %e, "recording a run as running");
    }
    follow(handle, &mut call).await
}

/// Records every event of the call until it ends.
async fn follow(handle: &RunHandle, call: &mut ActiveCall) -> (String, u64) {
    let mut items: Vec<Bytes> = Vec::new();
    let mut plain: Option<Bytes> = None;
    let mut bytes_out = 0u64;
    loop {
        match call.next_event().await {
            StreamEvent::Item(item) => {
                bytes_out += item.len() as u64;
                if call.returned_plain_result() {
                    plain = Some(item.clone());
                }
                if let Err(e) = handle.item(&String::from_utf8_lossy(&item)) {
                    tracing::error!(run_id = handle.run_id(), error = %e, "recording a run's item");
                }
                items.push(item);
            }
            StreamEvent::Done => {
                // A plain return value is the result; a generator's items, as a list.
                let result = plain.unwrap_or_else(|| json_array(&items));
                let end = RunEnd::succeeded(String::from_utf8_lossy(&result).into_owned());
                let code = if finish(handle, &end) {
                    "ok".to_string()
                } else {
                    ended_elsewhere(handle)
                };
                return (code, bytes_out);
            }
            StreamEvent::Failed(error) => return (fail(handle, &error), bytes_out),
        }
    }
}

/// Ends the run failed; the outcome to meter is how it really ended (a cancel or
/// shutdown that got there first wins, e.g. workers stopped after an interrupt).
fn fail(handle: &RunHandle, error: &InvokeError) -> String {
    let code = error.code.as_str();
    let end = RunEnd::error(RunStatus::Failed, code, &error.message);
    if finish(handle, &end) {
        code.to_string()
    } else {
        ended_elsewhere(handle)
    }
}

/// Records the end unless a cancel got there first; returns whether this ended the run.
fn finish(handle: &RunHandle, end: &RunEnd) -> bool {
    handle.finish(end).unwrap_or_else(|e| {
        tracing::error!(run_id = handle.run_id(), error = %e, "recording a run's end");
        false
    })
}
