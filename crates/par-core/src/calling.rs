//! Starting a call: resolving the agent, checking the body against its schema,
//! admission through the package's gate, picking the least busy live worker, and
//! handing the handler its payload. The result is an [`ActiveCall`] the caller drives.

use std::sync::Arc;

use crate::error::{ErrorCode, InvokeError};
use crate::invoke::{handler_payload, ActiveCall, CallMeta, InvokeOutput};
use crate::outcall::Outcalls;
use crate::pool::PickError;
use crate::routing::Reach;
use crate::runtime::Runtime;
use crate::table::Target;

impl Runtime {
    /// Admits and starts a call on agent `id` with the raw request body.
    ///
    /// A version being replaced stops admitting calls before it drains; a call that
    /// resolved it just before the switch is sent to the new version instead of failing.
    pub async fn start_call(
        self: &Arc<Self>,
        id: &str,
        body: &[u8],
        meta: &CallMeta,
    ) -> Result<ActiveCall, InvokeError> {
        let timeout = self.config.call_timeout;
        self.start(id, body, meta, Reach::Public, timeout).await
    }

    /// As [`Runtime::start_call`], with a deadline of its own instead of `--call-timeout`
    /// (durable runs have theirs).
    pub async fn start_call_within(
        self: &Arc<Self>,
        id: &str,
        body: &[u8],
        meta: &CallMeta,
        timeout: std::time::Duration,
    ) -> Result<ActiveCall, InvokeError> {
        self.start(id, body, meta, Reach::Public, timeout).await
    }

    /// The checks a call's body must pass before anything is admitted (a JSON object
    /// Python can read, the agent's input schema), for callers that answer before the
    /// call starts (durable runs).
    pub fn check_body(&self, target: &Target, body: &[u8]) -> Result<(), InvokeError> {
        handler_payload(body, target.sub_agent.as_deref())?;
        target
            .package
            .schemas
            .check(target.sub_agent.as_deref(), body)
    }

    /// The JSON Schema `target`'s input must match, when its package declares one.
    pub fn target_input_schema(&self, target: &Target) -> Option<serde_json::Value> {
        let sub_agent = target.sub_agent.as_deref();
        target.package.schemas.document(sub_agent).cloned()
    }

    /// Starts a call that may take at most `timeout`, on an agent `reach` may call.
    pub(crate) async fn start(
        self: &Arc<Self>,
        id: &str,
        body: &[u8],
        meta: &CallMeta,
        reach: Reach,
        timeout: std::time::Duration,
    ) -> Result<ActiveCall, InvokeError> {
        for _ in 0..3 {
            let target = self.routing.resolve(id, reach)?;
            let pool = target.package.pool.as_ref().ok_or_else(|| {
                InvokeError::new(
                    ErrorCode::NotInvocable,
                    format!("package '{}' has no entrypoint", target.package.name()),
                )
            })?;
            let payload = handler_payload(body, target.sub_agent.as_deref())?;
            target
                .package
                .schemas
                .check(target.sub_agent.as_deref(), body)?;
            let queued = || {
                let metrics = self.metrics();
                metrics.track_queued(&metrics.agent_label(&target.id))
            };
            let permit = target.package.gate.enter(timeout, queued).await?;
            if target.package.is_retired() {
                continue;
            }
            self.wake(&target.package).await?;
            let wait = self.config.worker_startup_timeout.min(timeout);
            let worker = pool.pick(wait).await.map_err(|e| pick_error(e, &target))?;
            let traceparent = meta.trace.traceparent();
            let request = par_worker::protocol::CallRequest {
                request_id: &meta.request_id,
                traceparent: &traceparent,
                payload: &payload,
            };
            let call = worker.call(request).await.map_err(|e| match e {
                par_worker::WorkerError::TooLarge { .. } => {
                    InvokeError::new(ErrorCode::TooLarge, e.to_string())
                }
                _ => InvokeError::new(ErrorCode::WorkerCrashed, "the agent's worker is gone"),
            })?;
            let mut active = ActiveCall::new(call, timeout, permit);
            active.outcalls = Some(Outcalls::new(self, meta.clone(), target.id.clone()));
            active.agent = target.id.clone();
            active.version = target.package.version().to_string();
            // Only jailed packages reach the network through the metered proxy; without
            // the sandbox there is nothing to attribute, so the call skips the registry.
            if self.config.sandbox.is_some() {
                active.meter_egress(self.metrics(), target.package.name());
            }
            return Ok(active);
        }
        Err(InvokeError::new(
            ErrorCode::Overloaded,
            "the agent is being replaced; retry",
        ))
    }

    /// Calls an agent and waits for its whole result.
    pub async fn invoke(
        self: &Arc<Self>,
        id: &str,
        body: &[u8],
        meta: &CallMeta,
    ) -> Result<InvokeOutput, InvokeError> {
        self.start_call(id, body, meta).await?.collect().await
    }
}

fn pick_error(error: PickError, target: &Target) -> InvokeError {
    match error {
        PickError::CrashLoop => InvokeError::new(
            ErrorCode::WorkerCrashed,
            format!("package '{}' is in a crash loop", target.package.name()),
        ),
        PickError::Unavailable => {
            InvokeError::new(ErrorCode::Starting, "the agent's worker is restarting")
        }
    }
}
