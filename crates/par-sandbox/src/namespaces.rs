//! Entering the new namespaces: the user namespace first (it grants the capabilities the
//! others need, also to an unprivileged runtime), its id maps, then mount, PID, IPC, UTS
//! and, unless the network is the host's, network.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use nix::sched::{unshare, CloneFlags};

use crate::error::JailError;
use crate::plan::id_map;
use crate::spec::Network;

/// Unshares the user namespace and maps the sandbox id to the caller's own uid and gid
/// (the only mapping an unprivileged process may write for itself).
pub(crate) fn enter_user() -> Result<(), JailError> {
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    unshare(CloneFlags::CLONE_NEWUSER).map_err(|e| {
        JailError::new(
            "user namespaces",
            format!("unshare(CLONE_NEWUSER): {e} (check user.max_user_namespaces and kernel.unprivileged_userns_clone)"),
        )
    })?;
    let write = |file: &str, text: &str| {
        std::fs::write(format!("/proc/self/{file}"), text)
            .map_err(|e| JailError::new("user namespace id maps", format!("{file}: {e}")))
    };
    // Unprivileged gid maps need setgroups denied first; it also stops the jail from
    // dropping supplementary groups to get around a group-denied file.
    write("setgroups", "deny")?;
    write("uid_map", &id_map(uid))?;
    write("gid_map", &id_map(gid))
}

/// Unshares the rest; the caller then forks so its child is PID 1 of the new PID
/// namespace.
pub(crate) fn enter_rest(network: Network) -> Result<(), JailError> {
    let mut flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWUTS;
    unshare(flags).map_err(|e| JailError::new("mount/PID/IPC/UTS namespaces", e.to_string()))?;
    if network != Network::Host {
        flags = CloneFlags::CLONE_NEWNET;
        unshare(flags).map_err(|e| JailError::new("network namespaces", e.to_string()))?;
        loopback_up()?;
    }
    Ok(())
}

/// A new network namespace starts with `lo` down; bring it up so loopback works.
fn loopback_up() -> Result<(), JailError> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    let fail = |e: std::io::Error| JailError::new("network namespaces", format!("lo up: {e}"));
    let s = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| fail(e.into()))?;
    set_up(s.as_fd()).map_err(fail)
}

#[allow(unsafe_code)] // two ioctls on an ifreq: loopback up in the new network namespace
fn set_up(socket: BorrowedFd<'_>) -> std::io::Result<()> {
    // SAFETY: `ifreq` is plain data (zero is a valid value); the two ioctls read and
    // write exactly one `ifreq` through a pointer that is valid for the call.
    unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
