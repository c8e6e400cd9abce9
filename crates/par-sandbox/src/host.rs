//! What the host offers for `strict`: found by running the launcher once on a tiny jail
//! (the only reliable test — sysctls, container runtimes and LSMs all have a say), plus
//! whether the runtime may create cgroups.

use std::path::{Path, PathBuf};

use crate::error::MARKER;
use crate::spec::{Exec, JailSpec, Limits, Network};

/// What strict jails will use on this host.
#[derive(Debug, Clone)]
pub struct HostSupport {
    /// A cgroup v1 `pids` folder the runtime may create groups in.
    pub pids_cgroup: Option<PathBuf>,
    /// Every hierarchy jails can get groups in (v2 when delegated, else v1's).
    pub cgroups: crate::cgroup::CgroupParents,
}

impl HostSupport {
    /// How processes are bounded, for package reports.
    pub fn pids_limit_kind(&self) -> &'static str {
        if self.cgroups.bounds_pids() {
            "cgroup"
        } else {
            "rlimit"
        }
    }
}

/// Runs a probe jail with `launcher` under a temporary folder in `scratch_parent`.
/// `Err` names the missing facility.
pub fn probe(launcher: &Path, scratch_parent: &Path) -> Result<HostSupport, String> {
    std::fs::create_dir_all(scratch_parent)
        .map_err(|e| format!("{}: {e}", scratch_parent.display()))?;
    let dir = tempfile::Builder::new()
        .prefix("probe-")
        .tempdir_in(scratch_parent)
        .map_err(|e| format!("{}: {e}", scratch_parent.display()))?;
    let cgroups = crate::cgroup::CgroupParents::detect();
    let support = HostSupport {
        pids_cgroup: cgroups.v1_pids.clone(),
        cgroups,
    };
    let spec = probe_spec(dir.path(), &support);
    for sub in ["pkg", "work", "root"] {
        std::fs::create_dir_all(dir.path().join(sub)).map_err(|e| e.to_string())?;
    }
    let (mut command, _) = crate::command::command(launcher, &spec).map_err(|e| e.to_string())?;
    let output = command
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot start {}: {e}", launcher.display()))?;
    if output.status.success() {
        return Ok(support);
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let reason = stderr
        .lines()
        .find_map(|l| l.strip_prefix(MARKER))
        .map(str::to_string)
        .unwrap_or_else(|| format!("probe jail ended with {}: {stderr}", output.status));
    Err(reason)
}

fn probe_spec(dir: &Path, support: &HostSupport) -> JailSpec {
    let program = ["/usr/bin/true", "/bin/true"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("/bin/true");
    JailSpec {
        label: "probe".into(),
        package_root: dir.join("pkg"),
        env_dir: dir.join("pkg"),
        work_dir: dir.join("work"),
        scratch: dir.join("root"),
        network: Network::None,
        limits: Limits::default(),
        pids_cgroup: support.pids_cgroup.clone(),
        cgroups: support.cgroups.clone(),
        exec: Exec {
            program: program.into(),
            ..Exec::default()
        },
        ..JailSpec::default()
    }
}
