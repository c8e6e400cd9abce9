//! A mounted package and the report the management API shows for every source.

use std::path::PathBuf;

use par_manifest::Manifest;

use crate::error::LoadPhase;
use crate::pool::WorkerPool;

pub struct Package {
    pub manifest: Manifest,
    pub sha256: String,
    pub root: PathBuf,
    pub source: String,
    pub env_key: String,
    pub(crate) pool: Option<WorkerPool>,
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PackageState {
    Loading,
    Ready,
    Failed,
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
    pub restarts: u64,
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
            restarts: 0,
            failed_phase: None,
            error: None,
        }
    }
}
