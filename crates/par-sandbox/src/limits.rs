//! Resource limits set inside the jail before the program starts.

use nix::sys::resource::{setrlimit, Resource};

use crate::error::JailError;
use crate::spec::Limits;

/// Open files, no core dumps, and processes (`RLIMIT_NPROC` counts per uid in the jail's
/// own user namespace, so it is a per-jail bound — except for a root runtime, where the
/// kernel exempts uid 0 and only the cgroup holds).
pub(crate) fn apply(limits: &Limits) -> Result<(), JailError> {
    let set = |what: Resource, value: u64| {
        // Never above the inherited hard limit: raising it needs privileges on the host.
        let hard = nix::sys::resource::getrlimit(what).map_or(value, |(_, hard)| hard);
        let value = value.min(hard);
        setrlimit(what, value, value)
            .map_err(|e| JailError::new("resource limits", format!("{what:?}: {e}")))
    };
    set(Resource::RLIMIT_NOFILE, limits.open_files)?;
    set(Resource::RLIMIT_CORE, 0)?;
    set(Resource::RLIMIT_NPROC, limits.pids)
}
