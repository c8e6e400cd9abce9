//! The jail spec: everything the launcher needs to build one jail, as plain data the
//! runtime serialises and the launcher (or a future fork server) reads back.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The uid and gid a jailed process has inside its user namespace.
pub const SANDBOX_ID: u32 = 1000;
/// The sandbox user's name in the generated `/etc/passwd`.
pub const SANDBOX_USER: &str = "agent";

/// What network a jail gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// A network namespace with loopback only.
    None,
    /// Loopback only, plus a listener inside the jail handed to the runtime's egress proxy.
    #[default]
    Egress,
    /// The host's network (no network namespace): the operator's opt-in.
    Host,
}

impl Network {
    pub fn as_str(self) -> &'static str {
        match self {
            Network::None => "none",
            Network::Egress => "egress",
            Network::Host => "host",
        }
    }

    pub fn parse(text: &str) -> Option<Network> {
        match text {
            "none" => Some(Network::None),
            "egress" => Some(Network::Egress),
            "host" => Some(Network::Host),
            _ => None,
        }
    }
}

/// Resource limits of one jail.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Limits {
    /// Processes and threads (cgroup `pids.max` where delegated, else `RLIMIT_NPROC`).
    pub pids: u64,
    /// Size of the private work dir (a tmpfs), in MiB.
    pub disk_mb: u64,
    /// `RLIMIT_NOFILE`.
    pub open_files: u64,
    /// The jail's memory (cgroup `memory.max` where delegated; elsewhere the runtime's
    /// own accounting holds it). `None`: unbounded.
    #[serde(default)]
    pub memory_bytes: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            pids: 256,
            disk_mb: 1024,
            open_files: 4096,
            memory_bytes: None,
        }
    }
}

/// The program run inside the jail, with paths as the jail sees them (the same as the
/// host's: everything is bound at its own path).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Exec {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// The complete environment: nothing of the launcher's is inherited.
    pub env: Vec<(String, String)>,
}

/// One jail. Paths are absolute host paths; each appears at the same path inside.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct JailSpec {
    /// `name@version`, for messages.
    pub label: String,
    /// The package's extracted files (read-only).
    pub package_root: PathBuf,
    /// The package's virtual environment (read-only).
    pub env_dir: PathBuf,
    /// The interpreter's real prefix(es), e.g. `/root/.pyenv/versions/3.11.7` (read-only).
    pub interpreter_prefixes: Vec<PathBuf>,
    /// More read-only binds: the runtime's scripts, per-package upload folders.
    pub ro_binds: Vec<PathBuf>,
    /// Read-write binds: the runtime↔process socket folder.
    pub rw_binds: Vec<PathBuf>,
    /// The private work dir (a fresh tmpfs): `HOME`, cwd; `tmp` inside it is `TMPDIR`.
    pub work_dir: PathBuf,
    /// A runtime-owned empty directory the jail's new root is assembled on.
    pub scratch: PathBuf,
    pub network: Network,
    pub limits: Limits,
    /// Use this cgroup v1 `pids` hierarchy folder (a parent the runtime may write);
    /// `None`: `RLIMIT_NPROC` alone.
    pub pids_cgroup: Option<PathBuf>,
    /// The cgroup hierarchies to make the jail's groups in (see [`crate::cgroup`]);
    /// `pids_cgroup` is used when this names none.
    #[serde(default)]
    pub cgroups: crate::cgroup::CgroupParents,
    pub exec: Exec,
}

/// A spec the launcher refuses to act on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("jail path {0} must be absolute")]
    Relative(PathBuf),
    #[error("jail path {0} must not contain '..' or be '/'")]
    Unsafe(PathBuf),
    #[error("jail limit {0} must be at least {1}")]
    TooSmall(&'static str, u64),
    #[error("jail program is not set")]
    NoProgram,
}

impl JailSpec {
    /// Where the jail's groups go: [`JailSpec::cgroups`], else the v1 `pids_cgroup`.
    pub fn cgroup_parents(&self) -> crate::cgroup::CgroupParents {
        let mut parents = self.cgroups.clone();
        if parents.version().is_none() {
            parents.v1_pids = self.pids_cgroup.clone();
        }
        parents
    }

    /// Every path absolute and not `/` (binding `/` would undo the jail), limits sane.
    pub fn validate(&self) -> Result<(), SpecError> {
        let paths = [
            &self.package_root,
            &self.env_dir,
            &self.work_dir,
            &self.scratch,
        ]
        .into_iter()
        .chain(&self.interpreter_prefixes)
        .chain(&self.ro_binds)
        .chain(&self.rw_binds);
        for path in paths {
            check_path(path)?;
        }
        if self.exec.program.as_os_str().is_empty() {
            return Err(SpecError::NoProgram);
        }
        check_path(&self.exec.program)?;
        let limits = [
            ("pids", self.limits.pids, 8),
            ("disk_mb", self.limits.disk_mb, 1),
            ("open_files", self.limits.open_files, 64),
        ];
        for (name, value, min) in limits {
            if value < min {
                return Err(SpecError::TooSmall(name, min));
            }
        }
        Ok(())
    }
}

fn check_path(path: &Path) -> Result<(), SpecError> {
    if !path.is_absolute() {
        return Err(SpecError::Relative(path.to_path_buf()));
    }
    let parent_dir = path
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir));
    if parent_dir || path == Path::new("/") {
        return Err(SpecError::Unsafe(path.to_path_buf()));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) fn sample() -> JailSpec {
    JailSpec {
        label: "demo@1.0".into(),
        package_root: "/cache/packages/abc".into(),
        env_dir: "/cache/envs/v1-x".into(),
        interpreter_prefixes: vec!["/root/.pyenv/versions/3.11.7".into()],
        ro_binds: vec!["/cache/worker".into()],
        rw_binds: vec!["/tmp/par-w1".into()],
        work_dir: "/cache/work/demo".into(),
        scratch: "/cache/jail".into(),
        network: Network::Egress,
        limits: Limits::default(),
        pids_cgroup: None,
        cgroups: Default::default(),
        exec: Exec {
            program: "/cache/envs/v1-x/bin/python".into(),
            args: vec!["-u".into(), "/cache/worker/par_worker.py".into()],
            env: vec![("A".into(), "1".into())],
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_spec_is_valid_and_round_trips() {
        let spec = sample();
        spec.validate().unwrap();
        let text = serde_json::to_string(&spec).unwrap();
        let back: JailSpec = serde_json::from_str(&text).unwrap();
        assert_eq!(back.exec.args, spec.exec.args);
        assert_eq!(back.network, Network::Egress);
    }

    #[test]
    fn unsafe_paths_and_limits_are_refused() {
        let mut spec = sample();
        spec.ro_binds.push("/".into());
        assert_eq!(spec.validate(), Err(SpecError::Unsafe("/".into())));
        let mut spec = sample();
        spec.rw_binds.push("relative/dir".into());
        assert!(matches!(spec.validate(), Err(SpecError::Relative(_))));
        let mut spec = sample();
        spec.package_root = "/cache/../etc".into();
        assert!(matches!(spec.validate(), Err(SpecError::Unsafe(_))));
        let mut spec = sample();
        spec.limits.pids = 1;
        assert_eq!(spec.validate(), Err(SpecError::TooSmall("pids", 8)));
    }

    #[test]
    fn network_names() {
        for n in [Network::None, Network::Egress, Network::Host] {
            assert_eq!(Network::parse(n.as_str()), Some(n));
        }
        assert_eq!(Network::parse("bridge"), None);
    }
}
