//! Test support for the crates whose tests run real Python (`par-surface`, `par-egress`):
//! the workspace root, the uv binary, and a virtual environment built once per machine.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root exists")
}

/// `PAR_UV`, else the repository's own `.par-tools/bin/uv`, else `uv` on `PATH`.
pub fn uv() -> PathBuf {
    if let Some(uv) = std::env::var_os("PAR_UV") {
        return uv.into();
    }
    let local = workspace_root().join(".par-tools/bin/uv");
    if local.exists() {
        local
    } else {
        "uv".into()
    }
}

/// The interpreter of a virtual environment of CPython `python` holding `reqs`, built
/// once at `cache/<key>` (a file lock makes concurrent test processes build it once; it
/// is built in a staging folder and renamed into place) and reused afterwards.
pub fn venv_python(cache: &Path, key: &str, python: &str, reqs: &[String]) -> PathBuf {
    let venv = cache.join(key);
    let interpreter = venv.join("bin/python");
    if interpreter.exists() {
        return interpreter;
    }
    std::fs::create_dir_all(cache).unwrap();
    let lock = std::fs::File::create(cache.join(format!("{key}.lock"))).unwrap();
    lock.lock().unwrap();
    if interpreter.exists() {
        return interpreter;
    }
    let staging = tempfile::Builder::new()
        .prefix(".staging-")
        .tempdir_in(cache)
        .unwrap();
    let tmp = staging.path().join("venv");
    let mut args: Vec<OsString> = ["venv", "--quiet", "--relocatable", "--python", python]
        .map(OsString::from)
        .to_vec();
    args.push(tmp.clone().into());
    run_uv(args);
    if !reqs.is_empty() {
        let mut args: Vec<OsString> = ["pip", "install", "--quiet", "--python"]
            .map(OsString::from)
            .to_vec();
        args.push(tmp.join("bin/python").into());
        args.extend(reqs.iter().map(OsString::from));
        run_uv(args);
    }
    std::fs::rename(&tmp, &venv).unwrap();
    interpreter
}

fn run_uv(args: Vec<OsString>) {
    let output = Command::new(uv())
        .args(&args)
        .env("UV_NO_CONFIG", "1")
        .env("UV_PYTHON_DOWNLOADS", "never")
        .env_remove("VIRTUAL_ENV")
        .env_remove("PYTHONPATH")
        .output()
        .expect("uv runs (set PAR_UV)");
    assert!(
        output.status.success(),
        "uv {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
