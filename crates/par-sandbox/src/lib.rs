//! `par-sandbox` owns the process jail every worker and HTTP-app process of a package runs
//! in under `--sandbox strict`: the [`JailSpec`] the runtime fills in (package root,
//! environment, interpreter prefix, binds, work dir size, network mode, limits), the
//! checks of what the host offers ([`host::probe`]: user namespaces, seccomp, cgroups),
//! and the jail entry itself — a plan of mounts computed up front ([`plan`]), then
//! applied by library functions ([`jail::Prepared`]) that the launcher (`par __jail`,
//! [`launcher::main`]) calls in a fresh single-threaded process: user, mount, PID, IPC,
//! UTS and network namespaces, a read-only root of bind mounts with a sized tmpfs work
//! dir, `pivot_root`, `no_new_privs`, rlimits, a seccomp filter, then `execve`.

pub mod cgroup;
pub mod command;
pub mod egress;
pub mod error;
pub mod host;
pub mod jail;
pub mod launcher;
mod limits;
mod namespaces;
pub mod plan;
mod rootfs;
pub mod seccomp;
pub mod spec;

pub use error::JailError;
pub use spec::{Exec, JailSpec, Limits, Network};
