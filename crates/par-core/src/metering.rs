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
mod tests {
    use par_telemetry::usage::UsageConfig;
    use par_telemetry::{Metrics, UsageLedger, UsageQuery};

    use super::*;

    /// Metering with a real ledger in a temporary folder.
    struct Setup {
        _dir: tempfile::TempDir,
        metrics: Metrics,
        ledger: Arc<UsageLedger>,
        metering: Arc<Metering>,
    }

    fn setup(mounted: &[&str]) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Arc::new(
            UsageLedger::open(dir.path().join("usage.db"), UsageConfig::default()).unwrap(),
        );
        let metrics = Metrics::new();
        for id in mounted {
            metrics.register_agent(id);
        }
        let metering = Arc::new(Metering::new(metrics.clone(), Some(ledger.clone()), None));
        Setup {
            _dir: dir,
            metrics,
            ledger,
            metering,
        }
    }

    impl Setup {
        async fn records(&self) -> Vec<UsageRecord> {
            self.ledger
                .query(&UsageQuery::default())
                .await
                .unwrap()
                .records
        }

        /// The `par_invocations_total` samples, as `agent version code count` lines.
        fn invocations(&self) -> Vec<String> {
            samples(&self.metrics, "par_invocations_total{")
        }

        fn inflight(&self, agent: &str) -> String {
            let prefix = format!("par_inflight_invocations{{agent=\"{agent}\"}} ");
            let text = self.metrics.encode();
            text.lines()
                .find_map(|l| l.strip_prefix(&prefix))
                .unwrap_or("absent")
                .to_string()
        }
    }

    fn samples(metrics: &Metrics, prefix: &str) -> Vec<String> {
        metrics
            .encode()
            .lines()
            .filter(|l| l.starts_with(prefix))
            .map(str::to_string)
            .collect()
    }

    fn meta(request_id: &str) -> CallMeta {
        CallMeta {
            request_id: request_id.to_string(),
            ..CallMeta::default()
        }
    }

    #[tokio::test]
    async fn finishing_writes_one_record_and_the_drop_after_it_writes_nothing() {
        let s = setup(&["a"]);
        let mut record = CallRecord::start(s.metering.clone(), "a", meta("r1"), "cancelled");
        record.bytes_in = 11;
        record.finish("ok", 42);
        let records = s.records().await;
        assert_eq!(records.len(), 1, "{records:?}");
        assert_eq!(records[0].request_id, "r1");
        assert_eq!(records[0].outcome, "ok");
        assert_eq!((records[0].bytes_in, records[0].bytes_out), (11, 42));
        assert_eq!(
            s.invocations(),
            [r#"par_invocations_total{agent="a",version="",code="ok"} 1"#]
        );
    }

    #[tokio::test]
    async fn a_record_dropped_unfinished_is_written_once_with_the_outcome_given_at_start() {
        let s = setup(&["a"]);
        let mut record = CallRecord::start(s.metering.clone(), "a", meta("r2"), "cancelled");
        record.bytes_in = 5;
        drop(record);
        let records = s.records().await;
        assert_eq!(records.len(), 1, "{records:?}");
        assert_eq!(records[0].outcome, "cancelled");
        assert_eq!((records[0].bytes_in, records[0].bytes_out), (5, 0));
        assert_eq!(
            s.invocations(),
            [r#"par_invocations_total{agent="a",version="",code="cancelled"} 1"#]
        );
    }

    #[tokio::test]
    async fn usage_reported_until_a_drop_is_kept_with_the_agent_that_took_the_call() {
        let s = setup(&["a"]);
        let mut record = CallRecord::start(s.metering.clone(), "a", meta("r3"), "cancelled");
        let usage = UsageReports::default();
        record.taken_by = Some(("a".into(), "1.0.0".into(), usage.clone()));
        // Reported after the call was taken, before the caller went away.
        usage
            .lock()
            .unwrap()
            .insert("tokens_in".into(), serde_json::json!(7));
        drop(record);
        let records = s.records().await;
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].agent, "a");
        assert_eq!(records[0].version, "1.0.0");
        assert_eq!(records[0].reported["tokens_in"], serde_json::json!(7));
        assert_eq!(
            s.invocations(),
            [r#"par_invocations_total{agent="a",version="1.0.0",code="cancelled"} 1"#]
        );
    }

    #[tokio::test]
    async fn a_call_counts_in_flight_until_its_record_is_written() {
        let s = setup(&["a"]);
        let one = CallRecord::start(s.metering.clone(), "a", meta("r1"), "cancelled");
        let two = CallRecord::start(s.metering.clone(), "a", meta("r2"), "cancelled");
        assert_eq!(s.inflight("a"), "2");
        one.finish("ok", 1);
        assert_eq!(s.inflight("a"), "1");
        drop(two);
        assert_eq!(s.inflight("a"), "0");
        assert_eq!(s.records().await.len(), 2);
    }

    #[tokio::test]
    async fn a_call_to_an_unmounted_agent_is_labelled_unknown_but_recorded_by_its_id() {
        let s = setup(&["a"]);
        CallRecord::start(s.metering.clone(), "ghost", meta("r1"), "cancelled")
            .finish("agent_not_found", 0);
        let records = s.records().await;
        assert_eq!(records[0].agent, "ghost");
        assert_eq!(records[0].outcome, "agent_not_found");
        assert_eq!(
            s.invocations(),
            [
                r#"par_invocations_total{agent="unknown",version="unknown",code="agent_not_found"} 1"#
            ]
        );
    }

    #[tokio::test]
    async fn a_call_to_id_at_version_is_labelled_with_the_id() {
        let s = setup(&["a"]);
        CallRecord::start(s.metering.clone(), "a@1.0.0", meta("r1"), "cancelled").finish("ok", 0);
        assert_eq!(
            s.invocations(),
            [r#"par_invocations_total{agent="a",version="",code="ok"} 1"#]
        );
        assert_eq!(s.records().await[0].agent, "a@1.0.0");
    }

    #[tokio::test]
    async fn the_record_names_the_caller_and_the_calling_agent() {
        let s = setup(&["inner"]);
        let outer = CallMeta {
            request_id: "r9".into(),
            caller: CallerIdentity {
                subject: Some("alice".into()),
                client_id: Some("cli".into()),
                tenant: Some("acme".into()),
            },
            ..CallMeta::default()
        };
        let nested = outer.nested("outer");
        CallRecord::start(s.metering.clone(), "inner", nested, "cancelled").finish("ok", 3);
        let r = &s.records().await[0];
        assert_eq!(r.request_id, "r9", "nested calls keep the request id");
        assert_eq!(r.caller_subject.as_deref(), Some("alice"));
        assert_eq!(r.caller_client_id.as_deref(), Some("cli"));
        assert_eq!(r.tenant.as_deref(), Some("acme"));
        assert_eq!(r.caller_agent.as_deref(), Some("outer"));
    }

    #[tokio::test]
    async fn a_call_an_outside_caller_may_not_see_is_labelled_unknown_even_when_mounted() {
        let s = setup(&["private"]);
        CallRecord::start_labelled(
            s.metering.clone(),
            "private",
            false,
            meta("r1"),
            "cancelled",
        )
        .finish("agent_not_found", 0);
        assert_eq!(
            s.invocations(),
            [
                r#"par_invocations_total{agent="unknown",version="unknown",code="agent_not_found"} 1"#
            ]
        );
        assert_eq!(
            s.records().await[0].agent,
            "private",
            "the ledger keeps the id"
        );
    }

    #[test]
    fn metering_without_a_ledger_still_counts_the_call() {
        let metrics = Metrics::new();
        metrics.register_agent("a");
        let metering = Arc::new(Metering::new(metrics.clone(), None, None));
        CallRecord::start(metering, "a", meta("r1"), "cancelled").finish("timeout", 0);
        assert_eq!(
            samples(&metrics, "par_invocations_total{"),
            [r#"par_invocations_total{agent="a",version="",code="timeout"} 1"#]
        );
    }
}
