//! Python environments and worker environment variables, through real packages.

use serde_json::json;

use crate::harness::TestRuntime;

#[tokio::test]
async fn dotenv_rules_and_precedence() {
    let rt = TestRuntime::builder()
        .fixture("kit-env")
        .env("PAR_TEST_HOST_SECRET", "must-not-leak")
        .env("PAR_TEST_ALLOWED", "visible")
        .env("OVERRIDDEN", "from-host")
        .arg("--worker-env-allow")
        .arg("PATH,PAR_TEST_ALLOWED,OVERRIDDEN")
        .start()
        .await;
    let keys = [
        "SPACED_KEY",
        "DQ",
        "SQ",
        "MISMATCH",
        "EMPTY",
        "EQUALS",
        "OVERRIDDEN",
        "DOTENV_ONLY",
        "YAML_ONLY",
        "NUMERIC",
        "PAR_TEST_HOST_SECRET",
        "PAR_TEST_ALLOWED",
    ];
    let (status, body) = rt.invoke("kit-env", json!({"keys": keys})).await;
    assert_eq!(status, 200, "{body}");
    let env = &body["data"]["env"];
    assert_eq!(env["SPACED_KEY"], "spaced value");
    assert_eq!(env["DQ"], "double quoted");
    assert_eq!(env["SQ"], "single quoted");
    assert_eq!(env["MISMATCH"], "\"abc'", "mismatched quotes stay");
    assert_eq!(env["EMPTY"], "");
    assert_eq!(env["EQUALS"], "a=b=c");
    assert_eq!(
        env["OVERRIDDEN"], "from-yaml",
        "agent.yaml environment wins over .env and host"
    );
    assert_eq!(env["DOTENV_ONLY"], "yes");
    assert_eq!(env["YAML_ONLY"], "1");
    assert_eq!(env["NUMERIC"], "42");
    assert_eq!(
        env["PAR_TEST_ALLOWED"], "visible",
        "allowlisted host variable passes"
    );
    assert_eq!(
        env["PAR_TEST_HOST_SECRET"],
        serde_json::Value::Null,
        "host variable leaked"
    );
    let all: Vec<&str> = body["data"]["all_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        !all.iter().any(|k| k.starts_with("PAR_WORKER_")),
        "worker settings leaked: {all:?}"
    );
}

#[tokio::test]
async fn one_package_never_sees_anothers_variables() {
    let rt = TestRuntime::builder()
        .fixture("kit-env")
        .fixture("kit-minimal")
        .start()
        .await;
    let (status, env_pkg) = rt
        .invoke(
            "kit-env",
            json!({"keys": ["DOTENV_ONLY", "YAML_ONLY", "PAR_FIXTURE"]}),
        )
        .await;
    assert_eq!(status, 200, "{env_pkg}");
    assert_eq!(env_pkg["data"]["env"]["DOTENV_ONLY"], "yes");
    assert_eq!(env_pkg["data"]["env"]["YAML_ONLY"], "1", "{env_pkg}");
    assert_eq!(
        env_pkg["data"]["env"]["PAR_FIXTURE"],
        serde_json::Value::Null,
        "kit-minimal's .env leaked"
    );
    let (status, minimal) = rt
        .invoke(
            "kit-minimal",
            json!({"env_keys": ["DOTENV_ONLY", "YAML_ONLY", "PAR_FIXTURE"]}),
        )
        .await;
    assert_eq!(status, 200, "{minimal}");
    let env = &minimal["data"]["env"];
    assert_eq!(env["PAR_FIXTURE"], "kit-minimal", "its own .env: {minimal}");
    assert_eq!(
        env["DOTENV_ONLY"],
        serde_json::Value::Null,
        "kit-env's .env leaked: {minimal}"
    );
    assert_eq!(
        env["YAML_ONLY"],
        serde_json::Value::Null,
        "kit-env's environment leaked: {minimal}"
    );
}

#[tokio::test]
async fn pinned_dependency_installs_and_pyproject_shares_the_environment() {
    let rt = TestRuntime::builder()
        .fixture("kit-dep")
        .fixture("sdk-pyproject")
        .start()
        .await;
    let (status, kit) = rt.invoke("kit-dep", json!({})).await;
    assert_eq!(status, 200, "{kit}");
    assert_eq!(kit["data"]["six"], "1.16.0");
    let (status, sdk) = rt.invoke("sdk-pyproject", json!({})).await;
    assert_eq!(status, 200, "{sdk}");
    assert_eq!(
        sdk["data"]["six"], "1.16.0",
        "dependency from pyproject.toml"
    );
    assert_eq!(
        kit["data"]["prefix"], sdk["data"]["prefix"],
        "same dependency set shares one environment"
    );
    let kit_report = rt.package_report("kit-dep.apkg").await;
    let sdk_report = rt.package_report("sdk-pyproject.apkg").await;
    assert_eq!(kit_report["environment"], sdk_report["environment"]);
}

#[tokio::test]
async fn failed_install_fails_only_that_package_with_uv_error() {
    let rt = TestRuntime::builder()
        .fixture("kit-bad-dep")
        .fixture("kit-minimal")
        .start()
        .await;
    let report = rt.package_report("kit-bad-dep.apkg").await;
    assert_eq!(report["state"], "failed");
    assert_eq!(report["failed_phase"], "environment");
    let error = report["error"].as_str().unwrap();
    assert!(error.contains("par-this-package-does-not-exist"), "{error}");
    let (status, _) = rt.invoke("kit-minimal", json!({})).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn environments_are_reused_across_restarts() {
    let cache = tempfile::tempdir().unwrap();
    let first = TestRuntime::builder()
        .cache(cache.path())
        .fixture("kit-minimal")
        .start()
        .await;
    let env_key = first.package_report("kit-minimal.apkg").await["environment"].clone();
    assert!(
        first.logs().contains("\"reused\":false"),
        "first start builds"
    );
    drop(first);
    let second = TestRuntime::builder()
        .cache(cache.path())
        .fixture("kit-minimal")
        .start()
        .await;
    assert_eq!(
        second.package_report("kit-minimal.apkg").await["environment"],
        env_key
    );
    assert!(
        second.logs().contains("\"reused\":true"),
        "{}",
        second.logs()
    );
}

#[tokio::test]
async fn each_package_sees_its_own_dotenv_value_for_a_shared_name() {
    let rt = TestRuntime::builder()
        .fixture("kit-env")
        .fixture("kit-minimal")
        .start()
        .await;
    let (status, minimal) = rt
        .invoke("kit-minimal", json!({"env_keys": ["PAR_FIXTURE"]}))
        .await;
    assert_eq!(status, 200, "{minimal}");
    assert_eq!(minimal["data"]["env"]["PAR_FIXTURE"], "kit-minimal");
}

#[tokio::test]
async fn each_package_runs_in_a_private_working_directory() {
    let cache = tempfile::tempdir().unwrap();
    let rt = TestRuntime::builder()
        .cache(cache.path())
        .fixture("kit-minimal")
        .fixture("twin-a")
        .start()
        .await;
    let (status, body) = rt.invoke("kit-minimal", json!({"where": true})).await;
    assert_eq!(status, 200, "{body}");
    let place = &body["data"];
    let cwd = std::path::PathBuf::from(place["cwd"].as_str().unwrap());
    assert!(cwd.starts_with(cache.path().join("work")), "{place}");
    assert_eq!(place["home"], place["cwd"]);
    assert!(place["tmp"]
        .as_str()
        .unwrap()
        .starts_with(place["cwd"].as_str().unwrap()));
    let root = std::path::PathBuf::from(place["root"].as_str().unwrap());
    assert!(
        root.join("agent.yaml").is_file(),
        "PAR_PACKAGE_ROOT points at the package: {place}"
    );
    assert_ne!(
        cwd, root,
        "the shared, verified package folder is not the working directory"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&cwd).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let (status, twin) = rt.invoke("twin-a", json!({})).await;
    assert_eq!(status, 200, "{twin}");
    assert!(twin["data"]["cwd"].is_string(), "{twin}");
    assert_ne!(
        twin["data"]["cwd"], place["cwd"],
        "packages share a working directory"
    );
}
