//! The run store: one SQLite file (WAL) holding runs and their events.
//!
//! Writes are small (one row, or one row plus a status update) and serialised through
//! one connection behind a mutex: that mutex is also what makes a terminal transition
//! and the last event one atomic step, whoever (the run's task, a cancel, shutdown)
//! gets there first.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::model::{
    now_ms, EventKind, NewRun, RunError, RunEvent, RunFilter, RunRecord, RunStatus,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("run store {path}: {source}")]
    Sqlite {
        path: String,
        source: rusqlite::Error,
    },
    /// The idempotency key names a run made from a different request (another agent or
    /// body): replaying it would answer a question the caller did not ask.
    #[error("idempotency key already used for a different request (run {run_id})")]
    KeyReused { run_id: String },
}

pub struct RunStore {
    conn: Mutex<Connection>,
    path: String,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    agent TEXT NOT NULL,
    version TEXT,
    status TEXT NOT NULL,
    owner TEXT NOT NULL,
    idempotency_key TEXT,
    request_digest TEXT,
    created_ms INTEGER NOT NULL,
    started_ms INTEGER,
    finished_ms INTEGER,
    result TEXT,
    error_code TEXT,
    error_message TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS runs_idempotency ON runs (owner, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS runs_owner_created ON runs (owner, created_ms);
CREATE INDEX IF NOT EXISTS runs_created ON runs (created_ms);
CREATE TABLE IF NOT EXISTS run_events (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
";

const COLUMNS: &str = "run_id, agent, version, status, owner, idempotency_key, created_ms, \
                       started_ms, finished_ms, result, error_code, error_message";

const UNFINISHED: &str = "status IN ('queued', 'running')";

/// Stores made before request digests were kept get the column (empty for old runs).
fn add_request_digest(conn: &Connection) -> rusqlite::Result<()> {
    let has: bool = conn.query_row(
        "SELECT count(*) FROM pragma_table_info('runs') WHERE name = 'request_digest'",
        [],
        |row| row.get::<_, i64>(0).map(|n| n > 0),
    )?;
    if !has {
        conn.execute_batch("ALTER TABLE runs ADD COLUMN request_digest TEXT")?;
    }
    Ok(())
}

impl RunStore {
    /// Opens (creating) the store at `path`. Its folder must exist.
    pub fn open(path: &Path) -> Result<RunStore, StoreError> {
        let wrap = |source| StoreError::Sqlite {
            path: path.display().to_string(),
            source,
        };
        let conn = Connection::open(path).map_err(wrap)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(wrap)?;
        let _: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(wrap)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(wrap)?;
        conn.execute_batch(SCHEMA).map_err(wrap)?;
        add_request_digest(&conn).map_err(wrap)?;
        Ok(RunStore {
            conn: Mutex::new(conn),
            path: path.display().to_string(),
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut conn).map_err(|source| StoreError::Sqlite {
            path: self.path.clone(),
            source,
        })
    }

    /// A new queued run, or — when `new` carries an idempotency key this owner used within
    /// `idempotency_window_ms` — the run made then (`false`: nothing was created).
    pub fn create(
        &self,
        new: &NewRun,
        idempotency_window_ms: i64,
    ) -> Result<(RunRecord, bool), StoreError> {
        let now = now_ms();
        self.with(|conn| {
            let tx = conn.transaction()?;
            if let Some(key) = &new.idempotency_key {
                // An expired key no longer names its run: free it for a new one.
                tx.execute(
                    "UPDATE runs SET idempotency_key = NULL
                     WHERE owner = ?1 AND idempotency_key = ?2 AND created_ms < ?3",
                    params![new.owner, key, now - idempotency_window_ms],
                )?;
                let existing = tx
                    .query_row(
                        &format!(
                            "SELECT {COLUMNS} FROM runs WHERE owner = ?1 AND idempotency_key = ?2"
                        ),
                        params![new.owner, key],
                        record_of,
                    )
                    .optional()?;
                if let Some(run) = existing {
                    let digest: Option<String> = tx.query_row(
                        "SELECT request_digest FROM runs WHERE run_id = ?1",
                        params![run.run_id],
                        |row| row.get(0),
                    )?;
                    tx.commit()?;
                    // Stores from before digests were kept hold none: those replay.
                    if digest.is_some_and(|d| d != new.request_digest) {
                        return Ok(Err(run.run_id));
                    }
                    return Ok(Ok((run, false)));
                }
            }
            let run = RunRecord {
                run_id: uuid::Uuid::new_v4().to_string(),
                agent: new.agent.clone(),
                version: None,
                status: RunStatus::Queued,
                owner: new.owner.clone(),
                idempotency_key: new.idempotency_key.clone(),
                created_ms: now,
                started_ms: None,
                finished_ms: None,
                result: None,
                error: None,
            };
            tx.execute(
                "INSERT INTO runs (run_id, agent, status, owner, idempotency_key, request_digest,
                                   created_ms)
                 VALUES (?1, ?2, 'queued', ?3, ?4, ?5, ?6)",
                params![
                    run.run_id,
                    run.agent,
                    run.owner,
                    run.idempotency_key,
                    new.request_digest,
                    now
                ],
            )?;
            tx.commit()?;
            Ok(Ok((run, true)))
        })?
        .map_err(|run_id| StoreError::KeyReused { run_id })
    }

    /// Queued → running, once a worker took the call. False when the run already ended
    /// (cancelled while it waited).
    pub fn mark_running(&self, run_id: &str, version: &str) -> Result<bool, StoreError> {
        self.with(|conn| {
            let changed = conn.execute(
                "UPDATE runs SET status = 'running', version = ?2, started_ms = ?3
                 WHERE run_id = ?1 AND status = 'queued'",
                params![run_id, version, now_ms()],
            )?;
            Ok(changed == 1)
        })
    }

    /// Appends one item; `None` (nothing written) once the run has ended.
    pub fn append_item(&self, run_id: &str, data: &str) -> Result<Option<i64>, StoreError> {
        self.with(|conn| {
            let tx = conn.transaction()?;
            let open: bool = tx
                .query_row(
                    &format!("SELECT {UNFINISHED} FROM runs WHERE run_id = ?1"),
                    [run_id],
                    |row| row.get(0),
                )
                .optional()?
                .unwrap_or(false);
            if !open {
                return Ok(None);
            }
            let seq = insert_event(&tx, run_id, EventKind::Item, data)?;
            tx.commit()?;
            Ok(Some(seq))
        })
    }

    /// Ends the run with `status` and writes its last event, if it has not ended yet.
    /// Returns whether this call ended it.
    pub fn finish(&self, run_id: &str, end: &RunEnd) -> Result<bool, StoreError> {
        self.with(|conn| {
            let tx = conn.transaction()?;
            let ended = finish_in(&tx, run_id, end)?;
            tx.commit()?;
            Ok(ended)
        })
    }

    /// Ends every run still queued or running as `interrupted`: at startup, for runs a
    /// stopped (or killed) runtime left behind. Returns how many.
    pub fn interrupt_unfinished(&self, message: &str) -> Result<usize, StoreError> {
        self.with(|conn| {
            let tx = conn.transaction()?;
            let ids: Vec<String> = {
                let mut stmt =
                    tx.prepare(&format!("SELECT run_id FROM runs WHERE {UNFINISHED}"))?;
                let rows = stmt.query_map([], |row| row.get(0))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            let end = RunEnd::error(RunStatus::Interrupted, "interrupted", message);
            for id in &ids {
                finish_in(&tx, id, &end)?;
            }
            tx.commit()?;
            Ok(ids.len())
        })
    }

    pub fn get(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.with(|conn| {
            conn.query_row(
                &format!("SELECT {COLUMNS} FROM runs WHERE run_id = ?1"),
                [run_id],
                record_of,
            )
            .optional()
        })
    }

    /// Runs matching `filter`, newest first.
    pub fn list(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {COLUMNS} FROM runs
                 WHERE (?1 IS NULL OR owner = ?1) AND (?2 IS NULL OR agent = ?2)
                   AND (?3 IS NULL OR status = ?3)
                 ORDER BY created_ms DESC, rowid DESC LIMIT ?4"
            ))?;
            let status = filter.status.map(RunStatus::as_str);
            let rows = stmt.query_map(
                params![filter.owner, filter.agent, status, filter.limit as i64],
                record_of,
            )?;
            rows.collect()
        })
    }

    /// The run's events after `after` (0: all of them), in order.
    pub fn events_after(&self, run_id: &str, after: i64) -> Result<Vec<RunEvent>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, kind, data FROM run_events WHERE run_id = ?1 AND seq > ?2 ORDER BY seq",
            )?;
            let rows = stmt.query_map(params![run_id, after], |row| {
                Ok(RunEvent {
                    seq: row.get(0)?,
                    kind: EventKind::parse(&row.get::<_, String>(1)?),
                    data: row.get(2)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Removes runs that ended before `before_ms`, with their events. Returns how many.
    pub fn purge(&self, before_ms: i64) -> Result<usize, StoreError> {
        self.with(|conn| {
            let tx = conn.transaction()?;
            tx.execute(
                &format!(
                    "DELETE FROM run_events WHERE run_id IN
                     (SELECT run_id FROM runs WHERE NOT {UNFINISHED} AND finished_ms < ?1)"
                ),
                [before_ms],
            )?;
            let removed = tx.execute(
                &format!("DELETE FROM runs WHERE NOT {UNFINISHED} AND finished_ms < ?1"),
                [before_ms],
            )?;
            tx.commit()?;
            Ok(removed)
        })
    }
}

/// How a run ends: its terminal status, the result or error, and the last event's data.
#[derive(Debug, Clone)]
pub struct RunEnd {
    pub status: RunStatus,
    pub result: Option<String>,
    pub error: Option<RunError>,
    /// The data of the last event (`{}` for `done`, the error body for `error`).
    pub event_data: String,
}

impl RunEnd {
    pub fn succeeded(result: String) -> RunEnd {
        RunEnd {
            status: RunStatus::Succeeded,
            result: Some(result),
            error: None,
            event_data: "{}".into(),
        }
    }

    /// A failure, cancel or interruption whose last event carries the contract's error
    /// body (without a request id: the run outlives the request).
    pub fn error(status: RunStatus, code: &str, message: &str) -> RunEnd {
        let body = serde_json::json!({"status": "error", "code": code, "error": message});
        RunEnd {
            status,
            result: None,
            error: Some(RunError {
                code: code.into(),
                error: message.into(),
            }),
            event_data: body.to_string(),
        }
    }
}

fn finish_in(tx: &rusqlite::Transaction<'_>, run_id: &str, end: &RunEnd) -> rusqlite::Result<bool> {
    let (code, message) = match &end.error {
        Some(e) => (Some(e.code.as_str()), Some(e.error.as_str())),
        None => (None, None),
    };
    let changed = tx.execute(
        &format!(
            "UPDATE runs SET status = ?2, finished_ms = ?3, result = ?4, error_code = ?5,
                 error_message = ?6
             WHERE run_id = ?1 AND {UNFINISHED}"
        ),
        params![
            run_id,
            end.status.as_str(),
            now_ms(),
            end.result,
            code,
            message
        ],
    )?;
    if changed == 0 {
        return Ok(false);
    }
    let kind = if end.status == RunStatus::Succeeded {
        EventKind::Done
    } else {
        EventKind::Error
    };
    insert_event(tx, run_id, kind, &end.event_data)?;
    Ok(true)
}

fn insert_event(
    tx: &rusqlite::Transaction<'_>,
    run_id: &str,
    kind: EventKind,
    data: &str,
) -> rusqlite::Result<i64> {
    let seq: i64 = tx.query_row(
        "SELECT COALESCE(MAX(seq), 0) + 1 FROM run_events WHERE run_id = ?1",
        [run_id],
        |row| row.get(0),
    )?;
    tx.execute(
        "INSERT INTO run_events (run_id, seq, kind, data) VALUES (?1, ?2, ?3, ?4)",
        params![run_id, seq, kind.as_str(), data],
    )?;
    Ok(seq)
}

fn record_of(row: &Row<'_>) -> rusqlite::Result<RunRecord> {
    let status: String = row.get(3)?;
    let code: Option<String> = row.get(10)?;
    let message: Option<String> = row.get(11)?;
    Ok(RunRecord {
        run_id: row.get(0)?,
        agent: row.get(1)?,
        version: row.get(2)?,
        status: RunStatus::parse(&status).unwrap_or(RunStatus::Interrupted),
        owner: row.get(4)?,
        idempotency_key: row.get(5)?,
        created_ms: row.get(6)?,
        started_ms: row.get(7)?,
        finished_ms: row.get(8)?,
        result: row.get(9)?,
        error: code.map(|code| RunError {
            code,
            error: message.unwrap_or_default(),
        }),
    })
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
