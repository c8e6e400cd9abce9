//! One worker process: spawning it, its call table, and the tasks that move frames.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::{UnixListener, UnixStream};
use tokio::process::Child;
use tokio::sync::{mpsc, watch};

pub use crate::call::Call;
use crate::child::{self, Exit, Watched};
use crate::error::WorkerError;
use crate::outcall::Outcall;
use crate::output;
use crate::protocol::{self, from_worker, to_worker, Frame, FrameError};
pub use crate::reply::{AgentFailure, Reply};

/// Everything needed to start one worker process.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    /// The process: interpreter, `par_worker.py`, environment, jail.
    pub program: child::Program,
    /// `module.path:function`.
    pub entrypoint: String,
    pub max_frame: usize,
    pub threads: usize,
}

/// How the worker will run the handler, as reported in its READY frame.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct WorkerInfo {
    pub pid: u32,
    pub python: String,
    pub kind: String,
}

type CallTable = Mutex<Option<HashMap<u64, mpsc::UnboundedSender<Reply>>>>;

/// A running worker. Dropping it kills the process (kill-on-drop is the backstop; `stop`
/// is the polite way).
pub struct Worker {
    info: WorkerInfo,
    pub(crate) shared: Arc<Shared>,
    process: Watched,
    /// Its own socket folder; `None` for a forked worker (the zygote's folder).
    _socket_dir: Option<tempfile::TempDir>,
}

/// State used by both the worker handle and in-flight `Call`s.
pub(crate) struct Shared {
    pub(crate) outbox: mpsc::Sender<Bytes>,
    pub(crate) heartbeat: crate::health::Heartbeat,
    pub(crate) abandoned: crate::health::Abandoned,
    max_frame: usize,
    /// `None` once the channel is gone: new calls fail at once instead of hanging.
    pub(crate) calls: CallTable,
    next_id: AtomicU64,
    alive: AtomicBool,
}

impl Worker {
    /// Starts the process and waits until it has imported the entrypoint.
    pub async fn spawn(spec: &WorkerSpec) -> Result<Worker, WorkerError> {
        let socket_dir =
            crate::socket_dir::create(crate::socket_dir::WORKER).map_err(WorkerError::Channel)?;
        let socket_path = socket_dir.path().join("s");
        let listener = UnixListener::bind(&socket_path).map_err(WorkerError::Channel)?;
        let mut child = start_process(spec, socket_dir.path(), &socket_path, None)?;
        output::forward(
            child.stdout.take().expect("piped"),
            spec.program.label.clone(),
            "stdout",
            spec.program.log_budget.clone(),
        );
        output::forward(
            child.stderr.take().expect("piped"),
            spec.program.label.clone(),
            "stderr",
            spec.program.log_budget.clone(),
        );
        let process = Watched::start(child, spec.program.label.clone(), "worker");
        let stream = accept_worker(
            &listener,
            process.exit_receiver(),
            spec.program.startup_timeout,
        )
        .await?;
        let (info, shared) = handshake(stream, spec, process.kill_switch()).await?;
        Ok(Worker {
            info,
            shared,
            process,
            _socket_dir: Some(socket_dir),
        })
    }

    /// A worker a zygote forked, connected on `stream`: waits for its READY.
    pub(crate) async fn adopt(
        spec: &WorkerSpec,
        stream: UnixStream,
        pid: u32,
    ) -> Result<Worker, WorkerError> {
        let process = Watched::forked(pid, spec.program.label.clone());
        let (info, shared) = handshake(stream, spec, process.kill_switch()).await?;
        Ok(Worker {
            info,
            shared,
            process,
            _socket_dir: None,
        })
    }

    /// The process the runtime started (in a jail: its launcher; the `pid` in
    /// [`WorkerInfo`] is the one the worker sees in its own PID namespace).
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn info(&self) -> &WorkerInfo {
        &self.info
    }

    pub fn is_alive(&self) -> bool {
        self.shared.alive.load(Ordering::Acquire)
    }

    /// Calls in flight on this worker.
    pub fn inflight(&self) -> usize {
        let calls = self.shared.calls.lock().expect("call table poisoned");
        calls.as_ref().map_or(0, HashMap::len)
    }

    /// Sends a call to the handler.
    pub async fn call(&self, request: protocol::CallRequest<'_>) -> Result<Call, WorkerError> {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = request.encode(id);
        let len = frame.len() - 4;
        if len > self.shared.max_frame {
            let limit = self.shared.max_frame;
            return Err(WorkerError::TooLarge { len, limit });
        }
        let (tx, rx) = mpsc::unbounded_channel();
        {
            let mut calls = self.shared.calls.lock().expect("call table poisoned");
            calls.as_mut().ok_or(WorkerError::Gone)?.insert(id, tx);
        }
        let call = Call {
            id,
            rx,
            shared: self.shared.clone(),
            finished: false,
        };
        if self.shared.outbox.send(frame).await.is_err() {
            return Err(WorkerError::Gone);
        }
        Ok(call)
    }

    /// Stops the worker politely, then firmly: a SHUTDOWN frame, then SIGTERM after half
    /// of `grace`, then SIGKILL after the other half. Always reaps the process.
    pub async fn stop(&self, grace: Duration) {
        let _ = self
            .shared
            .outbox
            .try_send(protocol::encode(to_worker::SHUTDOWN, 0, &[]));
        if tokio::time::timeout(grace / 2, self.exited()).await.is_ok() {
            return;
        }
        self.process.signal(nix::sys::signal::Signal::SIGTERM);
        if tokio::time::timeout(grace / 2, self.exited()).await.is_ok() {
            return;
        }
        self.kill_now();
        self.exited().await;
    }

    /// SIGKILL, at once (a memory limit exceeded, or the grace period over).
    pub fn kill_now(&self) {
        self.process.kill_now();
    }

    /// Resolves when the process has exited, with a description of how.
    pub async fn exited(&self) -> String {
        self.process.exited().await.text
    }
}

pub(crate) fn start_process(
    spec: &WorkerSpec,
    socket_dir: &std::path::Path,
    socket: &std::path::Path,
    role: Option<(&'static str, std::ffi::OsString)>,
) -> Result<Child, WorkerError> {
    let program = &spec.program;
    let mut settings = vec![
        ("PAR_WORKER_SOCKET", socket.into()),
        ("PAR_WORKER_ROOT", program.package_root.clone().into()),
        ("PAR_WORKER_ENTRY", spec.entrypoint.clone().into()),
        ("PAR_WORKER_THREADS", spec.threads.to_string().into()),
        ("PAR_WORKER_MAX_FRAME", spec.max_frame.to_string().into()),
    ];
    settings.extend(role);
    program
        .start(settings, socket_dir)
        .map_err(|source| WorkerError::Spawn {
            python: program.python.clone(),
            source,
        })
}

pub(crate) async fn accept_worker(
    listener: &UnixListener,
    mut exit: watch::Receiver<Option<Exit>>,
    timeout: Duration,
) -> Result<UnixStream, WorkerError> {
    tokio::select! {
        accepted = listener.accept() => accepted.map(|(s, _)| s).map_err(WorkerError::Channel),
        status = exit.wait_for(Option::is_some) => Err(WorkerError::ExitedDuringStartup {
            status: status.ok().and_then(|s| s.clone()).map(|e| e.text).unwrap_or_default(),
            stderr: String::new(),
        }),
        _ = tokio::time::sleep(timeout) => Err(WorkerError::StartupTimeout(timeout)),
    }
}

/// Waits for READY (or FATAL), then starts the reader and writer tasks.
async fn handshake(
    stream: UnixStream,
    spec: &WorkerSpec,
    kill: child::KillSwitch,
) -> Result<(WorkerInfo, Arc<Shared>), WorkerError> {
    let (read, write) = stream.into_split();
    // A frame is read in four parts (length, kind, id, payload): buffered, that is one
    // syscall for many small frames instead of four per frame. Small, because the buffer
    // is zeroed (resident) per worker, and larger frames bypass it anyway.
    let mut read = BufReader::with_capacity(8 * 1024, read);
    let info = read_ready(&mut read, spec).await?;
    Ok(start_tasks(read, write, info, spec, kill))
}

/// The first frame of a worker or zygote: READY (what it runs) or FATAL (why not).
pub(crate) async fn read_ready<R: tokio::io::AsyncRead + Unpin>(
    read: &mut R,
    spec: &WorkerSpec,
) -> Result<WorkerInfo, WorkerError> {
    let first = tokio::time::timeout(
        spec.program.startup_timeout,
        protocol::read_frame(read, spec.max_frame),
    )
    .await
    .map_err(|_| WorkerError::StartupTimeout(spec.program.startup_timeout))?
    .map_err(|e| WorkerError::Protocol(e.to_string()))?;
    let info = match first.kind {
        from_worker::READY => serde_json::from_slice::<WorkerInfo>(&first.payload)
            .map_err(|e| WorkerError::Protocol(format!("bad READY frame: {e}")))?,
        from_worker::FATAL => {
            let failure: AgentFailure = serde_json::from_slice(&first.payload)
                .map_err(|e| WorkerError::Protocol(format!("bad FATAL frame: {e}")))?;
            return Err(WorkerError::Entrypoint {
                entrypoint: spec.entrypoint.clone(),
                message: format!("{}: {}", failure.kind, failure.message),
            });
        }
        other => {
            return Err(WorkerError::Protocol(format!(
                "unexpected first frame {other}"
            )))
        }
    };
    Ok(info)
}

/// Continues [`handshake`]: the reader and writer tasks.
fn start_tasks(
    read: BufReader<tokio::net::unix::OwnedReadHalf>,
    write: OwnedWriteHalf,
    info: WorkerInfo,
    spec: &WorkerSpec,
    kill: child::KillSwitch,
) -> (WorkerInfo, Arc<Shared>) {
    let (outbox, inbox) = mpsc::channel(1024);
    let shared = Arc::new(Shared {
        outbox,
        max_frame: spec.max_frame,
        calls: Mutex::new(Some(HashMap::new())),
        next_id: AtomicU64::new(1),
        alive: AtomicBool::new(true),
        heartbeat: crate::health::Heartbeat::new(),
        abandoned: crate::health::Abandoned::default(),
    });
    tokio::spawn(write_loop(write, inbox));
    tokio::spawn(read_loop(
        read,
        shared.clone(),
        spec.max_frame,
        spec.program.label.clone(),
        kill,
    ));
    (info, shared)
}

/// Writes queued frames, flushing only when the queue is empty so bursts share syscalls.
async fn write_loop(write: OwnedWriteHalf, mut inbox: mpsc::Receiver<Bytes>) {
    let mut writer = BufWriter::with_capacity(64 * 1024, write);
    while let Some(frame) = inbox.recv().await {
        if writer.write_all(&frame).await.is_err() {
            return;
        }
        while let Ok(frame) = inbox.try_recv() {
            if writer.write_all(&frame).await.is_err() {
                return;
            }
        }
        if writer.flush().await.is_err() {
            return;
        }
    }
}

/// Moves replies to their calls until the channel ends. A channel that ends for any
/// reason ends the process too: a worker that can no longer be reached must not live on
/// (its supervisor then starts a replacement).
async fn read_loop(
    mut read: BufReader<tokio::net::unix::OwnedReadHalf>,
    shared: Arc<Shared>,
    max_frame: usize,
    label: String,
    kill: child::KillSwitch,
) {
    loop {
        match protocol::read_frame(&mut read, max_frame).await {
            Ok(frame) => {
                shared.heartbeat.heard();
                dispatch(&shared, frame, &label)
            }
            Err(FrameError::Closed) => break,
            Err(FrameError::TooLarge {
                len,
                limit,
                call_id,
            }) => {
                tracing::warn!(package = %label, len, limit, "worker sent a frame over the limit: replacing the worker");
                fail_call(&shared, call_id, Reply::Oversized { len, limit });
                break;
            }
            Err(e) => {
                tracing::warn!(package = %label, error = %e, "worker channel failed");
                break;
            }
        }
    }
    shared.alive.store(false, Ordering::Release);
    kill.kill();
    let orphans = shared.calls.lock().expect("call table poisoned").take();
    for (_, tx) in orphans.into_iter().flatten() {
        let _ = tx.send(Reply::Crashed);
    }
}

fn fail_call(shared: &Shared, call_id: u64, reply: Reply) {
    let sender = shared
        .calls
        .lock()
        .expect("call table poisoned")
        .as_mut()
        .and_then(|calls| calls.remove(&call_id));
    if let Some(tx) = sender {
        let _ = tx.send(reply);
    }
}

fn dispatch(shared: &Shared, frame: Frame, label: &str) {
    if frame.kind == from_worker::PONG {
        // A sign of life, already noted, with the worker's abandoned calls.
        shared.abandoned.note(&frame.payload);
        return;
    }
    let mut calls = shared.calls.lock().expect("call table poisoned");
    let Some(calls) = calls.as_mut() else { return };
    let reply = match frame.kind {
        from_worker::RESULT => Reply::Result(frame.payload),
        from_worker::ITEM => Reply::Item(frame.payload),
        from_worker::END => Reply::End,
        from_worker::USAGE => Reply::Usage(frame.payload),
        // A malformed outcall was answered by `parse` already.
        from_worker::OUTCALL => match Outcall::parse(&frame.payload, &shared.outbox) {
            Some(outcall) => Reply::Outcall(outcall),
            None => return,
        },
        from_worker::ERROR => match serde_json::from_slice(&frame.payload) {
            Ok(failure) => Reply::Error(failure),
            Err(_) => Reply::Error(AgentFailure {
                kind: "ProtocolError".into(),
                message: "worker sent an unreadable error".into(),
                code: None,
            }),
        },
        other => {
            tracing::warn!(package = %label, kind = other, "worker sent an unknown frame kind");
            return;
        }
    };
    let last = reply.is_final();
    // A call the host already dropped (cancelled) is simply absent: nothing to deliver.
    let sender = if last {
        calls.remove(&frame.call_id)
    } else {
        calls.get(&frame.call_id).cloned()
    };
    if let Some(tx) = sender {
        let _ = tx.send(reply);
    }
}
