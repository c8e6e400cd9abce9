//! Errors of the usage ledger, each naming the database file where one is involved.

use std::path::PathBuf;

/// What went wrong in the usage ledger.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// SQLite failed on the named database.
    #[error("usage ledger {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// The file is not a usage ledger this build can read.
    #[error("usage ledger {path}: {reason}")]
    Schema { path: PathBuf, reason: String },
    /// Writing an export, or starting the writer thread, failed.
    #[error("usage ledger I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The ledger was closed, or its writer thread is gone.
    #[error("usage ledger is closed")]
    Closed,
    /// The ledger has no SQLite file to read (it writes to another sink).
    #[error("usage ledger has no queryable database")]
    NotQueryable,
    /// A setting is out of range.
    #[error("usage ledger setting {setting} {reason}")]
    Config {
        setting: &'static str,
        reason: &'static str,
    },
    /// A setting of the PostgreSQL shipper is wrong (the reason never holds the password).
    #[error("usage shipper setting {setting}: {reason}")]
    Shipper {
        setting: &'static str,
        reason: String,
    },
}

impl UsageError {
    /// Wraps a SQLite error with the database path.
    pub(crate) fn sqlite(path: &std::path::Path) -> impl FnOnce(rusqlite::Error) -> Self + '_ {
        move |source| UsageError::Sqlite {
            path: path.to_path_buf(),
            source,
        }
    }
}
