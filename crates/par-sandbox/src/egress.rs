//! The egress listener: bound on 127.0.0.1 inside the jail's network namespace by the
//! launcher and passed to the runtime over an inherited Unix socket (`SCM_RIGHTS`); the
//! runtime's egress proxy accepts on it, so the jail reaches the proxy without any
//! interface but loopback.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

use crate::error::JailError;

/// The launcher's inherited end of the hand-over socket.
pub const HANDOVER_FD: RawFd = 3;

/// Binds the listener inside the jail's network namespace, sends it to the runtime and
/// returns its port and the hand-over socket. Keep the socket open for the jail's
/// lifetime: the runtime stops serving the listener when it closes.
#[allow(unsafe_code)] // adopting the descriptor inherited at a fixed number, or received over SCM_RIGHTS
pub fn hand_over() -> Result<(u16, OwnedFd), JailError> {
    let fail = |e: String| JailError::new("egress listener", e);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| fail(e.to_string()))?;
    let port = listener
        .local_addr()
        .map_err(|e| fail(e.to_string()))?
        .port();
    // SAFETY: fd 3 was set up by the runtime for exactly this and is used only here.
    let channel = unsafe { OwnedFd::from_raw_fd(HANDOVER_FD) };
    let fds = [listener.as_raw_fd()];
    sendmsg::<()>(
        channel.as_raw_fd(),
        &[IoSlice::new(&port.to_be_bytes())],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| fail(format!("send to the runtime: {e}")))?;
    // Close-on-exec: the launcher and PID 1 hold it, the program never sees it.
    nix::fcntl::fcntl(
        &channel,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .map_err(|e| fail(format!("hand-over socket: {e}")))?;
    Ok((port, channel))
}

/// The proxy variables for a jail whose egress listener is on `port`.
pub fn proxy_env(port: u16) -> Vec<(String, String)> {
    let url = format!("http://127.0.0.1:{port}");
    let mut env = Vec::new();
    for name in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
        env.push((name.to_string(), url.clone()));
        env.push((name.to_lowercase(), url.clone()));
    }
    for name in ["NO_PROXY", "no_proxy"] {
        env.push((name.to_string(), "localhost,127.0.0.1".to_string()));
    }
    env
}

/// Runtime side: receives the listener the launcher sent on `channel` (blocking).
#[allow(unsafe_code)] // adopting the descriptor inherited at a fixed number, or received over SCM_RIGHTS
pub fn receive(channel: &std::os::unix::net::UnixStream) -> std::io::Result<std::net::TcpListener> {
    let mut port = [0u8; 2];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(&mut port)];
    let msg = recvmsg::<()>(
        channel.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            if let Some(fd) = fds.first() {
                // SAFETY: the kernel just installed this descriptor for us; we own it.
                let owned = unsafe { OwnedFd::from_raw_fd(*fd) };
                return Ok(std::net::TcpListener::from(owned));
            }
        }
    }
    Err(std::io::Error::other("the jail sent no egress listener"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn proxy_variables_in_both_cases() {
        let env = super::proxy_env(4321);
        for name in ["HTTP_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"] {
            assert!(
                env.contains(&(name.into(), "http://127.0.0.1:4321".into())),
                "{name}"
            );
        }
        assert!(env.contains(&("NO_PROXY".into(), "localhost,127.0.0.1".into())));
    }
}
