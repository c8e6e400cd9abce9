//! The accept loop of one listener: every connection its own task, a package's limit
//! held by its policy, nothing shared between packages on the data path.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::conn::{self, Ctx};
use crate::observer::EgressObserver;
use crate::policy::EgressPolicy;

/// Serves the egress proxy for `package` on `listener` (normally the listener the jail
/// launcher bound on `127.0.0.1:<port>` inside the package's network namespace).
///
/// Runs until the listener fails for good (an error other than a transient one such as
/// running out of file descriptors) or until this future is dropped: the connections
/// run as tasks owned by it, so dropping it (e.g. aborting the task that runs it when the
/// package stops) also ends every connection it accepted. Connections beyond the
/// policy's `max_connections` are answered `503` and closed.
pub async fn serve(
    listener: TcpListener,
    package: Arc<str>,
    policy: Arc<EgressPolicy>,
    observer: Arc<dyn EgressObserver>,
) {
    let ctx = Ctx {
        package,
        policy,
        observer,
    };
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => dispatch(stream, &ctx, &mut tasks),
                Err(e) if is_transient(&e) => {
                    tracing::warn!(package = %ctx.package, error = %e, "egress proxy accept failed; retrying");
                    // Out of descriptors or buffers: give connections time to close.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => {
                    tracing::warn!(package = %ctx.package, error = %e, "egress proxy listener failed; stopping");
                    return;
                }
            },
            Some(done) = tasks.join_next() => {
                if let Err(e) = done {
                    if e.is_panic() {
                        tracing::error!(package = %ctx.package, error = %e, "egress connection task panicked");
                    }
                }
            }
        }
    }
}

fn dispatch(stream: tokio::net::TcpStream, ctx: &Ctx, tasks: &mut JoinSet<()>) {
    if let Ok(slot) = ctx.policy.slots.clone().try_acquire_owned() {
        let ctx = ctx.clone();
        tasks.spawn(async move {
            conn::handle(stream, ctx).await;
            drop(slot);
        });
    } else if let Ok(slot) = ctx.policy.rejecting.clone().try_acquire_owned() {
        let ctx = ctx.clone();
        tasks.spawn(async move {
            conn::reject(stream, ctx).await;
            drop(slot);
        });
    } else {
        // Past even the answering slots: close at once, still counted.
        drop(stream);
        conn::Record::new(ctx.clone()).finish(crate::Outcome::Overloaded, Some("dropped"));
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc_codes::EMFILE | libc_codes::ENFILE | libc_codes::ENOBUFS | libc_codes::ENOMEM)
    ) || matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// The errno values of running out of descriptors or memory (Linux).
mod libc_codes {
    pub(super) const ENOMEM: i32 = 12;
    pub(super) const ENFILE: i32 = 23;
    pub(super) const EMFILE: i32 = 24;
    pub(super) const ENOBUFS: i32 = 105;
}
