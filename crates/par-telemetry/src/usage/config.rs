//! Settings of the usage ledger.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;

use super::UsageError;

/// How hard SQLite syncs each commit; see the module docs for what each can lose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// `synchronous=NORMAL`: survives process crashes; power loss may roll back the newest
    /// commits.
    #[default]
    Normal,
    /// `synchronous=FULL`: one fsync per batch; survives power loss too.
    Full,
}

impl Synchronous {
    pub(crate) fn pragma_value(self) -> &'static str {
        match self {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    }
}

/// Counters the ledger bumps. Unregistered by default; pass
/// [`crate::Metrics::usage_counters`] to expose them.
#[derive(Debug, Clone, Default)]
pub struct UsageCounters {
    /// Records committed.
    pub written: Counter,
    /// Records dropped: queue full, ledger closed, or shed after repeated write failures.
    pub dropped: Counter,
}

/// Tunables of [`super::UsageLedger`].
#[derive(Debug, Clone)]
pub struct UsageConfig {
    /// Records that may wait for the writer; past it, records are dropped and counted.
    pub capacity: usize,
    /// Longest time a record waits before its batch is committed.
    pub flush_interval: Duration,
    /// Records that trigger a commit before the interval ends.
    pub batch_size: usize,
    /// Sync policy of each commit.
    pub synchronous: Synchronous,
    /// Largest serialised size of a record's `reported` object; larger ones keep numeric
    /// fields first and gain [`super::TRUNCATED_KEY`].
    pub max_reported_bytes: usize,
    /// Where written and dropped records are counted.
    pub counters: UsageCounters,
    /// Records older than this are deleted (and their pages returned to the file system)
    /// by the writer's maintenance pass; `None` keeps them forever.
    pub retention: Option<Duration>,
    /// A warning is logged at each maintenance pass while the ledger file (with its WAL)
    /// is larger than this.
    pub size_warning_bytes: Option<u64>,
    /// Time between maintenance passes (the first runs when the ledger opens).
    pub maintenance_interval: Duration,
}

impl Default for UsageConfig {
    fn default() -> Self {
        UsageConfig {
            capacity: 10_000,
            flush_interval: Duration::from_secs(1),
            batch_size: 500,
            synchronous: Synchronous::Normal,
            max_reported_bytes: 4096,
            counters: UsageCounters::default(),
            // Kept forever unless the caller says otherwise (`par serve`: 90 days).
            retention: None,
            size_warning_bytes: None,
            maintenance_interval: Duration::from_secs(3600),
        }
    }
}

impl UsageConfig {
    /// Rejects settings that would make the writer spin or never commit.
    pub(crate) fn validate(&self) -> Result<(), UsageError> {
        let problem = if self.capacity == 0 {
            Some(("capacity", "must be at least 1"))
        } else if self.batch_size == 0 {
            Some(("batch_size", "must be at least 1"))
        } else if self.maintenance_interval.is_zero() {
            Some(("maintenance_interval", "must be longer than zero"))
        } else if self.flush_interval.is_zero() {
            Some(("flush_interval", "must be longer than zero"))
        } else {
            None
        };
        match problem {
            Some((setting, reason)) => Err(UsageError::Config { setting, reason }),
            None => Ok(()),
        }
    }
}
