//! What `GET /runtime/usage` asks for and answers.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::UsageRecord;

/// A usage query. Deserialises from the query string of `GET /runtime/usage`
/// (`?agent=&from=&to=&group_by=agent|caller|day&limit=`, times in RFC 3339), so the HTTP
/// layer can take it with axum's `Query` extractor.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct UsageQuery {
    /// Only this agent's calls; empty means all.
    #[serde(default)]
    pub agent: Option<String>,
    /// Calls that started at or after this instant.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub from: Option<OffsetDateTime>,
    /// Calls that started before this instant.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub to: Option<OffsetDateTime>,
    /// Also aggregate per agent, caller or UTC day.
    #[serde(default)]
    pub group_by: Option<GroupBy>,
    /// Most records to return (newest first); defaults to [`UsageQuery::DEFAULT_LIMIT`],
    /// capped at [`UsageQuery::MAX_LIMIT`]. Totals and groups always cover every match.
    /// Exports return every match unless a limit is given.
    #[serde(default)]
    pub limit: Option<usize>,
}

impl UsageQuery {
    /// Records returned by a query without a limit.
    pub const DEFAULT_LIMIT: usize = 100;
    /// Most records one query returns.
    pub const MAX_LIMIT: usize = 10_000;

    /// The number of records a query returns.
    pub(crate) fn record_limit(&self) -> usize {
        self.limit
            .unwrap_or(Self::DEFAULT_LIMIT)
            .min(Self::MAX_LIMIT)
    }

    /// The agent filter, treating `agent=` as no filter.
    pub(crate) fn agent_filter(&self) -> Option<&str> {
        self.agent.as_deref().filter(|agent| !agent.is_empty())
    }
}

/// Parses an RFC 3339 timestamp such as `2024-03-01T00:00:00Z` (for `--from`/`--to` of
/// `par usage export`); the error text says what is wrong.
pub fn parse_timestamp(text: &str) -> Result<OffsetDateTime, time::error::Parse> {
    OffsetDateTime::parse(text, &Rfc3339)
}

/// How to group aggregates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// By agent id.
    Agent,
    /// By caller: the subject, else the client id; `null` for anonymous calls.
    Caller,
    /// By UTC calendar day (`YYYY-MM-DD`) of the start time.
    Day,
}

/// Sums over a set of records.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub calls: u64,
    /// Calls whose outcome is not `ok`.
    pub errors: u64,
    pub duration_ms: f64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Sums of the numeric fields agents reported (e.g. `tokens_in`); other fields
    /// (e.g. `model`) are not summed.
    pub reported: Map<String, Value>,
}

/// The totals of one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// The agent id, caller or day; `null` for calls without a caller.
    pub key: Option<String>,
    #[serde(flatten)]
    pub totals: Totals,
}

/// The answer of `GET /runtime/usage`: `{"records": [...], "totals": {...}}`, plus
/// `"groups"` when grouped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageReport {
    pub records: Vec<UsageRecord>,
    pub totals: Totals,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<Group>>,
}
