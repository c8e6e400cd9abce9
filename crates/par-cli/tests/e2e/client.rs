//! The client commands (`par agents`, `invoke`, `load`, `unload`, `usage`, `runs`) against a real
//! `par serve`: JSON output parsed, tables read, errors as one line with their exit code.
//! `par runs` lists and shows durable runs.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{fixture, workspace_root, TestRuntime};

/// `par ARGS...` against `url`, with no PAR_URL/PAR_TOKEN from the test's environment.
fn par(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_par"))
        .args(args)
        .env("PAR_URL", url)
        .env_remove("PAR_TOKEN")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stdout_json(out: &Output) -> Value {
    assert!(out.status.success(), "{}", describe(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", describe(out)))
}

fn describe(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The command failed with `code` and said why in exactly one line naming `needle`.
fn assert_fails(out: &Output, code: i32, needle: &str) {
    assert_eq!(out.status.code(), Some(code), "{}", describe(out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(needle), "'{needle}' in: {stderr}");
    assert!(out.stdout.is_empty(), "{}", describe(out));
}

async fn examples() -> TestRuntime {
    TestRuntime::builder()
        .source(workspace_root().join("target/examples"))
        .start()
        .await
}

#[tokio::test]
async fn agents_and_invoke_answer_as_json_and_as_tables() {
    let rt = examples().await;
    let listed = stdout_json(&par(&rt.base, &["agents", "--json"]));
    let ids: Vec<&str> = listed["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["countdown", "echo", "echo-upper", "greeter", "word-stats"]
    );
    let one = stdout_json(&par(&rt.base, &["agents", "greeter", "--json"]));
    assert_eq!(one["package"], "greeter");

    let table = par(&rt.base, &["agents"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(table.status.success(), "{}", describe(&table));
    assert!(text.starts_with("ID "), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("echo-upper ") && l.contains("echo")),
        "{text}"
    );

    let answer = stdout_json(&par(
        &rt.base,
        &["invoke", "echo", r#"{"hello": "cli"}"#, "--json"],
    ));
    assert_eq!(answer["data"]["echo"], json!({"hello": "cli"}));
    let payload = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(payload.path(), r#"{"text": "from a file"}"#).unwrap();
    let at_file = format!("@{}", payload.path().display());
    let human = par(&rt.base, &["invoke", "echo-upper", &at_file]);
    let data: Value = stdout_json(&human);
    assert_eq!(data["text"], "FROM A FILE", "plain output is the data");
}

#[tokio::test]
async fn errors_are_one_line_with_a_documented_exit_code() {
    let rt = examples().await;
    let unknown = par(&rt.base, &["invoke", "no-such-agent", "{}"]);
    assert_fails(&unknown, 4, "agent_not_found");
    assert_fails(&par(&rt.base, &["agents", "nope"]), 4, "agent_not_found");
    assert_fails(&par(&rt.base, &["unload", "nope"]), 4, "not mounted");
    assert_fails(
        &par(&rt.base, &["invoke", "echo", "[1, 2]"]),
        2,
        "JSON object",
    );
    assert_fails(&par(&rt.base, &["invoke", "echo", "{oops"]), 2, "not JSON");
    assert_fails(&par(&rt.base, &["agents", "--url", "ftp://x"]), 2, "--url");

    // A port nothing listens on: bound, then released.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    for args in [
        &["agents"][..],
        &["invoke", "echo"],
        &["usage"],
        &["unload", "echo"],
    ] {
        let out = par(&down, args);
        assert_fails(&out, 3, &format!("cannot reach the server at {down}"));
    }
    // Nothing was changed by the refused calls: everything is still served.
    let listed = stdout_json(&par(&rt.base, &["agents", "--json"]));
    assert_eq!(listed["agents"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn invoke_stream_prints_each_event_as_it_arrives() {
    let rt = examples().await;
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_par"))
        .args([
            "invoke",
            "countdown",
            r#"{"from": 3, "gap": 0.4}"#,
            "--stream",
        ])
        .args(["--url", &rt.base])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        lines.push((started.elapsed(), line.unwrap()));
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{lines:?}");
    let items: Vec<Value> = lines
        .iter()
        .map(|(_, l)| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(items[0], json!({"n": 3}));
    assert_eq!(items.len(), 4, "{items:?}");
    assert_eq!(items[3]["label"], "liftoff");
    let (first, last) = (lines[0].0, lines[3].0);
    assert!(
        last - first > Duration::from_millis(800),
        "the items were printed together at the end ({first:?}, {last:?})"
    );
}

#[tokio::test]
async fn load_follows_the_phases_and_unload_removes_the_package() {
    let rt = TestRuntime::builder().start().await;
    let path = fixture("kit-minimal");
    let loaded = stdout_json(&par(&rt.base, &["load", path.to_str().unwrap(), "--json"]));
    assert_eq!(loaded["state"], "ready", "{loaded}");
    assert_eq!(loaded["packages"][0]["name"], "kit-minimal", "{loaded}");
    let answer = stdout_json(&par(
        &rt.base,
        &["invoke", "mini-upper", r#"{"text": "a"}"#, "--json"],
    ));
    assert_eq!(answer["status"], "success", "{answer}");

    let bad = par(
        &rt.base,
        &["load", fixture("bad-manifest").to_str().unwrap()],
    );
    assert_fails(&bad, 1, "load failed in phase manifest");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("metadata.version"));

    let unloaded = par(&rt.base, &["unload", "kit-minimal"]);
    assert!(unloaded.status.success(), "{}", describe(&unloaded));
    assert!(
        String::from_utf8_lossy(&unloaded.stdout).contains("unloading kit-minimal 1.0.0"),
        "{}",
        describe(&unloaded)
    );
    assert_fails(
        &par(&rt.base, &["invoke", "mini-upper", "{}"]),
        4,
        "agent_not_found",
    );
}

#[tokio::test]
async fn usage_shows_the_calls_made() {
    let rt = examples().await;
    for _ in 0..2 {
        stdout_json(&par(
            &rt.base,
            &["invoke", "greeter", r#"{"name": "Ada"}"#, "--json"],
        ));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let report = loop {
        let report = stdout_json(&par(&rt.base, &["usage", "--agent", "greeter", "--json"]));
        if report["totals"]["calls"] == 2 || Instant::now() > deadline {
            break report;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(report["totals"]["calls"], 2, "{report}");
    let table = par(&rt.base, &["usage", "--group-by", "agent"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(table.status.success(), "{}", describe(&table));
    assert!(
        text.lines().any(|l| l.starts_with("agent=greeter ")),
        "{text}"
    );
    assert!(text.contains("total: 2 calls, 0 errors"), "{text}");
}

#[tokio::test]
async fn runs_lists_and_shows_a_finished_run() {
    let rt = examples().await;
    let (status, run) = rt
        .post_raw("/agents/greeter/runs", json!({"name": "Ada"}).to_string())
        .await;
    assert_eq!(status, 202, "{run}");
    let id = run["run_id"].as_str().unwrap().to_string();
    // `par runs ID --json` until the run has ended.
    let deadline = Instant::now() + Duration::from_secs(30);
    let shown = loop {
        let shown = stdout_json(&par(&rt.base, &["runs", &id, "--json"]));
        if shown["status"] == "succeeded" {
            break shown;
        }
        assert!(Instant::now() < deadline, "run never succeeded: {shown}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        (&shown["run_id"], &shown["agent"]),
        (&json!(id), &json!("greeter"))
    );
    let listed = stdout_json(&par(&rt.base, &["runs", "--agent", "greeter", "--json"]));
    let ids: Vec<&str> = listed["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["run_id"].as_str())
        .collect();
    assert_eq!(ids, [id.as_str()], "{listed}");
    let table = par(&rt.base, &["runs"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(table.status.success(), "{}", describe(&table));
    assert!(
        text.lines()
            .any(|l| l.starts_with(&id) && l.contains("succeeded")),
        "{text}"
    );
    assert_fails(&par(&rt.base, &["runs", "no-such-run"]), 4, "no-such-run");
}
