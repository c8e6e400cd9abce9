//! What every call leaves behind: metrics, one usage record, one log line.

use std::time::{Instant, SystemTime};

use par_telemetry::{AgentLabel, UsageRecord};
use serde_json::{Map, Value};

use crate::state::AppState;
use crate::trace::TraceContext;

/// Started when a call arrives, finished exactly once with its outcome.
pub struct CallRecord {
    state: AppState,
    requested_id: String,
    label: AgentLabel,
    request_id: String,
    pub trace: TraceContext,
    started: Instant,
    started_at: SystemTime,
    pub bytes_in: u64,
    /// The authenticated caller, when auth is on.
    pub caller: Option<par_auth::Caller>,
    /// Files uploaded with the call; removed when the record is finished (call over).
    pub uploads: Option<tempfile::TempDir>,
    _inflight: par_telemetry::metrics::GaugeGuard,
}

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
        trace: TraceContext,
    ) -> CallRecord {
        let metrics = state.runtime.metrics();
        let base = requested_id.split('@').next().unwrap_or(requested_id);
        let label = metrics.agent_label(base);
        let inflight = metrics.track_inflight(&label);
        CallRecord {
            state: state.clone(),
            requested_id: requested_id.to_string(),
            label,
            request_id: request_id.to_string(),
            trace,
            started: Instant::now(),
            started_at: SystemTime::now(),
            bytes_in: 0,
            caller: None,
            uploads: None,
            _inflight: inflight,
        }
    }

    pub fn finish(self, end: Finish<'_>) {
        let elapsed = self.started.elapsed();
        let metrics = self.state.runtime.metrics();
        metrics.invocation_finished(&self.label, end.version, end.code, elapsed);
        let agent = if end.agent.is_empty() {
            self.requested_id.as_str()
        } else {
            end.agent
        };
        tracing::info!(
            request_id = %self.request_id,
            trace_id = %self.trace.trace_id,
            agent,
            version = end.version,
            code = end.code,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            bytes_in = self.bytes_in,
            bytes_out = end.bytes_out,
            "call finished"
        );
        if let Some(ledger) = &self.state.usage {
            ledger.record(UsageRecord {
                request_id: self.request_id.clone(),
                caller_subject: self.caller.as_ref().map(|c| c.subject.clone()),
                caller_client_id: self.caller.as_ref().and_then(|c| c.client_id.clone()),
                tenant: self.caller.as_ref().and_then(|c| c.tenant.clone()),
                caller_agent: None,
                agent: agent.to_string(),
                version: end.version.to_string(),
                started_at: self.started_at.into(),
                duration_ms: elapsed.as_secs_f64() * 1000.0,
                outcome: end.code.to_string(),
                bytes_in: self.bytes_in,
                bytes_out: end.bytes_out,
                reported: end.usage,
            });
        }
    }
}
