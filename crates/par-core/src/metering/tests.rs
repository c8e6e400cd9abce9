//! Unit tests of `metering.rs`.

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
    let ledger =
        Arc::new(UsageLedger::open(dir.path().join("usage.db"), UsageConfig::default()).unwrap());
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
        [r#"par_invocations_total{agent="unknown",version="unknown",code="agent_not_found"} 1"#]
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
        [r#"par_invocations_total{agent="unknown",version="unknown",code="agent_not_found"} 1"#]
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
