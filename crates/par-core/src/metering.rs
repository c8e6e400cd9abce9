//! What every finished call leaves behind, whoever made it (an HTTP client or another
//! agent): its metrics, one JSON log line and one usage record.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use par_telemetry::otlp::{AttrValue, CallSpan, OtlpExporter, SpanKind};
use par_telemetry::{AgentLabel, UsageRecord};
use serde_json::{Map, Value};

use crate::invoke::{ActiveCall, CallMeta, UsageReports};

/// Metering, as one part of the runtime: the metrics, and where usage records and spans
/// go when those are on. Every finished call passes through [`Metering::record_call`].
pub struct Metering {
    metrics: par_telemetry::Metrics,
    usage: Option<Arc<par_telemetry::UsageLedger>>,
    spans: Option<OtlpExporter>,
}

/// The authenticated party a call is made for, as usage records name it.
#[derive(Debug, Clone, Default)]
pub struct CallerIdentity {
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub tenant: Option<String>,
}

/// How one call ended.
pub(crate) struct FinishedCall<'a> {
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

/// One call's record from arrival to end, written exactly once: by [`CallRecord::finish`],
/// or, when it is dropped first (whoever waited for the call went away and the call was
/// cancelled), with the outcome given at start and the usage reported until then.
pub struct CallRecord {
    metering: Arc<Metering>,
    /// Request id, trace context, caller and calling agents, as passed to the worker.
    pub meta: CallMeta,
    requested: String,
    label: AgentLabel,
    started: Instant,
    started_at: SystemTime,
    pub bytes_in: u64,
    /// The agent and version that took the call, and its usage reports, once known.
    taken_by: Option<(String, String, UsageReports)>,
    if_dropped: &'static str,
    done: bool,
    _inflight: par_telemetry::metrics::GaugeGuard,
}

impl CallRecord {
    /// Starts timing a call to `requested` (an id, maybe `id@version`) and counts it in
    /// flight until the record is written.
    pub fn start(
        metering: Arc<Metering>,
        requested: &str,
        meta: CallMeta,
        if_dropped: &'static str,
    ) -> CallRecord {
        Self::start_labelled(metering, requested, true, meta, if_dropped)
    }

    /// As [`CallRecord::start`], for a call from outside: an id the caller may not know
    /// about (`visible` false: private or not mounted) is counted as `unknown`, so
    /// unauthenticated `/metrics` never confirms a probed private id.
    pub fn start_labelled(
        metering: Arc<Metering>,
        requested: &str,
        visible: bool,
        meta: CallMeta,
        if_dropped: &'static str,
    ) -> CallRecord {
        let id = requested.split('@').next().unwrap_or(requested);
        let label = metering.metrics.agent_label(if visible { id } else { "" });
        let inflight = metering.metrics.track_inflight(&label);
        CallRecord {
            metering,
            meta,
            requested: requested.to_string(),
            label,
            started: Instant::now(),
            started_at: SystemTime::now(),
            bytes_in: 0,
            taken_by: None,
            if_dropped,
            done: false,
            _inflight: inflight,
        }
    }

    /// Names the agent that took the call; its usage is read when the record is written.
    pub fn taken_by(&mut self, call: &ActiveCall) {
        let usage = call.usage_reports();
        self.taken_by = Some((call.agent.clone(), call.version.clone(), usage));
    }

    /// Drops the record unwritten: the request turned out to start no call (it named a
    /// durable run that already exists, through its idempotency key).
    pub fn discard(mut self) {
        self.done = true;
    }

    /// Writes the record: `code` is `ok` or the error code.
    pub fn finish(mut self, code: &str, bytes_out: u64) {
        self.write(code, bytes_out);
    }

    fn write(&mut self, code: &str, bytes_out: u64) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let (agent, version, usage) = match &self.taken_by {
            Some((agent, version, usage)) => (
                agent.as_str(),
                version.as_str(),
                usage.lock().map(|u| u.clone()).unwrap_or_default(),
            ),
            None => (self.requested.as_str(), "", Map::new()),
        };
        self.metering.record_call(FinishedCall {
            meta: &self.meta,
            label: &self.label,
            agent,
            version,
            code,
            started_at: self.started_at,
            elapsed: self.started.elapsed(),
            bytes_in: self.bytes_in,
            bytes_out,
            usage,
        });
    }
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        self.write(self.if_dropped, 0);
    }
}

impl Metering {
    pub fn new(
        metrics: par_telemetry::Metrics,
        usage: Option<Arc<par_telemetry::UsageLedger>>,
        spans: Option<OtlpExporter>,
    ) -> Metering {
        Metering {
            metrics,
            usage,
            spans,
        }
    }

    pub fn metrics(&self) -> &par_telemetry::Metrics {
        &self.metrics
    }

    /// Counts, logs, traces and meters one finished call.
    pub(crate) fn record_call(&self, call: FinishedCall<'_>) {
        if let Some(exporter) = &self.spans {
            export_span(exporter, &call);
        }
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
        if let Some(ledger) = &self.usage {
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

/// One span per call: a server span for a call from outside, an internal one (child of
/// the calling agent's span) for an agent-to-agent call. Calls whose trace context says
/// "not sampled" are not exported, as a parent-based sampler would do.
fn export_span(exporter: &OtlpExporter, call: &FinishedCall<'_>) {
    let trace = &call.meta.trace;
    let sampled = u8::from_str_radix(&trace.flags, 16).is_ok_and(|flags| flags & 1 == 1);
    if !sampled {
        return;
    }
    let mut attributes: Vec<(&'static str, AttrValue)> = vec![
        ("par.agent", call.agent.into()),
        ("par.version", call.version.into()),
        ("par.request_id", call.meta.request_id.as_str().into()),
        ("par.outcome", call.code.into()),
        ("par.bytes_in", saturating(call.bytes_in).into()),
        ("par.bytes_out", saturating(call.bytes_out).into()),
    ];
    if let Some(caller) = call.meta.caller_agent() {
        attributes.push(("par.caller_agent", caller.into()));
    }
    exporter.export(CallSpan {
        trace_id: trace.trace_id.clone(),
        span_id: trace.span_id.clone(),
        parent_span_id: trace.parent_span_id.clone(),
        name: format!("invoke {}", call.agent),
        kind: if call.meta.chain.is_empty() {
            SpanKind::Server
        } else {
            SpanKind::Internal
        },
        start: call.started_at,
        end: call.started_at + call.elapsed,
        attributes,
        error: (call.code != "ok").then(|| call.code.to_string()),
    });
}

fn saturating(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
