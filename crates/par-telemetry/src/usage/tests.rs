//! Ledger tests against real SQLite files in temporary directories.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Map, Value};
use time::macros::datetime;

use super::record::from_unix_ms;
use super::*;

/// 2024-03-01T00:00:00Z in Unix milliseconds.
const MARCH_1: i64 = 1_709_251_200_000;
const DAY: i64 = 86_400_000;

fn record(id: &str, agent: &str, caller: Option<&str>, at_ms: i64, outcome: &str) -> UsageRecord {
    UsageRecord {
        request_id: id.to_owned(),
        caller_subject: caller.map(str::to_owned),
        caller_client_id: Some("cli".to_owned()),
        tenant: None,
        caller_agent: None,
        agent: agent.to_owned(),
        version: "1.0.0".to_owned(),
        started_at: from_unix_ms(at_ms),
        duration_ms: 1.5,
        outcome: outcome.to_owned(),
        bytes_in: 10,
        bytes_out: 100,
        reported: Map::new(),
    }
}

fn with_tokens(mut record: UsageRecord, tokens_in: i64, tokens_out: i64) -> UsageRecord {
    record.reported.insert("tokens_in".into(), json!(tokens_in));
    record
        .reported
        .insert("tokens_out".into(), json!(tokens_out));
    record.reported.insert("model".into(), json!("m-1"));
    record
}

fn slow_flush() -> UsageConfig {
    UsageConfig {
        flush_interval: Duration::from_secs(3600),
        ..UsageConfig::default()
    }
}

async fn ledger_with(path: &Path, records: &[UsageRecord]) -> UsageLedger {
    let ledger = UsageLedger::open(path, slow_flush()).unwrap();
    for record in records {
        assert!(ledger.record(record.clone()));
    }
    ledger.flush().await.unwrap();
    ledger
}

fn all() -> UsageQuery {
    UsageQuery {
        limit: Some(UsageQuery::MAX_LIMIT),
        ..UsageQuery::default()
    }
}

fn ids(report: &UsageReport) -> Vec<&str> {
    report
        .records
        .iter()
        .map(|r| r.request_id.as_str())
        .collect()
}

#[tokio::test]
async fn records_survive_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("usage.sqlite");
    let first = with_tokens(record("r1", "echo", Some("alice"), MARCH_1 + 7, "ok"), 3, 4);
    let ledger = UsageLedger::open(&path, slow_flush()).unwrap();
    assert!(ledger.record(first.clone()));
    ledger.close().await.unwrap();

    let ledger = UsageLedger::open(&path, slow_flush()).unwrap();
    ledger.record(record("r2", "echo", None, MARCH_1 + 8, "timeout"));
    ledger.close().await.unwrap();

    let report = UsageReader::open(&path).unwrap().query(&all()).unwrap();
    assert_eq!(ids(&report), ["r2", "r1"]);
    assert_eq!(report.records[1], first);
}

#[tokio::test]
async fn grouped_aggregates_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("usage.sqlite");
    let records = [
        with_tokens(
            record("a", "echo", Some("alice"), MARCH_1 + 1, "ok"),
            10,
            20,
        ),
        with_tokens(
            record("b", "echo", Some("bob"), MARCH_1 + 2, "agent_error"),
            1,
            2,
        ),
        with_tokens(
            record("c", "chat", Some("alice"), MARCH_1 + DAY + 3, "ok"),
            100,
            200,
        ),
        record("d", "chat", None, MARCH_1 + DAY + 4, "timeout"),
    ];
    let ledger = ledger_with(&path, &records).await;

    let by_agent = UsageQuery {
        group_by: Some(GroupBy::Agent),
        ..all()
    };
    let report = ledger.query(&by_agent).await.unwrap();
    assert_eq!(report.totals.calls, 4);
    assert_eq!(report.totals.errors, 2);
    assert_eq!(report.totals.duration_ms, 6.0);
    assert_eq!((report.totals.bytes_in, report.totals.bytes_out), (40, 400));
    assert_eq!(
        Value::Object(report.totals.reported.clone()),
        json!({"tokens_in": 111, "tokens_out": 222})
    );
    let groups = report.groups.unwrap();
    let keys: Vec<_> = groups.iter().map(|g| g.key.as_deref()).collect();
    assert_eq!(keys, [Some("chat"), Some("echo")]);
    assert_eq!((groups[0].totals.calls, groups[0].totals.errors), (2, 1));
    assert_eq!(groups[0].totals.reported["tokens_in"], 100);
    assert_eq!((groups[1].totals.calls, groups[1].totals.errors), (2, 1));
    assert_eq!(groups[1].totals.reported["tokens_out"], 22);

    let by_caller = UsageQuery {
        group_by: Some(GroupBy::Caller),
        ..all()
    };
    let groups = ledger.query(&by_caller).await.unwrap().groups.unwrap();
    let calls: Vec<_> = groups
        .iter()
        .map(|g| (g.key.as_deref(), g.totals.calls))
        .collect();
    assert_eq!(
        calls,
        [(Some("alice"), 2), (Some("bob"), 1), (Some("cli"), 1)]
    );
    assert_eq!(groups[0].totals.reported["tokens_in"], 110);

    let by_day = UsageQuery {
        group_by: Some(GroupBy::Day),
        ..all()
    };
    let groups = ledger.query(&by_day).await.unwrap().groups.unwrap();
    let calls: Vec<_> = groups
        .iter()
        .map(|g| (g.key.as_deref(), g.totals.calls))
        .collect();
    assert_eq!(calls, [(Some("2024-03-01"), 2), (Some("2024-03-02"), 2)]);
    ledger.close().await.unwrap();
}

#[tokio::test]
async fn time_range_and_agent_filters() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("usage.sqlite");
    let records: Vec<_> = (0..5)
        .map(|n| {
            record(
                &format!("r{n}"),
                if n % 2 == 0 { "even" } else { "odd" },
                None,
                MARCH_1 + n * DAY,
                "ok",
            )
        })
        .collect();
    let ledger = ledger_with(&path, &records).await;
    let range = UsageQuery {
        from: Some(datetime!(2024-03-02 00:00 UTC)),
        to: Some(datetime!(2024-03-04 00:00 UTC)),
        ..all()
    };
    let report = ledger.query(&range).await.unwrap();
    assert_eq!(
        ids(&report),
        ["r2", "r1"],
        "from is inclusive, to exclusive"
    );
    assert_eq!(report.totals.calls, 2);

    let even_from = UsageQuery {
        agent: Some("even".into()),
        from: Some(datetime!(2024-03-02 01:00 +01:00)),
        ..all()
    };
    let report = ledger.query(&even_from).await.unwrap();
    assert_eq!(ids(&report), ["r4", "r2"]);

    let limited = UsageQuery {
        limit: Some(2),
        ..UsageQuery::default()
    };
    let report = ledger.query(&limited).await.unwrap();
    assert_eq!(ids(&report), ["r4", "r3"], "newest first");
    assert_eq!(report.totals.calls, 5, "totals ignore the limit");
    ledger.close().await.unwrap();
}

fn tricky_records() -> Vec<UsageRecord> {
    let mut tricky = record(
        "id,with \"quotes\"\nand newline",
        "echo",
        Some(" padded "),
        MARCH_1,
        "ok",
    );
    tricky.tenant = Some("tenant\r\nx".into());
    tricky
        .reported
        .insert("note".into(), json!("a,\"b\"\n\u{2028}é"));
    tricky.reported.insert("tokens_in".into(), json!(7));
    let plain = record("plain", "echo", None, MARCH_1 + 1, "agent_error");
    vec![tricky, plain]
}

#[tokio::test]
async fn jsonl_export_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_with(&dir.path().join("u.sqlite"), &tricky_records()).await;
    let mut out = Vec::new();
    let written = ledger
        .export(&UsageQuery::default(), ExportFormat::Jsonl, &mut out)
        .unwrap();
    assert_eq!(written, 2);
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "one line per record: {text}");
    let parsed: Vec<UsageRecord> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(parsed, tricky_records());
    ledger.close().await.unwrap();
}

/// A strict RFC 4180 reader, to check the writer's escaping from the outside.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut field) = (Vec::new(), Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => assert_eq!(chars.next(), Some('\n')),
            (false, '\n') => panic!("bare LF outside quotes"),
            (false, c) => field.push(c),
        }
        if !quoted && c == '\r' {
            row.push(std::mem::take(&mut field));
            rows.push(std::mem::take(&mut row));
        }
    }
    rows
}

#[tokio::test]
async fn csv_export_escapes_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_with(&dir.path().join("u.sqlite"), &tricky_records()).await;
    let mut out = Vec::new();
    ledger
        .export(&UsageQuery::default(), ExportFormat::Csv, &mut out)
        .unwrap();
    let rows = parse_csv(&String::from_utf8(out).unwrap());
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0][0], "request_id");
    assert!(rows.iter().all(|row| row.len() == 13));
    let tricky = &tricky_records()[0];
    assert_eq!(rows[1][0], tricky.request_id);
    assert_eq!(rows[1][1], " padded ");
    assert_eq!(rows[1][3], "tenant\r\nx");
    assert_eq!(rows[1][6], "2024-03-01T00:00:00Z");
    let reported: Map<String, Value> = serde_json::from_str(&rows[1][11]).unwrap();
    assert_eq!(reported, tricky.reported);
    assert_eq!(rows[2][2], "cli");
    assert_eq!(rows[2][3], "", "absent tenant is an empty field");
    ledger.close().await.unwrap();
}

#[tokio::test]
async fn batch_size_and_interval_both_trigger_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("u.sqlite");
    let by_size = UsageConfig {
        batch_size: 3,
        ..slow_flush()
    };
    let ledger = UsageLedger::open(&path, by_size).unwrap();
    for n in 0..3 {
        ledger.record(record(&format!("s{n}"), "echo", None, MARCH_1, "ok"));
    }
    wait_for_calls(&path, 3).await;
    ledger.close().await.unwrap();

    let by_time = UsageConfig {
        flush_interval: Duration::from_millis(50),
        ..UsageConfig::default()
    };
    let ledger = UsageLedger::open(&path, by_time).unwrap();
    ledger.record(record("t", "echo", None, MARCH_1, "ok"));
    wait_for_calls(&path, 4).await;
    ledger.close().await.unwrap();
}

async fn wait_for_calls(path: &Path, calls: u64) {
    for _ in 0..200 {
        if UsageReader::open(path)
            .unwrap()
            .query(&all())
            .unwrap()
            .totals
            .calls
            == calls
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("ledger never reached {calls} calls");
}

/// A sink that blocks until released, then stores in memory; can fail its first writes.
#[derive(Clone, Default)]
struct TestSink {
    gate: Arc<Mutex<()>>,
    stored: Arc<Mutex<Vec<UsageRecord>>>,
    failures_left: Arc<Mutex<u32>>,
}

impl UsageSink for TestSink {
    fn write_batch(&mut self, records: &[UsageRecord]) -> Result<(), UsageError> {
        let _open = self.gate.lock().unwrap();
        let mut failures = self.failures_left.lock().unwrap();
        if *failures > 0 {
            *failures -= 1;
            return Err(UsageError::Io(std::io::Error::other("disk on fire")));
        }
        self.stored.lock().unwrap().extend_from_slice(records);
        Ok(())
    }
}

#[tokio::test]
async fn full_queue_drops_and_counts_without_blocking() {
    let sink = TestSink::default();
    let config = UsageConfig {
        capacity: 4,
        batch_size: 1,
        ..slow_flush()
    };
    let ledger = UsageLedger::with_sink(sink.clone(), config).unwrap();
    let gate = sink.gate.lock().unwrap();
    let accepted = (0..50)
        .filter(|n| ledger.record(record(&n.to_string(), "echo", None, MARCH_1, "ok")))
        .count() as u64;
    assert!(accepted < 50, "the queue is bounded");
    assert_eq!(ledger.dropped(), 50 - accepted);
    drop(gate);
    ledger.close().await.unwrap();
    assert_eq!(sink.stored.lock().unwrap().len() as u64, accepted);
    assert!(!ledger.record(record("late", "echo", None, MARCH_1, "ok")));
    assert_eq!(ledger.dropped(), 51 - accepted);
}

#[tokio::test]
async fn failed_batches_are_retried_not_lost() {
    let sink = TestSink::default();
    *sink.failures_left.lock().unwrap() = 1;
    let ledger = UsageLedger::with_sink(sink.clone(), slow_flush()).unwrap();
    ledger.record(record("a", "echo", None, MARCH_1, "ok"));
    assert!(ledger.flush().await.is_err());
    ledger.record(record("b", "echo", None, MARCH_1, "ok"));
    ledger.flush().await.unwrap();
    let stored: Vec<_> = sink
        .stored
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.request_id.clone())
        .collect();
    assert_eq!(stored, ["a", "b"]);
    assert!(matches!(
        ledger.query(&all()).await,
        Err(UsageError::NotQueryable)
    ));
    ledger.close().await.unwrap();
}

#[tokio::test]
async fn counters_track_written_records() {
    let dir = tempfile::tempdir().unwrap();
    let counters = UsageCounters::default();
    let config = UsageConfig {
        counters: counters.clone(),
        ..slow_flush()
    };
    let ledger = UsageLedger::open(dir.path().join("u.sqlite"), config).unwrap();
    ledger.record(record("a", "echo", None, MARCH_1, "ok"));
    ledger.close().await.unwrap();
    assert_eq!(counters.written.get(), 1);
    assert_eq!(counters.dropped.get(), 0);
}

#[test]
fn query_deserialises_from_a_query_string() {
    let text =
        "agent=echo&from=2024-03-01T00:00:00Z&to=2024-03-02T02:00:00%2B02:00&group_by=day&limit=5";
    let query: UsageQuery = serde_urlencoded::from_str(text).unwrap();
    assert_eq!(query.agent.as_deref(), Some("echo"));
    assert_eq!(query.from, Some(datetime!(2024-03-01 00:00 UTC)));
    assert_eq!(query.to, Some(datetime!(2024-03-02 00:00 UTC)));
    assert_eq!(query.group_by, Some(GroupBy::Day));
    assert_eq!(query.limit, Some(5));
    let empty: UsageQuery = serde_urlencoded::from_str("").unwrap();
    assert!(empty.from.is_none() && empty.group_by.is_none());
    assert!(serde_urlencoded::from_str::<UsageQuery>("from=yesterday").is_err());
    assert!(serde_urlencoded::from_str::<UsageQuery>("group_by=tenant").is_err());
}

#[tokio::test]
async fn report_has_the_contract_shape() {
    let dir = tempfile::tempdir().unwrap();
    let records = [with_tokens(
        record("a", "echo", Some("alice"), MARCH_1, "ok"),
        1,
        2,
    )];
    let ledger = ledger_with(&dir.path().join("u.sqlite"), &records).await;
    let plain = serde_json::to_value(ledger.query(&all()).await.unwrap()).unwrap();
    assert_eq!(plain["totals"]["calls"], 1);
    assert_eq!(plain["totals"]["reported"]["tokens_in"], 1);
    assert_eq!(plain["records"][0]["started_at"], "2024-03-01T00:00:00Z");
    assert_eq!(plain["records"][0]["reported"]["model"], "m-1");
    assert!(plain.get("groups").is_none());
    let grouped = UsageQuery {
        group_by: Some(GroupBy::Agent),
        ..all()
    };
    let grouped = serde_json::to_value(ledger.query(&grouped).await.unwrap()).unwrap();
    assert_eq!(grouped["groups"][0]["key"], "echo");
    assert_eq!(grouped["groups"][0]["calls"], 1);
    ledger.close().await.unwrap();
}

#[test]
fn reader_refuses_missing_files_and_foreign_databases() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.sqlite");
    let error = UsageReader::open(&missing).err().unwrap();
    assert!(error.to_string().contains("missing.sqlite"), "{error}");
    assert!(!missing.exists());
    let foreign = dir.path().join("other.sqlite");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE t (x);")
        .unwrap();
    let error = UsageReader::open(&foreign).err().unwrap();
    assert!(matches!(error, UsageError::Schema { .. }), "{error}");
}

#[test]
fn bad_settings_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let zero = UsageConfig {
        capacity: 0,
        ..UsageConfig::default()
    };
    let error = UsageLedger::open(dir.path().join("u.sqlite"), zero)
        .err()
        .unwrap();
    assert!(error.to_string().contains("capacity"), "{error}");
}

#[tokio::test]
async fn query_includes_calls_finished_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = UsageLedger::open(dir.path().join("u.sqlite"), slow_flush()).unwrap();
    ledger.record(record("queued", "echo", None, MARCH_1, "ok"));
    let report = ledger.query(&all()).await.unwrap();
    assert_eq!(ids(&report), ["queued"]);
    ledger.close().await.unwrap();
}

#[test]
fn timestamps_parse_as_rfc3339() {
    let at = parse_timestamp("2024-03-01T01:00:00+01:00").unwrap();
    assert_eq!(at, datetime!(2024-03-01 00:00 UTC));
    assert!(parse_timestamp("2024-03-01").is_err());
}

/// The layout of the first release, before `caller_agent`.
const LAYOUT_V1: &str = "CREATE TABLE usage_records (id INTEGER PRIMARY KEY, \
    request_id TEXT NOT NULL, caller_subject TEXT, caller_client_id TEXT, tenant TEXT, \
    agent TEXT NOT NULL, version TEXT NOT NULL, started_at_ms INTEGER NOT NULL, \
    duration_ms REAL NOT NULL, outcome TEXT NOT NULL, bytes_in INTEGER NOT NULL, \
    bytes_out INTEGER NOT NULL, reported TEXT NOT NULL); PRAGMA user_version = 1;";

#[tokio::test]
async fn a_first_release_ledger_is_migrated_and_keeps_its_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.sqlite");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(LAYOUT_V1).unwrap();
    conn.execute(
        "INSERT INTO usage_records (request_id, agent, version, started_at_ms, duration_ms, \
         outcome, bytes_in, bytes_out, reported) VALUES ('old', 'echo', '1.0.0', ?1, 2.0, \
         'ok', 1, 2, '{\"tokens_in\":3}')",
        [MARCH_1],
    )
    .unwrap();
    drop(conn);

    let mut nested = record("new", "sub", Some("alice"), MARCH_1 + 1, "ok");
    nested.caller_agent = Some("echo".into());
    let ledger = ledger_with(&path, std::slice::from_ref(&nested)).await;
    ledger.close().await.unwrap();

    let report = UsageReader::open(&path).unwrap().query(&all()).unwrap();
    assert_eq!(ids(&report), ["new", "old"]);
    assert_eq!(report.records[0], nested);
    assert_eq!(report.records[1].caller_agent, None);
    assert_eq!(report.records[1].reported["tokens_in"], 3);
    assert_eq!(user_version(&path), 3);
}

fn ledger_id_of(path: &Path) -> String {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row(
        "SELECT value FROM par_meta WHERE key = 'ledger_id'",
        [],
        |row| row.get(0),
    )
    .unwrap()
}

fn user_version(path: &Path) -> i32 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap()
}

#[tokio::test]
async fn a_version_2_ledger_is_migrated_and_gets_one_lasting_id() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.sqlite");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(LAYOUT_V1).unwrap();
    conn.execute_batch(
        "ALTER TABLE usage_records ADD COLUMN caller_agent TEXT; PRAGMA user_version = 2;",
    )
    .unwrap();
    conn.execute(
        "INSERT INTO usage_records (request_id, agent, version, started_at_ms, duration_ms, \
         outcome, bytes_in, bytes_out, reported, caller_agent) VALUES ('old', 'sub', '1.0.0', \
         ?1, 2.0, 'ok', 1, 2, '{}', 'echo')",
        [MARCH_1],
    )
    .unwrap();
    drop(conn);
    // Readable before any writer migrated it (`par usage export` after an upgrade).
    let report = UsageReader::open(&path).unwrap().query(&all()).unwrap();
    assert_eq!(ids(&report), ["old"]);

    ledger_with(&path, &[]).await.close().await.unwrap();
    assert_eq!(user_version(&path), 3);
    let id = ledger_id_of(&path);
    assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 4);
    ledger_with(&path, &[]).await.close().await.unwrap();
    assert_eq!(ledger_id_of(&path), id, "generated once, kept across opens");
    let report = UsageReader::open(&path).unwrap().query(&all()).unwrap();
    assert_eq!(report.records[0].caller_agent.as_deref(), Some("echo"));

    let other = dir.path().join("other.sqlite");
    ledger_with(&other, &[]).await.close().await.unwrap();
    assert_ne!(ledger_id_of(&other), id, "each file has its own");
}
