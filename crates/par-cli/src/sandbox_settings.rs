//! `--sandbox`, `--network`, `--max-pids`, `--max-disk-mb`: validated here; the host is
//! checked for what `strict` needs (a probe jail) when `serve` starts.

use std::sync::Arc;

use par_core::sandbox::SandboxConfig;
use par_egress::{EgressObserver, EgressPolicy, EgressSettings, NetworkMode};
use par_sandbox::{Limits, Network};

use crate::cli::ServeArgs;
use crate::env_names as env;

/// The sandbox as configured, before the host was checked.
pub struct SandboxSettings {
    pub strict: bool,
    pub limits: Limits,
}

pub fn resolve(s: &ServeArgs, errors: &mut Vec<String>) -> SandboxSettings {
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
    }
}

/// Checks the host for `strict` with a probe jail. `Err` is the message for exit 2.
pub fn check_host(
    settings: &SandboxSettings,
    network: &EgressSettings,
    egress: ProxyEgress,
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
        pids_cgroup: support.pids_cgroup,
        egress: Arc::new(egress),
    }))
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
pub struct ProxyEgress {
    settings: Arc<EgressSettings>,
    own_addrs: Vec<std::net::SocketAddr>,
    observer: Arc<dyn EgressObserver>,
    policies: std::sync::Mutex<std::collections::HashMap<String, Arc<EgressPolicy>>>,
}

impl ProxyEgress {
    pub fn new(settings: &crate::settings::ServeSettings, metrics: par_telemetry::Metrics) -> Self {
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
