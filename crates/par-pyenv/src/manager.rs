//! Finding interpreters and building or reusing environments.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

use crate::error::EnvError;
use crate::key::env_key;
use crate::uv::Uv;

/// Marks a finished environment; written last, before the rename.
const COMPLETE_MARKER: &str = ".par-complete";

/// A ready environment.
#[derive(Debug, Clone)]
pub struct PythonEnv {
    pub key: String,
    pub dir: PathBuf,
    pub python: PathBuf,
    /// True when an existing environment was reused rather than built now.
    pub reused: bool,
}

pub struct EnvManager {
    uv: Uv,
    root: PathBuf,
    /// One lock per environment key, so concurrent loads of packages with the same
    /// dependency set build it once.
    building: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    interpreters: Mutex<HashMap<String, PathBuf>>,
}

impl EnvManager {
    pub fn new(uv: PathBuf, root: PathBuf, install_timeout: Duration) -> Self {
        EnvManager {
            uv: Uv {
                binary: uv,
                timeout: install_timeout,
            },
            root,
            building: Mutex::default(),
            interpreters: Mutex::default(),
        }
    }

    /// Resolves a manifest `runtime` such as `python3.11` to an interpreter on this host.
    pub async fn find_interpreter(&self, runtime: &str) -> Result<PathBuf, EnvError> {
        let version = python_version(runtime)?;
        let mut known = self.interpreters.lock().await;
        if let Some(path) = known.get(version) {
            return Ok(path.clone());
        }
        fs_err::create_dir_all(&self.root)?;
        let args = [
            OsStr::new("python"),
            OsStr::new("find"),
            OsStr::new(version),
        ];
        let found = self
            .uv
            .run("python find", &args, &self.root)
            .await
            .map_err(|e| EnvError::InterpreterNotFound {
                runtime: runtime.to_string(),
                detail: e.to_string(),
            })?;
        let path = PathBuf::from(found);
        known.insert(version.to_string(), path.clone());
        Ok(path)
    }

    /// Returns the environment for this interpreter and requirement list, building it
    /// when it does not exist yet.
    pub async fn ensure(
        &self,
        interpreter: &Path,
        requirements: &[String],
    ) -> Result<PythonEnv, EnvError> {
        let key = env_key(interpreter, requirements);
        let dir = self.root.join(&key);
        let ready = |reused| PythonEnv {
            key: key.clone(),
            python: dir.join("bin").join("python"),
            dir: dir.clone(),
            reused,
        };
        if is_complete(&dir) {
            return Ok(ready(true));
        }
        let key_lock = self.key_lock(&key).await;
        let _building = key_lock.lock().await;
        fs_err::create_dir_all(&self.root)?;
        let _file_lock = par_filelock::lock_file(self.root.join(format!("{key}.lock"))).await?;
        if is_complete(&dir) {
            return Ok(ready(true));
        }
        self.build(interpreter, requirements, &dir).await?;
        Ok(ready(false))
    }

    async fn key_lock(&self, key: &str) -> Arc<Mutex<()>> {
        let mut building = self.building.lock().await;
        building.entry(key.to_string()).or_default().clone()
    }

    async fn build(
        &self,
        interpreter: &Path,
        requirements: &[String],
        dir: &Path,
    ) -> Result<(), EnvError> {
        let staging = tempfile::Builder::new()
            .prefix(".build-")
            .tempdir_in(&self.root)?;
        let venv = staging.path().join("venv");
        tracing::info!(env = %dir.display(), count = requirements.len(), "building python environment");
        let args: [&OsStr; 6] = [
            "venv".as_ref(),
            "--relocatable".as_ref(),
            "--quiet".as_ref(),
            "--python".as_ref(),
            interpreter.as_os_str(),
            venv.as_os_str(),
        ];
        self.uv.run("venv", &args, &self.root).await?;
        if !requirements.is_empty() {
            self.install(&venv, requirements).await?;
        }
        fs_err::write(venv.join(COMPLETE_MARKER), requirements.join("\n"))?;
        if dir.exists() {
            // A leftover without the marker (a crash between rename and marker cannot
            // happen, but an older layout could): replace it.
            fs_err::remove_dir_all(dir)?;
        }
        fs_err::rename(&venv, dir)?;
        Ok(())
    }

    async fn install(&self, venv: &Path, requirements: &[String]) -> Result<(), EnvError> {
        let file = venv.join("par-requirements.txt");
        fs_err::write(&file, requirements.join("\n") + "\n")?;
        let python = venv.join("bin").join("python");
        let args: [&OsStr; 6] = [
            "pip".as_ref(),
            "install".as_ref(),
            "--quiet".as_ref(),
            "--python".as_ref(),
            python.as_os_str(),
            "--requirements".as_ref(),
        ];
        let mut all: Vec<&OsStr> = args.to_vec();
        all.push(file.as_os_str());
        self.uv.run("pip install", &all, &self.root).await?;
        Ok(())
    }
}

fn is_complete(dir: &Path) -> bool {
    dir.join(COMPLETE_MARKER).is_file()
}

/// `python3.11` -> `3.11`; other runtimes (node, go) are not ours to run.
fn python_version(runtime: &str) -> Result<&str, EnvError> {
    let version = runtime
        .strip_prefix("python")
        .ok_or_else(|| EnvError::UnsupportedRuntime(runtime.to_string()))?;
    let valid = !version.is_empty()
        && version
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if valid {
        Ok(version)
    } else {
        Err(EnvError::UnsupportedRuntime(runtime.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_names_map_to_versions() {
        assert_eq!(python_version("python3.11").unwrap(), "3.11");
        assert_eq!(python_version("python3").unwrap(), "3");
        assert!(matches!(
            python_version("node20"),
            Err(EnvError::UnsupportedRuntime(_))
        ));
        assert!(python_version("python3.x").is_err());
        assert!(python_version("python").is_err());
    }
}
