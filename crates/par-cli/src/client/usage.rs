//! `par usage [--agent A] [--from T] [--to T] [--group-by agent|caller|day] [--limit N]`:
//! a running server's usage (`GET /runtime/usage`). `par usage export` reads a ledger file
//! instead (crate::usage).

use std::io::Write;

use serde_json::Value;

use super::args::UsageQueryArgs;
use super::connection::{query, Connection};
use super::error::ClientError;
use super::table::{cell, print_json, Table};

pub(super) async fn run(server: Connection, args: &UsageQueryArgs) -> Result<(), ClientError> {
    let filters = query(&[
        ("agent", args.agent.clone()),
        ("from", args.from.clone()),
        ("to", args.to.clone()),
        ("group_by", args.group_by.clone()),
        ("limit", args.limit.map(|l| l.to_string())),
    ]);
    let report = server.get(&format!("/runtime/usage{filters}")).await?;
    if server.json {
        return Ok(print_json(&report)?);
    }
    let table = match report["groups"].as_array() {
        Some(groups) => groups_table(args.group_by.as_deref().unwrap_or("key"), groups),
        None => records_table(report["records"].as_array().map_or(&[][..], Vec::as_slice)),
    };
    let mut out = std::io::stdout().lock();
    table.write(&mut out)?;
    let totals = &report["totals"];
    writeln!(
        out,
        "\ntotal: {} calls, {} errors, {} ms, {} bytes in, {} bytes out",
        cell(&totals["calls"]),
        cell(&totals["errors"]),
        whole(&totals["duration_ms"]),
        cell(&totals["bytes_in"]),
        cell(&totals["bytes_out"])
    )?;
    Ok(out.flush()?)
}

fn groups_table(by: &str, groups: &[Value]) -> Table {
    let mut table = Table::new(&[
        "GROUP",
        "CALLS",
        "ERRORS",
        "DURATION_MS",
        "BYTES_IN",
        "BYTES_OUT",
        "REPORTED",
    ]);
    for group in groups {
        table.row(vec![
            format!("{by}={}", cell(&group["key"])),
            cell(&group["calls"]),
            cell(&group["errors"]),
            whole(&group["duration_ms"]),
            cell(&group["bytes_in"]),
            cell(&group["bytes_out"]),
            reported(&group["reported"]),
        ]);
    }
    table
}

fn records_table(records: &[Value]) -> Table {
    let mut table = Table::new(&[
        "STARTED", "AGENT", "VERSION", "CALLER", "OUTCOME", "MS", "REPORTED",
    ]);
    for record in records {
        table.row(vec![
            cell(&record["started_at"]),
            cell(&record["agent"]),
            cell(&record["version"]),
            cell(&record["caller_subject"]),
            cell(&record["outcome"]),
            whole(&record["duration_ms"]),
            reported(&record["reported"]),
        ]);
    }
    table
}

/// Milliseconds without the fraction.
fn whole(value: &Value) -> String {
    value
        .as_f64()
        .map_or_else(|| cell(value), |ms| format!("{ms:.0}"))
}

/// `tokens_in=3 model=x` from the reported counts.
fn reported(value: &Value) -> String {
    let Some(map) = value.as_object().filter(|m| !m.is_empty()) else {
        return "-".into();
    };
    let pairs: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{k}={}", cell(v)))
        .collect();
    pairs.join(" ")
}
