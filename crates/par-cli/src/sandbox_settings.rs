//! `--sandbox`, `--network`, `--max-pids`, `--max-disk-mb` and the limits of
//! `[packages.<name>]` tables: validated here; the host is checked for what `strict`
//! needs (a probe jail, the cgroups the runtime may create) when `serve` starts.

use std::sync::Arc;

use std::collections::BTreeMap;

use par_core::sandbox::{PackageLimits, SandboxConfig};
use par_egress::{EgressObserver, EgressPolicy, EgressSettings, NetworkMode};
use par_sandbox::host::HostSupport;
use par_sandbox::{Limits, Network};

use crate::cli::ServeArgs;
use crate::env_names as env;

/// The sandbox as configured, before the host was checked.
pub(crate) struct SandboxSettings {
    pub strict: bool,
    pub limits: Limits,
    /// `[packages.<name>]` limits, by package name.
    pub package_limits: BTreeMap<String, PackageLimits>,
}

pub(crate) fn resolve(s: &ServeArgs, errors: &mut Vec<String>) -> SandboxSettings {
    let mode = s.sandbox.clone();
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
    let pids = bounded(s.max_pids, defaults.pids, 8, "--max-pids", env::MAX_PIDS);
    let disk_mb = bounded(
        s.max_disk_mb,
        defaults.disk_mb,
        1,
        "--max-disk-mb",
        env::MAX_DISK_MB,
    );
    SandboxSettings {
        strict,
        limits: Limits {
            pids,
            disk_mb,
            ..defaults
        },
        package_limits: package_limits(&s.packages, errors),
    }
}

/// The limits of each `[packages.<name>]` table, held to the same minimums as the flags.
fn package_limits(
    tables: &BTreeMap<String, crate::network_settings::PackageTable>,
    errors: &mut Vec<String>,
) -> BTreeMap<String, PackageLimits> {
    let mut out = BTreeMap::new();
    for (name, table) in tables {
        let mut at_least = |value: Option<u64>, min: u64, key: &str| match value {
            Some(v) if v < min => {
                errors.push(format!(
                    "--config: [packages.{name}] {key}: must be at least {min}"
                ));
                None
            }
            other => other,
        };
        let limits = PackageLimits {
            pids: at_least(table.max_pids, 8, "max-pids"),
            disk_mb: at_least(table.max_disk_mb, 1, "max-disk-mb"),
            open_files: at_least(table.max_open_files, 64, "max-open-files"),
            memory_bytes: at_least(table.worker_memory_limit, 1, "worker-memory-limit"),
        };
        if limits != PackageLimits::default() {
            out.insert(name.clone(), limits);
        }
    }
    out
}

/// Checks the host for `strict` with a probe jail. `Err` is the message for exit 2; the
/// second value is a warning to log once logging is up (the launcher fell back).
pub(crate) fn check_host(
    settings: &SandboxSettings,
    network: &EgressSettings,
    egress: ProxyEgress,
    cache_dir: &std::path::Path,
) -> Result<(Option<SandboxConfig>, Option<String>), String> {
    if !settings.strict {
        return Ok((None, None));
    }
    let (launcher, support, note) = choose_launcher(&cache_dir.join("jail")).map_err(|why| {
        format!(
            "--sandbox strict / {}: this host cannot run the jail: {why}. \
             Allow it (see docs/operations.md) or run with --sandbox off ({}=off)",
            env::SANDBOX,
            env::SANDBOX
        )
    })?;
    let config = sandbox_config(settings, network, egress, launcher, support);
    Ok((Some(config), note))
}

/// The small `par-jail` installed next to `par` when it passes the probe, else `par
/// __jail` (the same code inside the runtime's own binary, slower to start: it is the
/// whole runtime). A `par-jail` from another build fails the probe and is not used.
fn choose_launcher(
    scratch: &std::path::Path,
) -> Result<(std::path::PathBuf, HostSupport, Option<String>), String> {
    let own = std::env::current_exe().map_err(|e| format!("cannot find the par binary: {e}"))?;
    let small = own.with_file_name("par-jail");
    let mut note = None;
    if small.is_file() {
        match par_sandbox::host::probe(&small, scratch) {
            Ok(support) => return Ok((small, support, None)),
            Err(why) => {
                note = Some(format!(
                    "{} failed the probe jail ({why}); jails start with `{} __jail` instead",
                    small.display(),
                    own.display()
                ))
            }
        }
    }
    let support = par_sandbox::host::probe(&own, scratch)?;
    Ok((own, support, note))
}

fn sandbox_config(
    settings: &SandboxSettings,
    network: &EgressSettings,
    egress: ProxyEgress,
    launcher: std::path::PathBuf,
    support: HostSupport,
) -> SandboxConfig {
    SandboxConfig {
        launcher,
        network: jail_network(network.default_network),
        package_networks: network
            .packages
            .iter()
            .filter_map(|(name, p)| Some((name.clone(), jail_network(p.network?))))
            .collect(),
        package_egress: network
            .packages
            .iter()
            .filter_map(|(name, p)| {
                let list = p.egress.as_ref()?;
                Some((name.clone(), list.iter().map(ToString::to_string).collect()))
            })
            .collect(),
        limits: settings.limits.clone(),
        package_limits: settings.package_limits.clone(),
        pids_cgroup: support.pids_cgroup,
        cgroups: support.cgroups,
        egress: Arc::new(egress),
    }
}

fn jail_network(mode: NetworkMode) -> Network {
    match mode {
        NetworkMode::None => Network::None,
        NetworkMode::Egress => Network::Egress,
        NetworkMode::Host => Network::Host,
    }
}

/// The runtime's egress proxy behind every jail's listener: one policy per package (its
/// connection cap is shared by all of the package's processes), counted in the metrics.
pub(crate) struct ProxyEgress {
    settings: Arc<EgressSettings>,
    own_addrs: Vec<std::net::SocketAddr>,
    observer: Arc<dyn EgressObserver>,
    policies: std::sync::Mutex<std::collections::HashMap<String, Arc<EgressPolicy>>>,
}

impl ProxyEgress {
    pub(crate) fn new(
        settings: &crate::settings::ServeSettings,
        metrics: par_telemetry::Metrics,
    ) -> Self {
        ProxyEgress {
            settings: Arc::new(settings.network.clone()),
            own_addrs: vec![settings.listen],
            observer: Arc::new(metrics),
            policies: Default::default(),
        }
    }

    fn policy(&self, package: &str) -> Option<Arc<EgressPolicy>> {
        let mut policies = self.policies.lock().expect("policies poisoned");
        if let Some(policy) = policies.get(package) {
            return Some(policy.clone());
        }
        let policy = Arc::new(self.settings.policy_for(package, &self.own_addrs)?);
        policies.insert(package.to_string(), policy.clone());
        Some(policy)
    }
}

impl par_worker::child::EgressSink for ProxyEgress {
    fn serve(
        &self,
        label: String,
        listener: tokio::net::TcpListener,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        // The jail's label is `name@version`; policies are the package name's.
        let package = label.split('@').next().unwrap_or(&label).to_string();
        match self.policy(&package) {
            Some(policy) => Box::pin(par_egress::serve(
                listener,
                Arc::from(package.as_str()),
                policy,
                self.observer.clone(),
            )),
            None => par_worker::child::RefuseEgress.serve(label, listener),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_tables_override_limits_and_bad_ones_are_named() {
        let file: ServeArgs = toml::from_str(
            r#"
            max-pids = 100
            [packages.small]
            max-pids = 16
            max-disk-mb = 8
            max-open-files = 128
            worker-memory-limit = 67108864
            [packages.net-only]
            network = "none"
            [packages.bad]
            max-pids = 2
            "#,
        )
        .unwrap();
        let mut errors = Vec::new();
        let s = resolve(&file, &mut errors);
        assert_eq!(
            errors,
            vec!["--config: [packages.bad] max-pids: must be at least 8".to_string()]
        );
        assert_eq!(s.limits.pids, 100);
        assert_eq!(
            s.package_limits["small"],
            PackageLimits {
                pids: Some(16),
                disk_mb: Some(8),
                open_files: Some(128),
                memory_bytes: Some(64 << 20),
            }
        );
        assert!(!s.package_limits.contains_key("net-only"));
    }
}
