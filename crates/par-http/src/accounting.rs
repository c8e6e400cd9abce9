//! The HTTP side of a call's records: its metadata is fixed when the request arrives,
//! and `par-core` counts, logs and meters it when it ends (as it does for calls agents
//! make to each other).

use std::time::{Instant, SystemTime};

use par_core::{CallMeta, CallerIdentity, FinishedCall};
use par_telemetry::AgentLabel;
use serde_json::{Map, Value};

use crate::state::AppState;

/// Started when a call arrives, finished exactly once with its outcome.
pub struct CallRecord {
    state: AppState,
    requested_id: String,
    label: AgentLabel,
    /// Request id, trace context and caller, as passed to the worker.
    pub meta: CallMeta,
    started: Instant,
    started_at: SystemTime,
    pub bytes_in: u64,
    /// Files uploaded with the call; removed when the record is finished (call over).
    pub uploads: Option<tempfile::TempDir>,
    /// The agent and version that took the call, and its usage reports, once known.
    pub taken_by: Option<(String, String, par_core::UsageReports)>,
    finished: bool,
    _inflight: par_telemetry::metrics::GaugeGuard,
}

/// Outcome recorded when the client went away before the call ended.
pub const CLIENT_GONE: &str = "client_closed";

/// How a call ended.
pub struct Finish<'a> {
    pub code: &'a str,
    pub agent: &'a str,
    pub version: &'a str,
    pub bytes_out: u64,
    pub usage: Map<String, Value>,
}

impl CallRecord {
    pub fn start(
        state: &AppState,
        requested_id: &str,
        request_id: &str,
        traceparent: Option<&str>,
    ) -> CallRecord {
        let metrics = state.runtime.metrics();
        let base = requested_id.split('@').next().unwrap_or(requested_id);
        let label = metrics.agent_label(base);
        let inflight = metrics.track_inflight(&label);
        CallRecord {
            state: state.clone(),
            requested_id: requested_id.to_string(),
            label,
            meta: CallMeta {
                request_id: request_id.to_string(),
                trace: par_core::trace::TraceContext::from_traceparent(traceparent),
                ..CallMeta::default()
            },
            started: Instant::now(),
            started_at: SystemTime::now(),
            bytes_in: 0,
            uploads: None,
            taken_by: None,
            finished: false,
            _inflight: inflight,
        }
    }

    /// Names the authenticated caller in the call's usage record.
    pub fn set_caller(&mut self, caller: Option<&par_auth::Caller>) {
        if let Some(caller) = caller {
            self.meta.caller = CallerIdentity {
                subject: Some(caller.subject.clone()),
                client_id: caller.client_id.clone(),
                tenant: caller.tenant.clone(),
            };
        }
    }

    pub fn finish(mut self, end: Finish<'_>) {
        self.write(end);
    }

    fn write(&mut self, end: Finish<'_>) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let agent = if end.agent.is_empty() {
            self.requested_id.as_str()
        } else {
            end.agent
        };
        self.state.runtime.record_call(FinishedCall {
            meta: &self.meta,
            label: &self.label,
            agent,
            version: end.version,
            code: end.code,
            started_at: self.started_at,
            elapsed: self.started.elapsed(),
            bytes_in: self.bytes_in,
            bytes_out: end.bytes_out,
            usage: end.usage,
        });
    }
}

/// A call whose request was dropped (the client disconnected while waiting for a plain
/// answer) is still recorded, as `client_closed`: the handler was cancelled but ran.
impl Drop for CallRecord {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let (agent, version, usage) = self.taken_by.take().unwrap_or_default();
        let usage = usage.lock().map(|u| u.clone()).unwrap_or_default();
        self.write(Finish {
            code: CLIENT_GONE,
            agent: &agent,
            version: &version,
            bytes_out: 0,
            usage,
        });
    }
}
