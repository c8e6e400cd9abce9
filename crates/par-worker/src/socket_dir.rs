//! Private folders for the Unix sockets between the runtime and its children: `0700`,
//! named after the runtime's pid so folders a killed runtime left behind can be told
//! apart from live ones and swept at the next start.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Kinds of socket folder: `w` for workers, `s` for HTTP apps.
pub const WORKER: &str = "par-w";
pub const APP: &str = "par-s";

/// A new private folder in the system temp dir, `{kind}{pid}-XXXXXX`.
pub fn create(kind: &str) -> std::io::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(&format!("{kind}{}-", std::process::id()))
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
}

/// Removes socket folders in `dir` whose runtime is no longer running (SIGKILL leaves
/// them behind). Returns how many were removed.
pub fn sweep_stale(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|entry| owner_pid(&entry.file_name().to_string_lossy()).is_some_and(is_gone))
        .filter(|entry| std::fs::remove_dir_all(entry.path()).is_ok())
        .count()
}

/// The runtime pid in a folder name made by [`create`].
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name
        .strip_prefix(WORKER)
        .or_else(|| name.strip_prefix(APP))?;
    rest.split_once('-')?.0.parse().ok()
}

fn is_gone(pid: u32) -> bool {
    pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_private_and_named_after_the_runtime() {
        let dir = create(WORKER).unwrap();
        let mode = std::fs::metadata(dir.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let name = dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        assert_eq!(owner_pid(&name), Some(std::process::id()));
    }

    #[test]
    fn only_folders_of_dead_runtimes_are_swept() {
        let tmp = tempfile::tempdir().unwrap();
        // pid_max is at most 2^22: this pid cannot be running.
        let dead = tmp.path().join(format!("{WORKER}{}-abc", 1u32 << 23));
        let alive = tmp.path().join(format!("{APP}{}-def", std::process::id()));
        let other = tmp.path().join("par-wx-unrelated");
        for dir in [&dead, &alive, &other] {
            std::fs::create_dir(dir).unwrap();
        }
        std::fs::write(dead.join("s"), b"").unwrap();
        assert_eq!(sweep_stale(tmp.path()), 1);
        assert!(!dead.exists());
        assert!(alive.exists() && other.exists());
    }
}
