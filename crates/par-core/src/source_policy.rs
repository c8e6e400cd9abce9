//! Which sources a management-API caller may name. The operator's own sources (command
//! line, config file, registry index) are trusted; a source that arrives through
//! `POST /runtime/packages` is not: a local path must lie under a configured root once
//! its symlinks are resolved (no `/etc/shadow`, no `/proc/self/environ`), and an
//! `http(s)://` host must not resolve to a loopback, private or link-local address unless
//! the operator allows it (no probing of services bound to the runtime's own machine).
//!
//! Known limit: the host is resolved here, before the fetch, and the fetcher follows
//! redirects; a host whose DNS answer changes between the two (rebinding), or a public
//! URL redirecting to a private one, is not caught by this check.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Component, Path, PathBuf};

use par_registry::SourceKind;

/// The rules for sources named by API callers.
#[derive(Debug, Clone, Default)]
pub struct SourcePolicy {
    /// Canonical directories local sources must be under; empty: no local source.
    roots: Vec<PathBuf>,
    /// Fetch `http(s)://` sources whose host is loopback, private or link-local.
    allow_private_hosts: bool,
}

impl SourcePolicy {
    /// `roots` are canonicalized (symlinks resolved); one that does not exist is an error.
    pub fn new(roots: &[PathBuf], allow_private_hosts: bool) -> Result<SourcePolicy, String> {
        let roots = roots
            .iter()
            .map(|root| {
                std::fs::canonicalize(root)
                    .map_err(|e| format!("source root {}: {e}", root.display()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SourcePolicy {
            roots,
            allow_private_hosts,
        })
    }

    /// Accepts any source (what the operator gives).
    pub fn open() -> SourcePolicy {
        SourcePolicy {
            roots: vec![PathBuf::from("/")],
            allow_private_hosts: true,
        }
    }

    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// Why a caller may not load `source`, if they may not.
    pub async fn check(&self, source: &str) -> Result<(), String> {
        let parsed = par_registry::parse_source(source).map_err(|e| e.to_string())?;
        match &parsed.kind {
            SourceKind::Local(path) => self.check_local(path),
            SourceKind::Http(url) => {
                let host = url.host_str().unwrap_or_default();
                self.check_host(host, url.port_or_known_default()).await
            }
            // The S3 endpoint is the operator's (--s3-endpoint); a key names nothing else.
            SourceKind::S3 { .. } => Ok(()),
        }
    }

    fn check_local(&self, path: &Path) -> Result<(), String> {
        let resolved = resolve(path);
        if self.roots.iter().any(|root| resolved.starts_with(root)) {
            return Ok(());
        }
        Err(format!(
            "local source {} is not under a source root (--source-roots)",
            path.display()
        ))
    }

    async fn check_host(&self, host: &str, port: Option<u16>) -> Result<(), String> {
        if self.allow_private_hosts {
            return Ok(());
        }
        let port = port.unwrap_or(443);
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<IpAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            // Resolution failing here will fail the fetch too, with its own report.
            Err(_) => match tokio::net::lookup_host((bare, port)).await {
                Ok(found) => found.map(|a| a.ip()).collect(),
                Err(_) => return Ok(()),
            },
        };
        match addrs.into_iter().find(|ip| is_private(*ip)) {
            Some(ip) => Err(format!(
                "source host {host} resolves to {ip}, a loopback, private or link-local \
                 address (--allow-private-sources)"
            )),
            None => Ok(()),
        }
    }
}

/// The path with its symlinks resolved. A path that does not exist is made absolute
/// and cleaned lexically (so `..` cannot climb out of a root) from its deepest existing
/// ancestor, which is resolved: whether it exists is not revealed by the answer.
fn resolve(path: &Path) -> PathBuf {
    if let Ok(real) = std::fs::canonicalize(path) {
        return real;
    }
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut clean = PathBuf::new();
    for part in absolute.components() {
        match part {
            Component::ParentDir => {
                clean.pop();
            }
            Component::CurDir => {}
            other => clean.push(other),
        }
    }
    let mut existing = clean.clone();
    let mut rest = Vec::new();
    while !existing.exists() {
        match existing.file_name() {
            Some(name) => rest.push(name.to_owned()),
            None => break,
        }
        existing.pop();
    }
    let mut real = std::fs::canonicalize(&existing).unwrap_or(existing);
    real.extend(rest.iter().rev());
    real
}

/// Loopback, private (RFC 1918, unique local), link-local, shared (CGNAT) or unspecified.
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_private_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_private_v4(v4),
            None => is_private_v6(v6),
        },
    }
}

fn is_private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || (a == 100 && (64..128).contains(&b))
}

fn is_private_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.5",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "2606:4700::1111", "100.128.0.1"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn local_sources_only_under_a_root_with_symlinks_resolved() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("a.apkg"), b"x").unwrap();
        std::fs::write(outside.path().join("b.apkg"), b"x").unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("link")).unwrap();
        let policy = SourcePolicy::new(&[root.path().to_path_buf()], false).unwrap();
        let inside = root.path().join("a.apkg");
        assert!(policy.check(inside.to_str().unwrap()).await.is_ok());
        let missing = root.path().join("missing.apkg");
        assert!(policy.check(missing.to_str().unwrap()).await.is_ok());
        for bad in [
            "/etc/shadow".to_string(),
            "/proc/self/environ".to_string(),
            format!("{}/link/b.apkg", root.path().display()),
            format!("{}/../x/../../etc/passwd", root.path().display()),
            format!("{}/nothing/../../etc/x", root.path().display()),
        ] {
            let err = policy.check(&bad).await.unwrap_err();
            assert!(err.contains("not under a source root"), "{bad}: {err}");
        }
    }

    #[tokio::test]
    async fn private_hosts_are_refused_unless_allowed() {
        let strict = SourcePolicy::new(&[], false).unwrap();
        for url in [
            "http://127.0.0.1:9/x.apkg",
            "http://localhost:9/x.apkg",
            "https://[::1]/x.apkg",
            "https://169.254.169.254/latest",
        ] {
            let err = strict.check(url).await.unwrap_err();
            assert!(err.contains("--allow-private-sources"), "{url}: {err}");
        }
        assert!(SourcePolicy::open()
            .check("http://127.0.0.1:9/x.apkg")
            .await
            .is_ok());
        assert!(strict.check("s3://bucket/key.apkg").await.is_ok());
    }
}
