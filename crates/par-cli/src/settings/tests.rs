//! The settings as `resolve` makes them, and the table against docs/configuration.md.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use super::table::{ServeArgs, SETTINGS};
use super::values::Workers;
use super::*;

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn flags_beat_file_and_defaults_fill_the_rest() {
    let args = ServeArgs {
        workers: Some(Workers::Fixed(3)),
        ..Default::default()
    };
    let file = ServeArgs {
        workers: Some(Workers::Fixed(5)),
        worker_threads: Some(7),
        ..Default::default()
    };
    let s = resolve(args, file, &vars(&[("HOME", "/home/u")]))
        .ok()
        .unwrap();
    assert_eq!(s.runtime.pool.workers, 3);
    assert_eq!(s.runtime.worker_threads, 7);
    assert_eq!(s.runtime.cache_dir, PathBuf::from("/home/u/.cache/par"));
    assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
}

#[test]
fn workers_auto_is_an_elastic_pool_capped_by_workers_max() {
    let args = ServeArgs {
        workers: Some("auto".parse().unwrap()),
        workers_max: Some(3),
        worker_idle_shrink: Some(2.5),
        ..Default::default()
    };
    let s = resolve(args, ServeArgs::default(), &vars(&[("HOME", "/h")]))
        .ok()
        .unwrap();
    assert_eq!(s.runtime.pool.workers, 1, "one worker always");
    let scaling = s.runtime.pool.scaling.expect("auto scales");
    assert_eq!(scaling.max_workers, 3);
    assert_eq!(scaling.shrink_after, Duration::from_millis(2500));

    let file: ServeArgs = toml::from_str(r#"workers = "auto""#).unwrap();
    let s = resolve(ServeArgs::default(), file, &vars(&[("HOME", "/h")]))
        .ok()
        .unwrap();
    let scaling = s.runtime.pool.scaling.expect("auto from the file");
    assert_eq!(scaling.max_workers, par_core::defaults::auto_max_workers());
    assert_eq!(scaling.shrink_after, par_core::defaults::WORKER_IDLE_SHRINK);
}

/// `fork_workers` for `--worker-start`, `--idle-timeout` and `--workers` as given.
fn forks(start: Option<&str>, idle: Option<f64>, workers: Workers) -> bool {
    let args = ServeArgs {
        worker_start: start.map(str::to_string),
        idle_timeout: idle,
        workers: Some(workers),
        ..Default::default()
    };
    let s = resolve(args, ServeArgs::default(), &vars(&[("HOME", "/h")]));
    s.ok().unwrap().runtime.pool.fork_workers
}

#[test]
fn worker_start_auto_forks_unless_one_worker_sleeps_when_idle() {
    let one = || Workers::Fixed(1);
    assert!(forks(None, None, one()), "no idle timeout: fork");
    assert!(!forks(None, Some(5.0), one()), "idle, one worker: fresh");
    assert!(!forks(Some("auto"), Some(5.0), one()));
    assert!(
        forks(None, Some(5.0), Workers::Fixed(2)),
        "two workers share"
    );
    assert!(forks(None, Some(5.0), Workers::Auto), "auto grows by forks");
    assert!(
        forks(Some("fork"), Some(5.0), one()),
        "explicit fork stands"
    );
    assert!(!forks(Some("fresh"), None, one()), "explicit fresh stands");
    assert!(forks(None, Some(0.0), one()), "0 is no idle timeout");
}

#[test]
fn workers_is_a_number_or_auto() {
    let file: ServeArgs = toml::from_str("workers = 4").unwrap();
    assert_eq!(file.workers, Some(Workers::Fixed(4)));
    assert!(toml::from_str::<ServeArgs>(r#"workers = "many""#).is_err());
    assert_eq!(" auto".parse::<Workers>(), Ok(Workers::Auto));
    assert!("-1".parse::<Workers>().is_err());
    let fixed = ServeArgs {
        workers: Some(Workers::Fixed(2)),
        workers_max: Some(8),
        ..Default::default()
    };
    let s = resolve(fixed, ServeArgs::default(), &vars(&[("HOME", "/h")]))
        .ok()
        .unwrap();
    assert_eq!(s.runtime.pool.workers, 2);
    assert_eq!(
        s.runtime.pool.scaling, None,
        "--workers-max alone changes nothing"
    );
}

#[test]
fn every_bad_setting_is_reported_by_name() {
    let args = ServeArgs {
        workers: Some(Workers::Fixed(0)),
        call_timeout: Some(-1.0),
        listen: Some("0.0.0.0:80".parse().unwrap()),
        ..Default::default()
    };
    let errors = resolve(args, ServeArgs::default(), &vars(&[]))
        .err()
        .unwrap();
    let text = errors.join("\n");
    assert!(text.contains(env::WORKERS), "{text}");
    assert!(text.contains(env::CALL_TIMEOUT), "{text}");
    assert!(text.contains(env::AUTH), "{text}");
    assert_eq!(errors.len(), 3);
}

#[test]
fn the_postgres_url_is_checked_and_its_password_masked() {
    let args = ServeArgs {
        usage_postgres_url: Some("postgres://biller:pw-0123456789@db:5432/usage".into()),
        instance_id: Some("pod-7".into()),
        ..Default::default()
    };
    let s = resolve(args, ServeArgs::default(), &vars(&[("HOME", "/h")]))
        .ok()
        .unwrap();
    let ship = s.usage_ship.unwrap();
    assert_eq!(ship.interval, Duration::from_secs(5));
    assert_eq!(ship.instance_id.as_deref(), Some("pod-7"));
    let line = "url=postgres://biller:pw-0123456789@db:5432/usage echo pw-0123456789";
    let masked = s.runtime.redactor.redact(line);
    assert!(!masked.contains("pw-0123"), "{masked}");
    let short = "postgres://u:abc@db/usage";
    assert!(!s.runtime.redactor.redact(short).contains("abc"));

    let bad = ServeArgs {
        usage_postgres_url: Some("postgres://u:hunter22@db/usage?sslmode=sometimes".into()),
        usage_db: Some("off".into()),
        usage_ship_interval: Some(0.0),
        ..Default::default()
    };
    let errors = resolve(bad, ServeArgs::default(), &vars(&[]))
        .err()
        .unwrap();
    let text = errors.join("\n");
    assert!(!text.contains("hunter22"), "{text}");
    assert!(text.contains(env::USAGE_SHIP_SECS), "{text}");
    assert!(text.contains("--usage-db is off"), "{text}");
    assert!(text.contains("sslmode"), "{text}");
}

#[test]
fn packages_urls_adds_sources() {
    let args = ServeArgs {
        positional: vec!["a.apkg".into()],
        ..Default::default()
    };
    let s = resolve(
        args,
        ServeArgs::default(),
        &vars(&[("PACKAGES_URLS", "b.apkg, c.apkg,")]),
    )
    .ok()
    .unwrap();
    assert_eq!(s.sources, ["a.apkg", "b.apkg", "c.apkg"]);
}

/// One row of a settings table in docs/configuration.md.
struct Row {
    flag: String,
    env: String,
    toml: Option<String>,
    default: String,
}

/// The rows of every `| flag | env | ... |` table whose first cell is a flag.
fn doc_rows(doc: &str) -> Vec<Row> {
    let cells = |line: &str| -> Vec<String> {
        line.trim()
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_string())
            .collect()
    };
    let mut header: Vec<String> = Vec::new();
    let mut rows = Vec::new();
    for line in doc.lines() {
        if line.starts_with("| flag |") {
            header = cells(line);
            continue;
        }
        if !line.starts_with("| `--") || header.is_empty() {
            continue;
        }
        let row = cells(line);
        let column = |name: &str| {
            let i = header.iter().position(|h| h == name)?;
            row.get(i).map(|c| c.trim_matches('`').to_string())
        };
        rows.push(Row {
            flag: column("flag").unwrap_or_default(),
            env: column("env").unwrap_or_default(),
            toml: column("TOML"),
            default: column("default").unwrap_or_default(),
        });
    }
    rows
}

/// The default as a table cell starts with it: `10485760 (10 MiB)`, `` `uv` on `PATH` ``.
fn first_word(cell: &str) -> String {
    let word = cell.split_whitespace().next().unwrap_or_default();
    word.trim_matches('`').to_string()
}

#[test]
fn the_configuration_doc_and_the_settings_table_agree() {
    let doc = include_str!("../../../../docs/configuration.md");
    let rows = doc_rows(doc);
    let defaults = ServeArgs::defaults();
    let mut problems = Vec::new();
    for setting in SETTINGS {
        let flag = setting.flag();
        let found: Vec<&Row> = rows.iter().filter(|r| r.flag == flag).collect();
        if found.is_empty() {
            problems.push(format!("{flag}: no row in docs/configuration.md"));
        }
        for row in found {
            if row.env != setting.env {
                problems.push(format!(
                    "{flag}: the doc says {}, the table {}",
                    row.env, setting.env
                ));
            }
            if row.toml.as_ref().is_some_and(|key| *key != setting.key()) {
                problems.push(format!(
                    "{flag}: TOML key {:?}, the table {}",
                    row.toml,
                    setting.key()
                ));
            }
            if let Some(default) = (setting.default)(&defaults) {
                if first_word(&row.default) != default {
                    problems.push(format!(
                        "{flag}: default {:?} in the doc, {default} in the table",
                        row.default
                    ));
                }
            }
        }
    }
    for row in &rows {
        let known = row.flag == "--config" || SETTINGS.iter().any(|s| s.flag() == row.flag);
        if !known {
            problems.push(format!("{}: in the doc but not a setting", row.flag));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(rows.len() >= SETTINGS.len(), "every setting has a row");
}

#[test]
fn every_setting_has_its_own_variable_and_a_help_line() {
    let mut seen = std::collections::HashSet::new();
    for setting in SETTINGS {
        assert!(setting.env.starts_with("PAR_"), "{}", setting.env);
        assert!(seen.insert(setting.env), "{} used twice", setting.env);
        assert!(
            !setting.doc.is_empty(),
            "{} has no help line",
            setting.flag()
        );
    }
}

#[test]
fn the_defaults_are_the_cores_own() {
    let s = resolve(
        ServeArgs::default(),
        ServeArgs::default(),
        &vars(&[("HOME", "/h")]),
    )
    .ok()
    .unwrap();
    let core = par_core::RuntimeConfig::new("/c".into(), "uv".into());
    assert_eq!(s.runtime.max_concurrent_calls, core.max_concurrent_calls);
    assert_eq!(s.runtime.max_queued_calls, core.max_queued_calls);
    assert_eq!(s.runtime.call_timeout, core.call_timeout);
    assert_eq!(s.runtime.drain_timeout, core.drain_timeout);
    assert_eq!(s.runtime.max_frame_bytes, core.max_frame_bytes);
    assert_eq!(s.runtime.worker_threads, core.worker_threads);
    assert_eq!(s.runtime.pool.workers, core.pool.workers);
    assert_eq!(s.runtime.pool.scaling, core.pool.scaling);
    assert_eq!(
        s.runtime.pool.crash_loop_threshold,
        core.pool.crash_loop_threshold
    );
    assert_eq!(s.runtime.worker_env_allow, core.worker_env_allow);
    assert_eq!(
        s.http.max_body_bytes,
        par_http::HttpLimits::default().max_body_bytes
    );
    assert_eq!(
        s.http.max_upload_bytes,
        par_http::HttpLimits::default().max_upload_bytes
    );
}
