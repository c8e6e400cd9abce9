//! Durable runs' settings: where the store lives (`--runs-db`, default beside the usage
//! ledger), how long finished runs stay (`--run-retention-hours`, default 168) and the
//! longest a run may take (`--run-timeout`, default one hour).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::env_names as env;
use crate::settings::ServeArgs;

#[derive(Debug, Clone)]
pub(crate) struct RunSettings {
    pub db: PathBuf,
    pub retention: Duration,
    pub timeout: Duration,
}

pub(crate) fn resolve(
    s: &ServeArgs,
    vars: &HashMap<String, String>,
    errors: &mut Vec<String>,
) -> RunSettings {
    let db = s.runs_db.clone().unwrap_or_else(|| default_db(s, vars));
    let hours = s
        .run_retention_hours
        .expect("run-retention-hours has a default");
    let retention = if hours.is_finite() && hours > 0.0 && hours < 1e6 {
        Duration::from_secs_f64(hours * 3600.0)
    } else {
        errors.push(format!(
            "--run-retention-hours / {}: must be a positive number of hours",
            env::RUN_RETENTION
        ));
        Duration::from_secs(168 * 3600)
    };
    let timeout = crate::settings::seconds(
        s,
        |a| a.run_timeout,
        "--run-timeout",
        env::RUN_TIMEOUT,
        errors,
    );
    RunSettings {
        db,
        retention,
        timeout,
    }
}

/// Opens the run store, creating its folder.
pub(crate) fn open_store(settings: &RunSettings) -> anyhow::Result<par_runs::Runs> {
    let path = &settings.db;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    }
    let runs = par_runs::Runs::open(path, settings.retention)
        .map_err(|e| anyhow::anyhow!("cannot open the run store: {e}"))?;
    tracing::info!(path = %path.display(), "run store open");
    Ok(runs)
}

/// `runs.sqlite3` in the usage ledger's folder (its default folder when metering is off).
fn default_db(s: &ServeArgs, vars: &HashMap<String, String>) -> PathBuf {
    let usage = s.usage_db.as_deref();
    let ledger = crate::settings::usage_db(usage, vars)
        .or_else(|| crate::settings::usage_db(None, vars))
        .unwrap_or_else(|| PathBuf::from("usage.sqlite3"));
    ledger.with_file_name("runs.sqlite3")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve_with(args: ServeArgs, vars: &[(&str, &str)]) -> (RunSettings, Vec<String>) {
        let vars = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut errors = Vec::new();
        let settings = resolve(&args.or(ServeArgs::defaults()), &vars, &mut errors);
        (settings, errors)
    }

    #[test]
    fn defaults_put_runs_beside_the_usage_ledger() {
        let (settings, errors) = resolve_with(ServeArgs::default(), &[("HOME", "/home/u")]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            settings.db,
            PathBuf::from("/home/u/.local/share/par/runs.sqlite3")
        );
        assert_eq!(settings.retention, Duration::from_secs(168 * 3600));
        assert_eq!(settings.timeout, Duration::from_secs(3600));
        let args = ServeArgs {
            usage_db: Some("/srv/par/usage.db".into()),
            ..ServeArgs::default()
        };
        let (settings, _) = resolve_with(args, &[]);
        assert_eq!(settings.db, PathBuf::from("/srv/par/runs.sqlite3"));
    }

    #[test]
    fn bad_numbers_are_reported() {
        let args = ServeArgs {
            run_retention_hours: Some(0.0),
            run_timeout: Some(-1.0),
            ..ServeArgs::default()
        };
        let (_, errors) = resolve_with(args, &[]);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("--run-retention-hours"));
        assert!(errors[1].contains("--run-timeout"));
    }
}
