//! A mounted package and the report the management API shows for every source.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use par_manifest::Manifest;

use crate::error::LoadPhase;
use crate::gate::CallGate;
use crate::pool::WorkerPool;

pub struct Package {
    pub manifest: Manifest,
    pub sha256: String,
    pub root: PathBuf,
    pub source: String,
    pub env_key: String,
    pub(crate) pool: Option<WorkerPool>,
    pub(crate) gate: CallGate,
    /// The REST surface or ASGI app, when the package has one.
    pub surface: Option<crate::surface::Surface>,
    /// Input schemas the package declares.
    pub(crate) schemas: crate::schema::Schemas,
    /// Static UI files, when the package has them.
    pub ui: Option<par_surface::UiSite>,
    /// Set once the package is out of the routing table; checked after admission so a
    /// call never lands on a version that is about to stop.
    pub(crate) retired: AtomicBool,
}

impl Package {
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    pub fn version(&self) -> &str {
        &self.manifest.agent_version
    }

    pub fn worker_pids(&self) -> Vec<u32> {
        self.pool.as_ref().map(WorkerPool::pids).unwrap_or_default()
    }

    pub fn inflight(&self) -> usize {
        self.gate.inflight()
    }

    pub(crate) fn mark_retired(&self) {
        // SeqCst pairs with the gate's in-flight counter: either an admitted call sees
        // the flag, or the drain sees the call (no interleaving escapes both).
        self.retired.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_retired(&self) -> bool {
        self.retired.load(Ordering::SeqCst)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PackageState {
    Loading,
    Ready,
    Failed,
    /// Unloaded or replaced: finishing its calls, then stopping.
    Draining,
}

/// What an operator sees about one loaded (or failed) package.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PackageReport {
    pub source: String,
    pub state: PackageState,
    pub name: Option<String>,
    pub version: Option<String>,
    pub sha256: Option<String>,
    pub environment: Option<String>,
    pub workers: Vec<u32>,
    /// The pid of the package's HTTP app process, when it has one.
    pub app_pid: Option<u32>,
    pub restarts: u64,
    pub crashes: u64,
    pub crash_loop: bool,
    pub inflight: usize,
    pub queued: usize,
    pub failed_phase: Option<LoadPhase>,
    pub error: Option<String>,
}

impl PackageReport {
    pub fn loading(source: &str) -> Self {
        PackageReport {
            source: source.to_string(),
            state: PackageState::Loading,
            name: None,
            version: None,
            sha256: None,
            environment: None,
            workers: Vec::new(),
            app_pid: None,
            restarts: 0,
            crashes: 0,
            crash_loop: false,
            inflight: 0,
            queued: 0,
            failed_phase: None,
            error: None,
        }
    }
}
