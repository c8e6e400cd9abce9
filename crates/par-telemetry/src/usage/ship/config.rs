//! Settings of the PostgreSQL shipper, checked before anything starts.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use postgres::config::{Host, SslMode};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::tls;
use crate::usage::UsageError;

/// Longest accepted `instance_id`: it is a key column, not a free-text field.
const MAX_INSTANCE_ID: usize = 200;
/// Connect timeout when the URL sets none, so a black-holed address cannot hang a pass.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Unacknowledged sends fail after this long (Linux), so a dead peer is noticed mid-batch.
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);

/// Counters the shipper bumps. Unregistered: register them to expose them as metrics.
#[derive(Debug, Clone, Default)]
pub struct ShipCounters {
    /// Records committed to PostgreSQL (each counted once, by the instance that shipped it).
    pub shipped: Counter,
    /// Failed passes: connection refused or lost, a batch rejected, the local file unreadable.
    pub failures: Counter,
    /// Records committed locally but not yet in PostgreSQL, as of the last pass. Until the
    /// first connection it counts every local record (the shipped mark is not known yet).
    pub lag: Gauge,
}

/// A snapshot of [`ShipCounters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShipStats {
    pub shipped: u64,
    pub failures: u64,
    pub lag: i64,
}

impl ShipCounters {
    pub(crate) fn stats(&self) -> ShipStats {
        ShipStats {
            shipped: self.shipped.get(),
            failures: self.failures.get(),
            lag: self.lag.get(),
        }
    }
}

/// Tunables of [`super::UsageShipper`]. `Debug` never shows the URL (it holds a password).
#[derive(Clone)]
pub struct ShipConfig {
    /// libpq-style URL or key=value string. `sslmode=require` turns TLS on; see the
    /// module docs.
    pub url: String,
    /// The name of this instance's rows; `None` uses the ledger file's own UUID.
    pub instance_id: Option<String>,
    /// Time between passes while everything ships.
    pub interval: Duration,
    /// Records per PostgreSQL transaction.
    pub batch_size: usize,
    /// Longest wait between passes while PostgreSQL fails (the wait doubles from
    /// `interval` up to this).
    pub max_backoff: Duration,
    /// Longest time [`super::UsageShipper::close`] spends on the final flush.
    pub close_timeout: Duration,
    /// Extra PEM CA certificates trusted for `sslmode=require`, besides the public roots.
    pub ca_bundle: Option<PathBuf>,
    pub counters: ShipCounters,
}

impl ShipConfig {
    /// Defaults for everything but the URL.
    pub fn new(url: impl Into<String>) -> Self {
        ShipConfig {
            url: url.into(),
            instance_id: None,
            interval: Duration::from_secs(5),
            batch_size: 1000,
            max_backoff: Duration::from_secs(60),
            close_timeout: Duration::from_secs(10),
            ca_bundle: None,
            counters: ShipCounters::default(),
        }
    }

    /// Everything that can be wrong without contacting the server: the URL, the instance
    /// id, the numbers and the CA bundle. An unreachable server is not an error.
    pub fn check(&self) -> Result<(), UsageError> {
        self.connection().map(drop)
    }

    pub(crate) fn connection(&self) -> Result<Connection, UsageError> {
        let problem = if self.interval.is_zero() {
            Some(("interval", "must be longer than zero".to_owned()))
        } else if self.batch_size == 0 {
            Some(("batch_size", "must be at least 1".to_owned()))
        } else {
            self.instance_id
                .as_deref()
                .and_then(instance_id_problem)
                .map(|reason| ("instance_id", reason.to_owned()))
        };
        if let Some((setting, reason)) = problem {
            return Err(UsageError::Shipper { setting, reason });
        }
        Connection::new(&self.url, self.ca_bundle.as_deref())
    }
}

fn instance_id_problem(id: &str) -> Option<&'static str> {
    if id.trim().is_empty() {
        Some("must not be empty")
    } else if id.len() > MAX_INSTANCE_ID {
        Some("must be at most 200 bytes")
    } else if id.chars().any(char::is_control) {
        Some("must not contain control characters")
    } else {
        None
    }
}

impl std::fmt::Debug for ShipConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShipConfig")
            .field("instance_id", &self.instance_id)
            .field("interval", &self.interval)
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

/// The password in a PostgreSQL URL, for the log redactor; `None` when there is none or
/// the URL does not parse.
pub fn postgres_password(url: &str) -> Option<String> {
    let config = postgres::Config::from_str(url).ok()?;
    let password = config.get_password()?;
    Some(String::from_utf8_lossy(password).into_owned())
}

/// A parsed connection target: what to connect to, how, and how to name it in logs.
#[derive(Clone)]
pub(crate) struct Connection {
    pub(crate) config: postgres::Config,
    /// `Some` for `sslmode=require`.
    pub(crate) tls: Option<MakeRustlsConnect>,
    /// `user@host:port/dbname`, never the password.
    pub(crate) display: String,
}

impl Connection {
    fn new(url: &str, ca_bundle: Option<&std::path::Path>) -> Result<Self, UsageError> {
        let invalid = |reason: String| UsageError::Shipper {
            setting: "url",
            reason,
        };
        // The parser's messages name options and positions, never values.
        let mut config = postgres::Config::from_str(url).map_err(|e| invalid(with_cause(&e)))?;
        if config.get_hosts().is_empty() {
            return Err(invalid("names no host".to_owned()));
        }
        if config.get_dbname().is_none() {
            return Err(invalid("names no database".to_owned()));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("par-usage-shipper");
        }
        config.tcp_user_timeout(TCP_USER_TIMEOUT);
        let tls = match config.get_ssl_mode() {
            SslMode::Require => Some(tls::connector(ca_bundle)?),
            // `prefer` (the default) and `disable` connect in plain text; see module docs.
            _ => None,
        };
        let display = describe(&config);
        Ok(Connection {
            config,
            tls,
            display,
        })
    }
}

/// `invalid connection string: invalid value for option `sslmode``: the cause is only
/// in the error's source.
fn with_cause(error: &postgres::Error) -> String {
    match std::error::Error::source(error) {
        Some(cause) => format!("{error}: {cause}"),
        None => error.to_string(),
    }
}

fn describe(config: &postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(name)) => name.clone(),
        Some(Host::Unix(path)) => path.display().to_string(),
        None => String::new(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config
        .get_user()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let db = config.get_dbname().unwrap_or_default();
    format!("{user}{host}:{port}/{db}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_found_and_never_displayed() {
        let url = "postgres://biller:s3cr3t-pw@db.internal:6432/usage";
        assert_eq!(postgres_password(url).as_deref(), Some("s3cr3t-pw"));
        let connection = ShipConfig::new(url).connection().unwrap();
        assert_eq!(connection.display, "biller@db.internal:6432/usage");
        assert!(connection.tls.is_none());
        let debug = format!("{:?}", ShipConfig::new(url));
        assert!(!debug.contains("s3cr3t"), "{debug}");
    }

    #[test]
    fn bad_settings_are_named_without_the_secret() {
        let cases = [
            ("postgres://u:hunter22@h/db?bogus=1", "url"),
            ("postgres://u:hunter22@h/db?sslmode=maybe", "url"),
            ("postgres://u:hunter22@/db", "url"),
            ("not a url at all", "url"),
        ];
        for (url, setting) in cases {
            let error = ShipConfig::new(url).check().unwrap_err();
            let text = error.to_string();
            assert!(text.contains(setting), "{text}");
            assert!(text.contains("bogus") || !url.contains("bogus"), "{text}");
            assert!(!text.contains("hunter22"), "{text}");
        }
        let mut config = ShipConfig::new("postgres://u@h/db");
        config.instance_id = Some("a\nb".into());
        let error = config.check().unwrap_err().to_string();
        assert!(error.contains("instance_id"), "{error}");
        config.instance_id = Some("pod-0".into());
        config.check().unwrap();
    }

    #[test]
    fn require_loads_the_ca_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let mut config = ShipConfig::new("postgres://u@h/db?sslmode=require");
        config.ca_bundle = Some(missing);
        let error = config.check().unwrap_err().to_string();
        assert!(error.contains("ca_bundle"), "{error}");
        config.ca_bundle = None;
        assert!(config.connection().unwrap().tls.is_some());
    }
}
