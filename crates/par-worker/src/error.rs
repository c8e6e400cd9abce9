use std::path::PathBuf;

/// Why a worker could not be started or could not finish a call.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("cannot start python {python}: {source}")]
    Spawn {
        python: PathBuf,
        source: std::io::Error,
    },
    #[error("worker channel setup failed: {0}")]
    Channel(std::io::Error),
    #[error("worker failed to load entrypoint {entrypoint}: {message}")]
    Entrypoint { entrypoint: String, message: String },
    #[error("worker did not become ready within {0:?}")]
    StartupTimeout(std::time::Duration),
    #[error("worker exited during startup ({status}){stderr}")]
    ExitedDuringStartup { status: String, stderr: String },
    #[error("worker protocol error: {0}")]
    Protocol(String),
    #[error("worker process is gone")]
    Gone,
    #[error("the request is {len} bytes, over the worker frame limit of {limit}")]
    TooLarge { len: usize, limit: usize },
}
