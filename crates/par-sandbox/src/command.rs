//! Runtime side: the command that starts a jailed program through the launcher.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use crate::egress::HANDOVER_FD;
use crate::launcher::{BUILD_ID, BUILD_VAR, SPEC_VAR, SUBCOMMAND};
use crate::spec::{JailSpec, Network};

/// `launcher __jail` (`par-jail` ignores the argument) with the spec and the build
/// fingerprint in its environment (and nothing else of the
/// runtime's), plus, under `egress`, the runtime's end of the socket the jail's
/// listener arrives on.
pub fn command(launcher: &Path, spec: &JailSpec) -> std::io::Result<(Command, Option<UnixStream>)> {
    let text = serde_json::to_string(spec).map_err(std::io::Error::other)?;
    let mut command = Command::new(launcher);
    command
        .arg(SUBCOMMAND)
        .env_clear()
        .env(SPEC_VAR, text)
        .env(BUILD_VAR, BUILD_ID);
    let mut handover = None;
    if spec.network == Network::Egress {
        let (ours, theirs) = UnixStream::pair()?;
        pass_as_fd3(&mut command, theirs.into());
        handover = Some(ours);
    }
    Ok((command, handover))
}

#[allow(unsafe_code)] // pre_exec: moving the handover descriptor to fd 3 between fork and exec
fn pass_as_fd3(command: &mut Command, fd: OwnedFd) {
    // SAFETY: the closure runs between fork and exec and only calls dup2/fcntl, which are
    // async-signal-safe; `fd` stays open (owned by the closure) until the command drops.
    unsafe {
        command.pre_exec(move || {
            let raw = fd.as_raw_fd();
            if raw == HANDOVER_FD {
                // dup2 onto itself keeps close-on-exec: clear it instead.
                if libc::fcntl(raw, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(raw, HANDOVER_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
