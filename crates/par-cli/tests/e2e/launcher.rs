//! The jail launcher: jails start with the small `par-jail` installed next to `par`, and
//! a `par-jail` from another build is not trusted with a spec (the runtime falls back to
//! `par __jail`, the same code inside its own binary, and says so).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use crate::harness::TestRuntime;
use crate::sandbox::descendants;

/// The executables of every process below `pid`.
pub(crate) fn executables_below(pid: u32) -> Vec<PathBuf> {
    descendants(pid)
        .into_iter()
        .filter_map(|p| std::fs::read_link(format!("/proc/{p}/exe")).ok())
        .collect()
}

fn count(exes: &[PathBuf], wanted: &Path) -> usize {
    let wanted = wanted.canonicalize().unwrap();
    exes.iter().filter(|e| **e == wanted).count()
}

async fn serves(rt: &TestRuntime) {
    let (status, body) = rt.invoke("kit-minimal", json!({"hello": "jail"})).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn jails_start_with_the_small_par_jail_launcher() {
    let rt = TestRuntime::builder().fixture("kit-minimal").start().await;
    serves(&rt).await;
    let report = rt.package_report("kit-minimal.apkg").await;
    assert_eq!(report["sandbox"]["mode"], "strict", "{report}");
    let logs = rt
        .wait_log(&["sandbox strict", "par-jail"], Duration::from_secs(5))
        .await;
    assert!(logs.contains("launcher"), "{logs}");
    let exes = executables_below(rt.pid());
    let small = Path::new(env!("CARGO_BIN_EXE_par-jail"));
    let runtime = Path::new(env!("CARGO_BIN_EXE_par"));
    // Launcher and the jail's PID 1 of the package's jail, each a par-jail.
    assert!(count(&exes, small) >= 2, "{exes:?}");
    assert_eq!(count(&exes, runtime), 0, "{exes:?}");
}

#[tokio::test]
async fn a_par_jail_from_another_build_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let par = dir.path().join("par");
    std::fs::copy(env!("CARGO_BIN_EXE_par"), &par).unwrap();
    // The real launcher, told it was given a spec by a runtime of another build.
    let stale = dir.path().join("par-jail");
    std::fs::write(
        &stale,
        format!(
            "#!/bin/sh\nPAR_JAIL_BUILD=0000000000000000 exec {} \"$@\"\n",
            env!("CARGO_BIN_EXE_par-jail")
        ),
    )
    .unwrap();
    std::fs::set_permissions(&stale, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let rt = TestRuntime::builder()
        .binary(&par)
        .fixture("kit-minimal")
        .start()
        .await;
    serves(&rt).await;
    let logs = rt
        .wait_log(
            &["failed the probe jail", "launcher build"],
            Duration::from_secs(5),
        )
        .await;
    assert!(logs.contains("__jail"), "{logs}");
    let exes = executables_below(rt.pid());
    assert_eq!(
        count(&exes, Path::new(env!("CARGO_BIN_EXE_par-jail"))),
        0,
        "{exes:?}"
    );
    assert!(count(&exes, &par) >= 2, "{exes:?}");
}
