//! The jail's seccomp filters: system calls a package never needs and that widen what a
//! process can reach (kernel modules, other namespaces, tracing, keys, mounts) fail with
//! `EPERM`; `clone` that would create namespaces too. `clone3` fails with `ENOSYS`
//! because its flags sit in memory a filter cannot read: the C library then falls back
//! to `clone`, whose flags the filter checks.
//!
//! A denylist, not an allowlist: agent packages bring arbitrary native extensions, and a
//! missing entry in an allowlist kills a worker in ways an operator cannot diagnose.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};

/// Refused outright with `EPERM`.
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

/// The two filters, in the order to install them.
pub fn filters() -> Result<Vec<BpfProgram>, FilterError> {
    Ok(vec![deny_filter()?, clone3_filter()?])
}

fn arch() -> Result<seccompiler::TargetArch, FilterError> {
    std::env::consts::ARCH
        .try_into()
        .map_err(|e| FilterError(format!("{e:?}")))
}

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
    compile(rules, libc::EPERM)
}

fn clone3_filter() -> Result<BpfProgram, FilterError> {
    compile(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        libc::ENOSYS,
    )
}

fn compile(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    errno: libc::c_int,
) -> Result<BpfProgram, FilterError> {
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno as u32),
        arch()?,
    )
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
        assert_eq!(programs.len(), 2);
        assert!(
            programs[0].len() > DENIED.len(),
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
