//! Reading the ledger: filtered records, aggregates and exports.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use rusqlite::types::Value as SqlValue;
use rusqlite::{params_from_iter, Connection, Row};
use serde_json::{Map, Number, Value};

use super::export::{ExportFormat, Exporter};
use super::record::unix_ms;
use super::schema::{self, COLUMNS};
use super::{Group, GroupBy, Totals, UsageError, UsageQuery, UsageRecord, UsageReport};

/// A read connection to a ledger database. Safe to use while a writer runs (WAL readers do
/// not block the writer); `par usage export` opens one directly on the file.
pub struct UsageReader {
    conn: Connection,
    path: PathBuf,
}

/// A query's WHERE conditions and their parameters, in order.
struct Filter {
    conditions: Vec<&'static str>,
    params: Vec<SqlValue>,
}

impl Filter {
    fn new(query: &UsageQuery) -> Self {
        let mut filter = Filter {
            conditions: Vec::new(),
            params: Vec::new(),
        };
        if let Some(agent) = query.agent_filter() {
            filter.push("u.agent = ?", SqlValue::Text(agent.to_owned()));
        }
        if let Some(from) = query.from {
            filter.push("u.started_at_ms >= ?", SqlValue::Integer(unix_ms(from)));
        }
        if let Some(to) = query.to {
            filter.push("u.started_at_ms < ?", SqlValue::Integer(unix_ms(to)));
        }
        filter
    }

    fn push(&mut self, condition: &'static str, param: SqlValue) {
        self.conditions.push(condition);
        self.params.push(param);
    }

    /// ` WHERE a AND b ...` with `extra` appended, or nothing.
    fn where_clause(&self, extra: &[&str]) -> String {
        let all: Vec<&str> = self
            .conditions
            .iter()
            .copied()
            .chain(extra.iter().copied())
            .collect();
        if all.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", all.join(" AND "))
        }
    }
}

/// The SQL expression a grouping keys on; a constant for the overall totals.
fn group_key(group_by: Option<GroupBy>) -> &'static str {
    match group_by {
        None => "NULL",
        Some(GroupBy::Agent) => "u.agent",
        Some(GroupBy::Caller) => "COALESCE(u.caller_subject, u.caller_client_id)",
        Some(GroupBy::Day) => "strftime('%Y-%m-%d', u.started_at_ms / 1000, 'unixepoch')",
    }
}

impl UsageReader {
    /// Opens the ledger at `path`; fails if it does not exist or is not a ledger.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, UsageError> {
        let path = path.as_ref();
        let conn = schema::open_reader(path)?;
        Ok(UsageReader {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Records (newest first, up to the limit), totals and, when asked, groups.
    pub fn query(&self, query: &UsageQuery) -> Result<UsageReport, UsageError> {
        let filter = Filter::new(query);
        let records = self.records(&filter, query.record_limit())?;
        let totals = self
            .aggregate(&filter, None)?
            .pop()
            .map(|group| group.totals);
        let groups = match query.group_by {
            Some(group_by) => Some(self.aggregate(&filter, Some(group_by))?),
            None => None,
        };
        Ok(UsageReport {
            records,
            totals: totals.unwrap_or_default(),
            groups,
        })
    }

    /// Streams every match (or up to `query.limit`) to `out`, oldest first, without
    /// holding them in memory; returns how many were written.
    pub fn export(
        &self,
        query: &UsageQuery,
        format: ExportFormat,
        out: impl Write,
    ) -> Result<u64, UsageError> {
        let filter = Filter::new(query);
        let sql = format!(
            "SELECT {COLUMNS} FROM usage_records u{} ORDER BY u.started_at_ms, u.id LIMIT {}",
            filter.where_clause(&[]),
            query
                .limit
                .map_or(-1, |limit| i64::try_from(limit).unwrap_or(i64::MAX)),
        );
        let mut statement = self.conn.prepare(&sql).map_err(self.err())?;
        let mut rows = statement
            .query(params_from_iter(&filter.params))
            .map_err(self.err())?;
        let mut exporter = Exporter::start(format, out)?;
        while let Some(row) = rows.next().map_err(self.err())? {
            exporter.write(&schema::record_from_row(row).map_err(self.err())?)?;
        }
        exporter.finish()
    }

    fn records(&self, filter: &Filter, limit: usize) -> Result<Vec<UsageRecord>, UsageError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM usage_records u{} \
             ORDER BY u.started_at_ms DESC, u.id DESC LIMIT {limit}",
            filter.where_clause(&[]),
        );
        let mut statement = self.conn.prepare(&sql).map_err(self.err())?;
        let rows = statement
            .query_map(params_from_iter(&filter.params), schema::record_from_row)
            .map_err(self.err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.err())
    }

    /// One [`Group`] per key (one with key `None` for the overall totals), ordered by key.
    fn aggregate(
        &self,
        filter: &Filter,
        group_by: Option<GroupBy>,
    ) -> Result<Vec<Group>, UsageError> {
        let mut groups = self.sums(filter, group_by)?;
        let index: HashMap<Option<String>, usize> = groups
            .iter()
            .enumerate()
            .map(|(position, group)| (group.key.clone(), position))
            .collect();
        for (key, field, sum) in self.reported_sums(filter, group_by)? {
            if let Some(&position) = index.get(&key) {
                groups[position].totals.reported.insert(field, sum);
            }
        }
        Ok(groups)
    }

    fn sums(&self, filter: &Filter, group_by: Option<GroupBy>) -> Result<Vec<Group>, UsageError> {
        let sql = format!(
            "SELECT {key} AS k, COUNT(*), COALESCE(SUM(u.outcome <> 'ok'), 0), \
             TOTAL(u.duration_ms), COALESCE(SUM(u.bytes_in), 0), COALESCE(SUM(u.bytes_out), 0) \
             FROM usage_records u{where_} GROUP BY k ORDER BY k",
            key = group_key(group_by),
            where_ = filter.where_clause(&[]),
        );
        let mut statement = self.conn.prepare(&sql).map_err(self.err())?;
        let rows = statement
            .query_map(params_from_iter(&filter.params), group_from_row)
            .map_err(self.err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.err())
    }

    /// `(group key, reported field, sum)` for every numeric reported field.
    fn reported_sums(
        &self,
        filter: &Filter,
        group_by: Option<GroupBy>,
    ) -> Result<Vec<(Option<String>, String, Value)>, UsageError> {
        let sql = format!(
            "SELECT {key} AS k, j.key, TOTAL(j.value), MIN(j.type = 'integer') \
             FROM usage_records u, json_each(u.reported) AS j{where_} \
             GROUP BY k, j.key ORDER BY k, j.key",
            key = group_key(group_by),
            where_ = filter.where_clause(&["j.type IN ('integer', 'real')"]),
        );
        let mut statement = self.conn.prepare(&sql).map_err(self.err())?;
        let rows = statement
            .query_map(params_from_iter(&filter.params), |row| {
                Ok((row.get(0)?, row.get(1)?, json_sum(row.get(2)?, row.get(3)?)))
            })
            .map_err(self.err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.err())
    }

    fn err(&self) -> impl FnOnce(rusqlite::Error) -> UsageError + '_ {
        UsageError::sqlite(&self.path)
    }
}

fn group_from_row(row: &Row<'_>) -> rusqlite::Result<Group> {
    let count = |index: usize| {
        row.get::<_, i64>(index)
            .map(|n| u64::try_from(n).unwrap_or(0))
    };
    Ok(Group {
        key: row.get(0)?,
        totals: Totals {
            calls: count(1)?,
            errors: count(2)?,
            duration_ms: row.get(3)?,
            bytes_in: count(4)?,
            bytes_out: count(5)?,
            reported: Map::new(),
        },
    })
}

/// Largest magnitude up to which every integer is exact in an `f64`.
const EXACT_F64_INT: f64 = 9_007_199_254_740_992.0;

/// A sum as JSON: an integer when every input was one and the sum is exact. TOTAL (a
/// float) rather than SUM, because SUM fails the whole query on integer overflow and
/// agents choose these numbers.
fn json_sum(total: f64, all_integers: bool) -> Value {
    if all_integers && total.abs() <= EXACT_F64_INT {
        // Exact: an integral value within the f64 integer range.
        return Value::Number((total as i64).into());
    }
    Number::from_f64(total).map_or(Value::Null, Value::Number)
}
