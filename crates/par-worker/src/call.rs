//! One call in flight on a worker, as the runtime holds it.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::protocol::{self, to_worker};
use crate::reply::Reply;
use crate::worker::Shared;

/// One call in flight. Dropping it before the handler finished cancels the handler.
pub struct Call {
    pub(crate) id: u64,
    pub(crate) rx: mpsc::UnboundedReceiver<Reply>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) finished: bool,
}

impl Call {
    pub async fn next(&mut self) -> Reply {
        let reply = self.rx.recv().await.unwrap_or(Reply::Crashed);
        if reply.is_final() {
            self.finished = true;
        }
        reply
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let removed = {
            let mut calls = self.shared.calls.lock().expect("call table poisoned");
            calls.as_mut().and_then(|c| c.remove(&self.id)).is_some()
        };
        if removed {
            let _ = self
                .shared
                .outbox
                .try_send(protocol::encode(to_worker::CANCEL, self.id, &[]));
        }
    }
}
