//! The real A2A and MCP clients (a2a-sdk 1.3.0, mcp 2.3.0 from PyPI), run as Python
//! scripts from `clients/`. `scripts/install-protocol-clients.sh` installs them (the test
//! command runs it and exports `PAR_PROTOCOL_PYTHON`); without the variable the test runs
//! the script itself.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use crate::harness::workspace_root;

fn python() -> &'static PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        if let Ok(path) = std::env::var("PAR_PROTOCOL_PYTHON") {
            return path.into();
        }
        let script = workspace_root().join("scripts/install-protocol-clients.sh");
        let out = std::process::Command::new("bash")
            .arg(&script)
            .output()
            .expect("run install-protocol-clients.sh");
        assert!(
            out.status.success(),
            "installing the protocol clients failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

/// Runs `clients/{script}` with `args`; its stdout parsed as one JSON value.
pub(crate) async fn run(script: &str, args: &[&str]) -> Value {
    let path = workspace_root()
        .join("crates/par-cli/tests/e2e/clients")
        .join(script);
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(python())
            .arg(&path)
            .args(args)
            .output(),
    )
    .await
    .expect("the client finished")
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{script}: {e}: {stdout}"))
}
