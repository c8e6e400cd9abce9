//! A package's zygote: one interpreter started the way a worker is (same program, jail,
//! environment, `sys.path` and cwd) that imports the package's entrypoint once and then
//! forks workers on request. A forked worker inherits the jail, the environment and the
//! seccomp filter from the zygote, so it keeps every promise of a freshly started one,
//! and starts in a few milliseconds instead of an interpreter start plus imports.
//!
//! Protocol (the worker's framing, on the zygote's own socket): the zygote sends READY
//! (or FATAL: the entrypoint failed to import); the runtime sends FORK with the path of a
//! new worker socket in the zygote's socket folder (the folder the jail binds); the
//! zygote forks, answers FORKED `{"pid"}`, and the child connects there and is a worker.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixListener;

use crate::child::Watched;
use crate::error::WorkerError;
use crate::output;
use crate::protocol::{self, from_worker, to_worker};
use crate::worker::{self, Worker, WorkerInfo, WorkerSpec};

/// A running zygote. Dropping it kills the process (and, in a jail, every worker it
/// forked: they live in its PID namespace).
pub struct Zygote {
    info: WorkerInfo,
    process: Watched,
    /// One fork at a time: a FORK and its FORKED answer are a pair.
    control: tokio::sync::Mutex<Control>,
    next: AtomicU64,
    socket_dir: tempfile::TempDir,
}

struct Control {
    read: BufReader<OwnedReadHalf>,
    write: OwnedWriteHalf,
}

impl Zygote {
    /// Starts the zygote and waits until it has imported the entrypoint.
    pub async fn spawn(spec: &WorkerSpec) -> Result<Zygote, WorkerError> {
        let socket_dir =
            crate::socket_dir::create(crate::socket_dir::WORKER).map_err(WorkerError::Channel)?;
        let socket_path = socket_dir.path().join("z");
        let listener = UnixListener::bind(&socket_path).map_err(WorkerError::Channel)?;
        let role = Some(("PAR_WORKER_ZYGOTE", "1".into()));
        let mut child = worker::start_process(spec, socket_dir.path(), &socket_path, role)?;
        let label = &spec.program.label;
        // Forked workers write to the zygote's pipes: one budget covers them all.
        let budget = &spec.program.log_budget;
        output::forward(
            child.stdout.take().expect("piped"),
            label.clone(),
            "stdout",
            budget.clone(),
        );
        output::forward(
            child.stderr.take().expect("piped"),
            label.clone(),
            "stderr",
            budget.clone(),
        );
        let process = Watched::start(child, label.clone(), "zygote");
        let timeout = spec.program.startup_timeout;
        let stream = worker::accept_worker(&listener, process.exit_receiver(), timeout).await?;
        let _ = std::fs::remove_file(&socket_path);
        let (read, write) = stream.into_split();
        let mut read = BufReader::with_capacity(1024, read);
        let info = worker::read_ready(&mut read, spec).await?;
        Ok(Zygote {
            info,
            process,
            control: tokio::sync::Mutex::new(Control { read, write }),
            next: AtomicU64::new(1),
            socket_dir,
        })
    }

    /// Forks a worker and waits for its READY.
    pub async fn fork(&self, spec: &WorkerSpec) -> Result<Worker, WorkerError> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let path = self.socket_dir.path().join(format!("w{n}"));
        let listener = UnixListener::bind(&path).map_err(WorkerError::Channel)?;
        let accepted = self.ask_fork(n, &path, &listener, spec).await;
        let _ = std::fs::remove_file(&path);
        let stream = accepted?;
        // SO_PEERCRED names the worker in the runtime's PID namespace, whatever the jail's.
        let pid = stream
            .peer_cred()
            .ok()
            .and_then(|c| c.pid())
            .and_then(|p| u32::try_from(p).ok())
            .ok_or_else(|| WorkerError::Protocol("a forked worker without a pid".into()))?;
        Worker::adopt(spec, stream, pid).await
    }

    async fn ask_fork(
        &self,
        n: u64,
        path: &std::path::Path,
        listener: &UnixListener,
        spec: &WorkerSpec,
    ) -> Result<tokio::net::UnixStream, WorkerError> {
        let path = path.as_os_str().as_encoded_bytes();
        let mut control = self.control.lock().await;
        let frame = protocol::encode(to_worker::FORK, n, &[path]);
        let gone = |_| WorkerError::Gone;
        control.write.write_all(&frame).await.map_err(gone)?;
        let timeout = spec.program.startup_timeout;
        let answer = tokio::time::timeout(
            timeout,
            protocol::read_frame(&mut control.read, spec.max_frame),
        )
        .await
        .map_err(|_| WorkerError::StartupTimeout(timeout))?
        .map_err(|_| WorkerError::Gone)?;
        if answer.kind != from_worker::FORKED || answer.call_id != n {
            let kind = answer.kind;
            return Err(WorkerError::Protocol(format!(
                "zygote answered {kind} to FORK"
            )));
        }
        drop(control);
        worker::accept_worker(listener, self.process.exit_receiver(), timeout).await
    }

    /// Whether the process still runs (a dead zygote is started again by its pool).
    pub fn is_alive(&self) -> bool {
        !self.process.has_exited()
    }

    /// The process the runtime started (in a jail: its launcher).
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn info(&self) -> &WorkerInfo {
        &self.info
    }

    /// Stops the zygote: SHUTDOWN, then SIGTERM after half of `grace`, then SIGKILL.
    pub async fn stop(&self, grace: Duration) {
        if let Ok(mut control) = self.control.try_lock() {
            let _ = control
                .write
                .write_all(&protocol::encode(to_worker::SHUTDOWN, 0, &[]))
                .await;
        }
        if tokio::time::timeout(grace / 2, self.process.exited())
            .await
            .is_ok()
        {
            return;
        }
        self.process.signal(nix::sys::signal::Signal::SIGTERM);
        if tokio::time::timeout(grace / 2, self.process.exited())
            .await
            .is_ok()
        {
            return;
        }
        self.process.kill_now();
        self.process.exited().await;
    }

    /// SIGKILL, at once.
    pub fn kill_now(&self) {
        self.process.kill_now();
    }

    /// Resolves when the process has exited.
    pub async fn exited(&self) -> String {
        self.process.exited().await.text
    }
}
