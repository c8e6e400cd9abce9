//! A cgroup v1 `pids` group per jail where the host lets the runtime write the hierarchy
//! (root on a cgroup v1 host); elsewhere `RLIMIT_NPROC` alone bounds processes.

use std::path::{Path, PathBuf};

use crate::error::JailError;

/// The `pids` cgroup folder the runtime's process lives in, if it may create groups
/// under it.
pub fn writable_pids_parent() -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let own = text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers
            .split(',')
            .any(|c| c == "pids")
            .then(|| path.to_string())
    })?;
    let dir = Path::new("/sys/fs/cgroup/pids").join(own.trim_start_matches('/'));
    let probe = dir.join(format!("par-probe-{}", std::process::id()));
    std::fs::create_dir(&probe).ok()?;
    let usable = probe.join("pids.max").exists();
    let _ = std::fs::remove_dir(&probe);
    usable.then_some(dir)
}

/// A jail's own group; the launcher joins it before forking anything.
pub struct PidsGroup {
    dir: PathBuf,
    parent: PathBuf,
}

impl PidsGroup {
    pub fn join(parent: &Path, max: u64) -> Result<PidsGroup, JailError> {
        let fail = |e: std::io::Error| JailError::new("cgroup pids", e.to_string());
        sweep(parent);
        let dir = parent.join(format!("par-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(fail)?;
        std::fs::write(dir.join("pids.max"), max.to_string()).map_err(fail)?;
        std::fs::write(dir.join("cgroup.procs"), std::process::id().to_string()).map_err(fail)?;
        Ok(PidsGroup {
            dir,
            parent: parent.to_path_buf(),
        })
    }

    /// Moves the launcher back out and removes the (then empty) group.
    pub fn leave(self) {
        let _ = std::fs::write(
            self.parent.join("cgroup.procs"),
            std::process::id().to_string(),
        );
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Removes the groups of launchers that are gone (a SIGKILLed launcher cannot remove its
/// own). Only groups named after a pid that no longer exists, and only when empty (the
/// kernel refuses to remove a group with processes in it).
fn sweep(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("par-")) else {
            continue;
        };
        let gone = pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists();
        if gone {
            let _ = std::fs::remove_dir(entry.path());
        }
    }
}
