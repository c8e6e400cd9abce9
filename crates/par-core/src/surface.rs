//! A package's HTTP app (REST surface or pixell-sdk ASGI app) kept running: a dead app
//! process is started again on the next request that needs it.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use axum::body::Body;
use axum::http::{Request, Response};
use par_manifest::Manifest;
use par_surface::{ProxyError, SurfaceError, SurfaceMode, SurfaceProcess, SurfaceSpec};

pub struct Surface {
    spec: SurfaceSpec,
    process: ArcSwapOption<SurfaceProcess>,
    respawn: tokio::sync::Mutex<()>,
}

/// Which app a manifest asks for: a pixell-sdk ASGI app wins over a kit REST `mount`.
pub(crate) fn surface_of(manifest: &Manifest) -> Option<(SurfaceMode, String)> {
    if let Some(app) = &manifest.http_server {
        return Some((SurfaceMode::Asgi, app.to_string()));
    }
    manifest
        .rest_entry
        .as_ref()
        .map(|entry| (SurfaceMode::Rest, entry.to_string()))
}

impl Surface {
    pub async fn start(spec: SurfaceSpec) -> Result<Surface, SurfaceError> {
        let process = SurfaceProcess::spawn(spec.clone()).await?;
        Ok(Surface {
            spec,
            process: ArcSwapOption::from_pointee(process),
            respawn: tokio::sync::Mutex::new(()),
        })
    }

    pub async fn proxy(
        &self,
        request: Request<Body>,
        path: &str,
    ) -> Result<Response<Body>, ProxyError> {
        let process = self.live().await.ok_or(ProxyError::NotRunning)?;
        let result = process.proxy(request, path).await;
        if let Err(e) = &result {
            if e.app_down() {
                tracing::warn!(package = %self.spec.program.label, error = %e, "http app unavailable");
            }
        }
        result
    }

    /// The running process, starting a new one if the last one died.
    async fn live(&self) -> Option<Arc<SurfaceProcess>> {
        if let Some(process) = self.process.load_full().filter(|p| p.is_alive()) {
            return Some(process);
        }
        let _guard = self.respawn.lock().await;
        if let Some(process) = self.process.load_full().filter(|p| p.is_alive()) {
            return Some(process);
        }
        match SurfaceProcess::spawn(self.spec.clone()).await {
            Ok(process) => {
                tracing::info!(package = %self.spec.program.label, pid = process.pid(), "http app restarted");
                let process = Arc::new(process);
                self.process.store(Some(process.clone()));
                Some(process)
            }
            Err(e) => {
                tracing::error!(package = %self.spec.program.label, error = %e, "http app restart failed");
                None
            }
        }
    }

    /// Starts the app process if none is running (an idle package waking up).
    pub(crate) async fn wake(&self) -> Result<(), String> {
        match self.live().await {
            Some(_) => Ok(()),
            None => Err(format!(
                "the http app of '{}' did not start",
                self.spec.program.label
            )),
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.process
            .load_full()
            .filter(|p| p.is_alive())
            .map(|p| p.pid())
    }

    pub async fn stop(&self, grace: Duration) {
        if let Some(process) = self.process.swap(None) {
            process.stop(grace).await;
        }
    }
}
