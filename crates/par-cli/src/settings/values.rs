//! Checks shared by the settings, and the settings with rules of their own: the TLS
//! pair, the sources, the usage ledger and its shipper.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use super::table::ServeArgs;
use crate::env_names as env;

/// The message of a setting read here that lost its default in the table (the settings
/// tests would fail first).
const HAS_DEFAULT: &str = "a setting checked here has a default in the table";

/// The setting `field` of `s`, which must be greater than zero; when it is not, the error
/// names it and the table's default stands in (startup stops anyway).
pub(crate) fn positive<T: PartialOrd + Default>(
    s: &ServeArgs,
    field: fn(&ServeArgs) -> Option<T>,
    flag: &str,
    var: &str,
    errors: &mut Vec<String>,
) -> T {
    let value = field(s).expect(HAS_DEFAULT);
    if value <= T::default() {
        errors.push(format!("{flag} / {var}: must be greater than zero"));
        return field(&ServeArgs::defaults()).expect(HAS_DEFAULT);
    }
    value
}

/// The setting `field` of `s`, a positive number of seconds; as [`positive`] otherwise.
pub(crate) fn seconds(
    s: &ServeArgs,
    field: fn(&ServeArgs) -> Option<f64>,
    flag: &str,
    var: &str,
    errors: &mut Vec<String>,
) -> Duration {
    let secs = field(s).expect(HAS_DEFAULT);
    if !(secs.is_finite() && secs > 0.0 && secs < 1e9) {
        errors.push(format!(
            "{flag} / {var}: must be a positive number of seconds"
        ));
        return Duration::from_secs_f64(field(&ServeArgs::defaults()).expect(HAS_DEFAULT));
    }
    Duration::from_secs_f64(secs)
}

/// Sources from the command line, the file's `sources` and `PACKAGES_URLS`, all loaded.
pub(super) fn collect_sources(s: &ServeArgs, vars: &HashMap<String, String>) -> Vec<String> {
    let mut sources: Vec<String> = s.positional.clone();
    sources.extend(s.sources.iter().cloned());
    if let Some(list) = vars.get(env::PACKAGES_URLS) {
        sources.extend(
            list.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from),
        );
    }
    sources
}

/// `--tls-cert` and `--tls-key` come together, and both files must exist.
pub(super) fn tls_files(s: &ServeArgs, errors: &mut Vec<String>) -> Option<par_http::TlsFiles> {
    match (s.tls_cert.clone(), s.tls_key.clone()) {
        (None, None) => None,
        (Some(cert), Some(key)) => {
            for (path, flag, var) in [
                (&cert, "--tls-cert", env::TLS_CERT),
                (&key, "--tls-key", env::TLS_KEY),
            ] {
                if !path.is_file() {
                    errors.push(format!("{flag} / {var}: no such file {}", path.display()));
                }
            }
            Some(par_http::TlsFiles { cert, key })
        }
        _ => {
            errors.push(format!(
                "--tls-cert / {} and --tls-key / {}: give both or neither",
                env::TLS_CERT,
                env::TLS_KEY
            ));
            None
        }
    }
}

/// `--usage-postgres-url`, `--usage-ship-interval`, `--instance-id`: checked here so a
/// bad URL stops startup (an unreachable server does not).
pub(super) fn usage_ship(
    s: &ServeArgs,
    ledger_on: bool,
    errors: &mut Vec<String>,
) -> Option<par_telemetry::usage::ShipConfig> {
    use par_telemetry::usage::UsageError;
    let url = s.usage_postgres_url.clone()?;
    let flag = format!("--usage-postgres-url / {}", env::USAGE_POSTGRES_URL);
    if !ledger_on {
        errors.push(format!(
            "{flag}: needs the usage ledger (--usage-db is off)"
        ));
    }
    let mut ship = par_telemetry::usage::ShipConfig::new(url);
    ship.interval = seconds(
        s,
        |a| a.usage_ship_interval,
        "--usage-ship-interval",
        env::USAGE_SHIP_SECS,
        errors,
    );
    ship.instance_id = s.instance_id.clone();
    ship.ca_bundle = s.ca_bundle.clone();
    if let Err(e) = ship.check() {
        let flag = match e {
            UsageError::Shipper {
                setting: "instance_id",
                ..
            } => format!("--instance-id / {}", env::INSTANCE_ID),
            UsageError::Shipper {
                setting: "ca_bundle",
                ..
            } => format!("--ca-bundle / {}", env::CA_BUNDLE),
            _ => flag,
        };
        errors.push(format!("{flag}: {e}"));
    }
    Some(ship)
}

/// `--usage-db`: a path, `off`, or the default under the user's data directory.
pub(crate) fn usage_db(value: Option<&str>, vars: &HashMap<String, String>) -> Option<PathBuf> {
    match value {
        Some("off") => None,
        Some(path) => Some(PathBuf::from(path)),
        None => {
            let base = match vars.get(env::XDG_DATA_HOME).filter(|v| !v.is_empty()) {
                Some(xdg) => PathBuf::from(xdg),
                None => PathBuf::from(vars.get(env::HOME).map_or(".", |h| h.as_str()))
                    .join(".local/share"),
            };
            Some(base.join("par").join("usage.sqlite3"))
        }
    }
}

pub(super) fn default_cache_dir(vars: &HashMap<String, String>) -> Option<PathBuf> {
    let base = match vars.get(env::XDG_CACHE_HOME).filter(|v| !v.is_empty()) {
        Some(xdg) => PathBuf::from(xdg),
        None => PathBuf::from(vars.get(env::HOME)?).join(".cache"),
    };
    Some(base.join("par"))
}

/// `--workers`: a fixed number of workers per package, or `auto` (an elastic pool).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Workers {
    Fixed(usize),
    Auto,
}

impl std::str::FromStr for Workers {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim() {
            "auto" => Ok(Workers::Auto),
            number => number
                .parse()
                .map(Workers::Fixed)
                .map_err(|_| format!("{text:?} is neither a number of workers nor auto")),
        }
    }
}

impl std::fmt::Display for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Workers::Fixed(n) => write!(f, "{n}"),
            Workers::Auto => f.write_str("auto"),
        }
    }
}

/// TOML `workers = 2` or `workers = "auto"`.
impl<'de> serde::Deserialize<'de> for Workers {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Given {
            Count(usize),
            Word(String),
        }
        match Given::deserialize(d)? {
            Given::Count(n) => Ok(Workers::Fixed(n)),
            Given::Word(word) => word.parse().map_err(serde::de::Error::custom),
        }
    }
}
