//! Real app processes from real fixture packages, in a real uv-built environment.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response};
use http_body_util::BodyExt;
use par_surface::{missing_packages, script, SurfaceMode, SurfaceProcess, SurfaceSpec};
use sha2::{Digest, Sha256};

/// What the kit-rest fixture's requirements.txt pins (its agent.yaml `dependencies`).
const FIXTURE_DEPS: [&str; 1] = ["fastapi==0.165.0"];
const PYTHON: &str = "3.11";

pub(crate) use par_test_venv::workspace_root;

/// A fixture package built by `scripts/build-fixtures.py` with the real kits.
pub(crate) fn fixture(name: &str) -> PathBuf {
    let dir = std::env::var("PAR_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("target/fixtures"));
    let path = dir.join(format!("{name}.apkg"));
    assert!(
        path.is_file(),
        "missing fixture {}: run `python3 scripts/build-fixtures.py --if-stale`",
        path.display()
    );
    path
}

/// An extracted fixture, plus the test apps of `tests/apps/` copied into its root.
pub(crate) struct Package {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
}

pub(crate) fn extract(name: &str) -> Package {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("pkg");
    par_archive::extract_to(&fixture(name), &root, &par_archive::Limits::default()).unwrap();
    let apps = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apps");
    for entry in std::fs::read_dir(apps).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, root.join(path.file_name().unwrap())).unwrap();
    }
    Package { _dir: dir, root }
}

fn cache_dir() -> PathBuf {
    workspace_root().join("target/par-surface-test-venv")
}

/// The requirement list the lead's runtime would install for kit-rest: its own pins plus
/// what the surface host needs and the package lacks.
fn requirements() -> Vec<String> {
    let mut reqs: Vec<String> = FIXTURE_DEPS.iter().map(|s| s.to_string()).collect();
    reqs.extend(
        missing_packages(SurfaceMode::Rest, &FIXTURE_DEPS)
            .into_iter()
            .map(str::to_string),
    );
    reqs
}

/// The interpreter of a venv holding `requirements()`, built once and cached under
/// `target/par-surface-test-venv/<key>` (keyed by the requirement list; a file lock makes
/// concurrent test processes build it once).
pub(crate) fn python() -> PathBuf {
    static PYTHON_PATH: OnceLock<PathBuf> = OnceLock::new();
    PYTHON_PATH
        .get_or_init(|| build_venv(&requirements()))
        .clone()
}

/// An environment with nothing installed.
pub(crate) fn bare_python() -> PathBuf {
    static PYTHON_PATH: OnceLock<PathBuf> = OnceLock::new();
    PYTHON_PATH.get_or_init(|| build_venv(&[])).clone()
}

fn build_venv(reqs: &[String]) -> PathBuf {
    let key = hex::encode(&Sha256::digest(format!("{PYTHON}\n{}", reqs.join("\n")))[..8]);
    par_test_venv::venv_python(&cache_dir(), &key, PYTHON, reqs)
}

pub(crate) fn spec(pkg: &Package, mode: SurfaceMode, entry: &str) -> SurfaceSpec {
    let python = python();
    let venv = python.parent().unwrap().parent().unwrap();
    SurfaceSpec {
        program: par_worker::child::Program {
            label: "test@1.0.0".into(),
            python: python.clone(),
            script: script::materialize(&cache_dir().join("scripts")).unwrap(),
            package_root: pkg.root.clone(),
            env: vec![
                (
                    "PATH".into(),
                    format!("{}/bin:/usr/bin:/bin", venv.display()),
                ),
                ("VIRTUAL_ENV".into(), venv.display().to_string()),
                ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
            ],
            cwd: pkg.root.clone(),
            startup_timeout: Duration::from_secs(60),
            jail: None,
            log_budget: par_worker::log_budget::LogBudget::unlimited("test@1.0.0"),
        },
        mode,
        entry: entry.into(),
        forwarded_prefix: "/agents/test".into(),
        response_timeout: Duration::from_secs(30),
        websocket_idle_timeout: par_surface::DEFAULT_WEBSOCKET_IDLE_TIMEOUT,
    }
}

pub(crate) async fn start(pkg: &Package, mode: SurfaceMode, entry: &str) -> SurfaceProcess {
    SurfaceProcess::spawn(spec(pkg, mode, entry)).await.unwrap()
}

/// The kit-rest fixture with the test REST module mounted.
pub(crate) async fn rest_app() -> (Package, SurfaceProcess) {
    let pkg = extract("kit-rest");
    let app = start(&pkg, SurfaceMode::Rest, "par_test_rest:mount").await;
    (pkg, app)
}

pub(crate) fn request(method: &str, uri: &str, body: impl Into<Body>) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .body(body.into())
        .unwrap()
}

/// Proxies `method uri` (the URI is also the path given to the app).
pub(crate) async fn call(app: &SurfaceProcess, method: &str, uri: &str) -> Response<Body> {
    app.proxy(request(method, uri, Body::empty()), uri)
        .await
        .unwrap()
}

pub(crate) async fn bytes(response: Response<Body>) -> bytes::Bytes {
    response.into_body().collect().await.unwrap().to_bytes()
}

pub(crate) async fn json(response: Response<Body>) -> serde_json::Value {
    let body = bytes(response).await;
    serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&body)))
}

pub(crate) fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}
