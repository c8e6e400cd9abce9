//! `--max-connections`, `--header-read-timeout`, `--keep-alive-timeout`,
//! `--body-read-timeout`: the limits of the HTTP connections.

use par_http::ConnectionLimits;

use crate::env_names as env;
use crate::settings::ServeArgs;
use crate::settings::{positive, seconds};

pub(crate) fn resolve(s: &ServeArgs, errors: &mut Vec<String>) -> ConnectionLimits {
    ConnectionLimits {
        max_connections: positive(
            s,
            |a| a.max_connections,
            "--max-connections",
            env::MAX_CONNECTIONS,
            errors,
        ),
        header_read_timeout: seconds(
            s,
            |a| a.header_read_timeout,
            "--header-read-timeout",
            env::HEADER_READ_TIMEOUT,
            errors,
        ),
        keep_alive_timeout: seconds(
            s,
            |a| a.keep_alive_timeout,
            "--keep-alive-timeout",
            env::KEEP_ALIVE_TIMEOUT,
            errors,
        ),
        body_read_timeout: seconds(
            s,
            |a| a.body_read_timeout,
            "--body-read-timeout",
            env::BODY_READ_TIMEOUT,
            errors,
        ),
    }
}
