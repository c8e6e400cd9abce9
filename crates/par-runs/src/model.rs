//! What a run is: its status, its record and its events.

use serde::Serialize;

/// Where a run is in its life. The last four never change again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Accepted, waiting for admission (the package's concurrency limit) or a worker.
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    /// The runtime stopped while the run was queued or running.
    Interrupted,
}

impl RunStatus {
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Cancelled,
        RunStatus::Interrupted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Interrupted => "interrupted",
        }
    }

    pub fn parse(text: &str) -> Option<RunStatus> {
        RunStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    pub fn is_terminal(self) -> bool {
        !matches!(self, RunStatus::Queued | RunStatus::Running)
    }
}

/// A failed (or cancelled, or interrupted) run's error: the contract's code and message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunError {
    pub code: String,
    pub error: String,
}

/// One run as stored. Times are milliseconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub run_id: String,
    pub agent: String,
    pub version: Option<String>,
    pub status: RunStatus,
    /// Who created it: the caller's subject (`api-key:{name}` for keys), `anonymous`
    /// with auth off. Only this caller and admins may see the run.
    pub owner: String,
    pub idempotency_key: Option<String>,
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    /// The result as JSON text (a generator's items as a list), when succeeded.
    pub result: Option<String>,
    pub error: Option<RunError>,
}

/// What a new run is created with.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub agent: String,
    pub owner: String,
    pub idempotency_key: Option<String>,
    /// What the run was asked (agent and body, hashed): a replayed idempotency key must
    /// come with the same request.
    pub request_digest: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// One item the handler produced (a plain result is one item).
    Item,
    /// The run succeeded; the last event.
    Done,
    /// The run failed, was cancelled or interrupted; the last event.
    Error,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Item => "item",
            EventKind::Done => "done",
            EventKind::Error => "error",
        }
    }

    pub(crate) fn parse(text: &str) -> EventKind {
        match text {
            "done" => EventKind::Done,
            "error" => EventKind::Error,
            _ => EventKind::Item,
        }
    }

    pub fn is_last(self) -> bool {
        self != EventKind::Item
    }
}

/// One event of a run. `seq` counts from 1 in the order events happened.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEvent {
    pub seq: i64,
    pub kind: EventKind,
    /// JSON text: the item, `{}` for `done`, the error for `error`.
    pub data: String,
}

/// Which runs `GET /runs` lists.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Only this owner's runs; `None` for everyone's (admins).
    pub owner: Option<String>,
    pub agent: Option<String>,
    pub status: Option<RunStatus>,
    pub limit: usize,
}

pub(crate) fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// RFC 3339 with milliseconds, as the API shows times.
pub fn rfc3339(ms: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl RunRecord {
    /// The contract's view of a run (`GET /runs/{id}`).
    pub fn to_json(&self) -> serde_json::Value {
        let result = self
            .result
            .as_deref()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok());
        serde_json::json!({
            "run_id": self.run_id,
            "agent": self.agent,
            "version": self.version,
            "status": self.status,
            "created_at": rfc3339(self.created_ms),
            "started_at": self.started_ms.map(rfc3339),
            "finished_at": self.finished_ms.map(rfc3339),
            "result": result,
            "error": self.error,
        })
    }
}
