//! `--sandbox`, `--network`, `--max-pids`, `--max-disk-mb`: validated here; the host is
//! checked for what `strict` needs (a probe jail) when `serve` starts.

use std::sync::Arc;

use par_core::sandbox::SandboxConfig;
use par_sandbox::{Limits, Network};

use crate::cli::ServeArgs;
use crate::env_names as env;

/// The sandbox as configured, before the host was checked.
pub struct SandboxSettings {
    pub strict: bool,
    pub network: Network,
    pub limits: Limits,
}

pub fn resolve(args: &ServeArgs, file: &ServeArgs, errors: &mut Vec<String>) -> SandboxSettings {
    let mode = args.sandbox.clone().or(file.sandbox.clone());
    let strict = match mode.as_deref() {
        None | Some("strict") => true,
        Some("off") => false,
        Some(other) => {
            errors.push(format!(
                "--sandbox / {}: '{other}' is not strict or off",
                env::SANDBOX
            ));
            true
        }
    };
    let network = match args.network.as_deref().or(file.network.as_deref()) {
        None => Network::Egress,
        Some(text) => Network::parse(text).unwrap_or_else(|| {
            errors.push(format!(
                "--network / {}: '{text}' is not egress, none or host",
                env::NETWORK
            ));
            Network::Egress
        }),
    };
    let defaults = Limits::default();
    let mut bounded =
        |value: Option<u64>, default: u64, min: u64, flag: &str, var: &str| match value {
            Some(v) if v < min => {
                errors.push(format!("{flag} / {var}: must be at least {min}"));
                default
            }
            Some(v) => v,
            None => default,
        };
    let pids = bounded(
        args.max_pids.or(file.max_pids),
        defaults.pids,
        8,
        "--max-pids",
        env::MAX_PIDS,
    );
    let disk_mb = bounded(
        args.max_disk_mb.or(file.max_disk_mb),
        defaults.disk_mb,
        1,
        "--max-disk-mb",
        env::MAX_DISK_MB,
    );
    SandboxSettings {
        strict,
        network,
        limits: Limits {
            pids,
            disk_mb,
            ..defaults
        },
    }
}

/// Checks the host for `strict` with a probe jail. `Err` is the message for exit 2.
pub fn check_host(
    settings: &SandboxSettings,
    cache_dir: &std::path::Path,
) -> Result<Option<SandboxConfig>, String> {
    if !settings.strict {
        return Ok(None);
    }
    let launcher = std::env::current_exe()
        .map_err(|e| format!("--sandbox strict: cannot find the par binary: {e}"))?;
    let support = par_sandbox::host::probe(&launcher, &cache_dir.join("jail")).map_err(|why| {
        format!(
            "--sandbox strict / {}: this host cannot run the jail: {why}. \
             Allow it (see docs/operations.md) or run with --sandbox off ({}=off)",
            env::SANDBOX,
            env::SANDBOX
        )
    })?;
    Ok(Some(SandboxConfig {
        launcher,
        network: settings.network,
        limits: settings.limits.clone(),
        pids_cgroup: support.pids_cgroup,
        egress: Arc::new(par_worker::child::RefuseEgress),
    }))
}
