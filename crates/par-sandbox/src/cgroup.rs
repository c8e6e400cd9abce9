//! A cgroup per jail where the host lets the runtime make them, holding the jail's
//! processes to `pids.max` and its memory limit; elsewhere `RLIMIT_NPROC` and the
//! runtime's own memory accounting (RSS of the worker's process tree) do.
//!
//! * **cgroup v2**, when the runtime's own group offers `memory` and `pids` (delegated to
//!   it: root on a v2 host, a systemd `Delegate=yes` unit, a container with a private
//!   cgroup namespace). The kernel lets a group hand controllers to children only when it
//!   holds no processes itself, so the runtime first moves into a leaf of its own
//!   (`par-runtime`) and then enables the controllers; each jail gets a sibling group
//!   `par-<launcher pid>` with `memory.max`, `memory.swap.max = 0` and `pids.max`.
//! * **cgroup v1**, per controller (`pids`, `memory`) where the runtime may create groups
//!   under its own (root on a v1 or hybrid host): `pids.max`,
//!   `memory.limit_in_bytes` (and `memory.memsw.limit_in_bytes` where swap accounting
//!   is on).
//!
//! The launcher joins its groups before it forks anything, so every process of the jail
//! is inside from the start.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::JailError;

/// The leaf the runtime moves into on a v2 host before enabling controllers.
pub const V2_RUNTIME_LEAF: &str = "par-runtime";

/// Where jail groups are made, per hierarchy; all `None`: no cgroups (rlimits only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupParents {
    /// A cgroup v2 folder whose children get `memory` and `pids`.
    pub v2: Option<PathBuf>,
    /// A cgroup v1 `pids` folder the runtime may create groups in.
    pub v1_pids: Option<PathBuf>,
    /// A cgroup v1 `memory` folder the runtime may create groups in.
    pub v1_memory: Option<PathBuf>,
}

impl CgroupParents {
    /// What this host allows: v2 when delegated (the runtime may move into a leaf of
    /// its own group for that), else what v1 offers.
    pub fn detect() -> CgroupParents {
        if let Some(v2) = delegated_v2() {
            return CgroupParents {
                v2: Some(v2),
                ..CgroupParents::default()
            };
        }
        CgroupParents {
            v2: None,
            v1_pids: writable_v1_parent("pids", "pids.max"),
            v1_memory: writable_v1_parent("memory", "memory.limit_in_bytes"),
        }
    }

    /// `"v2"`, `"v1"` or `None`: the hierarchy jails are placed in.
    pub fn version(&self) -> Option<&'static str> {
        if self.v2.is_some() {
            Some("v2")
        } else if self.v1_pids.is_some() || self.v1_memory.is_some() {
            Some("v1")
        } else {
            None
        }
    }

    /// Processes are bounded by a cgroup.
    pub fn bounds_pids(&self) -> bool {
        self.v2.is_some() || self.v1_pids.is_some()
    }

    /// Memory is bounded by a cgroup.
    pub fn bounds_memory(&self) -> bool {
        self.v2.is_some() || self.v1_memory.is_some()
    }
}

/// The `pids` cgroup folder the runtime's process lives in, if it may create groups
/// under it.
pub fn writable_pids_parent() -> Option<PathBuf> {
    writable_v1_parent("pids", "pids.max")
}

/// The v1 `controller` folder the runtime's process lives in, if it may create groups
/// there that have `probe_file`.
fn writable_v1_parent(controller: &str, probe_file: &str) -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let own = text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers
            .split(',')
            .any(|c| c == controller)
            .then(|| path.to_string())
    })?;
    let dir = Path::new("/sys/fs/cgroup")
        .join(controller)
        .join(own.trim_start_matches('/'));
    probe_child(&dir, &[probe_file]).then_some(dir)
}

/// Creates and removes a child of `dir`; true when it had every one of `files`.
fn probe_child(dir: &Path, files: &[&str]) -> bool {
    let probe = dir.join(format!("par-probe-{}", std::process::id()));
    if std::fs::create_dir(&probe).is_err() {
        return false;
    }
    let usable = files.iter().all(|f| probe.join(f).exists());
    let _ = std::fs::remove_dir(&probe);
    usable
}

/// The runtime's v2 group, made ready for jail groups, if the host delegates it.
fn delegated_v2() -> Option<PathBuf> {
    let mount = v2_mount(&std::fs::read_to_string("/proc/self/mountinfo").ok()?)?;
    let own = own_v2_group(&std::fs::read_to_string("/proc/self/cgroup").ok()?)?;
    let dir = mount.join(own.trim_start_matches('/'));
    enable_v2(&dir, std::process::id()).ok()?;
    probe_child(&dir, &["memory.max", "pids.max"]).then_some(dir)
}

/// Where the cgroup v2 hierarchy is mounted (`/sys/fs/cgroup` on a v2 host,
/// `/sys/fs/cgroup/unified` on a hybrid one).
fn v2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let fstype = right.split_whitespace().next()?;
        let mount_point = left.split_whitespace().nth(4)?;
        (fstype == "cgroup2").then(|| PathBuf::from(mount_point))
    })
}

/// The runtime's group in the v2 hierarchy (the `0::` line).
fn own_v2_group(proc_cgroup: &str) -> Option<String> {
    proc_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_string)
}

/// Makes `dir`'s children get `memory` and `pids`: when they are offered but not yet
/// enabled, moves process `pid` (the runtime) into the leaf [`V2_RUNTIME_LEAF`] and
/// enables them; moves it back if that fails (other processes still in `dir`).
fn enable_v2(dir: &Path, pid: u32) -> std::io::Result<()> {
    let words = |file: &str| -> std::io::Result<Vec<String>> {
        let text = std::fs::read_to_string(dir.join(file))?;
        Ok(text.split_whitespace().map(str::to_string).collect())
    };
    let has_both = |list: &[String]| {
        ["memory", "pids"]
            .iter()
            .all(|c| list.iter().any(|w| w == c))
    };
    if !has_both(&words("cgroup.controllers")?) {
        return Err(std::io::Error::other("memory and pids are not delegated"));
    }
    if has_both(&words("cgroup.subtree_control")?) {
        return Ok(());
    }
    let leaf = dir.join(V2_RUNTIME_LEAF);
    std::fs::create_dir_all(&leaf)?;
    std::fs::write(leaf.join("cgroup.procs"), pid.to_string())?;
    let enabled = std::fs::write(dir.join("cgroup.subtree_control"), "+memory +pids");
    if enabled.is_err() {
        let _ = std::fs::write(dir.join("cgroup.procs"), pid.to_string());
        let _ = std::fs::remove_dir(&leaf);
    }
    enabled
}

/// What a jail's groups hold it to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupLimits {
    pub pids: u64,
    pub memory_bytes: Option<u64>,
}

/// A jail's own groups (one per hierarchy used); the launcher joins them before
/// forking anything.
pub struct JailGroups {
    /// `(group, where the launcher goes back to before removing it)`.
    groups: Vec<(PathBuf, Option<PathBuf>)>,
}

impl JailGroups {
    /// Creates `par-<pid>` groups under `parents`, sets `limits` and moves process
    /// `pid` (the launcher) in.
    pub fn join(
        parents: &CgroupParents,
        limits: GroupLimits,
        pid: u32,
    ) -> Result<JailGroups, JailError> {
        let mut joined = JailGroups { groups: Vec::new() };
        let name = format!("par-{pid}");
        if let Some(parent) = &parents.v2 {
            let mut files = vec![("pids.max", limits.pids.to_string())];
            if let Some(bytes) = limits.memory_bytes {
                files.push(("memory.max", bytes.to_string()));
                files.push(("memory.swap.max", "0".into()));
            }
            let home = Some(parent.join(V2_RUNTIME_LEAF)).filter(|h| h.exists());
            joined.add(parent, &name, &files, pid, home, "cgroup v2")?;
        }
        if let Some(parent) = &parents.v1_pids {
            let files = [("pids.max", limits.pids.to_string())];
            joined.add(
                parent,
                &name,
                &files,
                pid,
                Some(parent.clone()),
                "cgroup pids",
            )?;
        }
        if let (Some(parent), Some(bytes)) = (&parents.v1_memory, limits.memory_bytes) {
            let files = [
                ("memory.limit_in_bytes", bytes.to_string()),
                ("memory.memsw.limit_in_bytes", bytes.to_string()),
            ];
            joined.add(
                parent,
                &name,
                &files,
                pid,
                Some(parent.clone()),
                "cgroup memory",
            )?;
        }
        Ok(joined)
    }

    fn add(
        &mut self,
        parent: &Path,
        name: &str,
        files: &[(&str, String)],
        pid: u32,
        home: Option<PathBuf>,
        what: &'static str,
    ) -> Result<(), JailError> {
        let fail = |e: std::io::Error| JailError::new(what, e.to_string());
        sweep(parent);
        let dir = parent.join(name);
        std::fs::create_dir_all(&dir).map_err(fail)?;
        self.groups.push((dir.clone(), home));
        for (file, value) in files {
            let path = dir.join(file);
            // Swap limits exist only where swap accounting is on: optional.
            let optional = file.contains("swap") || file.contains("memsw");
            if optional && !path.exists() {
                continue;
            }
            match std::fs::write(&path, value) {
                Err(e) if !optional => return Err(fail(e)),
                _ => {}
            }
        }
        std::fs::write(dir.join("cgroup.procs"), pid.to_string()).map_err(fail)
    }

    /// How many processes the kernel killed for the groups' memory limit.
    pub fn oom_kills(&self) -> u64 {
        self.groups.iter().map(|(dir, _)| oom_kills_in(dir)).sum()
    }

    /// Moves the launcher back out and removes the (then empty) groups; a group it
    /// cannot leave (v2 without the runtime's leaf) is removed by the next sweep.
    pub fn leave(self) {
        for (dir, home) in self.groups {
            if let Some(home) = home {
                let _ = std::fs::write(home.join("cgroup.procs"), std::process::id().to_string());
            }
            let _ = std::fs::remove_dir(&dir);
        }
    }
}

/// How many processes the kernel killed for the memory limit of the group `dir`
/// (`oom_kill` of v2's `memory.events` or v1's `memory.oom_control`; 0 if neither).
fn oom_kills_in(dir: &Path) -> u64 {
    ["memory.events", "memory.oom_control"]
        .iter()
        .filter_map(|file| std::fs::read_to_string(dir.join(file)).ok())
        .filter_map(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("oom_kill "))
                .and_then(|n| n.trim().parse::<u64>().ok())
        })
        .sum()
}

/// The memory-limit kills the kernel made in the jail group (`par-<pid>`) of process
/// `pid` (a jail's launcher, seen from outside the jail): how the runtime tells a worker
/// the kernel killed for its jail's limit from one that crashed. 0 outside a jail group.
pub fn oom_kills_of(pid: u32) -> u64 {
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    own.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            let leaf = path.rsplit('/').next().unwrap_or("");
            if !leaf.starts_with("par-") {
                return None;
            }
            let path = path.trim_start_matches('/');
            match controllers {
                "" => ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
                    .iter()
                    .map(|root| Path::new(root).join(path))
                    .find(|dir| dir.join("memory.events").exists()),
                c if c.split(',').any(|c| c == "memory") => {
                    Some(Path::new("/sys/fs/cgroup/memory").join(path))
                }
                _ => None,
            }
        })
        .map(|dir| oom_kills_in(&dir))
        .sum()
}

/// A jail's own `pids` group (cgroup v1); kept for callers of the first version.
pub struct PidsGroup {
    inner: JailGroups,
}

impl PidsGroup {
    pub fn join(parent: &Path, max: u64) -> Result<PidsGroup, JailError> {
        let parents = CgroupParents {
            v1_pids: Some(parent.to_path_buf()),
            ..CgroupParents::default()
        };
        let limits = GroupLimits {
            pids: max,
            memory_bytes: None,
        };
        JailGroups::join(&parents, limits, std::process::id()).map(|inner| PidsGroup { inner })
    }

    /// Moves the launcher back out and removes the (then empty) group.
    pub fn leave(self) {
        self.inner.leave();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_v2_mount_and_group() {
        let hybrid = "35 25 0:30 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw\n\
                      36 25 0:31 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n";
        assert_eq!(v2_mount(hybrid), Some("/sys/fs/cgroup/unified".into()));
        assert_eq!(v2_mount("36 25 0:31 / /x rw - cgroup cgroup rw,pids"), None);
        assert_eq!(
            own_v2_group("8:pids:/\n0::/user.slice/par.service\n").as_deref(),
            Some("/user.slice/par.service")
        );
    }

    /// A folder laid out like a v2 group (the kernel's files as plain files).
    fn fake_v2(controllers: &str, enabled: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (file, text) in [
            ("cgroup.controllers", controllers),
            ("cgroup.subtree_control", enabled),
            ("cgroup.procs", "1\n"),
        ] {
            std::fs::write(dir.path().join(file), text).unwrap();
        }
        dir
    }

    #[test]
    fn v2_moves_the_runtime_into_a_leaf_before_enabling_controllers() {
        let dir = fake_v2("cpu memory pids", "");
        enable_v2(dir.path(), 42).unwrap();
        let leaf = dir.path().join(V2_RUNTIME_LEAF);
        assert_eq!(
            std::fs::read_to_string(leaf.join("cgroup.procs")).unwrap(),
            "42"
        );
        let enabled = std::fs::read_to_string(dir.path().join("cgroup.subtree_control"));
        assert_eq!(enabled.unwrap(), "+memory +pids");
    }

    #[test]
    fn v2_without_delegated_controllers_is_not_used() {
        let dir = fake_v2("hugetlb", "");
        assert!(enable_v2(dir.path(), 42).is_err());
        assert!(!dir.path().join(V2_RUNTIME_LEAF).exists());
        // Already enabled by the operator: nothing moves.
        let dir = fake_v2("memory pids", "memory pids");
        enable_v2(dir.path(), 42).unwrap();
        assert!(!dir.path().join(V2_RUNTIME_LEAF).exists());
    }

    #[test]
    fn a_jail_group_gets_its_limits_and_the_launcher() {
        let dir = fake_v2("memory pids", "memory pids");
        std::fs::create_dir(dir.path().join("par-77")).unwrap();
        std::fs::write(dir.path().join("par-77/memory.swap.max"), "max").unwrap();
        let parents = CgroupParents {
            v2: Some(dir.path().to_path_buf()),
            ..CgroupParents::default()
        };
        let limits = GroupLimits {
            pids: 64,
            memory_bytes: Some(1 << 26),
        };
        let _groups = JailGroups::join(&parents, limits, 77).unwrap();
        let read = |f: &str| std::fs::read_to_string(dir.path().join("par-77").join(f)).unwrap();
        assert_eq!(read("pids.max"), "64");
        assert_eq!(read("memory.max"), (1u64 << 26).to_string());
        assert_eq!(read("memory.swap.max"), "0");
        assert_eq!(read("cgroup.procs"), "77");
        std::fs::write(
            dir.path().join("par-77/memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        )
        .unwrap();
        assert_eq!(_groups.oom_kills(), 1);
        assert_eq!(parents.version(), Some("v2"));
        assert!(parents.bounds_memory() && parents.bounds_pids());
        assert_eq!(CgroupParents::default().version(), None);
    }
}
