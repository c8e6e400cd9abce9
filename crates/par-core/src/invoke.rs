//! One invocation: checking the body, building the worker request, and turning worker
//! replies into results, stream events and contract errors.

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;
use par_worker::{Call, Reply};
use serde_json::value::RawValue;

use crate::error::{ErrorCode, InvokeError};
use crate::gate::CallPermit;
use crate::metering::CallerIdentity;
use crate::outcall::Outcalls;
use crate::trace::TraceContext;

/// One step of a streamed call.
#[derive(Debug)]
pub enum StreamEvent {
    /// One item as JSON.
    Item(Bytes),
    Done,
    Failed(InvokeError),
}

/// Usage a handler reported, merged as reports arrive.
pub(crate) type UsageReports =
    std::sync::Arc<std::sync::Mutex<serde_json::Map<String, serde_json::Value>>>;

/// A non-streamed call's result: the handler's return value as JSON.
pub type InvokeOutput = Bytes;

/// The payload the handler receives: the body as sent for a main agent, or with
/// `action` set to the sub-agent's name.
pub(crate) fn handler_payload<'a>(
    body: &'a [u8],
    sub_agent: Option<&str>,
) -> Result<Cow<'a, [u8]>, InvokeError> {
    let raw: &RawValue = serde_json::from_slice(body).map_err(|e| {
        InvokeError::new(
            ErrorCode::BadRequest,
            format!("body is not valid JSON: {e}"),
        )
    })?;
    if !raw.get().starts_with('{') {
        return Err(InvokeError::new(
            ErrorCode::BadRequest,
            "body must be a JSON object",
        ));
    }
    check_python_can_read(raw.get().as_bytes())?;
    let Some(action) = sub_agent else {
        return Ok(Cow::Borrowed(raw.get().as_bytes()));
    };
    let mut object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(raw.get()).expect("validated as a JSON object");
    object.insert(
        "action".into(),
        serde_json::Value::String(action.to_string()),
    );
    Ok(Cow::Owned(
        serde_json::to_vec(&object).expect("a map serialises"),
    ))
}

/// Deepest nesting of arrays and objects accepted: Python's `json` recurses once per
/// level and the interpreter stops near 1,000 frames, so deeper input would fail inside
/// the worker as the agent's error instead of the caller's.
pub(crate) const MAX_JSON_DEPTH: usize = 128;
/// Longest number literal accepted: Python refuses to parse integers of more than 4,300
/// digits (`sys.int_info.default_max_str_digits`).
pub(crate) const MAX_NUMBER_CHARS: usize = 4300;

/// Refuses valid JSON the worker could not parse (too deep, numbers too long), so the
/// caller gets 400 `bad_request` rather than an `agent_error` blamed on the agent.
fn check_python_can_read(json: &[u8]) -> Result<(), InvokeError> {
    let bad = |m: String| Err(InvokeError::new(ErrorCode::BadRequest, m));
    let (mut depth, mut number, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in json {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        let in_number = matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E');
        number = if in_number { number + 1 } else { 0 };
        if number > MAX_NUMBER_CHARS {
            return bad(format!(
                "a number in the body is longer than {MAX_NUMBER_CHARS} characters"
            ));
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return bad(format!(
                        "the body nests deeper than {MAX_JSON_DEPTH} levels"
                    ));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// The `action` a main-agent body names, if any: the kit's main handlers dispatch on it
/// to the package's sub-agents.
pub fn dispatched_action(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Dispatch {
        action: Option<serde_json::Value>,
    }
    // Most bodies never mention it: skip the parse.
    if !body.windows(8).any(|w| w == b"\"action\"") {
        return None;
    }
    let dispatch: Dispatch = serde_json::from_slice(body).ok()?;
    match dispatch.action? {
        serde_json::Value::String(action) => Some(action),
        _ => None,
    }
}

/// A call in flight with its deadline.
pub struct ActiveCall {
    /// The agent id and version that took the call.
    pub agent: String,
    pub version: String,
    call: Call,
    deadline: tokio::time::Instant,
    timeout: Duration,
    /// A plain result already delivered as the stream's only item.
    finished: bool,
    /// Counts the call against its package's limits until the call is dropped.
    _permit: CallPermit,
    /// What the handler reported with `par_runtime.report_usage`, merged; shared so a
    /// caller that drops the call half-way can still meter what was reported.
    usage: UsageReports,
    /// Routes the calls the handler makes to other agents; they end with this call.
    pub(crate) outcalls: Option<Outcalls>,
    /// Receives the package's egress bytes into `usage` while the call is in flight.
    egress: Option<par_telemetry::metrics::EgressCallGuard>,
}

/// Who and what a call belongs to, passed to the worker with the payload.
#[derive(Debug, Clone, Default)]
pub struct CallMeta {
    /// The request id of the outside call; agent-to-agent calls carry it on.
    pub request_id: String,
    /// This call's span; agent code sees it as `par_runtime.traceparent()`.
    pub trace: TraceContext,
    /// Whom the outside call was made for.
    pub caller: CallerIdentity,
    /// For an agent-to-agent call, the agents that called, outermost first.
    pub chain: Vec<String>,
}

impl CallMeta {
    /// The agent that made this call, when another agent made it.
    pub fn caller_agent(&self) -> Option<&str> {
        self.chain.last().map(String::as_str)
    }

    /// The metadata of a call that agent `caller`, running under this one, makes.
    pub(crate) fn nested(&self, caller: &str) -> CallMeta {
        let mut chain = self.chain.clone();
        chain.push(caller.to_string());
        CallMeta {
            request_id: self.request_id.clone(),
            trace: self.trace.child(),
            caller: self.caller.clone(),
            chain,
        }
    }
}

impl ActiveCall {
    pub fn new(call: Call, timeout: Duration, permit: CallPermit) -> Self {
        ActiveCall {
            agent: String::new(),
            version: String::new(),
            call,
            deadline: tokio::time::Instant::now() + timeout,
            timeout,
            finished: false,
            _permit: permit,
            usage: UsageReports::default(),
            outcalls: None,
            egress: None,
        }
    }

    /// Bills the egress bytes of `package` to this call while it is in flight (when it is
    /// the package's only call then; see `par_telemetry::metrics::EgressCallGuard`).
    pub(crate) fn meter_egress(&mut self, metrics: &par_telemetry::Metrics, package: &str) {
        self.egress = Some(metrics.egress_call(package, self.usage.clone()));
    }

    async fn reply(&mut self) -> Result<Reply, InvokeError> {
        loop {
            let reply = tokio::time::timeout_at(self.deadline, self.call.next())
                .await
                .map_err(|_| timeout_error(self.timeout))?;
            match reply {
                Reply::Usage(report) => {
                    merge_usage(&mut self.usage.lock().expect("usage poisoned"), &report)
                }
                Reply::Outcall(outcall) => match &mut self.outcalls {
                    Some(outcalls) => outcalls.route(outcall, self.deadline),
                    // Nothing routes calls here: dropping the request answers it.
                    None => drop(outcall),
                },
                other => return Ok(other),
            }
        }
    }

    /// A handle on the usage reported so far (all of it once the call has finished),
    /// readable after the call is dropped.
    pub(crate) fn usage_reports(&self) -> UsageReports {
        self.usage.clone()
    }

    /// True after `next_event` gave the handler's plain return value (not a generator's
    /// item): the call has nothing more to send but `Done`.
    pub fn returned_plain_result(&self) -> bool {
        self.finished
    }

    /// The next stream event; a plain result is one item followed by `Done`.
    pub async fn next_event(&mut self) -> StreamEvent {
        if self.finished {
            return StreamEvent::Done;
        }
        match self.reply().await {
            Ok(Reply::Item(item)) => StreamEvent::Item(item),
            Ok(Reply::Result(value)) => {
                self.finished = true;
                StreamEvent::Item(value)
            }
            Ok(Reply::End) => {
                self.finished = true;
                StreamEvent::Done
            }
            Ok(other) => {
                self.finished = true;
                StreamEvent::Failed(failure(other))
            }
            Err(e) => {
                self.finished = true;
                StreamEvent::Failed(e)
            }
        }
    }

    /// Waits for the whole result; streamed items are gathered into a JSON array.
    pub async fn collect(mut self) -> Result<InvokeOutput, InvokeError> {
        self.finish().await
    }

    /// Like `collect`, keeping the call (its usage stays readable).
    pub async fn finish(&mut self) -> Result<InvokeOutput, InvokeError> {
        let mut items: Vec<Bytes> = Vec::new();
        loop {
            match self.reply().await? {
                Reply::Result(value) => return Ok(value),
                Reply::Item(item) => items.push(item),
                Reply::End => return Ok(json_array(&items)),
                other => return Err(failure(other)),
            }
        }
    }
}

/// Numbers add up across reports (two calls to an LLM, say); anything else is replaced.
/// The prefix of usage keys only the runtime writes.
const RUNTIME_USAGE_PREFIX: &str = "par.";

fn merge_usage(usage: &mut serde_json::Map<String, serde_json::Value>, report: &[u8]) {
    let Ok(serde_json::Value::Object(report)) = serde_json::from_slice(report) else {
        tracing::warn!("ignoring a usage report that is not a JSON object");
        return;
    };
    for (key, value) in report {
        // `par.*` keys are what the runtime measures (egress bytes): never the agent's.
        if key.starts_with(RUNTIME_USAGE_PREFIX) {
            continue;
        }
        let summed = match (usage.get(&key), &value) {
            (Some(serde_json::Value::Number(a)), serde_json::Value::Number(b)) => add(a, b),
            _ => None,
        };
        usage.insert(key, summed.unwrap_or(value));
    }
}

fn add(a: &serde_json::Number, b: &serde_json::Number) -> Option<serde_json::Value> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        if let Some(sum) = x.checked_add(y) {
            return Some(sum.into());
        }
    }
    serde_json::Number::from_f64(a.as_f64()? + b.as_f64()?).map(serde_json::Value::Number)
}

/// The items (each one JSON value) as one JSON array, without re-parsing them.
pub fn json_array(items: &[Bytes]) -> Bytes {
    let mut out = Vec::with_capacity(items.iter().map(|i| i.len() + 1).sum::<usize>() + 2);
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item);
    }
    out.push(b']');
    out.into()
}

fn timeout_error(timeout: Duration) -> InvokeError {
    InvokeError::new(
        ErrorCode::Timeout,
        format!("the call did not finish within {} s", timeout.as_secs_f64()),
    )
}

fn failure(reply: Reply) -> InvokeError {
    match reply {
        Reply::Error(f) if f.code.as_deref() == Some("result_too_large") => {
            InvokeError::new(ErrorCode::ResultTooLarge, f.message)
        }
        Reply::Error(f) => {
            InvokeError::new(ErrorCode::AgentError, format!("{}: {}", f.kind, f.message))
        }
        Reply::Oversized { len, limit } => InvokeError::new(
            ErrorCode::ResultTooLarge,
            format!("the agent's reply of {len} bytes is over the limit of {limit} bytes"),
        ),
        Reply::Crashed => InvokeError::new(
            ErrorCode::WorkerCrashed,
            "the worker process died during the call",
        ),
        _ => InvokeError::new(ErrorCode::Internal, "unexpected reply from worker"),
    }
}

#[cfg(test)]
mod tests;
