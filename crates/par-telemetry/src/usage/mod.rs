//! The usage ledger: one [`UsageRecord`] per call, stored in an embedded SQLite database,
//! queried for `GET /runtime/usage` and exported for `par usage export`.
//!
//! # Write path
//!
//! [`UsageLedger::record`] never blocks: it puts the record on a bounded queue
//! ([`UsageConfig::capacity`]) read by one writer thread, which commits batches in one
//! transaction each, at the latest [`UsageConfig::flush_interval`] after the oldest
//! uncommitted record arrived or as soon as [`UsageConfig::batch_size`] records wait.
//!
//! When the queue is full the record is **dropped and counted**
//! (`par_usage_records_dropped_total`, [`UsageLedger::dropped`], and a warning at each
//! power of two). The queue fills only when the database cannot keep up with thousands of
//! records for a sustained period, that is when the disk has stalled; waiting on the request
//! path then would turn a metering fault into an outage of every agent, and a short wait
//! would not help against a stall anyway. Alert on the dropped counter; raise `capacity`
//! if bursts cause drops.
//!
//! # Durability (fsync policy)
//!
//! The database runs in WAL mode with `synchronous=NORMAL` by default: a commit writes the
//! WAL but does not fsync it; the WAL is fsynced at checkpoints.
//!
//! * Process crash or SIGKILL: every committed batch survives (it is in the OS page cache),
//!   so at most the records of the last `flush_interval` (plus any queued behind a stalled
//!   disk) are lost.
//! * Power loss or kernel crash: with `NORMAL` the most recent commits since the last
//!   checkpoint may roll back (the database stays consistent). [`Synchronous::Full`]
//!   fsyncs each commit, bounding that loss by the flush interval as well, at one fsync
//!   per batch.
//! * Graceful shutdown: [`UsageLedger::close`] commits everything queued before it returns.
//!   Dropping the last handle without `close` also drains the queue, but on a detached
//!   thread that process exit may cut short.
//!
//! # Sinks
//!
//! Batches go through the [`UsageSink`] trait; [`SqliteSink`] is the only implementation.
//! Queries and exports read the SQLite file through [`UsageReader`].
//!
//! # Fleets
//!
//! [`UsageShipper`] copies committed rows from the SQLite file to a PostgreSQL database
//! shared by several instances, exactly once, without ever blocking or losing a local
//! record; the design is in the `ship` module's source docs (`ship/mod.rs`).

mod config;
mod error;
mod export;
mod ledger;
mod query;
mod reader;
mod record;
mod schema;
mod ship;
mod sink;
mod writer;

#[cfg(test)]
mod retention_tests;
#[cfg(test)]
mod tests;

pub use config::{Synchronous, UsageConfig, UsageCounters};
pub use error::UsageError;
pub use export::ExportFormat;
pub use ledger::{UsageLedger, QUERY_FLUSH_WAIT};
pub use query::{parse_timestamp, Group, GroupBy, Totals, UsageQuery, UsageReport};
pub use reader::UsageReader;
pub use record::{UsageRecord, TRUNCATED_KEY};
pub use ship::{postgres_password, ShipConfig, ShipCounters, ShipStats, UsageShipper};
pub use sink::{SqliteSink, UsageSink};
/// The timestamp type of [`UsageRecord::started_at`] and [`UsageQuery`]; `SystemTime`
/// converts into it with `.into()`.
pub use time::OffsetDateTime;
