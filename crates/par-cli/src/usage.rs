//! `par usage export --format csv|jsonl [--agent A] [--from T] [--to T]`.

use std::collections::HashMap;
use std::process::ExitCode;

use par_telemetry::usage::{parse_timestamp, ExportFormat, UsageReader};
use par_telemetry::UsageQuery;

use crate::cli::UsageExportArgs;

pub(crate) fn export(args: &UsageExportArgs) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("par usage export: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &UsageExportArgs) -> Result<(), String> {
    let vars: HashMap<String, String> = std::env::vars().collect();
    let path = crate::settings::usage_db(args.usage_db.as_deref(), &vars)
        .ok_or("usage metering is off")?;
    let format: ExportFormat = args
        .format
        .parse()
        .map_err(|_| format!("--format: '{}' is not csv or jsonl", args.format))?;
    let time = |flag: &str, v: &Option<String>| {
        v.as_deref()
            .map(parse_timestamp)
            .transpose()
            .map_err(|e| format!("{flag}: {e}"))
    };
    let query = UsageQuery {
        agent: args.agent.clone(),
        from: time("--from", &args.from)?,
        to: time("--to", &args.to)?,
        ..Default::default()
    };
    let reader = UsageReader::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let stdout = std::io::stdout();
    match reader.export(&query, format, stdout.lock()) {
        Err(par_telemetry::usage::UsageError::Io(e)) if crate::output::is_broken_pipe(&e) => Ok(()),
        other => other.map(drop).map_err(|e| e.to_string()),
    }
}
