//! The jail's seccomp filters, three of them, installed in this order:
//!
//! 1. **the allowlist** ([`ALLOWED`]): every system call CPython 3.11+ and the code agent
//!    packages bring need — uv environments, asyncio, threads, sockets, `subprocess`
//!    (fork and exec inside the jail), `multiprocessing`, native extensions such as numpy
//!    and pydantic-core, uvicorn/FastAPI apps. Anything else fails with `ENOSYS`, which
//!    the C library and Python treat as "this kernel does not have it" and fall back from
//!    (e.g. `clone3` to `clone`), instead of killing a worker in a way an operator cannot
//!    diagnose;
//! 2. **the denylist** ([`DENIED`]): calls that widen what a process can reach (kernel
//!    modules, other namespaces, tracing, keys, mounts) fail with `EPERM` — the contract's
//!    minimum and more — as does `clone` with namespace flags;
//! 3. `clone3` fails with `ENOSYS`: its flags sit in memory a filter cannot read, so the
//!    C library falls back to `clone`, whose flags the denylist checks.
//!
//! When several filters answer, the kernel takes the strictest action and, among equal
//! ones, the most recently installed filter's data: so a denied call reports `EPERM`
//! although the allowlist (installed first) answered `ENOSYS`.
//!
//! The list was found by running real workloads under `strace -f` (asyncio servers and
//! clients, thread pools, `subprocess`, `multiprocessing` with fork and spawn, numpy
//! linear algebra, a uvicorn/FastAPI app queried with httpx, TLS contexts) and checked
//! against the calls container runtimes allow by default; what is left out is what no
//! such workload makes and what only a privileged or debugging process needs.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};

/// `(name, number)` pairs from `libc::SYS_*` constants of the target architecture.
macro_rules! calls {
    ($($sys:ident),* $(,)?) => {
        &[$((strip_sys(stringify!($sys)), libc::$sys)),*]
    };
}

/// `"SYS_read"` → `"read"`, at compile time.
const fn strip_sys(name: &str) -> &str {
    match name.as_bytes() {
        [b'S', b'Y', b'S', b'_', rest @ ..] => match std::str::from_utf8(rest) {
            Ok(rest) => rest,
            Err(_) => name,
        },
        _ => name,
    }
}

/// Allowed on every architecture, grouped by what needs them.
#[rustfmt::skip]
const ALLOWED_COMMON: &[(&str, libc::c_long)] = calls![
    // Files and directories (read-only root, writable work dir): Python's os, io,
    // pathlib, shutil, tempfile; `mknodat` makes FIFOs (os.mkfifo), never devices
    // (that needs a capability the jail has not).
    SYS_read, SYS_write, SYS_readv, SYS_writev, SYS_pread64, SYS_pwrite64, SYS_preadv,
    SYS_pwritev, SYS_preadv2, SYS_pwritev2, SYS_openat, SYS_openat2, SYS_close,
    SYS_close_range, SYS_lseek, SYS_fstat, SYS_newfstatat, SYS_statx, SYS_statfs,
    SYS_fstatfs, SYS_faccessat, SYS_faccessat2, SYS_getdents64, SYS_readlinkat,
    SYS_mkdirat, SYS_unlinkat, SYS_renameat2, SYS_linkat, SYS_symlinkat,
    SYS_mknodat, SYS_fchmod, SYS_fchmodat, SYS_fchown, SYS_fchownat,
    SYS_truncate, SYS_ftruncate, SYS_fallocate, SYS_fsync, SYS_fdatasync,
    SYS_syncfs, SYS_sync, SYS_flock, SYS_fcntl, SYS_dup, SYS_dup3,
    SYS_pipe2, SYS_ioctl, SYS_utimensat, SYS_getcwd, SYS_chdir, SYS_fchdir, SYS_umask,
    SYS_sendfile, SYS_splice, SYS_tee, SYS_vmsplice, SYS_copy_file_range, SYS_fadvise64,
    SYS_readahead, SYS_getxattr, SYS_lgetxattr, SYS_fgetxattr, SYS_listxattr,
    SYS_llistxattr, SYS_flistxattr, SYS_setxattr, SYS_lsetxattr, SYS_fsetxattr,
    SYS_removexattr, SYS_lremovexattr, SYS_fremovexattr, SYS_memfd_create,
    SYS_inotify_init1, SYS_inotify_add_watch, SYS_inotify_rm_watch,
    // Memory: allocators, mmap'd files, numpy/OpenBLAS (mbind and the NUMA calls),
    // JITs (pkeys), GC barriers (membarrier).
    SYS_mmap, SYS_munmap, SYS_mprotect, SYS_mremap, SYS_madvise, SYS_brk, SYS_msync,
    SYS_mincore, SYS_mlock, SYS_mlock2, SYS_munlock, SYS_mlockall, SYS_munlockall,
    SYS_membarrier, SYS_mbind, SYS_get_mempolicy, SYS_set_mempolicy, SYS_pkey_alloc,
    SYS_pkey_free, SYS_pkey_mprotect,
    // Processes and threads: subprocess, multiprocessing, thread pools. `clone` is
    // allowed here and its namespace flags refused by the denylist; `clone3` is left out
    // on purpose (see the module's comment). Changing ids fails without capabilities.
    SYS_clone, SYS_execve, SYS_execveat, SYS_exit, SYS_exit_group, SYS_wait4, SYS_waitid,
    SYS_kill, SYS_tgkill, SYS_tkill, SYS_getpid, SYS_getppid, SYS_gettid, SYS_getuid,
    SYS_geteuid, SYS_getgid, SYS_getegid, SYS_getgroups, SYS_getresuid, SYS_getresgid,
    SYS_setuid, SYS_setgid, SYS_setreuid, SYS_setregid, SYS_setresuid, SYS_setresgid,
    SYS_setgroups, SYS_setfsuid, SYS_setfsgid, SYS_setpgid, SYS_getpgid, SYS_getsid,
    SYS_setsid, SYS_prctl, SYS_capget, SYS_capset, SYS_prlimit64, SYS_getrusage,
    SYS_getpriority, SYS_setpriority, SYS_sched_yield, SYS_sched_getaffinity,
    SYS_sched_setaffinity, SYS_sched_getparam, SYS_sched_setparam,
    SYS_sched_getscheduler, SYS_sched_setscheduler, SYS_sched_get_priority_max,
    SYS_sched_get_priority_min, SYS_sched_rr_get_interval, SYS_sched_getattr,
    SYS_sched_setattr, SYS_set_tid_address, SYS_set_robust_list, SYS_get_robust_list,
    SYS_futex, SYS_futex_waitv, SYS_rseq, SYS_uname, SYS_sysinfo, SYS_times,
    SYS_pidfd_open, SYS_pidfd_send_signal, SYS_ioprio_get, SYS_ioprio_set,
    SYS_restart_syscall, SYS_getcpu,
    // Self-restriction only ever narrows what a process may do: packages that sandbox
    // their own children (seccomp, Landlock) keep working.
    SYS_seccomp, SYS_landlock_create_ruleset, SYS_landlock_add_rule,
    SYS_landlock_restrict_self,
    // Signals.
    SYS_rt_sigaction, SYS_rt_sigprocmask, SYS_rt_sigreturn, SYS_rt_sigsuspend,
    SYS_rt_sigpending, SYS_rt_sigtimedwait, SYS_rt_sigqueueinfo, SYS_rt_tgsigqueueinfo,
    SYS_sigaltstack, SYS_signalfd4,
    // Time and timers (reading clocks only: setting them is denied).
    SYS_clock_gettime, SYS_clock_getres, SYS_clock_nanosleep, SYS_nanosleep,
    SYS_gettimeofday, SYS_timer_create, SYS_timer_settime, SYS_timer_gettime,
    SYS_timer_getoverrun, SYS_timer_delete, SYS_timerfd_create, SYS_timerfd_settime,
    SYS_timerfd_gettime, SYS_getitimer, SYS_setitimer,
    // Event loops: asyncio, uvloop, tokio-based extensions.
    SYS_epoll_create1, SYS_epoll_ctl, SYS_epoll_pwait, SYS_epoll_pwait2, SYS_ppoll,
    SYS_pselect6, SYS_eventfd2,
    // Sockets: the jail's network namespace decides what they reach (loopback and the
    // egress listener); raw and packet sockets need a capability the jail has not.
    SYS_socket, SYS_socketpair, SYS_bind, SYS_listen, SYS_accept, SYS_accept4,
    SYS_connect, SYS_getsockname, SYS_getpeername, SYS_sendto, SYS_recvfrom,
    SYS_sendmsg, SYS_recvmsg, SYS_sendmmsg, SYS_recvmmsg, SYS_shutdown, SYS_setsockopt,
    SYS_getsockopt,
    // System V and POSIX IPC, inside the jail's own IPC namespace (multiprocessing).
    SYS_shmget, SYS_shmat, SYS_shmdt, SYS_shmctl, SYS_semget, SYS_semop, SYS_semtimedop,
    SYS_semctl, SYS_msgget, SYS_msgsnd, SYS_msgrcv, SYS_msgctl, SYS_mq_open,
    SYS_mq_unlink, SYS_mq_timedsend, SYS_mq_timedreceive, SYS_mq_notify,
    SYS_mq_getsetattr,
    // Randomness (os.urandom, secrets, ssl) and asynchronous I/O (libaio).
    SYS_getrandom, SYS_io_setup, SYS_io_destroy, SYS_io_submit, SYS_io_getevents,
    SYS_io_cancel,
];

/// The older calls x86_64 still has beside their `*at`/`p*` forms, which its C library,
/// static binaries and old wheels use; and three the libc crate names for x86_64 only.
#[cfg(target_arch = "x86_64")]
#[rustfmt::skip]
const ALLOWED_ARCH: &[(&str, libc::c_long)] = calls![
    SYS_open, SYS_creat, SYS_stat, SYS_lstat, SYS_access, SYS_readlink, SYS_mkdir,
    SYS_rmdir, SYS_unlink, SYS_rename, SYS_link, SYS_symlink, SYS_chmod, SYS_chown,
    SYS_lchown, SYS_getdents, SYS_pipe, SYS_dup2, SYS_utime, SYS_utimes, SYS_futimesat,
    SYS_mknod, SYS_poll, SYS_select, SYS_epoll_create, SYS_epoll_wait, SYS_inotify_init,
    SYS_eventfd, SYS_signalfd, SYS_fork, SYS_vfork, SYS_time, SYS_alarm, SYS_pause,
    SYS_arch_prctl, SYS_getpgrp, SYS_getrlimit, SYS_setrlimit, SYS_renameat,
    SYS_fchmodat2, SYS_sync_file_range,
];

/// aarch64 has only the modern forms, all in the common list (the names were checked
/// against the libc crate's aarch64 table; only x86_64 is built and tested here).
#[cfg(not(target_arch = "x86_64"))]
const ALLOWED_ARCH: &[(&str, libc::c_long)] = &[];

/// Every allowed call of this architecture (the common list and the architecture's own).
pub fn allowed() -> impl Iterator<Item = (&'static str, libc::c_long)> {
    ALLOWED_COMMON.iter().chain(ALLOWED_ARCH).copied()
}

/// What is not on the allowlist fails with this.
pub const UNLISTED_ERRNO: libc::c_int = libc::ENOSYS;
/// What is on the denylist fails with this.
pub const DENIED_ERRNO: libc::c_int = libc::EPERM;

/// Refused outright with `EPERM` (also when a later change of the allowlist would let
/// one of them through).
pub const DENIED: &[(&str, libc::c_long)] = &[
    ("ptrace", libc::SYS_ptrace),
    ("process_vm_readv", libc::SYS_process_vm_readv),
    ("process_vm_writev", libc::SYS_process_vm_writev),
    ("mount", libc::SYS_mount),
    ("umount2", libc::SYS_umount2),
    ("pivot_root", libc::SYS_pivot_root),
    ("chroot", libc::SYS_chroot),
    ("move_mount", libc::SYS_move_mount),
    ("open_tree", libc::SYS_open_tree),
    ("fsopen", libc::SYS_fsopen),
    ("fsconfig", libc::SYS_fsconfig),
    ("fsmount", libc::SYS_fsmount),
    ("fspick", libc::SYS_fspick),
    ("mount_setattr", libc::SYS_mount_setattr),
    ("unshare", libc::SYS_unshare),
    ("setns", libc::SYS_setns),
    ("bpf", libc::SYS_bpf),
    ("kexec_load", libc::SYS_kexec_load),
    ("kexec_file_load", libc::SYS_kexec_file_load),
    ("init_module", libc::SYS_init_module),
    ("finit_module", libc::SYS_finit_module),
    ("delete_module", libc::SYS_delete_module),
    ("keyctl", libc::SYS_keyctl),
    ("add_key", libc::SYS_add_key),
    ("request_key", libc::SYS_request_key),
    ("perf_event_open", libc::SYS_perf_event_open),
    ("reboot", libc::SYS_reboot),
    ("swapon", libc::SYS_swapon),
    ("swapoff", libc::SYS_swapoff),
    ("acct", libc::SYS_acct),
    ("quotactl", libc::SYS_quotactl),
    ("userfaultfd", libc::SYS_userfaultfd),
    ("open_by_handle_at", libc::SYS_open_by_handle_at),
    ("name_to_handle_at", libc::SYS_name_to_handle_at),
    ("syslog", libc::SYS_syslog),
    ("settimeofday", libc::SYS_settimeofday),
    ("clock_settime", libc::SYS_clock_settime),
    ("clock_adjtime", libc::SYS_clock_adjtime),
    ("adjtimex", libc::SYS_adjtimex),
    ("personality", libc::SYS_personality),
    ("kcmp", libc::SYS_kcmp),
    ("pidfd_getfd", libc::SYS_pidfd_getfd),
    ("lookup_dcookie", libc::SYS_lookup_dcookie),
    ("vhangup", libc::SYS_vhangup),
];

/// `clone` flags that create namespaces: refused like `unshare`.
const NAMESPACE_FLAGS: &[libc::c_int] = &[
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWNS,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWCGROUP,
];

#[derive(Debug, thiserror::Error)]
#[error("seccomp filter: {0}")]
pub struct FilterError(String);

/// The three filters, in the order to install them (see the module's comment).
pub fn filters() -> Result<Vec<BpfProgram>, FilterError> {
    Ok(vec![allow_filter()?, deny_filter()?, clone3_filter()?])
}

/// What the filters do, for package reports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FilterSummary {
    /// `allowlist`: calls not listed fail.
    pub filter: &'static str,
    /// How many calls are allowed on this architecture.
    pub allowed: usize,
    /// How many are refused with [`DENIED_ERRNO`].
    pub denied: usize,
    /// The errno of an unlisted call.
    pub unlisted_errno: &'static str,
    /// The errno of a denied call.
    pub denied_errno: &'static str,
    pub arch: &'static str,
}

pub fn summary() -> FilterSummary {
    FilterSummary {
        filter: "allowlist",
        allowed: allowed().count(),
        denied: DENIED.len(),
        unlisted_errno: "ENOSYS",
        denied_errno: "EPERM",
        arch: std::env::consts::ARCH,
    }
}

fn arch() -> Result<seccompiler::TargetArch, FilterError> {
    std::env::consts::ARCH
        .try_into()
        .map_err(|e| FilterError(format!("{e:?}")))
}

/// Listed calls pass; everything else fails with [`UNLISTED_ERRNO`].
fn allow_filter() -> Result<BpfProgram, FilterError> {
    let rules: BTreeMap<i64, Vec<SeccompRule>> =
        allowed().map(|(_, nr)| (nr, Vec::new())).collect();
    compile(
        rules,
        SeccompAction::Errno(UNLISTED_ERRNO as u32),
        SeccompAction::Allow,
    )
}

/// Denied calls (and `clone` with namespace flags) fail with [`DENIED_ERRNO`].
fn deny_filter() -> Result<BpfProgram, FilterError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        DENIED.iter().map(|(_, nr)| (*nr, Vec::new())).collect();
    let clone_rules = NAMESPACE_FLAGS
        .iter()
        .map(|flag| {
            let cond = SeccompCondition::new(
                0,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(*flag as u64),
                *flag as u64,
            )
            .and_then(|c| SeccompRule::new(vec![c]));
            cond.map_err(|e| FilterError(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    rules.insert(libc::SYS_clone, clone_rules);
    compile(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(DENIED_ERRNO as u32),
    )
}

fn clone3_filter() -> Result<BpfProgram, FilterError> {
    compile(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
    )
}

fn compile(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    mismatch: SeccompAction,
    matched: SeccompAction,
) -> Result<BpfProgram, FilterError> {
    let filter = SeccompFilter::new(rules, mismatch, matched, arch()?)
        .map_err(|e| FilterError(e.to_string()))?;
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| FilterError(e.to_string()))
}

/// Installs the filters on the calling thread (and so on everything it will start).
/// Sets `no_new_privs` first, which the kernel requires of an unprivileged filter.
pub fn install(programs: &[BpfProgram]) -> Result<(), FilterError> {
    for program in programs {
        seccompiler::apply_filter(program).map_err(|e| FilterError(e.to_string()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filters_compile_and_cover_the_contract_minimum() {
        let programs = filters().unwrap();
        assert_eq!(programs.len(), 3);
        assert!(
            programs[1].len() > DENIED.len(),
            "one check per call at least"
        );
        let names: Vec<&str> = DENIED.iter().map(|(n, _)| *n).collect();
        for required in [
            "ptrace",
            "mount",
            "umount2",
            "unshare",
            "setns",
            "bpf",
            "kexec_load",
            "init_module",
            "finit_module",
            "keyctl",
            "perf_event_open",
            "reboot",
            "swapon",
        ] {
            assert!(names.contains(&required), "{required} is not refused");
        }
    }

    #[test]
    fn the_lists_are_disjoint_and_without_duplicates() {
        let mut seen = std::collections::BTreeSet::new();
        for (name, nr) in allowed() {
            assert!(seen.insert(nr), "{name} listed twice");
        }
        for (name, nr) in DENIED {
            assert!(!seen.contains(nr), "{name} is both allowed and denied");
        }
        assert!(
            !seen.contains(&libc::SYS_clone3),
            "clone3 must stay unlisted"
        );
        assert_eq!(summary().allowed, seen.len());
    }

    /// In a forked child with the filters installed: `(result, errno)` of `call`.
    #[allow(unsafe_code)] // fork: the filter is installed in a child, not in the test process
    fn in_filtered_child(call: fn() -> libc::c_long) -> (bool, i32) {
        let programs = filters().unwrap();
        let (read, write) = nix::unistd::pipe().unwrap();
        // SAFETY: the child only makes async-signal-safe calls (prctl, seccomp, the
        // call under test, write, _exit) before exiting.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let code = match install(&programs) {
                    Err(_) => 2,
                    Ok(()) => {
                        let rc = call();
                        let errno = nix::errno::Errno::last_raw();
                        let _ = nix::unistd::write(&write, &[u8::from(rc >= 0), errno as u8]);
                        0
                    }
                };
                // SAFETY: _exit ends the forked child without running the parent's
                // destructors or atexit handlers.
                unsafe { libc::_exit(code) };
            }
            nix::unistd::ForkResult::Parent { child } => {
                drop(write);
                let status = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
                let mut buf = [0u8; 2];
                nix::unistd::read(&read, &mut buf).unwrap();
                (buf[0] == 1, i32::from(buf[1]))
            }
        }
    }

    #[test]
    #[allow(unsafe_code)] // raw system calls
    fn unlisted_calls_fail_with_enosys_denied_ones_with_eperm_listed_ones_work() {
        // SAFETY: each call gets arguments it rejects or ignores; none touches memory.
        let unlisted = in_filtered_child(|| unsafe {
            libc::syscall(libc::SYS_io_uring_setup, 1, std::ptr::null::<u8>())
        });
        assert_eq!(unlisted, (false, libc::ENOSYS));
        // SAFETY: as above (a NULL attribute pointer).
        let denied = in_filtered_child(|| unsafe {
            libc::syscall(
                libc::SYS_perf_event_open,
                std::ptr::null::<u8>(),
                0,
                -1,
                -1,
                0,
            )
        });
        assert_eq!(denied, (false, libc::EPERM));
        // SAFETY: getppid has no arguments.
        let listed = in_filtered_child(|| unsafe { libc::syscall(libc::SYS_getppid) });
        assert!(listed.0, "getppid failed with errno {}", listed.1);
    }

    #[test]
    #[allow(unsafe_code)] // fork: the filter is installed in a child, not in the test process
    fn an_installed_filter_refuses_unshare_in_a_child() {
        // Fork a child (the test binary's threads are not copied) and install there.
        let programs = filters().unwrap();
        // SAFETY: the child only makes async-signal-safe calls (prctl, seccomp,
        // unshare, _exit) before exiting.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let code = match install(&programs) {
                    Err(_) => 2,
                    Ok(()) => match nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER) {
                        Err(nix::errno::Errno::EPERM) => 0,
                        _ => 1,
                    },
                };
                // SAFETY: _exit ends the forked child without running the parent's
                // destructors or atexit handlers.
                unsafe { libc::_exit(code) };
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
    }
}
