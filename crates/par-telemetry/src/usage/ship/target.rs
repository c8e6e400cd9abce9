//! The PostgreSQL side: the tables, and one transaction per batch that inserts the rows
//! and moves the shipped mark together.

use postgres::{Client, NoTls};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::config::Connection;
use super::source::Source;
use super::ShipError;
use crate::usage::schema::signed;
use crate::usage::UsageRecord;

/// Columns mirror [`UsageRecord`]; `(instance_id, ledger_id, local_id)` makes every
/// local row one PostgreSQL row however often a batch is retried.
const CREATE: &str = "
CREATE TABLE IF NOT EXISTS par_usage_records (
    instance_id      TEXT             NOT NULL,
    ledger_id        TEXT             NOT NULL,
    local_id         BIGINT           NOT NULL,
    request_id       TEXT             NOT NULL,
    caller_subject   TEXT,
    caller_client_id TEXT,
    tenant           TEXT,
    caller_agent     TEXT,
    agent            TEXT             NOT NULL,
    version          TEXT             NOT NULL,
    started_at       TIMESTAMPTZ      NOT NULL,
    duration_ms      DOUBLE PRECISION NOT NULL,
    outcome          TEXT             NOT NULL,
    bytes_in         BIGINT           NOT NULL,
    bytes_out        BIGINT           NOT NULL,
    reported         JSONB            NOT NULL,
    shipped_at       TIMESTAMPTZ      NOT NULL DEFAULT now(),
    PRIMARY KEY (instance_id, ledger_id, local_id)
);
CREATE INDEX IF NOT EXISTS par_usage_records_started ON par_usage_records (started_at);
CREATE TABLE IF NOT EXISTS par_usage_shipped (
    instance_id TEXT        NOT NULL,
    ledger_id   TEXT        NOT NULL,
    last_id     BIGINT      NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (instance_id, ledger_id)
);";

/// Serialises table creation when a whole fleet starts against an empty database
/// (concurrent `CREATE TABLE IF NOT EXISTS` can fail on the catalog's unique index).
const CREATE_LOCK: i64 = 0x7061_725f_7573_6167; // "par_usag"

const TABLES_EXIST: &str = "SELECT to_regclass('par_usage_records') IS NOT NULL \
    AND to_regclass('par_usage_shipped') IS NOT NULL";

const ENSURE_MARK: &str = "INSERT INTO par_usage_shipped (instance_id, ledger_id, last_id) \
    VALUES ($1, $2, 0) ON CONFLICT DO NOTHING";
/// Locking the mark row makes two shippers with the same key take turns instead of
/// shipping the same rows twice over.
const LOCK_MARK: &str = "SELECT last_id FROM par_usage_shipped \
    WHERE instance_id = $1 AND ledger_id = $2 FOR UPDATE";
const MOVE_MARK: &str = "UPDATE par_usage_shipped SET last_id = $3, updated_at = now() \
    WHERE instance_id = $1 AND ledger_id = $2";
const READ_MARK: &str =
    "SELECT last_id FROM par_usage_shipped WHERE instance_id = $1 AND ledger_id = $2";

/// One round trip for the whole batch: parallel arrays unnested into rows.
const INSERT: &str = "INSERT INTO par_usage_records (instance_id, ledger_id, local_id, \
    request_id, caller_subject, caller_client_id, tenant, caller_agent, agent, version, \
    started_at, duration_ms, outcome, bytes_in, bytes_out, reported) \
    SELECT $1::text, $2::text, r.* FROM unnest($3::bigint[], $4::text[], $5::text[], \
    $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::timestamptz[], \
    $12::float8[], $13::text[], $14::bigint[], $15::bigint[], $16::jsonb[]) AS r \
    ON CONFLICT DO NOTHING";

/// Who the rows belong to.
#[derive(Debug, Clone)]
pub(crate) struct ShipKey {
    pub(crate) instance_id: String,
    pub(crate) ledger_id: String,
}

/// What one committed batch did.
pub(crate) struct Batch {
    pub(crate) shipped: usize,
    pub(crate) mark: i64,
}

pub(crate) struct Target {
    client: Client,
}

impl Target {
    /// Connects and creates the tables when they are missing (an existing layout needs
    /// no CREATE privilege).
    pub(crate) fn connect(connection: &Connection) -> Result<Self, ShipError> {
        let client = match &connection.tls {
            Some(tls) => connection.config.connect(tls.clone())?,
            None => connection.config.connect(NoTls)?,
        };
        let mut target = Target { client };
        if !target
            .client
            .query_one(TABLES_EXIST, &[])?
            .get::<_, bool>(0)
        {
            let sql =
                format!("BEGIN; SELECT pg_advisory_xact_lock({CREATE_LOCK}); {CREATE} COMMIT;");
            target.client.batch_execute(&sql)?;
        }
        Ok(target)
    }

    /// The rowid of the last local record shipped under `key` (0 before the first).
    pub(crate) fn mark(&mut self, key: &ShipKey) -> Result<i64, ShipError> {
        let row = self
            .client
            .query_opt(READ_MARK, &[&key.instance_id, &key.ledger_id])?;
        Ok(row.map_or(0, |row| row.get(0)))
    }

    /// Ships up to `limit` records above the mark: the rows and the new mark commit in one
    /// transaction, so a crash anywhere leaves either both or neither.
    pub(crate) fn ship_batch(
        &mut self,
        key: &ShipKey,
        source: &Source,
        limit: usize,
    ) -> Result<Batch, ShipError> {
        let keys: [&(dyn postgres::types::ToSql + Sync); 2] = [&key.instance_id, &key.ledger_id];
        let mut tx = self.client.transaction()?;
        tx.execute(ENSURE_MARK, &keys)?;
        let mark: i64 = tx.query_one(LOCK_MARK, &keys)?.get(0);
        let rows = source.after(mark, limit)?;
        let Some(&(last, _)) = rows.last() else {
            tx.rollback()?;
            return Ok(Batch { shipped: 0, mark });
        };
        let columns = Columns::from(rows.as_slice());
        tx.execute(INSERT, &columns.params(key))?;
        tx.execute(MOVE_MARK, &[&key.instance_id, &key.ledger_id, &last])?;
        tx.commit()?;
        Ok(Batch {
            shipped: rows.len(),
            mark: last,
        })
    }
}

/// A batch as one array per column, the shape `unnest` takes.
#[derive(Default)]
struct Columns {
    local_id: Vec<i64>,
    request_id: Vec<String>,
    caller_subject: Vec<Option<String>>,
    caller_client_id: Vec<Option<String>>,
    tenant: Vec<Option<String>>,
    caller_agent: Vec<Option<String>>,
    agent: Vec<String>,
    version: Vec<String>,
    started_at: Vec<OffsetDateTime>,
    duration_ms: Vec<f64>,
    outcome: Vec<String>,
    bytes_in: Vec<i64>,
    bytes_out: Vec<i64>,
    reported: Vec<Value>,
}

impl From<&[(i64, UsageRecord)]> for Columns {
    fn from(rows: &[(i64, UsageRecord)]) -> Self {
        let mut c = Columns::default();
        for (id, r) in rows {
            c.local_id.push(*id);
            c.request_id.push(text(&r.request_id));
            c.caller_subject.push(r.caller_subject.as_deref().map(text));
            c.caller_client_id
                .push(r.caller_client_id.as_deref().map(text));
            c.tenant.push(r.tenant.as_deref().map(text));
            c.caller_agent.push(r.caller_agent.as_deref().map(text));
            c.agent.push(text(&r.agent));
            c.version.push(text(&r.version));
            c.started_at.push(r.started_at);
            c.duration_ms.push(r.duration_ms);
            c.outcome.push(text(&r.outcome));
            c.bytes_in.push(signed(r.bytes_in));
            c.bytes_out.push(signed(r.bytes_out));
            c.reported.push(Value::Object(json_object(&r.reported)));
        }
        c
    }
}

impl Columns {
    fn params<'a>(&'a self, key: &'a ShipKey) -> [&'a (dyn postgres::types::ToSql + Sync); 16] {
        [
            &key.instance_id,
            &key.ledger_id,
            &self.local_id,
            &self.request_id,
            &self.caller_subject,
            &self.caller_client_id,
            &self.tenant,
            &self.caller_agent,
            &self.agent,
            &self.version,
            &self.started_at,
            &self.duration_ms,
            &self.outcome,
            &self.bytes_in,
            &self.bytes_out,
            &self.reported,
        ]
    }
}

/// PostgreSQL text and JSONB cannot hold NUL, which SQLite and JSON can: a caller's claim
/// or an agent's report containing one would otherwise fail its batch on every retry and
/// stop shipping for good. It becomes U+FFFD.
fn text(value: &str) -> String {
    value.replace('\0', "\u{FFFD}")
}

fn json_object(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter().map(|(k, v)| (text(k), json(v))).collect()
}

fn json(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(text(s)),
        Value::Array(items) => Value::Array(items.iter().map(json).collect()),
        Value::Object(map) => Value::Object(json_object(map)),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn nul_characters_are_replaced_everywhere_in_reported() {
        let reported = json!({"a\u{0}": ["x\u{0}", {"k": "\u{0}"}], "n": 1});
        let cleaned = json(&reported);
        assert_eq!(
            cleaned,
            json!({"a\u{FFFD}": ["x\u{FFFD}", {"k": "\u{FFFD}"}], "n": 1})
        );
    }
}
