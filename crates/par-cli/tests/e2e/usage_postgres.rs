//! `par serve --usage-postgres-url`: a call's usage record reaches a real PostgreSQL
//! server, the password stays out of the log, and a bad URL stops startup.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::TestRuntime;

// The throwaway server of par-telemetry's shipper tests, shared rather than copied.
#[path = "../../../par-telemetry/tests/pg_server/mod.rs"]
pub(crate) mod pg_server;

use pg_server::PgServer;

const PASSWORD: &str = "e2e-secret-pw";

/// `(request_id, agent, tokens_in)` of every shipped row of `instance`. The sync client
/// must not run on an async worker, hence the blocking task.
async fn shipped(url: String, instance: &'static str) -> Vec<(String, String, i64)> {
    tokio::task::spawn_blocking(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let sql = "SELECT request_id, agent, (reported->>'tokens_in')::bigint \
                   FROM par_usage_records WHERE instance_id = $1 ORDER BY local_id";
        match client.query(sql, &[&instance]) {
            Ok(rows) => rows
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect(),
            Err(_) => Vec::new(), // the table is not there yet
        }
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_call_is_billed_in_postgres() {
    let server = tokio::task::spawn_blocking(PgServer::start_new)
        .await
        .unwrap();
    let port = server.port();
    let url = format!("postgres://par:{PASSWORD}@127.0.0.1:{port}/postgres");
    let mut rt = TestRuntime::builder()
        .fixture("kit-minimal")
        .env("PAR_USAGE_POSTGRES_URL", &url)
        .args(&["--usage-ship-interval", "0.2", "--instance-id", "e2e-node"])
        .start()
        .await;
    let (status, _) = rt
        .invoke("kit-minimal", json!({"usage": {"tokens_in": 7}}))
        .await;
    assert_eq!(status, 200);
    let local = rt.usage_when("?agent=kit-minimal", 1).await;
    let request_id = local["records"][0]["request_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let deadline = Instant::now() + Duration::from_secs(30);
    let rows = loop {
        let rows = shipped(server.url(), "e2e-node").await;
        if !rows.is_empty() || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        rows,
        [(request_id, "kit-minimal".to_owned(), 14)],
        "{}",
        rt.logs()
    );
    // The counters move just after the commit the query above saw: poll briefly.
    let deadline = Instant::now() + Duration::from_secs(5);
    let metrics = loop {
        let text = rt.metrics().await;
        if text.contains("par_usage_records_shipped_total 1\n") || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        metrics.contains("par_usage_records_shipped_total 1\n")
            && metrics.contains("par_usage_ship_lag_records 0\n")
            && metrics.contains("par_usage_ship_failures_total 0\n"),
        "{metrics}"
    );
    assert!(rt.terminate().success());
    let logs = rt.logs();
    assert!(
        logs.contains("shipping usage records to PostgreSQL"),
        "{logs}"
    );
    assert!(!logs.contains(PASSWORD), "{logs}");
}

#[test]
fn a_bad_postgres_url_stops_startup() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_par"))
        .args(["serve", "--listen", "127.0.0.1:0", "--usage-db"])
        .arg(tempfile::tempdir().unwrap().path().join("u.sqlite3"))
        .env(
            "PAR_USAGE_POSTGRES_URL",
            format!("postgres://par:{PASSWORD}@db/usage?sslmode=sometimes"),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("PAR_USAGE_POSTGRES_URL"), "{stderr}");
    assert!(!stderr.contains(PASSWORD), "{stderr}");
}
