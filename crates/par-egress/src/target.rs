//! Where a client asks to go: the authority of a `CONNECT` or of an absolute `http://` URL,
//! validated strictly (the host ends up in log lines and in DNS queries).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::ranges::canonical;

/// The host part of a request: a DNS name (lower case, no trailing dot) or an IP literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Name(String),
    Ip(IpAddr),
}

/// A host and port a client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: Host,
    pub port: u16,
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// `host:port`, an IPv6 host bracketed.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Ip(IpAddr::V6(v6)) => write!(f, "[{v6}]:{}", self.port),
            host => write!(f, "{host}:{}", self.port),
        }
    }
}

impl Target {
    /// The `Host` header value for this target (`[v6]` bracketed, port when not 80).
    pub(crate) fn host_header(&self) -> String {
        let host = match &self.host {
            Host::Ip(IpAddr::V6(v6)) => format!("[{v6}]"),
            other => other.to_string(),
        };
        if self.port == 80 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// Longest DNS name accepted.
const MAX_NAME: usize = 253;

/// Parses `host:port`, `[v6]:port` or, when `default_port` is given, `host`.
pub(crate) fn parse_authority(text: &str, default_port: Option<u16>) -> Result<Target, String> {
    let (host, port) = split_host_port(text)?;
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("bad port '{p}'"))?,
        None => default_port.ok_or("a port is required")?,
    };
    Ok(Target {
        host: parse_host(host)?,
        port,
    })
}

fn split_host_port(text: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(rest) = text.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or("unclosed '['")?;
        return match after {
            "" => Ok((v6, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((v6, Some(port))),
                None => Err("junk after ']'".into()),
            },
        };
    }
    match text.rsplit_once(':') {
        Some((host, port)) => Ok((host, Some(port))),
        None => Ok((text, None)),
    }
}

/// A host as written in a request or a pattern: an IPv6 literal (brackets already
/// removed), an IPv4 literal, or a DNS name of letters, digits, `-`, `_` and dots.
pub(crate) fn parse_host(text: &str) -> Result<Host, String> {
    if let Ok(v6) = text.parse::<Ipv6Addr>() {
        return Ok(Host::Ip(canonical(IpAddr::V6(v6))));
    }
    if let Ok(v4) = text.parse::<Ipv4Addr>() {
        return Ok(Host::Ip(IpAddr::V4(v4)));
    }
    let name = text.strip_suffix('.').unwrap_or(text).to_ascii_lowercase();
    let valid_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if name.is_empty() || name.len() > MAX_NAME || !name.split('.').all(valid_label) {
        return Err(format!("bad host '{}'", text.escape_debug()));
    }
    Ok(Host::Name(name))
}

/// Splits an absolute `http://authority/path` URL into the target and the origin-form
/// path to send upstream (`/` when the URL has none).
pub(crate) fn parse_absolute_url(url: &str) -> Result<(Target, String), String> {
    let scheme_len = "http://".len();
    let is_http = url
        .get(..scheme_len)
        .is_some_and(|s| s.eq_ignore_ascii_case("http://"));
    if !is_http {
        return Err("only http:// URLs are forwarded (use CONNECT for https)".into());
    }
    let rest = &url[scheme_len..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.contains('@') {
        return Err("credentials in the URL are refused".into());
    }
    let target = parse_authority(authority, Some(80))?;
    let path = path.split('#').next().unwrap_or_default();
    let path = match path.as_bytes().first() {
        Some(b'/') => path.to_owned(),
        _ => format!("/{path}"),
    };
    Ok((target, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(n: &str) -> Host {
        Host::Name(n.into())
    }

    fn ip(text: &str) -> Host {
        Host::Ip(text.parse().unwrap())
    }

    #[test]
    fn parses_connect_authorities() {
        let t = parse_authority("API.Example.com.:443", None).unwrap();
        assert_eq!((t.host, t.port), (name("api.example.com"), 443));
        let t = parse_authority("[::1]:8443", None).unwrap();
        assert_eq!((t.host, t.port), (ip("::1"), 8443));
        let t = parse_authority("[::ffff:127.0.0.1]:80", None).unwrap();
        assert_eq!(t.host, ip("127.0.0.1"));
        let t = parse_authority("10.0.0.1:22", None).unwrap();
        assert_eq!(t.host, ip("10.0.0.1"));
    }

    #[test]
    fn refuses_bad_authorities() {
        for bad in [
            "example.com",
            "example.com:0",
            "example.com:99999",
            "exa mple.com:80",
            "[::1:80",
            "[::1]x:80",
            "a..b:80",
            "evil\n.com:80",
            "[fe80::1%eth0]:80",
            ":80",
        ] {
            assert!(parse_authority(bad, None).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn splits_absolute_urls() {
        let (t, path) = parse_absolute_url("http://example.com/a/b?q=1#frag").unwrap();
        assert_eq!(
            (t.host, t.port, path.as_str()),
            (name("example.com"), 80, "/a/b?q=1")
        );
        let (t, path) = parse_absolute_url("HTTP://[::1]:8080?x").unwrap();
        assert_eq!((t.host, t.port, path.as_str()), (ip("::1"), 8080, "/?x"));
        let (_, path) = parse_absolute_url("http://h").unwrap();
        assert_eq!(path, "/");
        assert!(parse_absolute_url("https://h/").is_err());
        assert!(parse_absolute_url("/relative").is_err());
        assert!(parse_absolute_url("http://user:pw@h/").is_err());
    }

    #[test]
    fn host_header_brackets_ipv6_and_omits_port_80() {
        let t = parse_authority("[::1]:8080", None).unwrap();
        assert_eq!(t.host_header(), "[::1]:8080");
        let t = parse_authority("example.com", Some(80)).unwrap();
        assert_eq!(t.host_header(), "example.com");
    }
}
