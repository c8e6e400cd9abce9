//! What a call receives from its worker.

use bytes::Bytes;

use crate::outcall::Outcall;

/// What a call receives from its worker.
#[derive(Debug)]
pub enum Reply {
    /// The handler returned; the payload is its JSON result.
    Result(Bytes),
    /// The handler raised.
    Error(AgentFailure),
    /// A streaming handler yielded one JSON item.
    Item(Bytes),
    /// A streaming handler finished.
    End,
    /// The handler reported usage (a JSON object); the call goes on.
    Usage(Bytes),
    /// The handler calls another agent and waits for the answer; the call goes on.
    Outcall(Outcall),
    /// The worker died or the channel broke before the call finished.
    Crashed,
    /// The worker sent a reply over the frame limit; the worker is being replaced.
    Oversized { len: usize, limit: usize },
}

impl Reply {
    /// True for the reply that ends a call.
    pub(crate) fn is_final(&self) -> bool {
        !matches!(self, Reply::Item(_) | Reply::Usage(_) | Reply::Outcall(_))
    }
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct AgentFailure {
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
    /// Set by the worker itself (not agent code) for failures with a runtime error code,
    /// e.g. `result_too_large`.
    #[serde(default)]
    pub code: Option<String>,
}
