//! Loading one package file: verify, read the manifest, extract, build the environment,
//! start workers. Each step's failure names its phase; nothing half-done is mounted.

use std::io::Read;
use std::path::{Path, PathBuf};

use par_manifest::Manifest;
use par_pyenv::EnvManager;
use par_telemetry::metrics::LoadPhase as Phase;
use par_worker::WorkerSpec;

use crate::config::RuntimeConfig;
use crate::envvars::{worker_env, EnvInputs};
use crate::error::{LoadError, LoadPhase};
use crate::gate::CallGate;
use crate::package::Package;
use crate::pool::WorkerPool;
use crate::source::SourceFile;
use crate::surface::{surface_of, Surface};

/// Largest `.env`, `requirements.txt` or `pyproject.toml` read from a package.
const SIDE_FILE_LIMIT: u64 = 1024 * 1024;

pub(crate) struct Loader<'a> {
    pub config: &'a RuntimeConfig,
    pub metrics: &'a par_telemetry::Metrics,
    pub envs: &'a EnvManager,
    pub worker_script: &'a Path,
    /// Told each phase as it starts (the package report shows it while loading).
    pub reports: &'a crate::reports::Reports,
    /// Each package's log budget, shared by its processes.
    pub(crate) log_budgets: &'a crate::log_budgets::LogBudgets,
}

impl Loader<'_> {
    pub(crate) async fn load(&self, file: &SourceFile) -> Result<Package, LoadError> {
        let label = file.label.as_str();
        self.reports.phase(label, LoadPhase::Verify);
        let sha256 = self.timed(Phase::Verify, self.verify(file)).await?;
        self.reports.phase(label, LoadPhase::Manifest);
        let manifest = self
            .timed(Phase::Manifest, self.read_manifest(file))
            .await?;
        self.reports.phase(label, LoadPhase::Extract);
        let root = self
            .timed(Phase::Extract, self.extract(file, &sha256))
            .await?;
        let side =
            SideFiles::read(&root).map_err(|e| LoadError::new(LoadPhase::Extract, label, e))?;
        self.reports.phase(label, LoadPhase::Environment);
        let environment = self.environment(label, &manifest, &side);
        let (env_key, python) = self.timed(Phase::Environment, environment).await?;
        self.register_secrets(&manifest, &side);
        make_private_dirs(&self.work_dir(&manifest, &root))
            .and_then(|()| self.make_sandbox_dirs(&manifest))
            .map_err(|e| LoadError::new(LoadPhase::Start, label, e))?;
        self.reports.phase(label, LoadPhase::Start);
        let env = self.process_env(&manifest, &root, &side, &python);
        let jail = self.jail(&manifest, &root, &python);
        let start = self.start_workers(label, &manifest, &root, env.clone(), &python, jail.clone());
        let pool = self.timed(Phase::Start, start).await?;
        let surface = self
            .start_surface(label, &manifest, &root, env, &python, jail)
            .await?;
        let ui = par_surface::UiSite::locate(&root, manifest.ui_path.as_deref());
        let schemas = crate::schema::Schemas::load(&root, &manifest)
            .map_err(|e| LoadError::new(LoadPhase::Manifest, label, e))?;
        let sandbox = crate::sandbox::report(
            self.config.sandbox.as_ref(),
            &manifest.name,
            self.config.pool.memory_limit_bytes,
        );
        Ok(Package {
            manifest,
            sha256,
            root,
            source: label.to_string(),
            env_key,
            pool,
            gate: CallGate::new(
                self.config.max_concurrent_calls,
                self.config.max_queued_calls,
            ),
            retired: Default::default(),
            idle: crate::idle::Idle::new(self.config.idle_timeout),
            surface,
            ui,
            schemas,
            sandbox,
        })
    }

    /// The package's uploads folder and the jails' scratch folder, private to the runtime.
    fn make_sandbox_dirs(&self, manifest: &Manifest) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        for dir in [
            self.config.uploads_dir(&manifest.name),
            self.config.jail_dir(),
        ] {
            fs_err::create_dir_all(&dir)?;
            fs_err::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }

    /// The jail of the package's processes under `--sandbox strict`.
    fn jail(
        &self,
        manifest: &Manifest,
        root: &Path,
        python: &Path,
    ) -> Option<std::sync::Arc<par_worker::child::Jail>> {
        let config = self.config.sandbox.as_ref()?;
        let venv = python.parent().and_then(Path::parent).unwrap_or(root);
        let work = self.work_dir(manifest, root);
        let uploads = self.config.uploads_dir(&manifest.name);
        let paths = crate::sandbox::PackagePaths {
            name: &manifest.name,
            label: format!("{}@{}", manifest.name, manifest.agent_version),
            root,
            venv,
            python,
            work: &work,
            uploads: &uploads,
            scratch: self.config.jail_dir(),
            memory_limit: self.config.pool.memory_limit_bytes,
        };
        Some(crate::sandbox::jail(config, &paths))
    }

    /// Runs one phase and records how long it took.
    async fn timed<T>(&self, phase: Phase, step: impl std::future::Future<Output = T>) -> T {
        let started = std::time::Instant::now();
        let out = step.await;
        self.metrics.load_phase_finished(phase, started.elapsed());
        out
    }

    async fn verify(&self, file: &SourceFile) -> Result<String, LoadError> {
        let path = file.path.clone();
        let actual = tokio::task::spawn_blocking(move || par_archive::sha256_file(&path))
            .await
            .map_err(|e| LoadError::new(LoadPhase::Verify, &file.label, e))?
            .map_err(|e| LoadError::new(LoadPhase::Verify, &file.label, e))?;
        if let Some(expected) = &file.expected_sha256 {
            if *expected != actual {
                return Err(LoadError::new(
                    LoadPhase::Verify,
                    &file.label,
                    format!("sha256 mismatch: expected {expected}, got {actual}"),
                ));
            }
        }
        Ok(actual)
    }

    async fn read_manifest(&self, file: &SourceFile) -> Result<Manifest, LoadError> {
        let path = file.path.clone();
        let max = self.config.manifest_limits.max_bytes as u64;
        let bytes =
            tokio::task::spawn_blocking(move || par_archive::read_entry(&path, "agent.yaml", max))
                .await
                .map_err(|e| LoadError::new(LoadPhase::Manifest, &file.label, e))?
                .map_err(|e| LoadError::new(LoadPhase::Manifest, &file.label, e))?;
        par_manifest::parse_manifest(&bytes, &self.config.manifest_limits)
            .map_err(|e| LoadError::new(LoadPhase::Manifest, &file.label, e))
    }

    async fn extract(&self, file: &SourceFile, sha256: &str) -> Result<PathBuf, LoadError> {
        let dest = self.config.packages_dir().join(sha256);
        let (path, target, limits) = (
            file.path.clone(),
            dest.clone(),
            self.config.archive_limits.clone(),
        );
        tokio::task::spawn_blocking(move || {
            fs_err::create_dir_all(target.parent().expect("packages dir has a parent"))
                .map_err(|e| e.to_string())?;
            par_archive::extract_to(&path, &target, &limits).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| LoadError::new(LoadPhase::Extract, &file.label, e))?
        .map_err(|e| LoadError::new(LoadPhase::Extract, &file.label, e))?;
        Ok(dest)
    }

    async fn environment(
        &self,
        label: &str,
        manifest: &Manifest,
        side: &SideFiles,
    ) -> Result<(String, PathBuf), LoadError> {
        let fail = |e: &dyn std::fmt::Display| LoadError::new(LoadPhase::Environment, label, e);
        let deps = par_manifest::resolve_dependencies(
            side.requirements.as_deref(),
            side.pyproject.as_deref(),
            manifest,
        )
        .map_err(|e| fail(&e))?;
        let mut requirements = deps.requirements;
        if let Some((mode, _)) = surface_of(manifest) {
            // The app needs an ASGI server (and FastAPI for a REST mount) even when the
            // package does not list one; what it pins itself is kept.
            let extra = par_surface::missing_packages(mode, &requirements);
            requirements.extend(extra.iter().map(|r| r.to_string()));
        }
        let interpreter = self
            .envs
            .find_interpreter(&manifest.runtime)
            .await
            .map_err(|e| fail(&e))?;
        let env = self
            .envs
            .ensure(&interpreter, &requirements)
            .await
            .map_err(|e| fail(&e))?;
        tracing::info!(source = label, env = %env.key, reused = env.reused, "python environment ready");
        Ok((env.key, env.python))
    }

    /// `.env` and `environment` values are the package's secrets as far as logs go.
    fn register_secrets(&self, manifest: &Manifest, side: &SideFiles) {
        let dotenv = side
            .dotenv
            .as_deref()
            .map(par_manifest::parse_dotenv)
            .unwrap_or_default();
        // The package's public identity is no secret, even when `.env` repeats it.
        let public: Vec<&str> = std::iter::once(manifest.name.as_str())
            .chain(std::iter::once(manifest.agent_version.as_str()))
            .chain(manifest.sub_agents.iter().map(|s| s.name.as_str()))
            .collect();
        let values = dotenv
            .iter()
            .map(|(_, v)| v)
            .chain(manifest.environment.values());
        for value in values.filter(|v| !public.contains(&v.trim())) {
            self.config.redactor.add_secret(value);
        }
    }

    /// The environment of every process of this package (workers and HTTP app).
    fn process_env(
        &self,
        manifest: &Manifest,
        root: &Path,
        side: &SideFiles,
        python: &Path,
    ) -> Vec<(String, String)> {
        let venv = python.parent().and_then(Path::parent).unwrap_or(root);
        let work = self.work_dir(manifest, root);
        let dotenv = side
            .dotenv
            .as_deref()
            .map(par_manifest::parse_dotenv)
            .unwrap_or_default();
        worker_env(&EnvInputs {
            host: &self.config.host_env,
            allow: &self.config.worker_env_allow,
            dotenv: &dotenv,
            manifest: &manifest.environment,
            venv,
            work: &work,
            package_root: root,
        })
    }

    /// `<cache>/work/<name>-<version>-<digest prefix>`: where the package's processes run.
    fn work_dir(&self, manifest: &Manifest, root: &Path) -> PathBuf {
        let digest = root.file_name().and_then(|n| n.to_str()).unwrap_or("x");
        let name = format!(
            "{}-{}-{}",
            manifest.name,
            manifest.agent_version,
            &digest[..digest.len().min(12)]
        );
        self.config.cache_dir.join("work").join(name)
    }

    /// The package's process running `script`: the part a worker and an HTTP app share.
    fn program(
        &self,
        manifest: &Manifest,
        root: &Path,
        env: Vec<(String, String)>,
        python: &Path,
        script: std::path::PathBuf,
        jail: Option<std::sync::Arc<par_worker::child::Jail>>,
    ) -> par_worker::child::Program {
        par_worker::child::Program {
            label: format!("{}@{}", manifest.name, manifest.agent_version),
            python: python.to_path_buf(),
            script,
            package_root: root.to_path_buf(),
            env,
            cwd: self.work_dir(manifest, root),
            startup_timeout: self.config.worker_startup_timeout,
            jail,
            log_budget: self.log_budgets.for_package(&manifest.name),
        }
    }

    async fn start_surface(
        &self,
        label: &str,
        manifest: &Manifest,
        root: &Path,
        env: Vec<(String, String)>,
        python: &Path,
        jail: Option<std::sync::Arc<par_worker::child::Jail>>,
    ) -> Result<Option<Surface>, LoadError> {
        let Some((mode, entry)) = surface_of(manifest) else {
            return Ok(None);
        };
        let fail = |e: &dyn std::fmt::Display| LoadError::new(LoadPhase::Start, label, e);
        let script =
            par_surface::script::materialize(&self.config.surface_dir()).map_err(|e| fail(&e))?;
        let spec = par_surface::SurfaceSpec {
            program: self.program(manifest, root, env, python, script, jail),
            mode,
            entry,
            forwarded_prefix: format!("/agents/{}", manifest.name),
            response_timeout: self.config.call_timeout,
            websocket_idle_timeout: self.config.websocket_idle_timeout,
        };
        Surface::start(spec).await.map(Some).map_err(|e| fail(&e))
    }

    async fn start_workers(
        &self,
        label: &str,
        manifest: &Manifest,
        root: &Path,
        env: Vec<(String, String)>,
        python: &Path,
        jail: Option<std::sync::Arc<par_worker::child::Jail>>,
    ) -> Result<Option<WorkerPool>, LoadError> {
        let Some(entry) = &manifest.entrypoint else {
            return Ok(None);
        };
        let script = self.worker_script.to_path_buf();
        let spec = WorkerSpec {
            program: self.program(manifest, root, env, python, script, jail),
            entrypoint: entry.to_string(),
            max_frame: self.config.max_frame_bytes,
            threads: self.config.worker_threads,
        };
        let mut pool = self.config.pool.clone();
        pool.memory_limit_bytes = crate::sandbox::memory_limit_of(
            self.config.sandbox.as_ref(),
            &manifest.name,
            pool.memory_limit_bytes,
        );
        WorkerPool::start(spec, pool, &manifest.name, self.metrics.clone())
            .await
            .map(Some)
            .map_err(|e| LoadError::new(LoadPhase::Start, label, e))
    }
}

/// Package files besides the manifest that decide environment and variables.
struct SideFiles {
    dotenv: Option<String>,
    requirements: Option<String>,
    pyproject: Option<String>,
}

impl SideFiles {
    fn read(root: &Path) -> Result<SideFiles, String> {
        Ok(SideFiles {
            dotenv: read_capped(&root.join(".env"))?,
            requirements: read_capped(&root.join("requirements.txt"))?,
            pyproject: read_capped(&root.join("pyproject.toml"))?,
        })
    }
}

fn read_capped(path: &Path) -> Result<Option<String>, String> {
    if !path.is_file() {
        return Ok(None);
    }
    let file = fs_err::File::open(path).map_err(|e| e.to_string())?;
    let mut text = String::new();
    file.take(SIDE_FILE_LIMIT + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if text.len() as u64 > SIDE_FILE_LIMIT {
        return Err(format!(
            "{} is larger than {SIDE_FILE_LIMIT} bytes",
            path.display()
        ));
    }
    Ok(Some(text))
}

/// The working directory and its `tmp`, readable by the runtime's user only.
fn make_private_dirs(work: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs_err::create_dir_all(work.join("tmp"))?;
    for dir in [work.to_path_buf(), work.join("tmp")] {
        fs_err::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}
