//! Where committed batches go.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection};

use super::schema::{self, signed};
use super::{Synchronous, UsageError, UsageRecord};

/// A store for batches of usage records, driven by the ledger's single writer thread.
///
/// [`SqliteSink`] is the default. A sink for a database shared by a fleet of instances
/// (PostgreSQL) would implement this trait too and be passed to
/// [`super::UsageLedger::with_sink`]; none is built yet. Because records carry the
/// request id, such a sink can make retries idempotent with a unique key on it.
pub trait UsageSink: Send + 'static {
    /// Stores every record of `records` or none of them. On error the ledger keeps the
    /// batch and retries it at the next flush.
    fn write_batch(&mut self, records: &[UsageRecord]) -> Result<(), UsageError>;

    /// Deletes records that started before `before_ms` (Unix milliseconds); how many.
    /// Sinks without retention keep everything.
    fn prune(&mut self, before_ms: i64) -> Result<u64, UsageError> {
        let _ = before_ms;
        Ok(0)
    }

    /// Bytes the store takes on disk, when it knows.
    fn size_bytes(&self) -> Option<u64> {
        None
    }
}

/// The embedded SQLite store.
pub struct SqliteSink {
    conn: Connection,
    path: PathBuf,
}

impl SqliteSink {
    /// Opens or creates the database at `path` in WAL mode with the given sync policy.
    pub fn open(path: &Path, synchronous: Synchronous) -> Result<Self, UsageError> {
        let conn = schema::open_writer(path, synchronous)?;
        Ok(SqliteSink {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn insert_all(&mut self, records: &[UsageRecord]) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(schema::INSERT)?;
            for record in records {
                insert.execute(params![
                    record.request_id,
                    record.caller_subject,
                    record.caller_client_id,
                    record.tenant,
                    record.agent,
                    record.version,
                    record.started_at_ms(),
                    record.duration_ms,
                    record.outcome,
                    signed(record.bytes_in),
                    signed(record.bytes_out),
                    serde_json::Value::Object(record.reported.clone()).to_string(),
                    record.caller_agent,
                ])?;
            }
        }
        tx.commit()
    }
}

impl UsageSink for SqliteSink {
    fn write_batch(&mut self, records: &[UsageRecord]) -> Result<(), UsageError> {
        self.insert_all(records)
            .map_err(|source| UsageError::Sqlite {
                path: self.path.clone(),
                source,
            })
    }

    /// Deletes in bounded chunks (each its own short transaction, so calls recorded
    /// meanwhile are not held up), then hands the freed pages back to the file system.
    fn prune(&mut self, before_ms: i64) -> Result<u64, UsageError> {
        let path = self.path.clone();
        let mut deleted = 0u64;
        loop {
            let n = self
                .conn
                .execute(schema::DELETE_OLD, params![before_ms, PRUNE_CHUNK])
                .map_err(UsageError::sqlite(&path))?;
            deleted += n as u64;
            if n < PRUNE_CHUNK as usize {
                break;
            }
        }
        if deleted > 0 {
            schema::incremental_vacuum(&self.conn).map_err(UsageError::sqlite(&path))?;
        }
        Ok(deleted)
    }

    fn size_bytes(&self) -> Option<u64> {
        let len = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let mut wal = self.path.as_os_str().to_owned();
        wal.push("-wal");
        Some(len(&self.path) + len(Path::new(&wal)))
    }
}

/// Rows deleted per statement by a retention pass.
const PRUNE_CHUNK: i64 = 10_000;
