//! `par inspect`, `par verify` and settings errors, through the binary.

use std::process::Command;

use crate::harness::fixture;

fn par(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_par"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn inspect_shows_agents_surfaces_and_digest() {
    let path = fixture("kit-minimal");
    let out = par(&["inspect", path.to_str().unwrap(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["manifest"]["name"], "kit-minimal");
    assert_eq!(report["sha256"].as_str().unwrap().len(), 64);
    let agents = report["agents"].as_array().unwrap();
    let secret = agents.iter().find(|a| a["id"] == "mini-secret").unwrap();
    assert_eq!(secret["public"], false);
    assert!(report["warnings"].to_string().contains(".env"));
    let text = par(&["inspect", path.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("mini-secret [private]"), "{text}");
}

#[test]
fn inspect_fails_on_invalid_packages_with_reason() {
    let out = par(&["inspect", fixture("bad-manifest").to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("metadata.version"));
    let out = par(&["inspect", fixture("hostile-zip-slip").to_str().unwrap()]);
    assert!(!out.status.success());
}

#[test]
fn verify_checks_sha256() {
    let path = fixture("kit-minimal");
    let digest = {
        let out = par(&["inspect", path.to_str().unwrap(), "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["sha256"].as_str().unwrap().to_string()
    };
    let ok = par(&["verify", path.to_str().unwrap(), "--sha256", &digest]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let bad = par(&[
        "verify",
        path.to_str().unwrap(),
        "--sha256",
        &"0".repeat(64),
    ]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("expected") && err.contains(&digest), "{err}");
    let hostile = par(&["verify", fixture("hostile-symlink").to_str().unwrap()]);
    assert!(!hostile.status.success());
}

#[test]
fn bad_settings_exit_2_naming_the_setting() {
    let out = Command::new(env!("CARGO_BIN_EXE_par"))
        .args(["serve", "--listen", "0.0.0.0:0"])
        .env("PAR_WORKERS_PER_PACKAGE", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("PAR_AUTH") && err.contains("PAR_WORKERS_PER_PACKAGE"),
        "{err}"
    );
    let out = par(&["serve", "--listen", "not-an-address"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--listen"));
}

#[test]
fn bad_network_settings_exit_2_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("par.toml");
    std::fs::write(
        &config,
        "[packages.kit]\nnetwork = \"open\"\negress = [\"api.example.com\"]\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_par"))
        .args(["serve", "--egress-allow", "*.openai.com:443,127.0.0.1"])
        .arg("--config")
        .arg(&config)
        .env("PAR_NETWORK", "bridge")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "--egress-allow / PAR_EGRESS_ALLOW: '127.0.0.1'",
        "--network / PAR_NETWORK: 'bridge'",
        "[packages.kit] network: 'open'",
        "[packages.kit] egress: 'api.example.com'",
    ] {
        assert!(err.contains(needle), "{needle} not in {err}");
    }
}

#[test]
fn version_and_help() {
    assert!(par(&["--version"]).status.success());
    let help = par(&["--help"]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("serve"));
}

/// `par inspect F | head`: the reader goes away before the command writes.
#[test]
fn commands_exit_quietly_when_their_output_is_closed() {
    let file = fixture("kit-minimal");
    let file = file.to_str().unwrap();
    for args in [
        vec!["inspect", file],
        vec!["inspect", file, "--json"],
        vec!["verify", file],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_par"))
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // the pipe's only reader is gone
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {:?} {stderr}", out.status);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
