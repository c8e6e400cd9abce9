//! What one package may reach: the decision before resolving (the package's own list) and
//! the decision on every resolved address (ranges, the runtime's own addresses,
//! `--egress-allow`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::config::EgressConfig;
use crate::pattern::EgressPattern;
use crate::ranges::{canonical, refused_range};
use crate::target::{Host, Target};

/// Connections answered `503` at once when a package is at its limit; past this many
/// the proxy just closes them.
const REJECTING_SLOTS: usize = 16;

/// One package's egress rules and limits. Every [`crate::serve`] call given the same
/// `Arc<EgressPolicy>` shares its connection limit, so give a package one policy however
/// many listeners it has.
#[derive(Debug)]
pub struct EgressPolicy {
    allow: Vec<EgressPattern>,
    package_list: Option<Vec<EgressPattern>>,
    own_addrs: Vec<SocketAddr>,
    config: EgressConfig,
    pub(crate) slots: Arc<Semaphore>,
    pub(crate) rejecting: Arc<Semaphore>,
}

/// Why a request was refused (`403`); the text is the response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

impl EgressPolicy {
    /// `allow`: the operator's `--egress-allow` patterns, which let through loopback,
    /// private, link-local and other non-global addresses (and, when exact, the
    /// runtime's own addresses). `package_list`: the package's `egress` list; when set,
    /// every target outside it is refused (it narrows, it never opens a refused range).
    /// `own_addrs`: the runtime's listen addresses (an unspecified address stands for
    /// every local address on that port).
    pub fn new(
        allow: Vec<EgressPattern>,
        package_list: Option<Vec<EgressPattern>>,
        own_addrs: Vec<SocketAddr>,
        config: EgressConfig,
    ) -> Self {
        let slots = Arc::new(Semaphore::new(config.max_connections));
        EgressPolicy {
            allow,
            package_list,
            own_addrs,
            config,
            slots,
            rejecting: Arc::new(Semaphore::new(REJECTING_SLOTS)),
        }
    }

    /// The limits.
    pub fn config(&self) -> &EgressConfig {
        &self.config
    }

    /// The package's list, checked before anything is resolved.
    pub fn check_target(&self, target: &Target) -> Result<(), Refusal> {
        match &self.package_list {
            Some(list) if !list.iter().any(|p| p.matches(target)) => Err(Refusal(format!(
                "{target} is not in this package's egress list"
            ))),
            _ => Ok(()),
        }
    }

    /// Vets every address `target` resolved to: all must pass, or the request is
    /// refused (a mixed answer is what a rebinding attack looks like). Returns the
    /// addresses to connect to, IPv4-mapped ones unwrapped. `is_local` tells whether an
    /// address belongs to this host (for listen addresses like `0.0.0.0:8080`).
    pub fn vet(
        &self,
        target: &Target,
        addrs: &[SocketAddr],
        is_local: impl Fn(IpAddr) -> bool,
    ) -> Result<Vec<SocketAddr>, Refusal> {
        let allowed = self.allow.iter().any(|p| p.matches(target));
        let exactly_allowed = self.allow.iter().any(|p| p.is_exact() && p.matches(target));
        let mut vetted: Vec<SocketAddr> = Vec::with_capacity(addrs.len());
        for addr in addrs {
            let addr = SocketAddr::new(canonical(addr.ip()), addr.port());
            if !exactly_allowed && self.is_own(addr, &is_local) {
                return Err(self.refuse(target, addr.ip(), "the runtime's own"));
            }
            if let Some(range) = refused_range(addr.ip()).filter(|_| !allowed) {
                return Err(self.refuse(target, addr.ip(), range));
            }
            if !vetted.contains(&addr) {
                vetted.push(addr);
            }
        }
        Ok(vetted)
    }

    fn refuse(&self, target: &Target, ip: IpAddr, what: &str) -> Refusal {
        let addr = SocketAddr::new(ip, target.port);
        let reason = match &target.host {
            Host::Ip(_) => format!("{addr} is a {what} address"),
            Host::Name(_) => format!("{target} resolves to {ip}, a {what} address"),
        };
        Refusal(reason + " (see --egress-allow)")
    }

    fn is_own(&self, addr: SocketAddr, is_local: &impl Fn(IpAddr) -> bool) -> bool {
        self.own_addrs.iter().any(|own| {
            let own_ip = canonical(own.ip());
            own.port() == addr.port()
                && (own_ip == addr.ip() || (own_ip.is_unspecified() && is_local(addr.ip())))
        })
    }
}

/// Whether `ip` is an address of this host: binding a socket to it works only then.
pub(crate) fn is_local_address(ip: IpAddr) -> bool {
    std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::parse_list;
    use crate::target::parse_authority;

    fn policy(allow: &str, list: Option<&str>, own: &[&str]) -> EgressPolicy {
        EgressPolicy::new(
            parse_list(allow).unwrap(),
            list.map(|l| parse_list(l).unwrap()),
            own.iter().map(|a| a.parse().unwrap()).collect(),
            EgressConfig::default(),
        )
    }

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    fn t(text: &str) -> Target {
        parse_authority(text, None).unwrap()
    }

    fn never_local(_: IpAddr) -> bool {
        false
    }

    #[test]
    fn public_addresses_pass_and_private_ones_are_refused() {
        let p = policy("", None, &[]);
        let ok = p.vet(
            &t("example.com:443"),
            &addrs(&["93.184.215.14:443"]),
            never_local,
        );
        assert_eq!(ok.unwrap(), addrs(&["93.184.215.14:443"]));
        let no = p.vet(&t("localhost:80"), &addrs(&["127.0.0.1:80"]), never_local);
        assert_eq!(
            no.unwrap_err().0,
            "localhost:80 resolves to 127.0.0.1, a loopback address (see --egress-allow)"
        );
        let mixed = addrs(&["93.184.215.14:443", "10.0.0.1:443"]);
        assert!(p
            .vet(&t("rebind.example:443"), &mixed, never_local)
            .is_err());
        let mapped = addrs(&["[::ffff:169.254.169.254]:80"]);
        let no = p.vet(&t("[::ffff:169.254.169.254]:80"), &mapped, never_local);
        assert!(no
            .unwrap_err()
            .0
            .contains("169.254.169.254:80 is a link-local"));
    }

    #[test]
    fn allow_patterns_open_refused_ranges_for_the_names_they_match() {
        let p = policy("127.0.0.1:9000,*.internal:8443", None, &[]);
        let ok = p.vet(
            &t("[::ffff:127.0.0.1]:9000"),
            &addrs(&["[::ffff:127.0.0.1]:9000"]),
            never_local,
        );
        assert_eq!(ok.unwrap(), addrs(&["127.0.0.1:9000"]));
        assert!(p
            .vet(
                &t("db.internal:8443"),
                &addrs(&["10.1.1.1:8443"]),
                never_local
            )
            .is_ok());
        // The pattern names 127.0.0.1, not whatever resolves there.
        assert!(p
            .vet(
                &t("localhost:9000"),
                &addrs(&["127.0.0.1:9000"]),
                never_local
            )
            .is_err());
        assert!(p
            .vet(
                &t("127.0.0.1:9001"),
                &addrs(&["127.0.0.1:9001"]),
                never_local
            )
            .is_err());
    }

    #[test]
    fn own_addresses_need_an_exact_pattern() {
        let p = policy("*:8080", None, &["0.0.0.0:8080"]);
        let local = |ip: IpAddr| ip.is_loopback();
        let no = p.vet(&t("127.0.0.5:8080"), &addrs(&["127.0.0.5:8080"]), local);
        assert!(no.unwrap_err().0.contains("the runtime's own"));
        // A wildcard still opens the loopback range on other addresses.
        let p = policy("*:8080", None, &["127.0.0.1:8080"]);
        assert!(p
            .vet(
                &t("127.0.0.1:8080"),
                &addrs(&["127.0.0.1:8080"]),
                never_local
            )
            .is_err());
        let p = policy("127.0.0.1:8080", None, &["127.0.0.1:8080"]);
        assert!(p
            .vet(
                &t("127.0.0.1:8080"),
                &addrs(&["127.0.0.1:8080"]),
                never_local
            )
            .is_ok());
        // A public own address is refused too.
        let p = policy("", None, &["203.0.114.1:8080"]);
        assert!(p
            .vet(
                &t("203.0.114.1:8080"),
                &addrs(&["203.0.114.1:8080"]),
                never_local
            )
            .is_err());
    }

    #[test]
    fn the_package_list_narrows() {
        let p = policy("", Some("api.example.com:443,*.cdn.example:443"), &[]);
        assert!(p.check_target(&t("api.example.com:443")).is_ok());
        assert!(p.check_target(&t("x.cdn.example:443")).is_ok());
        let no = p.check_target(&t("api.example.com:80")).unwrap_err();
        assert_eq!(
            no.0,
            "api.example.com:80 is not in this package's egress list"
        );
        // Listed but private: still refused without --egress-allow.
        let p = policy("", Some("db.local:5432"), &[]);
        assert!(p.check_target(&t("db.local:5432")).is_ok());
        assert!(p
            .vet(&t("db.local:5432"), &addrs(&["10.0.0.5:5432"]), never_local)
            .is_err());
    }

    #[test]
    fn local_addresses_are_detected_by_binding() {
        assert!(is_local_address("127.0.0.1".parse().unwrap()));
        assert!(is_local_address("127.3.2.1".parse().unwrap()));
        assert!(!is_local_address("192.0.2.77".parse().unwrap()));
    }
}
