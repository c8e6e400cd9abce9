//! The database layout and how connections to it are opened.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior};
use serde_json::{Map, Value};

use super::record::from_unix_ms;
use super::{Synchronous, UsageError, UsageRecord};

/// Bumped with every layout change; a newer file is refused rather than misread.
const SCHEMA_VERSION: i32 = 3;

/// Oldest layout a reader can query as it is: version 3 only added [`META`], so a
/// version-2 file can be exported before a writer has migrated it.
const OLDEST_READABLE: i32 = 2;

const CREATE: &str = "
CREATE TABLE IF NOT EXISTS usage_records (
    id               INTEGER PRIMARY KEY,
    request_id       TEXT    NOT NULL,
    caller_subject   TEXT,
    caller_client_id TEXT,
    tenant           TEXT,
    agent            TEXT    NOT NULL,
    version          TEXT    NOT NULL,
    started_at_ms    INTEGER NOT NULL,
    duration_ms      REAL    NOT NULL,
    outcome          TEXT    NOT NULL,
    bytes_in         INTEGER NOT NULL,
    bytes_out        INTEGER NOT NULL,
    reported         TEXT    NOT NULL,
    caller_agent     TEXT
);
CREATE INDEX IF NOT EXISTS usage_records_started ON usage_records (started_at_ms);
CREATE INDEX IF NOT EXISTS usage_records_agent ON usage_records (agent, started_at_ms);
";

/// Facts about the file itself (version 3): its `ledger_id`.
const META: &str =
    "CREATE TABLE IF NOT EXISTS par_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);";

/// The meta key of the UUID that names this ledger file in a shared PostgreSQL database.
const LEDGER_ID_KEY: &str = "ledger_id";

/// The columns of a record, in the order [`record_from_row`] reads them.
pub(crate) const COLUMNS: &str = "u.request_id, u.caller_subject, u.caller_client_id, \
    u.tenant, u.agent, u.version, u.started_at_ms, u.duration_ms, u.outcome, u.bytes_in, \
    u.bytes_out, u.reported, u.caller_agent";

pub(crate) const INSERT: &str = "INSERT INTO usage_records (request_id, caller_subject, \
    caller_client_id, tenant, agent, version, started_at_ms, duration_ms, outcome, bytes_in, \
    bytes_out, reported, caller_agent) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, \
    ?13)";

/// One chunk of a retention pass, oldest first.
pub(crate) const DELETE_OLD: &str = "DELETE FROM usage_records WHERE id IN \
    (SELECT id FROM usage_records WHERE started_at_ms < ?1 ORDER BY started_at_ms LIMIT ?2)";

/// Brings a version-1 ledger (before agent-to-agent records) to version 2.
const MIGRATE_FROM_1: &str = "ALTER TABLE usage_records ADD COLUMN caller_agent TEXT;";

/// How long a statement waits on a lock held by another connection before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens (creating if needed) the database for writing: WAL, the chosen sync policy,
/// and the current layout.
pub(crate) fn open_writer(path: &Path, sync: Synchronous) -> Result<Connection, UsageError> {
    let mut conn = Connection::open(path).map_err(UsageError::sqlite(path))?;
    ensure_incremental_vacuum(&conn, path)?;
    configure_writer(&conn, sync).map_err(UsageError::sqlite(path))?;
    if user_version(&conn, path)? != SCHEMA_VERSION {
        upgrade(&mut conn, path)?;
    }
    ensure_ledger_id(&conn).map_err(UsageError::sqlite(path))?;
    Ok(conn)
}

/// Retention frees pages with `incremental_vacuum`, which needs `auto_vacuum =
/// INCREMENTAL`. A new file gets it before its first table; a file made before retention
/// existed is converted once with a full `VACUUM` (a copy of the file, once).
fn ensure_incremental_vacuum(conn: &Connection, path: &Path) -> Result<(), UsageError> {
    const INCREMENTAL: i64 = 2;
    let mode: i64 = conn
        .query_row("PRAGMA auto_vacuum", [], |row| row.get(0))
        .map_err(UsageError::sqlite(path))?;
    if mode == INCREMENTAL {
        return Ok(());
    }
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get(0))
        .map_err(UsageError::sqlite(path))?;
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
        .map_err(UsageError::sqlite(path))?;
    if tables > 0 {
        tracing::info!(path = %path.display(), "usage ledger: converting to incremental vacuum (once)");
        conn.execute_batch("VACUUM")
            .map_err(UsageError::sqlite(path))?;
    }
    Ok(())
}

/// Returns the free pages of a retention pass to the file system.
pub(crate) fn incremental_vacuum(conn: &Connection) -> rusqlite::Result<()> {
    // The pragma returns a row per freed page: step through them all.
    let mut statement = conn.prepare("PRAGMA incremental_vacuum")?;
    let mut rows = statement.query([])?;
    while rows.next()?.is_some() {}
    Ok(())
}

/// Generated once per file. Checked at every open, so deleting the row (for a restored or
/// copied file, see the shipper's docs) gives the file a new identity.
fn ensure_ledger_id(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR IGNORE INTO par_meta (key, value) VALUES (?1, ?2)",
        rusqlite::params![LEDGER_ID_KEY, uuid::Uuid::new_v4().to_string()],
    )
    .map(drop)
}

/// Creates or migrates the layout in one transaction. IMMEDIATE takes the write lock
/// before the version is read again, so two processes opening one old file at once
/// migrate it once.
fn upgrade(conn: &mut Connection, path: &Path) -> Result<(), UsageError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(UsageError::sqlite(path))?;
    let steps = match user_version(&tx, path)? {
        0 => format!("{CREATE} {META}"),
        1 => format!("{MIGRATE_FROM_1} {META}"),
        2 => META.to_owned(),
        SCHEMA_VERSION => return Ok(()),
        found => return Err(newer_schema(path, found)),
    };
    tx.execute_batch(&steps)
        .and_then(|()| tx.pragma_update(None, "user_version", SCHEMA_VERSION))
        .and_then(|()| tx.commit())
        .map_err(UsageError::sqlite(path))
}

/// The UUID naming this ledger file, written when the file was created or migrated.
pub(crate) fn ledger_id(conn: &Connection, path: &Path) -> Result<String, UsageError> {
    let sql = "SELECT value FROM par_meta WHERE key = ?1";
    let id: Option<String> = conn
        .query_row(sql, [LEDGER_ID_KEY], |row| row.get(0))
        .optional()
        .map_err(UsageError::sqlite(path))?;
    id.ok_or_else(|| UsageError::Schema {
        path: path.to_path_buf(),
        reason: "no ledger id (open the ledger for writing first)".to_owned(),
    })
}

fn configure_writer(conn: &Connection, sync: Synchronous) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(mode, "usage ledger could not switch to WAL");
    }
    conn.pragma_update(None, "synchronous", sync.pragma_value())
}

/// Opens an existing ledger for reading only; never creates a file.
pub(crate) fn open_reader(path: &Path) -> Result<Connection, UsageError> {
    // Read-write (not read-only) so SQLite may create the WAL index when no writer runs;
    // `query_only` then forbids any change.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(UsageError::sqlite(path))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .and_then(|()| conn.pragma_update(None, "query_only", "ON"))
        .map_err(UsageError::sqlite(path))?;
    match user_version(&conn, path)? {
        OLDEST_READABLE..=SCHEMA_VERSION => Ok(conn),
        0 => Err(UsageError::Schema {
            path: path.to_path_buf(),
            reason: "not a usage ledger (no schema)".to_owned(),
        }),
        found if found < OLDEST_READABLE => Err(UsageError::Schema {
            path: path.to_path_buf(),
            reason: format!("schema version {found} is old: open it with `par serve` once"),
        }),
        found => Err(newer_schema(path, found)),
    }
}

fn user_version(conn: &Connection, path: &Path) -> Result<i32, UsageError> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(UsageError::sqlite(path))
}

fn newer_schema(path: &Path, found: i32) -> UsageError {
    UsageError::Schema {
        path: path.to_path_buf(),
        reason: format!("schema version {found} is newer than this build ({SCHEMA_VERSION})"),
    }
}

/// Reads a row selected with [`COLUMNS`].
pub(crate) fn record_from_row(row: &Row<'_>) -> rusqlite::Result<UsageRecord> {
    Ok(UsageRecord {
        request_id: row.get(0)?,
        caller_subject: row.get(1)?,
        caller_client_id: row.get(2)?,
        tenant: row.get(3)?,
        agent: row.get(4)?,
        version: row.get(5)?,
        started_at: from_unix_ms(row.get(6)?),
        duration_ms: row.get(7)?,
        outcome: row.get(8)?,
        bytes_in: unsigned(row.get(9)?),
        bytes_out: unsigned(row.get(10)?),
        reported: reported_from_text(11, &row.get::<_, String>(11)?)?,
        caller_agent: row.get(12)?,
    })
}

fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn reported_from_text(column: usize, text: &str) -> rusqlite::Result<Map<String, Value>> {
    serde_json::from_str(text).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, error.into())
    })
}

/// The stored form of a byte count; counts past `i64::MAX` saturate.
pub(crate) fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
