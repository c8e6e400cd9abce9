//! `par __jail`: the launcher the runtime starts for every jailed process. It reads the
//! spec from [`SPEC_VAR`], enters the namespaces, forks the jail's PID 1 and mirrors its
//! exit status. Three processes:
//!
//! * the launcher, in the runtime's PID namespace: forwards SIGTERM/SIGINT/SIGHUP,
//!   kills the jail when the runtime goes away (its stdin pipe closes), leaves the cgroup;
//! * PID 1 of the jail: builds the root, applies limits and seccomp, starts the program,
//!   forwards signals and reaps orphans; when it exits the kernel kills the whole jail;
//! * the program (python), as the sandbox user without capabilities.

use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

use crate::cgroup::{GroupLimits, JailGroups};
use crate::egress;
use crate::error::{JailError, EXIT_SETUP, MARKER};
use crate::jail::Prepared;
use crate::spec::{JailSpec, Network};

/// The environment variable carrying the spec (JSON) to the launcher.
pub const SPEC_VAR: &str = "PAR_JAIL_SPEC";
/// The hidden subcommand.
pub const SUBCOMMAND: &str = "__jail";
/// The environment variable carrying the runtime's [`BUILD_ID`] to the launcher.
pub const BUILD_VAR: &str = "PAR_JAIL_BUILD";
/// A fingerprint of the jail code this binary was built from (see `build.rs`).
pub const BUILD_ID: &str = env!("PAR_SANDBOX_BUILD_ID");

const FORWARDED: &[Signal] = &[
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

/// The launcher's `main`: returns the exit code to end the process with.
pub fn main() -> i32 {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{MARKER}{e}");
            EXIT_SETUP
        }
    }
}

#[allow(unsafe_code)] // fork: the jail's PID 1 and its parent
fn run() -> Result<i32, JailError> {
    check_build()?;
    let text = std::env::var(SPEC_VAR)
        .map_err(|_| JailError::new("jail spec", format!("{SPEC_VAR} is not set")))?;
    let spec: JailSpec =
        serde_json::from_str(&text).map_err(|e| JailError::new("jail spec", e.to_string()))?;
    let mut prepared = Prepared::new(spec)?;
    let parents = prepared.spec.cgroup_parents();
    let limits = GroupLimits {
        pids: prepared.spec.limits.pids,
        memory_bytes: prepared.spec.limits.memory_bytes,
    };
    let group = match parents.version() {
        Some(_) => Some(JailGroups::join(&parents, limits, std::process::id())?),
        None => None,
    };
    prepared.enter_namespaces()?;
    let mut _handover = None;
    if prepared.spec.network == Network::Egress {
        let (port, channel) = egress::hand_over()?;
        prepared.spec.exec.env.extend(egress::proxy_env(port));
        _handover = Some(channel);
    }
    let signals = block_signals()?;
    // SAFETY: the launcher is single-threaded (started as `par __jail` and nothing
    // spawned a thread), so the child may do anything the parent could.
    let code = match unsafe { fork() }.map_err(|e| JailError::new("fork", e.to_string()))? {
        ForkResult::Child => {
            drop(signals);
            let code = match jail_init(&prepared) {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("{MARKER}{e}");
                    EXIT_SETUP
                }
            };
            std::process::exit(code);
        }
        ForkResult::Parent { child } => supervise(child, &signals),
    };
    if let Some(group) = group {
        // Say why the jail died when the kernel, not the runtime, enforced the memory
        // limit: the runtime logs this line with the worker's other output.
        let kills = group.oom_kills();
        if kills > 0 {
            eprintln!(
                "par-jail: the jail's cgroup memory limit ({} bytes) was reached: \
                 the kernel killed {kills} process(es)",
                limits.memory_bytes.unwrap_or_default()
            );
        }
        group.leave();
    }
    Ok(code)
}

/// A launcher built from other jail code than the runtime's might not understand the
/// spec it is given: refuse rather than build a different jail.
fn check_build() -> Result<(), JailError> {
    match std::env::var(BUILD_VAR) {
        Ok(id) if id == BUILD_ID => Ok(()),
        Ok(id) => Err(JailError::new(
            "launcher build",
            format!(
                "this launcher was built from jail code {BUILD_ID}, the runtime from {id}: \
                 install par and par-jail from the same build"
            ),
        )),
        Err(_) => Err(JailError::new(
            "launcher build",
            format!("{BUILD_VAR} is not set"),
        )),
    }
}

fn block_signals() -> Result<SignalFd, JailError> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    for s in FORWARDED {
        set.add(*s);
    }
    set.thread_block()
        .map_err(|e| JailError::new("signals", e.to_string()))?;
    SignalFd::new(&set).map_err(|e| JailError::new("signals", e.to_string()))
}

/// The launcher waits for the jail, forwarding signals; when its stdin (a pipe whose
/// other end only the runtime holds) closes, the runtime is gone: the jail is killed.
fn supervise(child: Pid, signals: &SignalFd) -> i32 {
    let stdin = std::io::stdin();
    let watch_stdin = is_pipe(stdin.as_fd());
    loop {
        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        if watch_stdin {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        if poll(&mut fds, PollTimeout::NONE).is_err() {
            continue;
        }
        let runtime_gone = fds
            .get(1)
            .and_then(PollFd::revents)
            .is_some_and(|r| !r.is_empty());
        if runtime_gone {
            let _ = kill(child, Signal::SIGKILL);
        }
        if let Some(code) = handle_signals(child, signals) {
            return code;
        }
    }
}

fn is_pipe(fd: std::os::fd::BorrowedFd<'_>) -> bool {
    nix::sys::stat::fstat(fd)
        .map(|s| s.st_mode & libc::S_IFMT == libc::S_IFIFO)
        .unwrap_or(false)
}

/// Forwards pending signals to `child`; returns its exit code once it has exited.
fn handle_signals(child: Pid, signals: &SignalFd) -> Option<i32> {
    while let Ok(Some(info)) = signals.read_signal() {
        let signal = Signal::try_from(info.ssi_signo as i32).ok();
        if let Some(signal) = signal.filter(|s| FORWARDED.contains(s)) {
            let _ = kill(child, signal);
        }
        if signal == Some(Signal::SIGCHLD) {
            break;
        }
    }
    reap(child)
}

/// Reaps every exited child; `Some(code)` once `main` is among them.
fn reap(main: Pid) -> Option<i32> {
    let mut result = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == main => result = Some(code),
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == main => {
                result = Some(128 + signal as i32)
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return result,
            Ok(_) => {}
        }
    }
}

/// PID 1 of the jail: builds it, starts the program, then forwards and reaps.
#[allow(unsafe_code)] // fork: the jail's PID 1 and its parent
fn jail_init(prepared: &Prepared) -> Result<i32, JailError> {
    // If the launcher dies, so does the jail (and with PID 1, everything in it).
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .map_err(|e| JailError::new("prctl", e.to_string()))?;
    prepared.enter_root()?;
    let signals = block_signals()?;
    let exec = ExecArgs::new(prepared)?;
    // SAFETY: PID 1 is single-threaded (forked from the single-threaded launcher).
    match unsafe { fork() }.map_err(|e| JailError::new("fork", e.to_string()))? {
        ForkResult::Child => {
            drop(signals);
            let Err(e) = exec.run();
            eprintln!("{MARKER}{e}");
            std::process::exit(127);
        }
        ForkResult::Parent { child } => loop {
            let mut fds = [PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
            let _ = poll(&mut fds, PollTimeout::NONE);
            if let Some(code) = handle_signals(child, &signals) {
                return Ok(code);
            }
        },
    }
}

/// The program's argv, environment and cwd, converted before forking.
struct ExecArgs {
    program: CString,
    args: Vec<CString>,
    env: Vec<CString>,
    cwd: std::path::PathBuf,
}

impl ExecArgs {
    fn new(prepared: &Prepared) -> Result<ExecArgs, JailError> {
        let bad = |e: std::ffi::NulError| JailError::new("jail spec", format!("NUL in exec: {e}"));
        let exec = &prepared.spec.exec;
        let program = CString::new(exec.program.as_os_str().as_bytes()).map_err(bad)?;
        let mut args = vec![program.clone()];
        for a in &exec.args {
            args.push(CString::new(a.as_str()).map_err(bad)?);
        }
        let env = exec
            .env
            .iter()
            .map(|(k, v)| CString::new(format!("{k}={v}")))
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad)?;
        Ok(ExecArgs {
            program,
            args,
            env,
            cwd: prepared.work_dir().to_path_buf(),
        })
    }

    /// In the program's process: signals unblocked, stdin from /dev/null, cwd = work dir.
    fn run(&self) -> Result<Infallible, JailError> {
        let fail = |what: &str, e: nix::Error| JailError::new("exec", format!("{what}: {e}"));
        SigSet::all()
            .thread_unblock()
            .map_err(|e| fail("unblock signals", e))?;
        let _ =
            nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
        nix::unistd::chdir(&self.cwd).map_err(|e| fail("chdir", e))?;
        let null = std::fs::File::open("/dev/null")
            .map_err(|e| JailError::new("exec", format!("/dev/null: {e}")))?;
        nix::unistd::dup2_stdin(&null).map_err(|e| fail("stdin", e))?;
        nix::unistd::execve(&self.program, &self.args, &self.env)
            .map_err(|e| fail(&self.program.to_string_lossy(), e))
    }
}
