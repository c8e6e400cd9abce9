//! The jail's file system as a list of steps, computed from the spec and what exists on
//! the host before anything is mounted (so it can be tested without privileges).

use std::path::{Path, PathBuf};

use crate::spec::{JailSpec, SANDBOX_ID, SANDBOX_USER};

/// What a host path is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKind {
    Missing,
    Dir,
    File,
    Symlink(PathBuf),
}

/// Looks a host path up without following a final symlink.
pub fn host_kind(path: &Path) -> HostKind {
    match std::fs::symlink_metadata(path) {
        Err(_) => HostKind::Missing,
        Ok(m) if m.file_type().is_symlink() => {
            HostKind::Symlink(std::fs::read_link(path).unwrap_or_default())
        }
        Ok(m) if m.is_dir() => HostKind::Dir,
        Ok(_) => HostKind::File,
    }
}

/// One step in building the new root; every `target` is a path inside the jail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Bind `target` from the same host path (a directory or a file).
    Bind {
        target: PathBuf,
        dir: bool,
        writable: bool,
    },
    /// Bind a device node (no `nodev` on it).
    Device {
        target: PathBuf,
    },
    Symlink {
        target: PathBuf,
        points_to: PathBuf,
    },
    Tmpfs {
        target: PathBuf,
        size_mb: u64,
    },
    Proc {
        target: PathBuf,
    },
    /// A small generated file on the root tmpfs.
    File {
        target: PathBuf,
        contents: String,
    },
}

/// Top-level system folders: bound read-only, or recreated as the same symlink
/// (`/bin -> usr/bin` on merged-/usr systems).
const SYSTEM_DIRS: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32",
];

/// What of `/etc` a Python process needs: certificates, name resolution, the dynamic
/// linker's cache, time zones. Never the whole of `/etc`.
const ETC_ENTRIES: &[&str] = &[
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/pki",
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/gai.conf",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/alternatives",
    "/etc/mime.types",
];

const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
];

/// Size of `/dev/shm` (Python's multiprocessing semaphores and shared memory).
const SHM_MB: u64 = 64;

/// The steps, in the order they must run (parents before what is mounted inside them).
pub fn plan(spec: &JailSpec, kind: &dyn Fn(&Path) -> HostKind) -> Vec<Step> {
    let mut steps = Vec::new();
    for dir in SYSTEM_DIRS.iter().chain(ETC_ENTRIES) {
        system_entry(Path::new(dir), kind, &mut steps);
    }
    let mut ro: Vec<&PathBuf> = vec![&spec.package_root, &spec.env_dir];
    ro.extend(&spec.interpreter_prefixes);
    ro.extend(&spec.ro_binds);
    let mut binds: Vec<(PathBuf, bool)> = ro.into_iter().map(|p| (p.clone(), false)).collect();
    binds.extend(spec.rw_binds.iter().map(|p| (p.clone(), true)));
    // Parents first, so a bind inside another lands on top of it.
    binds.sort_by_key(|(p, _)| p.components().count());
    binds.dedup_by(|a, b| a.0 == b.0);
    for (path, writable) in binds {
        if covered(&steps, &path, writable) {
            continue;
        }
        if let Some(dir) = bindable(&path, kind) {
            steps.push(Step::Bind {
                target: path,
                dir,
                writable,
            });
        }
    }
    steps.push(Step::Tmpfs {
        target: spec.work_dir.clone(),
        size_mb: spec.limits.disk_mb,
    });
    dev_steps(kind, &mut steps);
    steps.push(Step::Proc {
        target: "/proc".into(),
    });
    identity_files(spec, &mut steps);
    steps
}

fn system_entry(path: &Path, kind: &dyn Fn(&Path) -> HostKind, steps: &mut Vec<Step>) {
    match kind(path) {
        HostKind::Missing => {}
        HostKind::Symlink(to) => steps.push(Step::Symlink {
            target: path.to_path_buf(),
            points_to: to,
        }),
        HostKind::Dir => steps.push(Step::Bind {
            target: path.to_path_buf(),
            dir: true,
            writable: false,
        }),
        HostKind::File => steps.push(Step::Bind {
            target: path.to_path_buf(),
            dir: false,
            writable: false,
        }),
    }
}

/// `Some(is_dir)` for a path that can be bound (a symlink is bound as what it points to).
fn bindable(path: &Path, kind: &dyn Fn(&Path) -> HostKind) -> Option<bool> {
    match kind(path) {
        HostKind::Missing => None,
        HostKind::Dir => Some(true),
        HostKind::File => Some(false),
        HostKind::Symlink(_) => Some(path.is_dir()),
    }
}

/// True when a read-only bind of a parent already shows `path` the same way.
fn covered(steps: &[Step], path: &Path, writable: bool) -> bool {
    !writable
        && steps.iter().any(|s| {
            matches!(s, Step::Bind { target, dir: true, writable: false } if path.starts_with(target))
        })
}

fn dev_steps(kind: &dyn Fn(&Path) -> HostKind, steps: &mut Vec<Step>) {
    for dev in DEVICES {
        if kind(Path::new(dev)) != HostKind::Missing {
            steps.push(Step::Device { target: dev.into() });
        }
    }
    for (name, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        steps.push(Step::Symlink {
            target: Path::new("/dev").join(name),
            points_to: to.into(),
        });
    }
    steps.push(Step::Tmpfs {
        target: "/dev/shm".into(),
        size_mb: SHM_MB,
    });
}

fn identity_files(spec: &JailSpec, steps: &mut Vec<Step>) {
    steps.push(Step::File {
        target: "/etc/passwd".into(),
        contents: passwd(&spec.work_dir),
    });
    steps.push(Step::File {
        target: "/etc/group".into(),
        contents: format!("{SANDBOX_USER}:x:{SANDBOX_ID}:\nnogroup:x:65534:\n"),
    });
    steps.push(Step::File {
        target: "/etc/hostname".into(),
        contents: "sandbox\n".into(),
    });
}

/// `/etc/passwd` naming the sandbox user (so `getpass.getuser()`, `~` and `pwd` work).
pub fn passwd(home: &Path) -> String {
    format!(
        "{SANDBOX_USER}:x:{SANDBOX_ID}:{SANDBOX_ID}:sandbox:{}:/bin/sh\n\
         nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
        home.display()
    )
}

/// The one-line `uid_map`/`gid_map`: the sandbox id inside is `outside` on the host.
pub fn id_map(outside: u32) -> String {
    format!("{SANDBOX_ID} {outside} 1\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::sample;

    fn fake_host(path: &Path) -> HostKind {
        match path.to_str().unwrap() {
            "/bin" | "/lib" | "/lib64" | "/sbin" => {
                HostKind::Symlink(format!("usr{}", path.display()).into())
            }
            "/etc/resolv.conf" | "/etc/hosts" | "/etc/ld.so.cache" | "/dev/null"
            | "/dev/urandom" => HostKind::File,
            "/usr" | "/etc/ssl" => HostKind::Dir,
            p if p.starts_with("/cache") || p.starts_with("/root") || p.starts_with("/tmp") => {
                HostKind::Dir
            }
            _ => HostKind::Missing,
        }
    }

    fn targets(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Bind {
                    target, writable, ..
                } => Some(format!(
                    "{}{}",
                    target.display(),
                    if *writable { " rw" } else { "" }
                )),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn binds_exactly_the_package_env_prefix_and_system_files() {
        let steps = plan(&sample(), &fake_host);
        assert_eq!(
            targets(&steps),
            [
                "/usr",
                "/etc/ssl",
                "/etc/resolv.conf",
                "/etc/hosts",
                "/etc/ld.so.cache",
                "/cache/worker",
                "/tmp/par-w1 rw",
                "/cache/packages/abc",
                "/cache/envs/v1-x",
                "/root/.pyenv/versions/3.11.7",
            ]
        );
        // Nothing of the home around the prefix, of /etc or /tmp beyond what is listed.
        assert!(!targets(&steps)
            .iter()
            .any(|t| t == "/root" || t == "/etc" || t == "/tmp"));
        assert!(steps.contains(&Step::Symlink {
            target: "/lib64".into(),
            points_to: "usr/lib64".into()
        }));
        assert!(steps.contains(&Step::Tmpfs {
            target: "/cache/work/demo".into(),
            size_mb: 1024
        }));
        assert!(steps.contains(&Step::Device {
            target: "/dev/null".into()
        }));
        assert!(!steps.contains(&Step::Device {
            target: "/dev/tty".into()
        }));
        assert!(steps.contains(&Step::Proc {
            target: "/proc".into()
        }));
    }

    #[test]
    fn a_prefix_inside_usr_is_not_bound_twice() {
        let mut spec = sample();
        spec.interpreter_prefixes = vec!["/usr".into(), "/usr/local/py".into()];
        let steps = plan(&spec, &|p: &Path| {
            if p.starts_with("/usr") {
                HostKind::Dir
            } else {
                fake_host(p)
            }
        });
        let usr = targets(&steps)
            .iter()
            .filter(|t| t.starts_with("/usr"))
            .count();
        assert_eq!(usr, 1, "{steps:?}");
    }

    #[test]
    fn identity_files_name_the_sandbox_user() {
        let steps = plan(&sample(), &fake_host);
        let passwd = steps.iter().find_map(|s| match s {
            Step::File { target, contents } if target == Path::new("/etc/passwd") => {
                Some(contents.clone())
            }
            _ => None,
        });
        assert!(passwd
            .unwrap()
            .starts_with("agent:x:1000:1000:sandbox:/cache/work/demo:"));
        assert_eq!(id_map(0), "1000 0 1\n");
        assert_eq!(id_map(65534), "1000 65534 1\n");
    }
}
