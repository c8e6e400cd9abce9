//! Retention: old records deleted by the writer's maintenance pass, pages returned to
//! the file system, ledgers made before retention converted.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Map;

use super::record::{from_unix_ms, unix_ms};
use super::*;

const DAY_MS: i64 = 86_400_000;

fn record(id: &str, at_ms: i64) -> UsageRecord {
    UsageRecord {
        request_id: id.to_owned(),
        caller_subject: None,
        caller_client_id: None,
        tenant: None,
        caller_agent: None,
        agent: "echo".to_owned(),
        version: "1.0.0".to_owned(),
        started_at: from_unix_ms(at_ms),
        duration_ms: 1.0,
        outcome: "ok".to_owned(),
        bytes_in: 1,
        bytes_out: 1,
        reported: Map::new(),
    }
}

fn ids_in(path: &Path) -> Vec<String> {
    let query = UsageQuery {
        limit: Some(UsageQuery::MAX_LIMIT),
        ..UsageQuery::default()
    };
    let report = UsageReader::open(path).unwrap().query(&query).unwrap();
    let mut ids: Vec<String> = report.records.into_iter().map(|r| r.request_id).collect();
    ids.sort();
    ids
}

fn auto_vacuum(path: &Path) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("PRAGMA auto_vacuum", [], |row| row.get(0))
        .unwrap()
}

#[tokio::test]
async fn records_older_than_the_retention_are_deleted_by_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("usage.sqlite3");
    let config = UsageConfig {
        retention: Some(Duration::from_secs(30 * 86_400)),
        maintenance_interval: Duration::from_millis(50),
        ..UsageConfig::default()
    };
    let ledger = UsageLedger::open(&path, config).unwrap();
    let now = unix_ms(time::OffsetDateTime::now_utc());
    // Enough old rows to span several delete chunks' worth of pages.
    for i in 0..200 {
        assert!(ledger.record(record(&format!("old-{i:03}"), now - 31 * DAY_MS - i)));
    }
    assert!(ledger.record(record("recent", now - 29 * DAY_MS)));
    assert!(ledger.record(record("today", now)));
    ledger.flush().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ids = ids_in(&path);
        if ids == ["recent", "today"] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "old rows kept: {} rows",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ledger.close().await.unwrap();
    assert_eq!(auto_vacuum(&path), 2, "created with incremental vacuum");
}

#[tokio::test]
async fn a_ledger_made_before_retention_is_converted_and_keeps_its_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("usage.sqlite3");
    let ledger = UsageLedger::open(&path, UsageConfig::default()).unwrap();
    assert!(ledger.record(record("kept", 1_000)));
    ledger.close().await.unwrap();
    // As an older build left it: no auto-vacuum.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("PRAGMA auto_vacuum = NONE; VACUUM;")
        .unwrap();
    drop(conn);
    assert_eq!(auto_vacuum(&path), 0);
    let ledger = UsageLedger::open(&path, UsageConfig::default()).unwrap();
    ledger.close().await.unwrap();
    assert_eq!(auto_vacuum(&path), 2);
    assert_eq!(ids_in(&path), ["kept"]);
}

#[test]
fn a_zero_maintenance_interval_is_refused() {
    let config = UsageConfig {
        maintenance_interval: Duration::ZERO,
        ..UsageConfig::default()
    };
    assert!(UsageLedger::open(std::env::temp_dir().join("never.sqlite3"), config).is_err());
}
