//! What every finished call leaves behind, whoever made it (an HTTP client or another
//! agent): its metrics, one JSON log line and one usage record.

use std::time::{Duration, SystemTime};

use par_telemetry::{AgentLabel, UsageRecord};
use serde_json::{Map, Value};

use crate::invoke::CallMeta;
use crate::runtime::Runtime;

/// The authenticated party a call is made for, as usage records name it.
#[derive(Debug, Clone, Default)]
pub struct CallerIdentity {
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub tenant: Option<String>,
}

/// How one call ended.
pub struct FinishedCall<'a> {
    pub meta: &'a CallMeta,
    /// The metrics label of the agent as requested (bounded: unknown ids share one).
    pub label: &'a AgentLabel,
    /// The agent that took the call, or the id as requested when none did.
    pub agent: &'a str,
    pub version: &'a str,
    /// `ok` or the error code.
    pub code: &'a str,
    pub started_at: SystemTime,
    pub elapsed: Duration,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// What the handler reported with `par_runtime.report_usage`.
    pub usage: Map<String, Value>,
}

impl Runtime {
    /// Where usage records go; set once at startup when metering is on.
    pub fn set_usage_ledger(&self, ledger: std::sync::Arc<par_telemetry::UsageLedger>) {
        let _ = self.usage.set(ledger);
    }

    /// Counts, logs and meters one finished call.
    pub fn record_call(&self, call: FinishedCall<'_>) {
        self.metrics
            .invocation_finished(call.label, call.version, call.code, call.elapsed);
        let meta = call.meta;
        tracing::info!(
            request_id = %meta.request_id,
            trace_id = %meta.trace.trace_id,
            agent = call.agent,
            version = call.version,
            code = call.code,
            latency_ms = call.elapsed.as_secs_f64() * 1000.0,
            bytes_in = call.bytes_in,
            bytes_out = call.bytes_out,
            caller_agent = meta.caller_agent(),
            "call finished"
        );
        if let Some(ledger) = self.usage.get() {
            ledger.record(UsageRecord {
                request_id: meta.request_id.clone(),
                caller_subject: meta.caller.subject.clone(),
                caller_client_id: meta.caller.client_id.clone(),
                tenant: meta.caller.tenant.clone(),
                caller_agent: meta.caller_agent().map(str::to_string),
                agent: call.agent.to_string(),
                version: call.version.to_string(),
                started_at: call.started_at.into(),
                duration_ms: call.elapsed.as_secs_f64() * 1000.0,
                outcome: call.code.to_string(),
                bytes_in: call.bytes_in,
                bytes_out: call.bytes_out,
                reported: call.usage,
            });
        }
    }
}
