//! Building the router and serving it until shutdown.

use std::future::Future;

use axum::extract::Request;
use axum::middleware;
use axum::response::IntoResponse;
use axum::Router;
use par_core::ErrorCode;
use tokio::net::TcpListener;

use crate::conn::ConnectionLimits;
use crate::error::ApiError;
use crate::request_id;
use crate::routes::observe;
use crate::state::AppState;

/// The whole HTTP application, from the route table (`route_table.rs`), which also
/// produces `GET /openapi.json`.
pub fn app(state: AppState) -> Router {
    let mut open = Router::new();
    let mut admin = Router::new();
    for route in crate::route_table::route_table() {
        let path = route.described.path;
        if route.admin {
            admin = admin.route(path, route.handler);
        } else {
            open = open.route(path, route.handler);
        }
    }
    // `/runtime/...` beyond the probes: admins only (a route layer, so unknown paths stay 404).
    let admin = admin.route_layer(middleware::from_fn_with_state(
        state.clone(),
        crate::auth::require_admin,
    ));
    open.merge(admin)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::guard::check,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            observe::count_requests,
        ))
        .with_state(state)
        .layer(middleware::from_fn(request_id::assign))
}

async fn not_found(request: Request) -> impl IntoResponse {
    ApiError::new(
        ErrorCode::NotFound,
        format!("no route for {} {}", request.method(), request.uri().path()),
    )
}

/// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests finish,
/// and stops every worker.
pub async fn serve<F>(
    listener: TcpListener,
    state: AppState,
    limits: ConnectionLimits,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let runtime = state.runtime.clone();
    let draining = state.clone();
    let signal = async move {
        shutdown.await;
        draining.start_draining();
        tracing::info!("shutting down: draining in-flight requests and runs");
    };
    let runs = state.runs.clone();
    // TCP_NODELAY is set on every accepted socket: without it, Nagle's algorithm and
    // delayed ACKs hold small keep-alive responses for ~40 ms.
    crate::conn::serve(listener, app(state), crate::conn::Plain, limits, signal).await;
    finish_draining(runs, &runtime).await;
    Ok(())
}

/// Once no connection is left: waits for the runs in flight, then stops every worker.
/// Runs belong to no connection, so they drain like calls here, within the shutdown grace
/// the caller bounds this with; past it the caller interrupts them (`interrupt_runs`).
pub(crate) async fn finish_draining(runs: Option<par_runs::Runs>, runtime: &par_core::Runtime) {
    if let Some(runs) = runs {
        runs.wait_idle().await;
    }
    runtime.shutdown().await;
    tracing::info!("all workers stopped");
}

/// Ends every run still in flight as `interrupted`: shutdown's grace is over.
pub fn interrupt_runs(state: &AppState) {
    let Some(runs) = &state.runs else { return };
    match runs.interrupt_all() {
        Ok(0) => {}
        Ok(n) => tracing::warn!(runs = n, "runs in flight interrupted by shutdown"),
        Err(e) => tracing::error!(error = %e, "interrupting runs at shutdown"),
    }
}
