//! How a package's processes are jailed (`--sandbox strict`): the jail template built
//! from the package's paths and the runtime's sandbox settings, and what the package
//! report says about it. The jail itself is `par-sandbox`'s.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use par_sandbox::{JailSpec, Limits, Network};
use par_worker::child::{EgressSink, Jail};

/// The runtime's sandbox settings; `None` in [`crate::RuntimeConfig::sandbox`] is `off`.
#[derive(Clone)]
pub struct SandboxConfig {
    /// The binary run as `LAUNCHER __jail` (the runtime's own executable).
    pub launcher: PathBuf,
    /// The default network of every package.
    pub network: Network,
    /// Operator overrides by package name (`[packages.<name>] network`).
    pub package_networks: std::collections::BTreeMap<String, Network>,
    /// What each package's egress is narrowed to (`[packages.<name>] egress`), as text.
    pub package_egress: std::collections::BTreeMap<String, Vec<String>>,
    pub limits: Limits,
    /// Operator overrides of the limits by package name (`[packages.<name>]`).
    pub package_limits: std::collections::BTreeMap<String, PackageLimits>,
    /// A cgroup v1 `pids` folder the runtime may create groups in (else rlimits).
    pub pids_cgroup: Option<PathBuf>,
    /// Every cgroup hierarchy jails get groups in (none: rlimits and the runtime's own
    /// memory accounting).
    pub cgroups: par_sandbox::cgroup::CgroupParents,
    /// Receives each jail's egress listener.
    pub egress: Arc<dyn EgressSink>,
}

impl std::fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("launcher", &self.launcher)
            .field("network", &self.network)
            .field("limits", &self.limits)
            .field("package_limits", &self.package_limits)
            .field("cgroups", &self.cgroups)
            .finish_non_exhaustive()
    }
}

/// What `GET /runtime/packages` says about a package's sandbox.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SandboxReport {
    pub mode: &'static str,
    pub network: &'static str,
    /// The hosts the package's egress is narrowed to (empty: any public host).
    pub egress: Vec<String>,
    /// Each limit with how it is enforced.
    pub limits: serde_json::Value,
    /// The cgroup hierarchy the package's jails are placed in (`v2`, `v1`; `None`: no
    /// cgroups, limits by rlimits and the runtime's accounting).
    pub cgroup: Option<&'static str>,
    /// The seccomp filter the jail installs (`None` under `off`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<par_sandbox::seccomp::FilterSummary>,
    /// Set under `off`: the package runs unconfined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

pub const OFF_WARNING: &str =
    "sandbox off: this package runs as the runtime's user and can read other packages, settings and keys";

impl Default for SandboxReport {
    fn default() -> Self {
        SandboxReport {
            mode: "off",
            network: "host",
            egress: Vec::new(),
            limits: serde_json::json!({}),
            cgroup: None,
            seccomp: None,
            warning: Some(OFF_WARNING.into()),
        }
    }
}

/// What the operator set for one package's limits (`[packages.<name>]`); unset fields
/// are the runtime's. Only the operator sets these: nothing in a package can.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PackageLimits {
    pub pids: Option<u64>,
    pub disk_mb: Option<u64>,
    pub open_files: Option<u64>,
    /// Per worker process tree, as `--worker-memory-limit`.
    pub memory_bytes: Option<u64>,
}

impl SandboxConfig {
    /// The limits of package `name`: its overrides, else the runtime's
    /// (`memory_default`: the runtime's per-worker memory limit).
    pub fn limits_of(&self, name: &str, memory_default: Option<u64>) -> Limits {
        let own = self.package_limits.get(name).copied().unwrap_or_default();
        Limits {
            pids: own.pids.unwrap_or(self.limits.pids),
            disk_mb: own.disk_mb.unwrap_or(self.limits.disk_mb),
            open_files: own.open_files.unwrap_or(self.limits.open_files),
            memory_bytes: own.memory_bytes.or(memory_default),
        }
    }

    /// The network of package `name`: its override, else the default.
    pub fn network_of(&self, name: &str) -> Network {
        self.package_networks
            .get(name)
            .copied()
            .unwrap_or(self.network)
    }
}

/// Paths of one package that its jail shows.
pub struct PackagePaths<'a> {
    /// The package name (its network and egress list are looked up by it).
    pub name: &'a str,
    pub label: String,
    pub root: &'a Path,
    pub venv: &'a Path,
    pub python: &'a Path,
    pub work: &'a Path,
    pub uploads: &'a Path,
    pub scratch: PathBuf,
    /// The runtime's per-worker memory limit (a package override replaces it).
    pub memory_limit: Option<u64>,
}

/// The jail template for a package's processes.
pub fn jail(config: &SandboxConfig, paths: &PackagePaths<'_>) -> Arc<Jail> {
    let spec = JailSpec {
        label: paths.label.clone(),
        package_root: paths.root.to_path_buf(),
        env_dir: paths.venv.to_path_buf(),
        interpreter_prefixes: interpreter_prefixes(paths.venv, paths.python),
        ro_binds: vec![paths.uploads.to_path_buf()],
        rw_binds: Vec::new(),
        work_dir: paths.work.to_path_buf(),
        scratch: paths.scratch.clone(),
        network: config.network_of(paths.name),
        limits: config.limits_of(paths.name, paths.memory_limit),
        pids_cgroup: config.pids_cgroup.clone(),
        cgroups: config.cgroups.clone(),
        exec: Default::default(),
    };
    Arc::new(Jail {
        launcher: config.launcher.clone(),
        spec,
        egress: config.egress.clone(),
    })
}

/// The memory limit of package `name`'s workers: the operator's override under
/// `strict`, else the runtime's.
pub fn memory_limit_of(
    config: Option<&SandboxConfig>,
    name: &str,
    default: Option<u64>,
) -> Option<u64> {
    config.map_or(default, |c| c.limits_of(name, default).memory_bytes)
}

/// The report of package `name` under `config` (`None`: off).
pub fn report(
    config: Option<&SandboxConfig>,
    name: &str,
    memory_limit: Option<u64>,
) -> SandboxReport {
    let Some(config) = config else {
        return SandboxReport::default();
    };
    let limits = config.limits_of(name, memory_limit);
    let cgroups = &config.cgroups;
    let pids_by = if cgroups.bounds_pids() {
        "cgroup"
    } else {
        "rlimit"
    };
    let memory_by = match limits.memory_bytes {
        None => "none",
        Some(_) if cgroups.bounds_memory() => "cgroup",
        Some(_) => "runtime",
    };
    SandboxReport {
        mode: "strict",
        network: config.network_of(name).as_str(),
        egress: config.package_egress.get(name).cloned().unwrap_or_default(),
        limits: serde_json::json!({
            "pids": {"max": limits.pids, "by": pids_by},
            "disk_mb": {"max": limits.disk_mb, "by": "tmpfs"},
            "open_files": {"max": limits.open_files, "by": "rlimit"},
            "core_dumps": {"max": 0, "by": "rlimit"},
            "memory_bytes": {"max": limits.memory_bytes, "by": memory_by},
        }),
        cgroup: cgroups.version(),
        seccomp: Some(par_sandbox::seccomp::summary()),
        warning: None,
    }
}

/// The interpreter's real prefix: `home` in the environment's `pyvenv.cfg` (its `bin`
/// folder), else where the environment's `python` symlink leads. Only that prefix is
/// bound, never the home folder around it (e.g. `/root/.pyenv/versions/3.11.7`).
fn interpreter_prefixes(venv: &Path, python: &Path) -> Vec<PathBuf> {
    let from_cfg = std::fs::read_to_string(venv.join("pyvenv.cfg"))
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                let (key, value) = l.split_once('=')?;
                (key.trim() == "home").then(|| PathBuf::from(value.trim()))
            })
        });
    let bin = from_cfg
        .or_else(|| python.canonicalize().ok()?.parent().map(Path::to_path_buf))
        .and_then(|bin| bin.canonicalize().ok());
    let mut prefixes: Vec<PathBuf> = bin
        .and_then(|b| b.parent().map(Path::to_path_buf))
        .into_iter()
        .collect();
    // The binary itself may live elsewhere still (a symlinked `bin`).
    if let Some(real) = python
        .canonicalize()
        .ok()
        .and_then(|p| Some(p.parent()?.parent()?.to_path_buf()))
    {
        if !prefixes.iter().any(|p| real.starts_with(p)) {
            prefixes.push(real);
        }
    }
    prefixes.retain(|p| p != Path::new("/"));
    prefixes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_comes_from_pyvenv_cfg_and_the_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("home/.pyenv/versions/3.11.7");
        std::fs::create_dir_all(prefix.join("bin")).unwrap();
        std::fs::write(prefix.join("bin/python3.11"), "").unwrap();
        let venv = dir.path().join("env");
        std::fs::create_dir_all(venv.join("bin")).unwrap();
        std::os::unix::fs::symlink(prefix.join("bin/python3.11"), venv.join("bin/python")).unwrap();
        std::fs::write(
            venv.join("pyvenv.cfg"),
            format!(
                "home = {}\nversion_info = 3.11.7\n",
                prefix.join("bin").display()
            ),
        )
        .unwrap();
        let found = interpreter_prefixes(&venv, &venv.join("bin/python"));
        assert_eq!(found, vec![prefix.canonicalize().unwrap()]);
    }

    #[test]
    fn off_reports_a_warning() {
        let report = report(None, "p", None);
        assert_eq!(report.mode, "off");
        assert!(report.warning.is_some());
    }
}
