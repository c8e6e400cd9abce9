use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("no Python interpreter for runtime '{runtime}' on this host: {detail}")]
    InterpreterNotFound { runtime: String, detail: String },
    #[error("runtime '{0}' is not a Python runtime PAR can run")]
    UnsupportedRuntime(String),
    #[error("cannot run uv at {uv}: {source}")]
    UvMissing { uv: PathBuf, source: std::io::Error },
    #[error("uv {step} failed: {stderr}")]
    Uv { step: &'static str, stderr: String },
    #[error("uv {step} did not finish within {seconds} s")]
    Timeout { step: &'static str, seconds: u64 },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
