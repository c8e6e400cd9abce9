//! The PostgreSQL shipper against real servers (see `pg_server`): every record exactly
//! once with every field, through outages, crashes of either side, several instances
//! and shutdown.

mod pg_server;

use std::path::Path;
use std::time::{Duration, Instant};

use par_telemetry::usage::{
    ShipConfig, ShipCounters, SqliteSink, Synchronous, UsageReader, UsageRecord, UsageShipper,
    UsageSink,
};
use pg_server::PgServer;
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

/// Longest wait for rows to reach PostgreSQL.
const WAIT: Duration = Duration::from_secs(60);

fn record(n: u64) -> UsageRecord {
    UsageRecord {
        request_id: format!("req-{n}"),
        caller_subject: Some(format!("user-{}", n % 3)),
        caller_client_id: None,
        tenant: n.is_multiple_of(2).then(|| "acme".to_owned()),
        caller_agent: (n % 4 == 1).then(|| "planner".to_owned()),
        agent: "echo".to_owned(),
        version: "1.2.3".to_owned(),
        // Millisecond precision, as stored.
        started_at: at_ms(1_709_251_200_000 + n as i64 * 1_001),
        duration_ms: 0.25 + n as f64,
        outcome: if n.is_multiple_of(5) { "timeout" } else { "ok" }.to_owned(),
        bytes_in: n,
        bytes_out: 10 * n,
        reported: object(json!({"tokens_in": n, "model": "m-1", "nested": {"a": [1, 2.5, null]}})),
    }
}

fn at_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap()
}

fn object(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

fn write(path: &Path, records: impl IntoIterator<Item = UsageRecord>) {
    let records: Vec<_> = records.into_iter().collect();
    let mut sink = SqliteSink::open(path, Synchronous::Normal).unwrap();
    sink.write_batch(&records).unwrap();
}

fn config(server: &PgServer) -> ShipConfig {
    ShipConfig {
        interval: Duration::from_millis(100),
        max_backoff: Duration::from_millis(400),
        ..ShipConfig::new(server.url())
    }
}

fn count(server: &PgServer, instance_id: &str) -> i64 {
    let mut client = server.client();
    let exists: bool = client
        .query_one("SELECT to_regclass('par_usage_records') IS NOT NULL", &[])
        .unwrap()
        .get(0);
    if !exists {
        return 0;
    }
    client
        .query_one(
            "SELECT COUNT(*) FROM par_usage_records WHERE instance_id = $1",
            &[&instance_id],
        )
        .unwrap()
        .get(0)
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_for_rows(server: &PgServer, instance_id: &str, rows: i64) {
    wait_for(&format!("{rows} rows of {instance_id}"), || {
        count(server, instance_id) >= rows
    });
}

/// Every row of one instance, as records, with their local ids, in local order.
fn shipped(server: &PgServer, instance_id: &str) -> Vec<(i64, UsageRecord)> {
    let sql = "SELECT local_id, request_id, caller_subject, caller_client_id, tenant, \
        caller_agent, agent, version, started_at, duration_ms, outcome, bytes_in, bytes_out, \
        reported FROM par_usage_records WHERE instance_id = $1 ORDER BY local_id";
    let rows = server.client().query(sql, &[&instance_id]).unwrap();
    let record = |row: &postgres::Row| UsageRecord {
        request_id: row.get(1),
        caller_subject: row.get(2),
        caller_client_id: row.get(3),
        tenant: row.get(4),
        caller_agent: row.get(5),
        agent: row.get(6),
        version: row.get(7),
        started_at: row.get(8),
        duration_ms: row.get(9),
        outcome: row.get(10),
        bytes_in: row.get::<_, i64>(11) as u64,
        bytes_out: row.get::<_, i64>(12) as u64,
        reported: object(row.get(13)),
    };
    rows.iter().map(|row| (row.get(0), record(row))).collect()
}

fn mark(server: &PgServer, instance_id: &str) -> i64 {
    let sql = "SELECT last_id FROM par_usage_shipped WHERE instance_id = $1";
    server
        .client()
        .query_one(sql, &[&instance_id])
        .unwrap()
        .get(0)
}

/// Local ids 1..=n, each exactly once, and the mark at n.
fn assert_exactly_once(server: &PgServer, instance_id: &str, n: i64) {
    let ids: Vec<i64> = shipped(server, instance_id)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids, (1..=n).collect::<Vec<_>>());
    assert_eq!(mark(server, instance_id), n);
}

fn ledger_id(path: &Path) -> String {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row(
        "SELECT value FROM par_meta WHERE key = 'ledger_id'",
        [],
        |row| row.get(0),
    )
    .unwrap()
}

#[test]
fn every_record_arrives_once_with_every_field() {
    let server = PgServer::start_new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("usage.sqlite");
    let mut records: Vec<_> = (1..=25).map(record).collect();
    let mut odd = record(26);
    odd.caller_client_id = Some("client\u{0}id".into());
    odd.reported = object(json!({"note": "nul \u{0} inside", "big": u64::MAX}));
    records.push(odd);
    write(&path, records.clone());

    let shipper = UsageShipper::start(&path, config(&server)).unwrap();
    let instance = ledger_id(&path);
    assert_eq!(shipper.instance_id(), instance, "defaults to the ledger id");
    wait_for_rows(&server, &instance, 26);
    let stats = shipper.close();
    assert_eq!((stats.shipped, stats.lag), (26, 0));

    let rows = shipped(&server, &instance);
    assert_eq!(rows.len(), 26);
    for ((id, got), (n, want)) in rows.iter().zip(records.iter().enumerate()) {
        assert_eq!(*id, n as i64 + 1);
        if n < 25 {
            assert_eq!(got, want);
        }
    }
    // PostgreSQL text cannot hold NUL: it arrives as U+FFFD, the rest unchanged.
    let odd = &rows[25].1;
    assert_eq!(odd.caller_client_id.as_deref(), Some("client\u{FFFD}id"));
    assert_eq!(odd.reported["note"], "nul \u{FFFD} inside");
    assert_eq!(odd.reported["big"], json!(u64::MAX));
    // The local ledger is untouched and still the source of truth.
    let local = UsageReader::open(&path).unwrap();
    let query = par_telemetry::UsageQuery::default();
    assert_eq!(local.query(&query).unwrap().totals.calls, 26);
}

#[test]
fn records_catch_up_when_postgres_comes_up_after_startup() {
    let mut server = PgServer::init();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("usage.sqlite");
    write(&path, (1..=10).map(record));
    let config = config(&server);
    let counters = config.counters.clone();
    let shipper =
        UsageShipper::start(&path, config).expect("an unreachable server is not an error");
    wait_for("failed passes", || counters.failures.get() >= 2);
    assert_eq!(shipper.stats().lag, 10);
    write(&path, (11..=15).map(record));
    server.start();
    let instance = shipper.instance_id().to_owned();
    wait_for_rows(&server, &instance, 15);
    drop(shipper);
    assert_exactly_once(&server, &instance, 15);
}

#[test]
fn a_postgres_crash_mid_run_loses_and_duplicates_nothing() {
    let mut server = PgServer::start_new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("usage.sqlite");
    let mut config = config(&server);
    config.batch_size = 7;
    config.interval = Duration::from_millis(20);
    let mut sink = SqliteSink::open(&path, Synchronous::Normal).unwrap();
    let shipper = UsageShipper::start(&path, config).unwrap();
    let instance = shipper.instance_id().to_owned();
    let mut n = 0;
    let mut batch = |count: u64| {
        let records: Vec<_> = (n + 1..=n + count).map(record).collect();
        n += count;
        sink.write_batch(&records).unwrap();
    };
    for _ in 0..20 {
        batch(5);
        std::thread::sleep(Duration::from_millis(10));
    }
    wait_for("some rows", || count(&server, &instance) > 0);
    server.kill();
    for _ in 0..20 {
        batch(5);
        std::thread::sleep(Duration::from_millis(10));
    }
    server.start();
    for _ in 0..20 {
        batch(5);
        std::thread::sleep(Duration::from_millis(10));
    }
    wait_for_rows(&server, &instance, 300);
    let stats = shipper.close();
    assert!(stats.failures > 0, "the crash was noticed: {stats:?}");
    assert_exactly_once(&server, &instance, 300);
}

#[test]
fn a_shipper_dropped_between_batches_resumes_from_the_mark() {
    let server = PgServer::start_new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("usage.sqlite");
    write(&path, (1..=200).map(record));
    let mut config = config(&server);
    config.batch_size = 3;
    let first = UsageShipper::start(&path, config.clone()).unwrap();
    let instance = first.instance_id().to_owned();
    wait_for_rows(&server, &instance, 30);
    drop(first); // as a crash: no final flush
                 // It stops at the next batch boundary, before shipping everything.
    std::thread::sleep(Duration::from_millis(300));
    let after_drop = count(&server, &instance);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        count(&server, &instance),
        after_drop,
        "the dropped shipper stopped"
    );
    assert!(after_drop < 200, "{after_drop}");
    write(&path, (201..=250).map(record));

    let fresh = ShipConfig {
        counters: ShipCounters::default(),
        ..config
    };
    let second = UsageShipper::start(&path, fresh).unwrap();
    wait_for_rows(&server, &instance, 250);
    let stats = second.close();
    assert_exactly_once(&server, &instance, 250);
    assert_eq!(
        stats.shipped as i64,
        250 - after_drop,
        "resumed from the mark"
    );
}

#[test]
fn two_instances_share_one_database() {
    let server = PgServer::start_new();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.sqlite"), dir.path().join("b.sqlite"));
    write(&a, (1..=12).map(record));
    write(&b, (1..=7).map(record));
    let mut named = config(&server);
    named.instance_id = Some("pod-a".into());
    let shipper_a = UsageShipper::start(&a, named).unwrap();
    let shipper_b = UsageShipper::start(&b, config(&server)).unwrap();
    let b_id = shipper_b.instance_id().to_owned();
    assert_ne!(b_id, "pod-a");
    wait_for_rows(&server, "pod-a", 12);
    wait_for_rows(&server, &b_id, 7);
    shipper_a.close();
    shipper_b.close();
    assert_exactly_once(&server, "pod-a", 12);
    assert_exactly_once(&server, &b_id, 7);
    let mut client = server.client();
    let ledgers: i64 = client
        .query_one(
            "SELECT COUNT(DISTINCT ledger_id) FROM par_usage_records",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(ledgers, 2);
}

#[test]
fn a_fresh_file_under_a_kept_instance_id_is_not_taken_as_shipped() {
    let server = PgServer::start_new();
    let dir = tempfile::tempdir().unwrap();
    let mut named = config(&server);
    named.instance_id = Some("pod-0".into());
    let old = dir.path().join("old.sqlite");
    write(&old, (1..=5).map(record));
    UsageShipper::start(&old, named.clone()).unwrap().close();
    // The pod restarts with empty storage: rowids begin at 1 again.
    let new = dir.path().join("new.sqlite");
    write(&new, (6..=8).map(record));
    UsageShipper::start(&new, named).unwrap().close();
    assert_eq!(count(&server, "pod-0"), 8);
}

#[test]
fn close_ships_the_tail() {
    let server = PgServer::start_new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("usage.sqlite");
    write(&path, std::iter::empty());
    let config = ShipConfig {
        interval: Duration::from_secs(3600),
        ..ShipConfig::new(server.url())
    };
    let shipper = UsageShipper::start(&path, config).unwrap();
    let instance = shipper.instance_id().to_owned();
    wait_for("the first connection", || {
        let sql = "SELECT to_regclass('par_usage_shipped') IS NOT NULL";
        server.client().query_one(sql, &[]).unwrap().get(0)
    });
    // Past the first pass, which found nothing; the next would be in an hour.
    std::thread::sleep(Duration::from_millis(300));
    write(&path, (1..=9).map(record));
    let stats = shipper.close();
    assert_eq!((stats.shipped, stats.lag), (9, 0));
    assert_exactly_once(&server, &instance, 9);
}

#[test]
fn close_is_bounded_when_postgres_is_down() {
    let server = PgServer::init(); // never started
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("usage.sqlite");
    write(&path, (1..=3).map(record));
    let config = ShipConfig {
        close_timeout: Duration::from_secs(1),
        ..config(&server)
    };
    let shipper = UsageShipper::start(&path, config).unwrap();
    let started = Instant::now();
    let stats = shipper.close();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(stats.lag, 3);
}

/// A server that accepts `par` only over TLS, with a certificate from a private CA, and a
/// plain-text `reader` for the test's own checks. Returns the CA's PEM file.
fn tls_only_server(server: &mut PgServer, dir: &Path) -> std::path::PathBuf {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let cert_file = server.write_private("server.crt", cert.pem().as_bytes());
    let key_file = server.write_private("server.key", key.serialize_pem().as_bytes());

    server.start();
    server
        .client()
        .batch_execute("CREATE ROLE reader LOGIN SUPERUSER")
        .unwrap();
    server.kill();
    let hba = "hostssl all par 127.0.0.1/32 trust\nhost all reader 127.0.0.1/32 trust\n";
    server.write_private("pg_hba.conf", hba.as_bytes());
    let ssl_cert = format!("ssl_cert_file={}", cert_file.display());
    let ssl_key = format!("ssl_key_file={}", key_file.display());
    server.start_with(&["ssl=on", &ssl_cert, &ssl_key]);
    ca_file
}

fn count_as_reader(server: &PgServer) -> i64 {
    let url = format!("postgres://reader@127.0.0.1:{}/postgres", server.port());
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let sql = "SELECT COUNT(*) FROM par_usage_records";
    client.query_one(sql, &[]).map_or(0, |row| row.get(0))
}

#[test]
fn sslmode_require_ships_over_verified_tls_only() {
    let mut server = PgServer::init();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = tls_only_server(&mut server, dir.path());
    assert!(
        postgres::Client::connect(&server.url(), postgres::NoTls).is_err(),
        "plain text is refused for par"
    );
    let path = dir.path().join("usage.sqlite");
    write(&path, (1..=4).map(record));
    let require = ShipConfig {
        url: format!("{}?sslmode=require", server.url()),
        ..config(&server)
    };

    // Not signed by a trusted CA: refused, nothing shipped.
    let untrusted = UsageShipper::start(&path, require.clone()).unwrap();
    wait_for("refused passes", || untrusted.stats().failures >= 2);
    drop(untrusted);
    assert_eq!(count_as_reader(&server), 0);

    let trusted = ShipConfig {
        ca_bundle: Some(ca_file),
        counters: ShipCounters::default(),
        ..require
    };
    let shipper = UsageShipper::start(&path, trusted).unwrap();
    wait_for("rows over TLS", || count_as_reader(&server) == 4);
    assert_eq!(shipper.close().failures, 0);
}
