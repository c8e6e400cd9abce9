//! `--max-connections`, `--header-read-timeout`, `--keep-alive-timeout`,
//! `--body-read-timeout`: the limits of the HTTP connections.

use par_http::ConnectionLimits;

use crate::cli::ServeArgs;
use crate::env_names as env;
use crate::settings::{positive, seconds};

pub fn resolve(a: &ServeArgs, f: &ServeArgs, errors: &mut Vec<String>) -> ConnectionLimits {
    let d = ConnectionLimits::default();
    ConnectionLimits {
        max_connections: positive(
            a.max_connections.or(f.max_connections),
            d.max_connections,
            "--max-connections",
            env::MAX_CONNECTIONS,
            errors,
        ),
        header_read_timeout: seconds(
            a.header_read_timeout.or(f.header_read_timeout),
            d.header_read_timeout.as_secs_f64(),
            "--header-read-timeout",
            env::HEADER_READ_TIMEOUT,
            errors,
        ),
        keep_alive_timeout: seconds(
            a.keep_alive_timeout.or(f.keep_alive_timeout),
            d.keep_alive_timeout.as_secs_f64(),
            "--keep-alive-timeout",
            env::KEEP_ALIVE_TIMEOUT,
            errors,
        ),
        body_read_timeout: seconds(
            a.body_read_timeout.or(f.body_read_timeout),
            d.body_read_timeout.as_secs_f64(),
            "--body-read-timeout",
            env::BODY_READ_TIMEOUT,
            errors,
        ),
    }
}
