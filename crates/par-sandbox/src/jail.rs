//! The jail entry as a library: [`Prepared::new`] computes everything from the spec
//! while the host is still visible (the plan, the seccomp programs); the `enter_*`
//! functions then apply it. The launcher (`par __jail`) calls them in order; a fork
//! server can call the same functions from a forked child.

use std::path::Path;

use seccompiler::BpfProgram;

use crate::error::JailError;
use crate::plan::{host_kind, plan, Step};
use crate::spec::JailSpec;
use crate::{limits, namespaces, rootfs, seccomp};

/// A spec turned into steps, ready to apply.
pub struct Prepared {
    pub spec: JailSpec,
    pub steps: Vec<Step>,
    pub filters: Vec<BpfProgram>,
}

impl Prepared {
    pub fn new(spec: JailSpec) -> Result<Prepared, JailError> {
        spec.validate()
            .map_err(|e| JailError::new("jail spec", e.to_string()))?;
        let steps = plan(&spec, &host_kind);
        let filters = seccomp::filters().map_err(|e| JailError::new("seccomp", e.to_string()))?;
        Ok(Prepared {
            spec,
            steps,
            filters,
        })
    }

    /// Step 1, in the launcher: new user namespace (id maps) and the other namespaces.
    /// The caller must be single-threaded and fork afterwards (PID namespace).
    pub fn enter_namespaces(&self) -> Result<(), JailError> {
        namespaces::enter_user()?;
        namespaces::enter_rest(self.spec.network)?;
        rootfs::make_private()
    }

    /// Step 2, in the forked child (PID 1 of the new namespace): the new root, host
    /// name, limits and the seccomp filter. Afterwards it can no longer mount anything.
    pub fn enter_root(&self) -> Result<(), JailError> {
        rootfs::enter(&self.spec.scratch, &self.steps)?;
        nix::unistd::sethostname("sandbox")
            .map_err(|e| JailError::new("UTS namespace", e.to_string()))?;
        let tmp = self.spec.work_dir.join("tmp");
        std::fs::create_dir_all(&tmp)
            .map_err(|e| JailError::new("work dir", format!("{}: {e}", tmp.display())))?;
        limits::apply(&self.spec.limits)?;
        // Not dumpable: no core files, and /proc/1 stays closed to the package's code.
        nix::sys::prctl::set_dumpable(false).map_err(|e| JailError::new("prctl", e.to_string()))?;
        seccomp::install(&self.filters).map_err(|e| JailError::new("seccomp", e.to_string()))
    }

    /// The work dir inside the jail (cwd of the program).
    pub fn work_dir(&self) -> &Path {
        &self.spec.work_dir
    }
}
