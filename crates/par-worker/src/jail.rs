//! Starting a child inside a `par-sandbox` jail: the launcher command for a [`Launch`],
//! and the egress listener the jail hands back.

use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::PathBuf;
use std::sync::Arc;

use par_sandbox::{Exec, JailSpec};
use tokio::io::AsyncReadExt;
use tokio::process::Command;

use crate::child::Launch;

/// Receives each jail's egress listener (bound on 127.0.0.1 inside the jail) and serves
/// it, e.g. with the runtime's egress proxy. The future is dropped when the jail ends.
pub trait EgressSink: Send + Sync {
    fn serve(
        &self,
        label: String,
        listener: tokio::net::TcpListener,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
}

/// Until an egress proxy is plugged in: accepts and closes every connection, so clients
/// fail fast instead of hanging.
pub struct RefuseEgress;

impl EgressSink for RefuseEgress {
    fn serve(
        &self,
        label: String,
        listener: tokio::net::TcpListener,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tracing::debug!(package = %label, "egress refused: no egress proxy");
                drop(stream);
            }
        })
    }
}

/// How a package's processes are jailed: the launcher binary (`par`, run as
/// `par __jail`), the package's spec template, and where egress listeners go.
#[derive(Clone)]
pub struct Jail {
    pub launcher: PathBuf,
    /// Everything but the program (filled in per process from the [`Launch`]).
    pub spec: JailSpec,
    pub egress: Arc<dyn EgressSink>,
}

impl std::fmt::Debug for Jail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jail")
            .field("launcher", &self.launcher)
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

/// The launcher command for `launch`, and the hand-over socket under `egress`. Its
/// stdin is a pipe the runtime never writes: when the runtime dies, the launcher sees
/// it close and kills the jail.
pub(crate) fn command(
    launch: &Launch<'_>,
    jail: &Jail,
) -> std::io::Result<(Command, Option<StdUnixStream>)> {
    let mut spec = jail.spec.clone();
    let mut env = launch.env.to_vec();
    env.extend(
        launch
            .settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string_lossy().into_owned())),
    );
    spec.exec = Exec {
        program: launch.python.to_path_buf(),
        args: vec!["-u".into(), launch.script.display().to_string()],
        env,
    };
    if let Some(dir) = launch.script.parent() {
        spec.ro_binds.push(dir.to_path_buf());
    }
    spec.rw_binds.extend(launch.binds.iter().cloned());
    spec.work_dir = launch.cwd.to_path_buf();
    let (std_command, handover) = par_sandbox::command::command(&jail.launcher, &spec)?;
    let mut command = Command::from(std_command);
    command.stdin(std::process::Stdio::piped());
    Ok((command, handover))
}

/// Receives the jail's listener and serves it until the jail closes the hand-over socket.
pub(crate) fn serve_egress(channel: StdUnixStream, jail: &Jail) {
    let sink = jail.egress.clone();
    let label = jail.spec.label.clone();
    tokio::spawn(async move {
        let received = tokio::task::spawn_blocking(move || {
            let listener = par_sandbox::egress::receive(&channel)?;
            listener.set_nonblocking(true)?;
            channel.set_nonblocking(true)?;
            Ok::<_, std::io::Error>((listener, channel))
        })
        .await;
        let (listener, channel) = match received {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => {
                tracing::warn!(package = %label, error = %e, "no egress listener from the jail");
                return;
            }
            Err(_) => return,
        };
        let (Ok(listener), Ok(mut channel)) = (
            tokio::net::TcpListener::from_std(listener),
            tokio::net::UnixStream::from_std(channel),
        ) else {
            return;
        };
        let mut byte = [0u8; 1];
        tokio::select! {
            _ = sink.serve(label, listener) => {}
            _ = channel.read(&mut byte) => {}
        }
    });
}
