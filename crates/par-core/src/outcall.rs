//! Agent-to-agent calls: a handler's `par_runtime.call`/`acall`, routed by the host
//! straight to the target's workers (no HTTP hop), private sub-agents included.
//!
//! A nested call carries the outside call's request id and caller identity, gets a child
//! span of its caller's span, may not outlive its caller (its budget is the smaller of
//! the handler's own timeout, the caller's remaining time and the call timeout), and is
//! refused past `max_call_depth` levels, which also ends call cycles. It is metered and
//! logged like any call, with the calling agent named. Cancelling the outer call
//! cancels every call it made.

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use par_worker::Outcall;
use tokio::task::JoinSet;

use crate::error::{ErrorCode, InvokeError};
use crate::invoke::CallMeta;
use crate::metering::CallRecord;
use crate::routing::Reach;
use crate::runtime::Runtime;

/// Outcome recorded for a nested call whose caller ended before it did.
const CANCELLED: &str = "cancelled";

/// The calls one handler makes, ended (aborted) when its own call ends.
pub(crate) struct Outcalls {
    runtime: Weak<Runtime>,
    /// The call the handler runs for.
    meta: CallMeta,
    /// The agent whose handler makes the calls.
    agent: String,
    tasks: JoinSet<()>,
}

impl Outcalls {
    pub(crate) fn new(runtime: &Arc<Runtime>, meta: CallMeta, agent: String) -> Self {
        Outcalls {
            runtime: Arc::downgrade(runtime),
            meta,
            agent,
            tasks: JoinSet::new(),
        }
    }

    /// Starts answering one call; `deadline` is when the calling call times out.
    pub(crate) fn route(&mut self, outcall: Outcall, deadline: tokio::time::Instant) {
        while self.tasks.try_join_next().is_some() {}
        let Some(runtime) = self.runtime.upgrade() else {
            outcall
                .responder
                .refuse(ErrorCode::Draining.as_str(), "the runtime is shutting down");
            return;
        };
        let meta = self.meta.nested(&self.agent);
        self.tasks
            .spawn(async move { runtime.answer(outcall, meta, deadline).await });
    }
}

impl Runtime {
    async fn answer(
        self: Arc<Self>,
        outcall: Outcall,
        meta: CallMeta,
        deadline: tokio::time::Instant,
    ) {
        let Outcall {
            agent,
            payload,
            timeout,
            responder,
        } = outcall;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let budget = [
            timeout.unwrap_or(Duration::MAX),
            left,
            self.config.call_timeout,
        ]
        .into_iter()
        .min()
        .expect("three candidates");
        match self.call_from_agent(&agent, &payload, meta, budget).await {
            Ok(result) => responder.succeed(&result),
            Err(e) => responder.refuse(e.code.as_str(), &e.message),
        }
    }

    /// Runs one nested call to its end and records it like any other call. Cancelled
    /// half-way (its caller ended), it is still recorded, as `cancelled`, with the usage
    /// its handler had reported by then: that usage was spent.
    async fn call_from_agent(
        self: &Arc<Self>,
        id: &str,
        payload: &[u8],
        meta: CallMeta,
        budget: Duration,
    ) -> Result<Bytes, InvokeError> {
        let mut record = CallRecord::start(self.metering(), id, meta, CANCELLED);
        record.bytes_in = payload.len() as u64;
        let result = match self.start_nested(id, payload, &record.meta, budget).await {
            Ok(mut call) => {
                record.taken_by(&call);
                call.finish().await
            }
            Err(e) => Err(e),
        };
        let code = result.as_ref().map_or_else(|e| e.code.as_str(), |_| "ok");
        record.finish(code, result.as_ref().map_or(0, |r| r.len() as u64));
        result
    }

    async fn start_nested(
        self: &Arc<Self>,
        id: &str,
        payload: &[u8],
        meta: &CallMeta,
        budget: Duration,
    ) -> Result<crate::invoke::ActiveCall, InvokeError> {
        if meta.chain.len() > self.config.max_call_depth {
            return Err(InvokeError::new(
                ErrorCode::CallDepthExceeded,
                format!(
                    "agent calls nest deeper than {} levels ({} -> {id})",
                    self.config.max_call_depth,
                    meta.chain.join(" -> ")
                ),
            ));
        }
        if budget.is_zero() {
            return Err(InvokeError::new(
                ErrorCode::Timeout,
                "the calling agent's call has no time left",
            ));
        }
        self.start(id, payload, meta, Reach::Internal, budget).await
    }
}
