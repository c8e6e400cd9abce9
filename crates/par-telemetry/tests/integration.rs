//! End-to-end ledger behaviour across process boundaries.
//!
//! The SIGKILL test re-executes this test binary, selecting [`sigkill_helper`] by name and
//! handing it a database path through [`HELPER_DB`]; without that variable the helper is
//! an empty test.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use par_telemetry::usage::{UsageConfig, UsageQuery, UsageReader, UsageRecord};
use par_telemetry::UsageLedger;

const HELPER_DB: &str = "PAR_TELEMETRY_SIGKILL_HELPER_DB";
const HELPER_TEST: &str = "sigkill_helper";
const FLUSH_INTERVAL: Duration = Duration::from_millis(200);
/// Scheduling slack on a loaded machine between a record's flush deadline and its commit.
const MARGIN: Duration = Duration::from_millis(300);

fn now_ms() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(since.as_millis()).unwrap()
}

fn usage_record(n: u64) -> UsageRecord {
    UsageRecord {
        request_id: n.to_string(),
        caller_subject: None,
        caller_client_id: None,
        tenant: None,
        caller_agent: None,
        agent: "echo".into(),
        version: "1.0.0".into(),
        started_at: time::OffsetDateTime::now_utc(),
        duration_ms: 1.0,
        outcome: "ok".into(),
        bytes_in: 1,
        bytes_out: 1,
        reported: serde_json::Map::new(),
    }
}

/// In the child: records every 5 ms and prints `sent N UNIX_MS` after each, until killed
/// (or for 30 s, should the parent vanish).
#[test]
fn sigkill_helper() {
    let Ok(path) = std::env::var(HELPER_DB) else {
        return;
    };
    let config = UsageConfig {
        flush_interval: FLUSH_INTERVAL,
        ..UsageConfig::default()
    };
    let ledger = UsageLedger::open(path, config).unwrap();
    let started = Instant::now();
    let mut stdout = std::io::stdout().lock();
    for n in 0.. {
        assert!(ledger.record(usage_record(n)));
        writeln!(stdout, "sent {n} {}", now_ms()).unwrap();
        stdout.flush().unwrap();
        std::thread::sleep(Duration::from_millis(5));
        if started.elapsed() > Duration::from_secs(30) {
            break;
        }
    }
}

/// Reads the child's `sent` lines until it dies; the first one is also signalled.
fn collect_sent(
    stdout: impl std::io::Read + Send + 'static,
) -> (
    mpsc::Receiver<()>,
    std::thread::JoinHandle<Vec<(String, i64)>>,
) {
    let (first, started) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut sent = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let Some(rest) = line.strip_prefix("sent ") else {
                continue;
            };
            let (id, ms) = rest.split_once(' ').unwrap();
            sent.push((id.to_owned(), ms.parse().unwrap()));
            let _ = first.send(());
        }
        sent
    });
    (started, reader)
}

#[test]
fn sigkill_loses_at_most_the_flush_interval() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("usage.sqlite");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([HELPER_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(HELPER_DB, &db)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (started, reader) = collect_sent(child.stdout.take().unwrap());
    started
        .recv_timeout(Duration::from_secs(60))
        .expect("helper started recording");
    std::thread::sleep(Duration::from_secs(1));
    let killed_at = now_ms();
    child.kill().unwrap(); // SIGKILL on Unix: no destructor, no flush
    child.wait().unwrap();
    let sent = reader.join().unwrap();

    let all = UsageQuery {
        limit: Some(UsageQuery::MAX_LIMIT),
        ..UsageQuery::default()
    };
    let report = UsageReader::open(&db).unwrap().query(&all).unwrap();
    let stored: HashSet<&str> = report
        .records
        .iter()
        .map(|r| r.request_id.as_str())
        .collect();
    let cutoff = killed_at - i64::try_from((FLUSH_INTERVAL + MARGIN).as_millis()).unwrap();
    let due: Vec<&str> = sent
        .iter()
        .filter(|(_, ms)| *ms < cutoff)
        .map(|(id, _)| id.as_str())
        .collect();
    let missing: Vec<&str> = due
        .iter()
        .copied()
        .filter(|id| !stored.contains(id))
        .collect();

    eprintln!(
        "sent {}, stored {}, due {}",
        sent.len(),
        stored.len(),
        due.len()
    );
    assert!(
        due.len() > 50,
        "the helper recorded for long enough: {} due",
        due.len()
    );
    assert!(
        missing.is_empty(),
        "{} of {} due records lost: {missing:?}",
        missing.len(),
        due.len()
    );
    assert!(stored.len() <= sent.len());
}
