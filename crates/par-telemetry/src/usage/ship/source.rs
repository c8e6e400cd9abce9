//! The local side: committed rows of the SQLite ledger, read in rowid order.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection};

use crate::usage::schema::{self, COLUMNS};
use crate::usage::{UsageError, UsageRecord};

/// A read-only connection to the ledger file. WAL readers see only committed batches and
/// never block the writer.
pub(crate) struct Source {
    conn: Connection,
    path: PathBuf,
}

impl Source {
    pub(crate) fn open(path: &Path) -> Result<Self, UsageError> {
        Ok(Source {
            conn: schema::open_reader(path)?,
            path: path.to_path_buf(),
        })
    }

    pub(crate) fn ledger_id(&self) -> Result<String, UsageError> {
        schema::ledger_id(&self.conn, &self.path)
    }

    /// Up to `limit` records with a rowid above `mark`, lowest first, with their rowids.
    ///
    /// Rowids grow in commit order: the one writer assigns `max(id) + 1` inside its write
    /// transaction and rows are never deleted, so no row can later appear below a mark.
    pub(crate) fn after(
        &self,
        mark: i64,
        limit: usize,
    ) -> Result<Vec<(i64, UsageRecord)>, UsageError> {
        let sql = format!(
            "SELECT {COLUMNS}, u.id FROM usage_records u WHERE u.id > ?1 ORDER BY u.id LIMIT ?2"
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut statement = self.conn.prepare_cached(&sql).map_err(self.err())?;
        let rows = statement
            .query_map(params![mark, limit], |row| {
                Ok((row.get(13)?, schema::record_from_row(row)?))
            })
            .map_err(self.err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.err())
    }

    /// Records with a rowid above `mark`: what is not in PostgreSQL yet.
    pub(crate) fn count_after(&self, mark: i64) -> Result<i64, UsageError> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM usage_records WHERE id > ?1",
                [mark],
                |row| row.get(0),
            )
            .map_err(self.err())
    }

    fn err(&self) -> impl FnOnce(rusqlite::Error) -> UsageError + '_ {
        UsageError::sqlite(&self.path)
    }
}
