//! `par runs [ID]`: the caller's durable runs (`GET /runs`), or one run (`GET /runs/{id}`).

use std::io::Write;

use serde_json::Value;

use super::args::RunsArgs;
use super::connection::{query, segment, Connection};
use super::error::ClientError;
use super::table::{cell, print, print_json, Table};

pub(super) async fn run(server: Connection, args: &RunsArgs) -> Result<(), ClientError> {
    if let Some(id) = &args.id {
        let run = server.get(&format!("/runs/{}", segment(id))).await?;
        return if server.json {
            Ok(print_json(&run)?)
        } else {
            Ok(print_run(&run)?)
        };
    }
    let filters = query(&[
        ("agent", args.agent.clone()),
        ("status", args.status.clone()),
        ("limit", args.limit.map(|l| l.to_string())),
    ]);
    let answer = server.get(&format!("/runs{filters}")).await?;
    if server.json {
        return Ok(print_json(&answer)?);
    }
    // The list is `{"runs": [...]}`; a bare array is accepted as well.
    let runs = answer["runs"]
        .as_array()
        .or(answer.as_array())
        .cloned()
        .unwrap_or_default();
    let mut table = Table::new(&["RUN", "AGENT", "STATUS", "CREATED", "FINISHED"]);
    for run in &runs {
        table.row(vec![
            cell(&run["run_id"]),
            cell(&run["agent"]),
            cell(&run["status"]),
            cell(&run["created_at"]),
            cell(&run["finished_at"]),
        ]);
    }
    Ok(print(&table)?)
}

/// One run: its facts one per line, then its result or error.
fn print_run(run: &Value) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    for key in [
        "run_id",
        "agent",
        "version",
        "status",
        "created_at",
        "started_at",
        "finished_at",
    ] {
        writeln!(out, "{key:<12} {}", cell(&run[key]))?;
    }
    if !run["error"].is_null() {
        writeln!(out, "{:<12} {}", "error", run["error"])?;
    }
    if !run["result"].is_null() {
        let pretty = serde_json::to_string_pretty(&run["result"]).unwrap_or_default();
        writeln!(out, "result\n{pretty}")?;
    }
    out.flush()
}
