//! Running the `uv` binary with a controlled environment.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

use crate::error::EnvError;

/// Most of uv's stderr kept in an error report; uv puts the useful part last.
const STDERR_TAIL: usize = 4000;

pub(crate) struct Uv {
    pub binary: PathBuf,
    pub timeout: Duration,
}

impl Uv {
    /// Runs uv with `args`; on failure the error carries the tail of its stderr.
    pub(crate) async fn run(
        &self,
        step: &'static str,
        args: &[&std::ffi::OsStr],
        cwd: &Path,
    ) -> Result<String, EnvError> {
        let mut command = Command::new(&self.binary);
        command
            .args(args)
            .current_dir(cwd)
            // No project or user config may change what gets installed, and uv must never
            // download an interpreter on its own: interpreters are the operator's choice.
            .env("UV_NO_CONFIG", "1")
            .env("UV_PYTHON_DOWNLOADS", "never")
            .env("UV_NO_PROGRESS", "1")
            .env_remove("VIRTUAL_ENV")
            .env_remove("PYTHONPATH")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        let output = tokio::time::timeout(self.timeout, command.output())
            .await
            .map_err(|_| EnvError::Timeout {
                step,
                seconds: self.timeout.as_secs(),
            })?
            .map_err(|source| EnvError::UvMissing {
                uv: self.binary.clone(),
                source,
            })?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).trim().to_string());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let start = stderr.len().saturating_sub(STDERR_TAIL);
        let start = (start..stderr.len())
            .find(|i| stderr.is_char_boundary(*i))
            .unwrap_or(0);
        Err(EnvError::Uv {
            step,
            stderr: stderr[start..].trim().to_string(),
        })
    }
}
