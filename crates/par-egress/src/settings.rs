//! The operator's network settings for every package: the default policy, the allow
//! patterns, and the per-package `[packages.<name>]` entries, looked up by package name.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use crate::config::EgressConfig;
use crate::pattern::EgressPattern;
use crate::policy::EgressPolicy;

/// A package's network: `none` (loopback only), `egress` (loopback plus this proxy),
/// `host` (the host's network; operator opt-in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum NetworkMode {
    None,
    #[default]
    Egress,
    Host,
}

impl NetworkMode {
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkMode::None => "none",
            NetworkMode::Egress => "egress",
            NetworkMode::Host => "host",
        }
    }
}

impl fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NetworkMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "none" => Ok(NetworkMode::None),
            "egress" => Ok(NetworkMode::Egress),
            "host" => Ok(NetworkMode::Host),
            other => Err(format!("'{other}' is not none, egress or host")),
        }
    }
}

/// What the operator set for one package; unset fields fall back to the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageNetwork {
    pub network: Option<NetworkMode>,
    /// The package's `egress` list: when set, everything outside it is refused.
    pub egress: Option<Vec<EgressPattern>>,
}

/// Network settings of the whole runtime.
#[derive(Debug, Clone, Default)]
pub struct EgressSettings {
    /// `--network`: the policy of packages without their own.
    pub default_network: NetworkMode,
    /// `--egress-allow`.
    pub allow: Vec<EgressPattern>,
    /// `[packages.<name>]`, by package name.
    pub packages: BTreeMap<String, PackageNetwork>,
    /// Limits of every package's proxy.
    pub config: EgressConfig,
}

impl EgressSettings {
    /// The network `package` runs with.
    pub fn network_for(&self, package: &str) -> NetworkMode {
        self.packages
            .get(package)
            .and_then(|p| p.network)
            .unwrap_or(self.default_network)
    }

    /// The package's own `egress` list, if the operator gave one.
    pub fn egress_list(&self, package: &str) -> Option<&[EgressPattern]> {
        self.packages.get(package)?.egress.as_deref()
    }

    /// The proxy policy of `package` when its network is `egress`, else `None`.
    /// `own_addrs`: the runtime's listen addresses.
    pub fn policy_for(&self, package: &str, own_addrs: &[SocketAddr]) -> Option<EgressPolicy> {
        if self.network_for(package) != NetworkMode::Egress {
            return None;
        }
        Some(EgressPolicy::new(
            self.allow.clone(),
            self.egress_list(package).map(<[_]>::to_vec),
            own_addrs.to_vec(),
            self.config.clone(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::parse_list;
    use crate::target::parse_authority;

    #[test]
    fn looks_packages_up_by_name_with_defaults() {
        let mut settings = EgressSettings::default();
        settings.packages.insert(
            "locked".into(),
            PackageNetwork {
                network: Some(NetworkMode::None),
                egress: None,
            },
        );
        settings.packages.insert(
            "narrow".into(),
            PackageNetwork {
                network: None,
                egress: Some(parse_list("api.example.com:443").unwrap()),
            },
        );
        assert_eq!(settings.network_for("other"), NetworkMode::Egress);
        assert_eq!(settings.network_for("locked"), NetworkMode::None);
        assert!(settings.policy_for("locked", &[]).is_none());
        let policy = settings.policy_for("narrow", &[]).unwrap();
        let refused = policy.check_target(&parse_authority("x.example.com:443", None).unwrap());
        assert!(refused.is_err());
        assert_eq!(settings.egress_list("narrow").unwrap().len(), 1);
    }

    #[test]
    fn parses_modes() {
        assert_eq!("host".parse::<NetworkMode>(), Ok(NetworkMode::Host));
        assert!("bridge"
            .parse::<NetworkMode>()
            .unwrap_err()
            .contains("'bridge'"));
    }
}
