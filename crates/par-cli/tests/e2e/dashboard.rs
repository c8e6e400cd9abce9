//! The Grafana dashboard (`deploy/grafana/par-overview.json`) against the real `/metrics`:
//! every metric its queries name must be exposed, so renaming a metric fails here.

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{workspace_root, TestRuntime};

const DATASOURCE: &str = "${datasource}";

fn dashboard() -> Value {
    let path = workspace_root().join("deploy/grafana/par-overview.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("dashboard is not valid JSON")
}

/// Every panel, including those nested in collapsed rows.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut all = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        all.push(panel);
        all.extend(panel["panels"].as_array().into_iter().flatten());
    }
    all
}

fn variable<'a>(dashboard: &'a Value, name: &str) -> &'a Value {
    dashboard["templating"]["list"]
        .as_array()
        .expect("templating.list")
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no `{name}` variable"))
}

/// Every PromQL expression in the dashboard, with where it is: panel targets and the
/// query variables.
fn queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for panel in panels(dashboard) {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap_or_default();
            out.push((format!("panel {}", panel["title"]), expr.to_string()));
        }
    }
    for var in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if var["type"] == "query" {
            let query = var["query"].as_str().or(var["query"]["query"].as_str());
            let query = query.expect("query variable without a query");
            out.push((format!("variable {}", var["name"]), query.to_string()));
        }
    }
    out
}

/// The `par_…` identifiers of a PromQL expression (text inside quotes is skipped, so
/// label values never count).
fn metric_names(expr: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let (mut quote, mut escaped, mut start) = (None, false, None);
    for (i, c) in expr.char_indices().chain([(expr.len(), ' ')]) {
        if let Some(q) = quote {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                _ if c == q => quote = None,
                _ => {}
            }
            continue;
        }
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            start.get_or_insert(i);
            continue;
        }
        if let Some(s) = start.take() {
            names.extend(Some(&expr[s..i]).filter(|w| w.starts_with("par_")));
        }
        if matches!(c, '"' | '\'' | '`') {
            quote = Some(c);
        }
    }
    names
}

/// The series names Prometheus stores for the exposition's families, from its `# TYPE`
/// lines: OpenMetrics names a counter's family without `_total`, a histogram's without
/// `_bucket`/`_count`/`_sum`.
fn stored_names(exposition: &str) -> HashSet<String> {
    let mut names = HashSet::new();
    for line in exposition.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let [_, "TYPE", family, kind] = words[..] else {
            continue;
        };
        let suffixes: &[&str] = match kind {
            "counter" => &["_total", "_created"],
            "histogram" => &["_bucket", "_count", "_sum", "_created"],
            "summary" => &["", "_count", "_sum", "_created"],
            _ => &[""],
        };
        names.extend(suffixes.iter().map(|s| format!("{family}{s}")));
    }
    names
}

/// `name (in where)` for every metric the dashboard queries that `stored` lacks.
fn missing(queries: &[(String, String)], stored: &HashSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (place, expr) in queries {
        for name in metric_names(expr) {
            if !stored.contains(name) {
                out.insert(format!("{name} (in {place})"));
            }
        }
    }
    out
}

#[test]
fn dashboard_is_well_formed() {
    let dash = dashboard();
    assert!(dash["schemaVersion"].as_u64().unwrap_or(0) >= 39);
    let ds = variable(&dash, "datasource");
    assert_eq!(ds["type"], "datasource");
    assert_eq!(ds["query"], "prometheus");
    let agent = variable(&dash, "agent");
    assert_eq!(agent["datasource"]["uid"], DATASOURCE);
    let (mut ids, mut cells) = (HashSet::new(), HashSet::new());
    for panel in panels(&dash) {
        let title = &panel["title"];
        let id = panel["id"]
            .as_u64()
            .unwrap_or_else(|| panic!("{title}: no id"));
        assert!(ids.insert(id), "panel id {id} used twice ({title})");
        let pos = |key: &str| {
            let value = panel["gridPos"][key].as_u64();
            value.unwrap_or_else(|| panic!("{title}: no gridPos.{key}"))
        };
        let (x, y, w, h) = (pos("x"), pos("y"), pos("w"), pos("h"));
        assert!(x + w <= 24 && w > 0 && h > 0, "{title}: outside the grid");
        for cell in (x..x + w).flat_map(|x| (y..y + h).map(move |y| (x, y))) {
            assert!(cells.insert(cell), "{title} overlaps another panel");
        }
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], DATASOURCE, "{title}");
        let targets = panel["targets"].as_array().cloned().unwrap_or_default();
        assert!(!targets.is_empty(), "{title}: no targets");
        for target in &targets {
            assert!(target["expr"].as_str().is_some_and(|e| !e.is_empty()));
            let uid = &target["datasource"]["uid"];
            assert!(uid.is_null() || uid == DATASOURCE, "{title}: {target}");
        }
    }
}

const KEY: &str = "dashboard-test-key";
const KEYS: &str = r#"
[[key]]
name = "dashboard"
sha256 = "af7055784b10091334c19f1c78850ca3cd7faeaecac78025441b53b2f25961d0" # of KEY
roles = ["caller"]
"#;
const POLICY: &str = r#"
[[grant]]
role = "caller"
invoke = ["kit-minimal"]
"#;

async fn call(rt: &TestRuntime, key: &str, body: Value) -> u16 {
    let response = rt
        .client
        .post(rt.url("/agents/kit-minimal/invoke"))
        .header("x-api-key", key)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

async fn exposition(rt: &TestRuntime) -> String {
    let response = rt.client.get(rt.url("/metrics")).send().await.unwrap();
    response.text().await.unwrap()
}

/// A family appears in the exposition once it has a series, so the runtime is driven
/// until every kind of event the dashboard shows has happened once: ok, queued and failed
/// calls, a refused credential, a worker crash and its restart.
#[tokio::test]
async fn dashboard_queries_only_exposed_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let (keys, policy) = (dir.path().join("keys.toml"), dir.path().join("policy.toml"));
    std::fs::write(&keys, KEYS).unwrap();
    std::fs::write(&policy, POLICY).unwrap();
    let rt = TestRuntime::builder()
        .fixture("kit-minimal")
        .args(&["--auth", "api-key", "--api-keys", keys.to_str().unwrap()])
        .args(&["--policy", policy.to_str().unwrap()])
        .args(&["--max-concurrent-calls", "1"])
        .start()
        .await;
    // Two at once with one slot: the second waits in the queue.
    let both = tokio::join!(
        call(&rt, KEY, json!({"sleep": 0.5})),
        call(&rt, KEY, json!({"sleep": 0.1}))
    );
    assert_eq!(both, (200, 200));
    assert_eq!(call(&rt, KEY, json!({})).await, 200);
    assert_eq!(call(&rt, KEY, json!({"raise": "x"})).await, 500);
    assert_eq!(call(&rt, "wrong-key", json!({})).await, 401);
    assert_eq!(call(&rt, KEY, json!({"exit": 3})).await, 502);
    let deadline = Instant::now() + Duration::from_secs(60);
    let exposition = loop {
        let text = exposition(&rt).await;
        if text.contains("par_worker_restarts_total{") {
            break text;
        }
        assert!(Instant::now() < deadline, "no worker restart:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        exposition.contains(r#"par_invocations_total{agent="kit-minimal""#),
        "the agent variable reads this label:\n{exposition}"
    );

    let queries = queries(&dashboard());
    let named: HashSet<&str> = queries.iter().flat_map(|(_, e)| metric_names(e)).collect();
    for name in [
        "par_invocations_total",
        "par_invocation_duration_seconds_bucket",
        "par_cache_bytes",
    ] {
        assert!(named.contains(name), "{name} not found in the dashboard");
    }
    let stored = stored_names(&exposition);
    let missing_now = missing(&queries, &stored);
    assert!(
        missing_now.is_empty(),
        "the dashboard queries metrics /metrics does not expose: {missing_now:#?}\n{exposition}"
    );

    // The same check catches a renamed family.
    let renamed = exposition.replace("par_invocations ", "par_calls ");
    assert!(missing(&queries, &stored_names(&renamed))
        .iter()
        .any(|m| m.starts_with("par_invocations_total ")));
}

#[test]
fn names_are_read_from_promql_and_exposition_alike() {
    let expr = r#"sum by (le) (rate(par_a_seconds_bucket{agent=~"par_not_a_metric"}[5m])) / par_b"#;
    assert_eq!(metric_names(expr), ["par_a_seconds_bucket", "par_b"]);
    let stored = stored_names("# TYPE par_a_seconds histogram\n# TYPE par_b counter\n# EOF\n");
    assert!(stored.contains("par_a_seconds_bucket") && stored.contains("par_b_total"));
    assert!(!stored.contains("par_b"), "a counter is stored with _total");
}
