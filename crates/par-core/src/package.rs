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
    /// How the package's processes are jailed, for its report.
    pub sandbox: crate::sandbox::SandboxReport,
    /// Set once the package is out of the routing table; checked after admission so a
    /// call never lands on a version that is about to stop.
    pub(crate) retired: AtomicBool,
    /// When the package last served, and whether its processes are stopped for now.
    pub(crate) idle: crate::idle::Idle,
}

impl Package {
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    pub fn version(&self) -> &str {
        &self.manifest.agent_version
    }

    /// Idle for its timeout: its processes are stopped until the next call.
    pub fn is_idle(&self) -> bool {
        self.idle.is_asleep()
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

    /// A package made from an `agent.yaml` text alone, for tests of the parts that only
    /// read its manifest and digest: no workers, surface, UI or schemas.
    #[cfg(test)]
    pub(crate) fn for_tests(manifest_yaml: &str, sha256: &str) -> Package {
        let manifest = par_manifest::parse_manifest(
            manifest_yaml.as_bytes(),
            &par_manifest::ParseLimits::default(),
        )
        .expect("a valid test manifest");
        Package {
            manifest,
            sha256: sha256.to_string(),
            root: PathBuf::new(),
            source: format!("test:{sha256}"),
            env_key: String::new(),
            pool: None,
            gate: CallGate::new(1, 0),
            surface: None,
            schemas: Default::default(),
            ui: None,
            sandbox: Default::default(),
            retired: AtomicBool::new(false),
            idle: crate::idle::Idle::new(None),
        }
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
    /// Mounted and routable, its processes stopped after `--idle-timeout` without calls
    /// (or right after its load, with `--idle-timeout` set); the next call starts them.
    Idle,
}

/// What an operator sees about one loaded (or failed) package.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PackageReport {
    pub source: String,
    pub state: PackageState,
    /// The step a loading package is in (`fetch` until the file is here), so clients can
    /// show progress; absent once it is ready or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<LoadPhase>,
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
    /// The package's jail (mode, network, limits and how each is enforced).
    pub sandbox: Option<crate::sandbox::SandboxReport>,
}

impl PackageReport {
    pub fn loading(source: &str) -> Self {
        PackageReport {
            source: source.to_string(),
            state: PackageState::Loading,
            phase: Some(LoadPhase::Fetch),
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
            sandbox: None,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use super::*;

    /// An `agent.yaml` for package `name` at `version` with sub-agents `(name, public)`.
    pub(crate) fn manifest_yaml(name: &str, version: &str, subs: &[(&str, bool)]) -> String {
        let mut yaml = format!(
            "name: {name}\ndisplay_name: Test\ndescription: {name} for tests\nauthor: PAR Tests\n\
             license: MIT\nentrypoint: src.main:handler\ncapabilities: [echo]\n\
             metadata:\n  version: {version}\n"
        );
        if !subs.is_empty() {
            yaml.push_str("  sub_agents:\n");
            for (sub, public) in subs {
                yaml.push_str(&format!(
                    "    - name: {sub}\n      description: {sub} helper\n      \
                     capabilities: [{sub}-cap]\n      public: {public}\n"
                ));
            }
        }
        yaml
    }

    /// Package `name` at `version`, whose bytes are called `sha`.
    pub(crate) fn package(name: &str, version: &str, sha: &str) -> Arc<Package> {
        package_with_subs(name, version, sha, &[])
    }

    pub(crate) fn package_with_subs(
        name: &str,
        version: &str,
        sha: &str,
        subs: &[(&str, bool)],
    ) -> Arc<Package> {
        Arc::new(Package::for_tests(&manifest_yaml(name, version, subs), sha))
    }

    #[test]
    fn a_test_package_takes_its_name_and_version_from_the_manifest() {
        let p = package_with_subs("echo", "1.2.3", "abc", &[("helper", false)]);
        assert_eq!(p.name(), "echo");
        assert_eq!(p.version(), "1.2.3");
        assert_eq!(p.sha256, "abc");
        assert_eq!(p.manifest.sub_agents.len(), 1);
        assert!(p.worker_pids().is_empty(), "no pool, no workers");
        assert_eq!(p.inflight(), 0);
    }

    #[test]
    fn a_package_is_retired_only_once_marked() {
        let p = package("echo", "1.0.0", "abc");
        assert!(!p.is_retired());
        p.mark_retired();
        assert!(p.is_retired());
    }

    #[test]
    fn a_loading_report_names_only_its_source() {
        let r = PackageReport::loading("/pkgs/a.apkg");
        assert_eq!(r.source, "/pkgs/a.apkg");
        assert_eq!(r.state, PackageState::Loading);
        assert!(r.name.is_none() && r.version.is_none() && r.sha256.is_none());
        assert!(r.error.is_none() && r.failed_phase.is_none());
        assert_eq!(
            serde_json::to_value(&r).unwrap()["state"],
            serde_json::json!("loading")
        );
    }
}
