//! One call's usage record, and the limits applied before it is queued.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

/// Key added to a `reported` object that was cut down to the size limit.
pub const TRUNCATED_KEY: &str = "_truncated";

/// What one call used. Serialised as in `GET /runtime/usage` and the JSONL export;
/// `started_at` is RFC 3339 in UTC with millisecond precision once stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageRecord {
    pub request_id: String,
    pub caller_subject: Option<String>,
    pub caller_client_id: Option<String>,
    pub tenant: Option<String>,
    /// For an agent-to-agent call, the id of the agent that made it (the caller fields
    /// then name whoever called that agent); `None` for calls from outside.
    #[serde(default)]
    pub caller_agent: Option<String>,
    pub agent: String,
    pub version: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    pub duration_ms: f64,
    /// `ok` or the call's error code.
    pub outcome: String,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// What the agent reported with `par_runtime.report_usage` (e.g. `tokens_in`).
    #[serde(default)]
    pub reported: Map<String, Value>,
}

impl UsageRecord {
    /// `started_at` as milliseconds since the Unix epoch, the stored form.
    pub fn started_at_ms(&self) -> i64 {
        unix_ms(self.started_at)
    }

    /// True unless the outcome is `ok`.
    pub fn is_error(&self) -> bool {
        self.outcome != "ok"
    }
}

/// Milliseconds since the Unix epoch, saturating far outside the representable range.
pub(crate) fn unix_ms(at: OffsetDateTime) -> i64 {
    let ms = at.unix_timestamp_nanos() / 1_000_000;
    i64::try_from(ms).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX })
}

/// The instant `ms` milliseconds after the Unix epoch, in UTC.
pub(crate) fn from_unix_ms(ms: i64) -> OffsetDateTime {
    let nanos = i128::from(ms) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `reported` cut down to `max_bytes` of JSON: numeric fields are kept first (they are
/// what billing sums), then others while they fit, and [`TRUNCATED_KEY`] marks the cut.
pub(crate) fn bound_reported(reported: Map<String, Value>, max_bytes: usize) -> Map<String, Value> {
    if json_len(&reported) <= max_bytes {
        return reported;
    }
    let (numbers, others): (Vec<_>, Vec<_>) = reported
        .into_iter()
        .partition(|(_, value)| value.is_number());
    let mut kept = Map::new();
    let mut used = 2 + entry_len(TRUNCATED_KEY, &Value::Bool(true));
    for (key, value) in numbers.into_iter().chain(others) {
        let size = entry_len(&key, &value);
        if used + size <= max_bytes {
            used += size;
            kept.insert(key, value);
        }
    }
    kept.insert(TRUNCATED_KEY.to_owned(), Value::Bool(true));
    kept
}

fn json_len(value: &impl Serialize) -> usize {
    serde_json::to_string(value).map_or(usize::MAX, |text| text.len())
}

/// Bytes `"key":value,` takes in the serialised object.
fn entry_len(key: &str, value: &Value) -> usize {
    json_len(&key)
        .saturating_add(json_len(value))
        .saturating_add(2)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn small_reports_pass_unchanged() {
        let reported = json!({"tokens_in": 3, "model": "m"});
        let map = reported.as_object().unwrap().clone();
        assert_eq!(bound_reported(map.clone(), 100), map);
    }

    #[test]
    fn large_reports_keep_numbers_and_mark_the_cut() {
        let reported = json!({"a_blob": "x".repeat(500), "tokens_in": 3, "tokens_out": 4});
        let map = reported.as_object().unwrap().clone();
        let bounded = bound_reported(map, 80);
        assert_eq!(bounded["tokens_in"], 3);
        assert_eq!(bounded["tokens_out"], 4);
        assert!(!bounded.contains_key("a_blob"));
        assert_eq!(bounded[TRUNCATED_KEY], true);
        assert!(json_len(&bounded) <= 80);
    }

    #[test]
    fn unix_ms_round_trips() {
        let at = from_unix_ms(1_700_000_000_123);
        assert_eq!(unix_ms(at), 1_700_000_000_123);
    }
}
