//! Workers forked from a package's zygote (`--worker-start fork`, the default) keep every
//! isolation promise of a worker started fresh, and the pool recovers a forked worker's
//! crash and the zygote's death.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{alive, wait_until, TestRuntime};

const LIMIT: Duration = Duration::from_secs(60);

async fn facts(rt: &TestRuntime) -> Value {
    let (status, body) = rt.invoke("kit-escape", json!({"try": "facts"})).await;
    assert_eq!(status, 200, "{body}");
    body["data"].clone()
}

async fn start(cache: &std::path::Path, how: &str) -> TestRuntime {
    TestRuntime::builder()
        .fixture("kit-escape")
        .cache(cache)
        .args(&["--worker-start", how])
        .start()
        .await
}

async fn worker_pids(rt: &TestRuntime, suffix: &str) -> Vec<u64> {
    let report = rt.package_report(suffix).await;
    report["workers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_u64)
        .collect()
}

/// The proxy variables name each jail's own egress port: set in both, values differ.
const PER_JAIL: &[&str] = &[
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
];

fn comparable_env(facts: &Value) -> Value {
    let mut env = facts["env"].as_object().unwrap().clone();
    for key in PER_JAIL {
        if let Some(value) = env.get_mut(*key) {
            *value = json!("<per jail>");
        }
    }
    Value::Object(env)
}

/// Every promise a fresh worker keeps, checked on `forked` against `fresh`.
fn assert_isolated_alike(forked: &Value, fresh: &Value) {
    assert_eq!(comparable_env(forked), comparable_env(fresh), "environment");
    assert_eq!(forked["sys_path"], fresh["sys_path"], "sys.path");
    assert_eq!(forked["cwd"], fresh["cwd"], "working dir");
    assert_eq!(
        forked["status"], fresh["status"],
        "uid, no_new_privs, seccomp, capabilities"
    );
    assert_eq!(forked["hostname"], fresh["hostname"]);
    assert_eq!(forked["status"]["NoNewPrivs"], json!(["1"]), "{forked}");
    assert_eq!(forked["status"]["Seccomp"], json!(["2"]), "{forked}");
    assert_eq!(forked["status"]["Uid"][0], "1000", "{forked}");
    // Namespaces: none is the host's (this test's own) in either worker.
    for name in ["user", "mnt", "pid", "net", "ipc", "uts"] {
        let host = std::fs::read_link(format!("/proc/self/ns/{name}")).unwrap();
        let host = host.display().to_string();
        for (what, facts) in [("forked", forked), ("fresh", fresh)] {
            let seen = facts["namespaces"][name].as_str().unwrap();
            assert!(
                seen.starts_with(&format!("{name}:[")) && seen != host,
                "{what} worker in the host's {name} namespace: {seen}"
            );
        }
    }
}

#[tokio::test]
async fn a_forked_worker_is_isolated_like_a_fresh_one() {
    let cache = tempfile::tempdir().unwrap();
    let mut fresh_rt = start(cache.path(), "fresh").await;
    let fresh = facts(&fresh_rt).await;
    fresh_rt.terminate();
    let rt = start(cache.path(), "fork").await;
    let forked = facts(&rt).await;
    // Forked: the zygote, not the jail's init, is its parent.
    assert_eq!(forked["ppid"], 2, "{forked}");
    assert_eq!(fresh["ppid"], 1, "{fresh}");
    assert_isolated_alike(&forked, &fresh);

    // A replacement forked after a crash is alike too.
    let before = worker_pids(&rt, "kit-escape.apkg").await;
    kill(before[0]);
    let after = wait_until("a new forked worker", LIMIT, || async {
        let pids = worker_pids(&rt, "kit-escape.apkg").await;
        (pids.len() == 1 && pids != before).then_some(pids)
    })
    .await;
    let again = facts(&rt).await;
    assert_ne!(again["pid"], forked["pid"], "{after:?}");
    assert_isolated_alike(&again, &fresh);
}

fn kill(pid: u64) {
    let status = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// The parent of `pid` as the host sees it.
pub(crate) fn parent_of(pid: u64) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = stat.rsplit(')').next().unwrap();
    after_name
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
}

async fn answers(rt: &TestRuntime) -> u64 {
    let (status, body) = rt.invoke("kit-minimal", json!({"n": 1})).await;
    assert_eq!(status, 200, "{body}");
    body["data"]["pid"].as_u64().unwrap()
}

async fn crash_and_zygote_death_are_recovered(sandbox: &str) {
    let rt = TestRuntime::builder()
        .fixture("kit-minimal")
        .args(&["--sandbox", sandbox, "--workers", "2"])
        .start()
        .await;
    answers(&rt).await;
    let first = worker_pids(&rt, "kit-minimal.apkg").await;
    assert_eq!(first.len(), 2, "{first:?}");
    // Both workers are children of one zygote.
    let zygote = parent_of(first[0]);
    assert_eq!(parent_of(first[1]), zygote, "{first:?}");

    // A forked worker's crash: replaced by a new fork of the same zygote.
    kill(first[0]);
    let second = wait_until("the crashed worker replaced", LIMIT, || async {
        let pids = worker_pids(&rt, "kit-minimal.apkg").await;
        (pids.len() == 2 && !pids.contains(&first[0])).then_some(pids)
    })
    .await;
    let new = *second.iter().find(|p| !first.contains(p)).unwrap();
    assert_eq!(parent_of(new), zygote, "{second:?}");
    answers(&rt).await;

    // The zygote's death takes its workers; the pool starts a zygote and workers again.
    kill(zygote);
    let third = wait_until("workers of a new zygote", LIMIT, || async {
        let pids = worker_pids(&rt, "kit-minimal.apkg").await;
        let fresh = pids.len() == 2 && pids.iter().all(|p| !second.contains(p));
        fresh.then_some(pids)
    })
    .await;
    assert!(!alive(zygote), "the old zygote lives on");
    let new_zygote = parent_of(third[0]);
    assert_ne!(new_zygote, zygote);
    assert_eq!(parent_of(third[1]), new_zygote, "{third:?}");
    answers(&rt).await;
    rt.wait_log(&["zygote died"], LIMIT).await;
}

#[tokio::test]
async fn jailed_forked_workers_and_their_zygote_are_replaced_when_they_die() {
    crash_and_zygote_death_are_recovered("strict").await;
}

#[tokio::test]
async fn unconfined_forked_workers_and_their_zygote_are_replaced_when_they_die() {
    crash_and_zygote_death_are_recovered("off").await;
}
