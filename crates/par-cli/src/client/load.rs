//! `par load SOURCE` (submit, then follow the load's phases) and `par unload NAME [VERSION]`.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use super::args::{LoadArgs, UnloadArgs};
use super::connection::{query, segment, Connection};
use super::error::ClientError;
use super::table::{cell, print, print_json, Table};

/// How often a running load is polled.
const POLL_EVERY: Duration = Duration::from_millis(150);

pub(super) async fn run(server: Connection, args: &LoadArgs) -> Result<(), ClientError> {
    let submitted = server.json(submit(&server, args)?).await?;
    let id = submitted["load_id"]
        .as_u64()
        .ok_or_else(|| ClientError::Failed(format!("no load_id in {submitted}")))?;
    let limit = Duration::from_secs_f64(args.timeout.max(0.0));
    let job = follow(&server, id, &args.source, limit).await?;
    if job["state"] == "failed" {
        return Err(ClientError::Failed(failure(&job)));
    }
    if server.json {
        return Ok(print_json(&job)?);
    }
    let mut table = Table::new(&["PACKAGE", "VERSION", "STATE", "SHA256", "SOURCE"]);
    for report in job["packages"].as_array().into_iter().flatten() {
        let sha = cell(&report["sha256"]);
        table.row(vec![
            cell(&report["name"]),
            cell(&report["version"]),
            cell(&report["state"]),
            sha.chars().take(12).collect(),
            cell(&report["source"]),
        ]);
    }
    Ok(print(&table)?)
}

/// A local file is uploaded (the server may be on another machine); anything else is a
/// source the server fetches itself (https://, s3://, a path on its machine).
fn submit(server: &Connection, args: &LoadArgs) -> Result<reqwest::RequestBuilder, ClientError> {
    let replace = (!args.keep_others).to_string();
    let force = args.force.to_string();
    let local = Path::new(&args.source);
    if !local.is_file() {
        let body = json!({"source": args.source, "sha256": args.sha256,
                          "replace": !args.keep_others, "force": args.force});
        return Ok(server
            .request(Method::POST, "/runtime/packages")
            .header("content-type", "application/json")
            .body(body.to_string()));
    }
    let bytes = std::fs::read(local)
        .map_err(|e| ClientError::Usage(format!("cannot read {}: {e}", args.source)))?;
    let filename = local.file_name().map(|n| n.to_string_lossy().into_owned());
    let options = query(&[
        ("filename", filename),
        ("sha256", args.sha256.clone()),
        ("replace", Some(replace)),
        ("force", Some(force)),
    ]);
    Ok(server
        .request(Method::POST, &format!("/runtime/packages{options}"))
        .header("content-type", "application/octet-stream")
        .body(bytes))
}

/// Polls the load until it ends, showing its phase on a terminal.
async fn follow(
    server: &Connection,
    id: u64,
    source: &str,
    limit: Duration,
) -> Result<Value, ClientError> {
    let mut progress = Progress::new(std::io::stderr().is_terminal(), source);
    let deadline = Instant::now() + limit;
    loop {
        let job = server.get(&format!("/runtime/loads/{id}")).await?;
        if job["state"] != "loading" {
            progress.finish(&job);
            return Ok(job);
        }
        progress.show(&job);
        if Instant::now() >= deadline {
            progress.finish(&job);
            return Err(ClientError::Failed(format!(
                "load {id} still running after {limit:?} (GET /runtime/loads/{id} follows it)"
            )));
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// "failed in phase environment: <reason>" from a failed job.
fn failure(job: &Value) -> String {
    let report = &job["packages"][0];
    let reason = report["error"]
        .as_str()
        .or(job["error"].as_str())
        .unwrap_or("no reason given");
    match report["failed_phase"].as_str() {
        Some(phase) => format!("load failed in phase {phase}: {reason}"),
        None => format!("load failed: {reason}"),
    }
}

/// One status line on stderr, rewritten in place while the load runs (terminals only).
struct Progress {
    enabled: bool,
    /// What the user asked to load (an upload's server-side name means nothing to them).
    source: String,
    started: Instant,
    ticks: usize,
}

impl Progress {
    fn new(enabled: bool, source: &str) -> Self {
        Progress {
            enabled,
            source: source.to_string(),
            started: Instant::now(),
            ticks: 0,
        }
    }

    fn show(&mut self, job: &Value) {
        if !self.enabled {
            return;
        }
        const SPINNER: [char; 4] = ['|', '/', '-', '\\'];
        self.ticks += 1;
        let phase = job["packages"][0]["phase"].as_str().unwrap_or("fetch");
        let line = format!(
            "{} loading {}  phase {} ({}/6)  {:.1}s",
            SPINNER[self.ticks % SPINNER.len()],
            self.source,
            phase,
            phase_number(phase),
            self.started.elapsed().as_secs_f64()
        );
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[K{line}");
        let _ = err.flush();
    }

    fn finish(&self, job: &Value) {
        if !self.enabled {
            return;
        }
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "\r\x1b[K{} in {:.1}s",
            job["state"].as_str().unwrap_or("?"),
            self.started.elapsed().as_secs_f64()
        );
    }
}

/// The phase's place in the pipeline (fetch 1 ... start 6).
fn phase_number(phase: &str) -> usize {
    let order = [
        "fetch",
        "verify",
        "manifest",
        "extract",
        "environment",
        "start",
    ];
    order.iter().position(|p| *p == phase).map_or(0, |i| i + 1)
}

pub(super) async fn unload(server: Connection, args: &UnloadArgs) -> Result<(), ClientError> {
    let mut path = format!("/runtime/packages/{}", segment(&args.name));
    if let Some(version) = &args.version {
        path.push_str(&format!("/{}", segment(version)));
    }
    let answer = server.json(server.request(Method::DELETE, &path)).await?;
    if server.json {
        return Ok(print_json(&answer)?);
    }
    let mut out = std::io::stdout().lock();
    for package in answer["unloading"].as_array().into_iter().flatten() {
        let (name, version) = (cell(&package["name"]), cell(&package["version"]));
        writeln!(
            out,
            "unloading {name} {version} (calls in flight finish first)"
        )?;
    }
    Ok(out.flush()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_names_the_phase_and_the_reason() {
        let job = json!({"state": "failed", "error": "x",
            "packages": [{"failed_phase": "manifest", "error": "field 'name' is required"}]});
        assert_eq!(
            failure(&job),
            "load failed in phase manifest: field 'name' is required"
        );
        assert_eq!(failure(&json!({"error": "gone"})), "load failed: gone");
        assert_eq!(phase_number("environment"), 5);
    }
}
