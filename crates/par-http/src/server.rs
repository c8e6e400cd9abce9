//! Building the router and serving it until shutdown.

use std::future::Future;

use axum::extract::DefaultBodyLimit;
use axum::extract::Request;
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::{any, delete, get, post, put};
use axum::Router;
use par_core::ErrorCode;
use tokio::net::TcpListener;

use crate::conn::ConnectionLimits;
use crate::error::ApiError;
use crate::request_id;
use crate::routes::{agents, invoke, management, observe, runtime, surface};
use crate::state::AppState;

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/runtime/health", get(runtime::health))
        .route("/runtime/ready", get(runtime::ready))
        .route("/metrics", get(observe::metrics))
        .merge(management_routes(state.clone()))
        .route("/agents", get(agents::list))
        .route("/agents/{id}", get(agents::get).post(surface::app))
        // Invoke bodies have their own limits (`--max-body-bytes`, `--max-upload-bytes`).
        .route(
            "/agents/{id}/invoke",
            post(invoke::invoke).layer(DefaultBodyLimit::disable()),
        )
        // The app's `POST /` with a trailing slash, as without one.
        .route("/agents/{id}/", any(surface::app))
        .route("/agents/{id}/ui", any(surface::ui))
        .route("/agents/{id}/ui/", any(surface::ui))
        .route("/agents/{id}/ui/{*path}", any(surface::ui))
        .route("/agents/{id}/{*path}", any(surface::app))
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

/// `/runtime/...` beyond the probes: admins only (a route layer, so unknown paths stay 404).
fn management_routes(state: AppState) -> Router<AppState> {
    let packages = get(runtime::packages)
        .post(management::load)
        .layer(DefaultBodyLimit::disable());
    Router::new()
        .route("/runtime/packages", packages)
        .route("/runtime/packages/{name}", delete(management::unload))
        .route(
            "/runtime/packages/{name}/{version}",
            delete(management::unload),
        )
        .route("/runtime/loads/{id}", get(management::load_status))
        .route("/runtime/reload", post(management::reload))
        .route("/runtime/shutdown", post(management::shutdown))
        .route("/runtime/agents/{id}/enable", post(management::enable))
        .route("/runtime/agents/{id}/disable", post(management::disable))
        .route("/runtime/usage", get(observe::usage))
        .route("/runtime/log-level", put(observe::set_log_level))
        .route_layer(middleware::from_fn_with_state(
            state,
            crate::auth::require_admin,
        ))
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
        tracing::info!("shutting down: draining in-flight requests");
    };
    // TCP_NODELAY is set on every accepted socket: without it, Nagle's algorithm and
    // delayed ACKs hold small keep-alive responses for ~40 ms.
    crate::conn::serve(listener, app(state), crate::conn::Plain, limits, signal).await;
    runtime.shutdown().await;
    tracing::info!("all workers stopped");
    Ok(())
}
