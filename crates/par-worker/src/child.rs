//! A Python child process of the runtime (an agent worker or a package's HTTP app):
//! started with exactly the environment it is given, in its own process group, and
//! watched until it exits. With a [`Jail`], it starts inside a `par-sandbox` jail
//! through the launcher instead.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::sync::{oneshot, watch};

/// A package's Python process as the runtime starts it, the same for a worker and an
/// HTTP app process; each adds its own settings and the folder of its socket.
#[derive(Debug, Clone)]
pub struct Program {
    /// `name@version`, used in logs.
    pub label: String,
    /// The package environment's interpreter.
    pub python: PathBuf,
    /// The host program (`par_worker.py` or `par_asgi.py`), written by `materialize`.
    pub script: PathBuf,
    pub package_root: PathBuf,
    /// The complete environment of the process (nothing is inherited).
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    /// How long the process may take to become ready.
    pub startup_timeout: std::time::Duration,
    /// Run the process in this jail (`None`: unconfined).
    pub jail: Option<Arc<Jail>>,
    /// The package's log budget, shared by all its processes.
    pub log_budget: Arc<crate::log_budget::LogBudget>,
}

impl Program {
    /// Starts the program with the runtime's `settings` after its environment, able to
    /// reach `socket_dir` (the folder of its private socket) from inside a jail too.
    pub fn start(
        &self,
        settings: Vec<(&'static str, OsString)>,
        socket_dir: &Path,
    ) -> std::io::Result<Child> {
        spawn(&Launch {
            python: &self.python,
            script: &self.script,
            env: &self.env,
            settings,
            cwd: &self.cwd,
            jail: self.jail.as_deref(),
            binds: vec![socket_dir.to_path_buf()],
        })
    }
}

/// How to start `python -u script`.
pub struct Launch<'a> {
    pub python: &'a Path,
    pub script: &'a Path,
    /// The complete environment of the process: nothing is inherited.
    pub env: &'a [(String, String)],
    /// The runtime's own settings for the script, added after `env`.
    pub settings: Vec<(&'static str, OsString)>,
    pub cwd: &'a Path,
    /// Run inside this jail (`None`: as the runtime's user, unconfined).
    pub jail: Option<&'a Jail>,
    /// Folders the process must also reach inside the jail, read-write (its socket's).
    pub binds: Vec<PathBuf>,
}

/// Starts the process with stdout and stderr piped and stdin closed.
pub fn spawn(launch: &Launch<'_>) -> std::io::Result<Child> {
    let (mut command, handover) = match launch.jail {
        Some(jail) => crate::jail::command(launch, jail)?,
        None => (direct_command(launch), None),
    };
    command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        // Own process group: a terminal's Ctrl-C reaches the runtime, which then stops its
        // children in order, and a final SIGKILL reaches whatever the child started.
        .process_group(0)
        .kill_on_drop(true);
    let child = command.spawn()?;
    drop(command);
    if let (Some(channel), Some(jail)) = (handover, launch.jail) {
        crate::jail::serve_egress(channel, jail);
    }
    Ok(child)
}

fn direct_command(launch: &Launch<'_>) -> Command {
    let mut command = Command::new(launch.python);
    command
        .arg("-u")
        .arg(launch.script)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .envs(launch.settings.iter().map(|(k, v)| (k, v)))
        .current_dir(launch.cwd)
        .stdin(std::process::Stdio::null());
    command
}

pub use crate::jail::{EgressSink, Jail, RefuseEgress};

/// How the process ended.
#[derive(Debug, Clone)]
pub struct Exit {
    pub code: Option<i32>,
    pub text: String,
}

/// Owns a started child: publishes its exit and kills its process group on request or
/// when dropped (the kill sender drops with it).
pub struct Watched {
    pid: u32,
    exit: watch::Receiver<Option<Exit>>,
    kill: Arc<KillSender>,
}

type KillSender = Mutex<Option<oneshot::Sender<()>>>;

/// Kills a watched process group from elsewhere (e.g. when its channel breaks) without
/// keeping it alive: once the [`Watched`] is dropped, the process is gone anyway.
#[derive(Clone)]
pub struct KillSwitch(Weak<KillSender>);

impl KillSwitch {
    pub fn kill(&self) {
        if let Some(kill) = self.0.upgrade() {
            fire(&kill);
        }
    }
}

fn fire(kill: &KillSender) {
    if let Some(kill) = kill.lock().expect("kill poisoned").take() {
        let _ = kill.send(());
    }
}

impl Watched {
    /// Takes over `child`; `label` and `what` name it in the exit log line.
    pub fn start(mut child: Child, label: String, what: &'static str) -> Watched {
        let pid = child.id().unwrap_or_default();
        let (status_tx, status_rx) = watch::channel(None);
        let (kill_tx, kill_rx) = oneshot::channel::<()>();
        // A jail launcher watches its stdin: held here until the process has exited (tokio's
        // `wait` would close it first, which the launcher takes as the runtime dying).
        let stdin = child.stdin.take();
        tokio::spawn(async move {
            let _stdin = stdin;
            let status = tokio::select! {
                status = child.wait() => status,
                _ = kill_rx => {
                    let _ = signal::killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
                    let _ = child.start_kill();
                    child.wait().await
                }
            };
            // Whatever it started in its process group (plain forks, double forks) goes
            // with it, however it ended: stopped politely, crashed or killed. The group id
            // cannot be reused while any member lives. Only a child that left the group
            // (setsid, setpgid) escapes; under `--sandbox strict` the jail's PID namespace
            // takes those too.
            let _ = signal::killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
            let exit = match status {
                Ok(s) => Exit {
                    code: s.code(),
                    text: s.to_string(),
                },
                Err(e) => Exit {
                    code: None,
                    text: format!("wait failed: {e}"),
                },
            };
            tracing::debug!(package = %label, status = %exit.text, "{what} exited");
            let _ = status_tx.send(Some(exit));
        });
        Watched {
            pid,
            exit: status_rx,
            kill: Arc::new(Mutex::new(Some(kill_tx))),
        }
    }

    /// Takes over a worker forked by a zygote, which is not the runtime's child: it cannot
    /// be waited for, so it counts as exited once it is killed — which its channel ending
    /// does (see `worker::read_loop`), as does dropping this. `pid` is in the runtime's PID
    /// namespace, and the worker leads its own process group.
    pub fn forked(pid: u32, label: String) -> Watched {
        let (status_tx, status_rx) = watch::channel(None);
        let (kill_tx, kill_rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = kill_rx.await;
            let _ = signal::killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
            tracing::debug!(package = %label, pid, "forked worker ended");
            let text = "ended (channel closed, process group killed)".to_string();
            let _ = status_tx.send(Some(Exit { code: None, text }));
        });
        Watched {
            pid,
            exit: status_rx,
            kill: Arc::new(Mutex::new(Some(kill_tx))),
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Watches the exit: `None` while the process runs.
    pub fn exit_receiver(&self) -> watch::Receiver<Option<Exit>> {
        self.exit.clone()
    }

    pub fn has_exited(&self) -> bool {
        self.exit.borrow().is_some()
    }

    /// Resolves when the process has exited.
    pub async fn exited(&self) -> Exit {
        let mut exit = self.exit.clone();
        let status = match exit.wait_for(Option::is_some).await {
            Ok(exit) => exit.clone(),
            Err(_) => None,
        };
        status.unwrap_or(Exit {
            code: None,
            text: "unknown".into(),
        })
    }

    /// Sends `signal` to the process itself unless it has exited.
    pub fn signal(&self, signal: Signal) {
        if !self.has_exited() {
            let _ = signal::kill(Pid::from_raw(self.pid as i32), signal);
        }
    }

    /// SIGKILL to the process group, at once.
    pub fn kill_now(&self) {
        fire(&self.kill);
    }

    /// A handle that kills the process group while this `Watched` lives.
    pub fn kill_switch(&self) -> KillSwitch {
        KillSwitch(Arc::downgrade(&self.kill))
    }
}
