//! Building the jail's root from a plan: a tmpfs on the scratch folder, the plan's steps
//! on it, `pivot_root` into it, the old root detached, the new root made read-only.
//! Runs inside the new user and mount namespaces (capabilities there, none outside).

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::statvfs::{statvfs, FsFlags};

use crate::error::JailError;
use crate::plan::Step;

const NONE: Option<&str> = None;
/// The root tmpfs holds only mount points and a few generated files.
const ROOT_SIZE: &str = "size=1m,mode=0755";

/// Stops mounts made in the jail from propagating back to the host (and the host's to it).
pub(crate) fn make_private() -> Result<(), JailError> {
    mount(NONE, "/", NONE, MsFlags::MS_REC | MsFlags::MS_PRIVATE, NONE)
        .map_err(|e| JailError::new("mount namespace", format!("make / private: {e}")))
}

/// Assembles the new root on `scratch` and switches to it.
pub(crate) fn enter(scratch: &Path, steps: &[Step]) -> Result<(), JailError> {
    let fail = |what: String| JailError::new("bind mounts", what);
    mount(
        Some("tmpfs"),
        scratch,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(ROOT_SIZE),
    )
    .map_err(|e| JailError::new("tmpfs", format!("{}: {e}", scratch.display())))?;
    for step in steps {
        apply(scratch, step).map_err(|e| fail(format!("{step:?}: {e}")))?;
    }
    pivot(scratch)?;
    mount(
        NONE,
        "/",
        NONE,
        MsFlags::MS_REMOUNT
            | MsFlags::MS_BIND
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV,
        NONE,
    )
    .map_err(|e| JailError::new("bind mounts", format!("remount / read-only: {e}")))
}

fn inside(root: &Path, target: &Path) -> PathBuf {
    root.join(target.strip_prefix("/").unwrap_or(target))
}

fn apply(root: &Path, step: &Step) -> Result<(), String> {
    match step {
        Step::Bind {
            target,
            dir,
            writable,
        } => bind(target, &inside(root, target), *dir, *writable, false),
        Step::Device { target } => bind(target, &inside(root, target), false, true, true),
        Step::Symlink { target, points_to } => {
            let at = inside(root, target);
            make_parent(&at)?;
            std::os::unix::fs::symlink(points_to, &at).map_err(|e| e.to_string())
        }
        Step::Tmpfs { target, size_mb } => {
            let at = inside(root, target);
            mkdir(&at)?;
            let data = format!("size={size_mb}m,mode=0700");
            let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
            mount(
                Some("tmpfs"),
                &at,
                Some("tmpfs"),
                flags,
                Some(data.as_str()),
            )
            .map_err(|e| format!("tmpfs: {e}"))
        }
        Step::Proc { target } => {
            let at = inside(root, target);
            mkdir(&at)?;
            let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
            mount(Some("proc"), &at, Some("proc"), flags, NONE)
                .map_err(|e| JailError::new("proc in a PID namespace", e.to_string()).to_string())
        }
        Step::File { target, contents } => {
            let at = inside(root, target);
            make_parent(&at)?;
            std::fs::write(&at, contents).map_err(|e| e.to_string())
        }
    }
}

fn mkdir(path: &Path) -> Result<(), String> {
    std::fs::create_dir_all(path).map_err(|e| format!("mkdir {}: {e}", path.display()))
}

fn make_parent(path: &Path) -> Result<(), String> {
    path.parent().map_or(Ok(()), mkdir)
}

/// Binds `source` at `at`, then remounts it read-only unless `writable`. The remount
/// keeps the flags the kernel locks on mounts seen from a user namespace (nosuid, nodev,
/// noexec, atime): dropping one would fail with EPERM.
fn bind(source: &Path, at: &Path, dir: bool, writable: bool, device: bool) -> Result<(), String> {
    if dir {
        mkdir(at)?;
    } else if !at.exists() {
        make_parent(at)?;
        std::fs::write(at, b"").map_err(|e| format!("{}: {e}", at.display()))?;
    }
    let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
    mount(Some(source), at, NONE, flags, NONE).map_err(|e| format!("bind: {e}"))?;
    let mut flags =
        locked_flags(source)? | MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_NOSUID;
    if !writable {
        flags |= MsFlags::MS_RDONLY;
    }
    if !device {
        flags |= MsFlags::MS_NODEV;
    }
    mount(NONE, at, NONE, flags, NONE).map_err(|e| format!("remount: {e}"))
}

fn locked_flags(source: &Path) -> Result<MsFlags, String> {
    let have = statvfs(source)
        .map_err(|e| format!("statvfs: {e}"))?
        .flags();
    let pairs = [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
    ];
    Ok(pairs
        .into_iter()
        .filter(|(st, _)| have.contains(*st))
        .fold(MsFlags::empty(), |acc, (_, ms)| acc | ms))
}

/// `pivot_root(".", ".")` then detaching the old root, which leaves it stacked under the
/// new one and unreachable.
fn pivot(root: &Path) -> Result<(), JailError> {
    let fail = |what: &str, e: nix::Error| JailError::new("pivot_root", format!("{what}: {e}"));
    nix::unistd::chdir(root).map_err(|e| fail("chdir", e))?;
    nix::unistd::pivot_root(".", ".").map_err(|e| fail("pivot_root", e))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| fail("detach old root", e))?;
    nix::unistd::chdir("/").map_err(|e| fail("chdir /", e))
}
