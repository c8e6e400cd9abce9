//! Entries that cannot load, apps that die or hang, and stopping.

use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use par_surface::{ProxyError, SurfaceError, SurfaceMode, SurfaceProcess};

use crate::harness::{self, call, request};

async fn spawn_err(pkg: &harness::Package, mode: SurfaceMode, entry: &str) -> SurfaceError {
    match SurfaceProcess::spawn(harness::spec(pkg, mode, entry)).await {
        Ok(_) => panic!("{entry} should not start"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn an_entry_that_fails_to_import_is_a_clear_error() {
    let pkg = harness::extract("kit-rest");
    let err = spawn_err(&pkg, SurfaceMode::Asgi, "par_test_broken:app").await;
    let SurfaceError::Entry {
        entry,
        message,
        stderr,
        ..
    } = &err
    else {
        panic!("expected an entry error, got {err}")
    };
    assert_eq!(entry, "par_test_broken:app");
    assert_eq!(
        message,
        "RuntimeError: boom while importing par_test_broken"
    );
    assert!(stderr.contains("Traceback"), "{stderr}");
    assert_eq!(
        err.to_string(),
        "cannot load asgi entry par_test_broken:app: RuntimeError: boom while importing par_test_broken"
    );
}

#[tokio::test]
async fn missing_modules_and_attributes_name_what_is_missing() {
    let pkg = harness::extract("kit-rest");
    let err = spawn_err(&pkg, SurfaceMode::Rest, "src.nosuch:mount").await;
    assert!(
        err.to_string()
            .contains("ModuleNotFoundError: No module named 'src.nosuch'"),
        "{err}"
    );
    let err = spawn_err(&pkg, SurfaceMode::Rest, "src.rest:nope").await;
    assert!(err.to_string().contains("AttributeError"), "{err}");
    let err = spawn_err(&pkg, SurfaceMode::Asgi, "src.rest").await;
    assert!(
        err.to_string().contains("not in the form 'module:attr'"),
        "{err}"
    );
}

#[tokio::test]
async fn a_failing_lifespan_startup_is_reported_with_stderr() {
    let pkg = harness::extract("kit-rest");
    let err = spawn_err(&pkg, SurfaceMode::Asgi, "par_test_lifespan_fail:app").await;
    assert!(matches!(err, SurfaceError::Exited { .. }), "{err}");
    assert!(err.to_string().contains("database unreachable"), "{err}");
}

#[tokio::test]
async fn an_environment_without_uvicorn_says_so() {
    let pkg = harness::extract("sdk-http");
    let mut spec = harness::spec(&pkg, SurfaceMode::Asgi, "src.app:app");
    spec.program.python = harness::bare_python();
    let err = SurfaceProcess::spawn(spec).await.err().expect("no uvicorn");
    assert!(matches!(err, SurfaceError::ServerMissing { .. }), "{err}");
    assert!(
        err.to_string().contains("uvicorn is not installed"),
        "{err}"
    );
}

#[tokio::test]
async fn a_killed_app_gives_502_and_can_be_started_again() {
    let (pkg, app) = harness::rest_app().await;
    assert_eq!(
        call(&app, "GET", "/sleepy?ms=0").await.status(),
        StatusCode::OK
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(app.pid() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // Whatever moment the request lands in, the answer is a 502.
    let err = app
        .proxy(request("GET", "/sleepy", Body::empty()), "/sleepy")
        .await
        .unwrap_err();
    assert_eq!(err.status(), StatusCode::BAD_GATEWAY, "{err}");
    tokio::time::timeout(Duration::from_secs(10), app.exited())
        .await
        .unwrap();
    assert!(!app.is_alive());
    let err = app
        .proxy(request("GET", "/sleepy", Body::empty()), "/sleepy")
        .await
        .unwrap_err();
    assert!(matches!(err, ProxyError::NotRunning), "{err}");
    assert_eq!(err.status(), StatusCode::BAD_GATEWAY);
    assert!(err.app_down());

    let restarted = harness::start(&pkg, SurfaceMode::Rest, "par_test_rest:mount").await;
    assert_eq!(
        call(&restarted, "GET", "/sleepy?ms=0").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_slow_response_head_gives_504_and_the_pool_recovers() {
    let pkg = harness::extract("kit-rest");
    let mut spec = harness::spec(&pkg, SurfaceMode::Rest, "par_test_rest:mount");
    spec.response_timeout = Duration::from_millis(500);
    let app = SurfaceProcess::spawn(spec).await.unwrap();
    let err = app
        .proxy(
            request("GET", "/slow?secs=5", Body::empty()),
            "/slow?secs=5",
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ProxyError::Timeout(_)), "{err}");
    assert_eq!(err.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(
        call(&app, "GET", "/sleepy?ms=0").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_bad_path_is_refused_before_anything_is_sent() {
    let (_pkg, app) = harness::rest_app().await;
    for path in ["relative", "//host/x", "/a b"] {
        let err = app
            .proxy(request("GET", "/", Body::empty()), path)
            .await
            .unwrap_err();
        assert!(matches!(err, ProxyError::InvalidPath(_)), "{path}: {err}");
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn stop_ends_the_process_and_drop_kills_it() {
    let (_pkg, app) = harness::rest_app().await;
    let started = std::time::Instant::now();
    app.stop(Duration::from_secs(10)).await;
    assert!(!app.is_alive());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "SIGTERM was enough"
    );

    let (_pkg, app) = harness::rest_app().await;
    let pid = nix::unistd::Pid::from_raw(app.pid() as i32);
    drop(app);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while nix::sys::signal::kill(pid, None).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "process {pid} survived its handle"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
