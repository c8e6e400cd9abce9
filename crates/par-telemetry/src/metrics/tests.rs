//! Exposition-level tests: values are read back from the text a scraper would see.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::*;

/// One sample line: metric name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the OpenMetrics text into samples (comments skipped).
fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Sample {
    let (series, value) = line.rsplit_once(' ').expect("sample has a value");
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (
            name,
            parse_labels(rest.strip_suffix('}').expect("closing brace")),
        ),
        None => (series, BTreeMap::new()),
    };
    Sample {
        name: name.to_owned(),
        labels,
        value: value.parse().expect("numeric value"),
    }
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let end = closing_quote(after);
        labels.insert(
            key.to_owned(),
            after[..end].replace("\\\"", "\"").replace("\\\\", "\\"),
        );
        rest = after[end + 1..].trim_start_matches(',');
    }
    labels
}

fn closing_quote(text: &str) -> usize {
    let mut escaped = false;
    for (index, c) in text.char_indices() {
        match c {
            '"' if !escaped => return index,
            '\\' => escaped = !escaped,
            _ => escaped = false,
        }
    }
    panic!("unterminated label value in {text:?}")
}

/// The value of the one sample named `name` whose labels include `labels`.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let matching: Vec<Sample> = parse(text)
        .into_iter()
        .filter(|sample| sample.name == name)
        .filter(|sample| {
            labels
                .iter()
                .all(|(k, v)| sample.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect();
    assert_eq!(matching.len(), 1, "{name} {labels:?} in\n{text}");
    matching[0].value
}

/// Every value label `label` takes in samples named `name`.
fn label_values(text: &str, name: &str, label: &str) -> BTreeSet<String> {
    parse(text)
        .into_iter()
        .filter(|sample| sample.name == name)
        .filter_map(|sample| sample.labels.get(label).cloned())
        .collect()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn invocation_counts_and_histogram_counts_are_exact() {
    let metrics = Metrics::new();
    metrics.register_agent("echo");
    let echo = metrics.agent_label("echo");
    metrics.invocation_finished(&echo, "1.0.0", "ok", ms(3));
    metrics.invocation_finished(&echo, "1.0.0", "ok", ms(40));
    metrics.invocation_finished(&echo, "1.0.0", "timeout", ms(2_000));
    let text = metrics.encode();

    let ok = [("agent", "echo"), ("version", "1.0.0"), ("code", "ok")];
    assert_eq!(value(&text, "par_invocations_total", &ok), 2.0);
    let timeout = [("agent", "echo"), ("version", "1.0.0"), ("code", "timeout")];
    assert_eq!(value(&text, "par_invocations_total", &timeout), 1.0);

    let agent = [("agent", "echo")];
    assert_eq!(
        value(&text, "par_invocation_duration_seconds_count", &agent),
        3.0
    );
    let sum = value(&text, "par_invocation_duration_seconds_sum", &agent);
    assert!((sum - 2.043).abs() < 1e-9, "{sum}");
    let bucket = |le: &str| {
        value(
            &text,
            "par_invocation_duration_seconds_bucket",
            &[("agent", "echo"), ("le", le)],
        )
    };
    assert_eq!(bucket("0.0005"), 0.0);
    assert_eq!(bucket("0.005"), 1.0);
    assert_eq!(bucket("0.05"), 2.0);
    assert_eq!(bucket("2.5"), 3.0);
    assert_eq!(bucket("300.0"), 3.0);
    assert_eq!(bucket("+Inf"), 3.0);
}

#[test]
fn histogram_buckets_span_half_a_millisecond_to_five_minutes() {
    let metrics = Metrics::new();
    metrics.load_phase_finished(LoadPhase::Fetch, ms(1));
    let text = metrics.encode();
    let buckets = label_values(&text, "par_package_load_phase_seconds_bucket", "le");
    assert_eq!(buckets.len(), 19, "{buckets:?}");
    assert!(buckets.contains("0.0005") && buckets.contains("300.0") && buckets.contains("+Inf"));
}

#[test]
fn random_agent_ids_never_become_labels() {
    let metrics = Metrics::new();
    for id in ["alpha", "beta"] {
        metrics.register_agent(id);
    }
    let seed = std::hash::RandomState::new();
    for n in 0..10_000u32 {
        let id = format!("{:016x}", std::hash::BuildHasher::hash_one(&seed, n));
        let label = metrics.agent_label(&id);
        metrics.invocation_finished(&label, &id, "agent_not_found", ms(1));
        drop(metrics.track_inflight(&label));
    }
    for id in ["alpha", "beta"] {
        metrics.invocation_finished(&metrics.agent_label(id), "1", "ok", ms(1));
    }
    let text = metrics.encode();
    let expected: BTreeSet<String> = ["alpha", "beta", "unknown"].map(String::from).into();
    assert_eq!(
        label_values(&text, "par_invocations_total", "agent"),
        expected
    );
    let versions = label_values(&text, "par_invocations_total", "version");
    assert_eq!(versions, ["1", "unknown"].map(String::from).into());
    let unknown = [("agent", "unknown"), ("code", "agent_not_found")];
    assert_eq!(value(&text, "par_invocations_total", &unknown), 10_000.0);
    let inflight = label_values(&text, "par_inflight_invocations", "agent");
    assert_eq!(inflight, ["unknown"].map(String::from).into());
}

#[test]
fn families_fold_label_sets_past_the_cap_into_other() {
    let metrics = Metrics::with_config(MetricsConfig {
        max_series_per_family: 3,
    });
    for n in 0..10 {
        metrics.auth_rejected(&format!("reason-{n}"));
    }
    let text = metrics.encode();
    let reasons = label_values(&text, "par_auth_rejections_total", "reason");
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert_eq!(
        value(&text, "par_auth_rejections_total", &[("reason", OVERFLOW)]),
        7.0
    );
}

#[test]
fn http_requests_are_labelled_by_route_template() {
    let metrics = Metrics::new();
    metrics.http_request(Some("/agents/{id}/invoke"), 200);
    metrics.http_request(Some("/agents/{id}/invoke"), 200);
    metrics.http_request(Some("/agents/{id}/invoke"), 404);
    metrics.http_request(None, 404);
    let text = metrics.encode();
    let invoke_ok = [("route", "/agents/{id}/invoke"), ("status", "200")];
    assert_eq!(value(&text, "par_http_requests_total", &invoke_ok), 2.0);
    let invoke_404 = [("route", "/agents/{id}/invoke"), ("status", "404")];
    assert_eq!(value(&text, "par_http_requests_total", &invoke_404), 1.0);
    let unmatched = [("route", UNMATCHED_ROUTE), ("status", "404")];
    assert_eq!(value(&text, "par_http_requests_total", &unmatched), 1.0);
    let routes = label_values(&text, "par_http_requests_total", "route");
    assert_eq!(
        routes,
        ["/agents/{id}/invoke", "unmatched"]
            .map(String::from)
            .into()
    );
}

#[test]
fn gauges_follow_guards_and_settings() {
    let metrics = Metrics::new();
    metrics.register_agent("echo");
    let echo = metrics.agent_label("echo");
    let first = metrics.track_inflight(&echo);
    let _second = metrics.track_inflight(&echo);
    let _queued = metrics.track_queued(&echo);
    drop(first);
    metrics.add_workers("pkg", 3);
    metrics.add_workers("pkg", 2); // a second version of the package
    metrics.add_workers("pkg", -2); // ... stopped
    metrics.set_cache_bytes(4096);
    let text = metrics.encode();
    assert_eq!(
        value(&text, "par_inflight_invocations", &[("agent", "echo")]),
        1.0
    );
    assert_eq!(
        value(&text, "par_queued_invocations", &[("agent", "echo")]),
        1.0
    );
    assert_eq!(value(&text, "par_workers", &[("package", "pkg")]), 3.0);
    assert_eq!(value(&text, "par_cache_bytes", &[]), 4096.0);
}

#[test]
fn lifecycle_counters_have_their_contract_names() {
    let metrics = Metrics::new();
    metrics.worker_started("pkg");
    metrics.worker_started("pkg");
    metrics.worker_crashed("pkg");
    metrics.worker_restarted("pkg");
    metrics.package_loaded(LoadOutcome::Ok);
    metrics.cache_hit();
    metrics.cache_miss();
    metrics.cache_evicted(2);
    metrics.registry_polled(PollResult::NotModified);
    let text = metrics.encode();
    let pkg = [("package", "pkg")];
    assert_eq!(value(&text, "par_worker_starts_total", &pkg), 2.0);
    assert_eq!(value(&text, "par_worker_crashes_total", &pkg), 1.0);
    assert_eq!(value(&text, "par_worker_restarts_total", &pkg), 1.0);
    assert_eq!(
        value(&text, "par_package_loads_total", &[("outcome", "ok")]),
        1.0
    );
    assert_eq!(
        value(&text, "par_package_loads_total", &[("outcome", "failed")]),
        0.0
    );
    assert_eq!(value(&text, "par_cache_hits_total", &[]), 1.0);
    assert_eq!(value(&text, "par_cache_misses_total", &[]), 1.0);
    assert_eq!(value(&text, "par_cache_evictions_total", &[]), 2.0);
    let polls = [("result", "not_modified")];
    assert_eq!(value(&text, "par_registry_polls_total", &polls), 1.0);
    assert_eq!(
        value(&text, "par_registry_polls_total", &[("result", "failed")]),
        0.0
    );
}

#[test]
fn exposition_is_complete_openmetrics() {
    let metrics = Metrics::new();
    metrics.invocation_finished(&metrics.agent_label("x"), "1", "ok", ms(1));
    metrics.set_cache_bytes(1);
    let text = metrics.encode();
    assert!(text.ends_with("# EOF\n"));
    assert!(text.contains("# TYPE par_invocations counter\n"));
    assert!(text.contains("# TYPE par_invocation_duration_seconds histogram\n"));
    assert!(text.contains("# UNIT par_invocation_duration_seconds seconds\n"));
    assert!(text.contains("# TYPE par_cache_bytes gauge\n# UNIT par_cache_bytes bytes\n"));
    assert!(CONTENT_TYPE.starts_with("application/openmetrics-text; version=1.0.0"));
}
