//! Builds real environments with the real uv binary (`PAR_UV`, else `uv` on PATH).

use std::time::Duration;

use par_pyenv::{EnvError, EnvManager};

fn manager(root: &std::path::Path) -> EnvManager {
    let uv = std::env::var("PAR_UV").unwrap_or_else(|_| "uv".into());
    EnvManager::new(uv.into(), root.to_path_buf(), Duration::from_secs(300))
}

#[tokio::test]
async fn builds_once_then_reuses_across_managers() {
    let root = tempfile::tempdir().unwrap();
    let envs = manager(root.path());
    let python = envs.find_interpreter("python3.11").await.unwrap();
    let reqs = vec!["six==1.16.0".to_string()];
    let first = envs.ensure(&python, &reqs).await.unwrap();
    assert!(!first.reused);
    let out = std::process::Command::new(&first.python)
        .args(["-c", "import six; print(six.__version__)"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1.16.0");
    // A new manager on the same root is a restart: the environment is reused.
    let again = manager(root.path()).ensure(&python, &reqs).await.unwrap();
    assert!(again.reused);
    assert_eq!(again.dir, first.dir);
    // Nothing half-built is left beside it.
    let leftovers: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".build-"))
        .collect();
    assert!(leftovers.is_empty());
}

#[tokio::test]
async fn concurrent_requests_for_one_set_build_it_once() {
    let root = tempfile::tempdir().unwrap();
    let envs = manager(root.path());
    let python = envs.find_interpreter("python3.11").await.unwrap();
    let (a, b) = tokio::join!(envs.ensure(&python, &[]), envs.ensure(&python, &[]));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.dir, b.dir);
    assert!(a.reused != b.reused, "exactly one of the two built it");
}

#[tokio::test]
async fn failed_install_reports_uv_error_and_leaves_nothing() {
    let root = tempfile::tempdir().unwrap();
    let envs = manager(root.path());
    let python = envs.find_interpreter("python3.11").await.unwrap();
    let reqs = vec!["par-this-package-does-not-exist==9.9.9".to_string()];
    let err = envs.ensure(&python, &reqs).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, EnvError::Uv { .. }), "{text}");
    assert!(text.contains("par-this-package-does-not-exist"), "{text}");
    let names: Vec<String> = std::fs::read_dir(root.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

#[tokio::test]
async fn unknown_runtime_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let envs = manager(root.path());
    assert!(matches!(
        envs.find_interpreter("node20").await,
        Err(EnvError::UnsupportedRuntime(_))
    ));
}
