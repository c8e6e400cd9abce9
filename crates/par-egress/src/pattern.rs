//! `host:port` patterns of `--egress-allow` and of a package's `egress` list.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::target::{parse_authority, parse_host, Host, Target};

/// One `host:port` pattern. The host is a DNS name, an IP literal (`[v6]` bracketed) or a
/// glob where `*` stands for one or more characters (`*.openai.com` matches
/// `api.openai.com` and `a.b.openai.com`, not `openai.com`; a lone `*` matches every
/// host). The port is a number. Names match case-insensitively; IP literals match by
/// address (`[::ffff:127.0.0.1]` is `127.0.0.1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressPattern {
    host: HostPattern,
    port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Exact(Host),
    /// Lower-case glob.
    Glob(String),
}

/// A pattern that does not parse; the text says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{pattern}': {reason}")]
pub struct PatternError {
    pub pattern: String,
    pub reason: String,
}

impl FromStr for EgressPattern {
    type Err = PatternError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = |reason: String| PatternError {
            pattern: text.to_owned(),
            reason,
        };
        if !text.contains('*') {
            let target = parse_authority(text.trim(), None)
                .map_err(|e| fail(format!("{e} (expected host:port)")))?;
            return Ok(EgressPattern {
                host: HostPattern::Exact(target.host),
                port: target.port,
            });
        }
        let (glob, port) = text
            .trim()
            .rsplit_once(':')
            .ok_or_else(|| fail("expected host:port".into()))?;
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| fail(format!("bad port '{port}'")))?;
        // Check the glob's literal parts as a name would be checked.
        let sample = glob.replace('*', "x");
        if glob != "*" && parse_host(&sample).is_err() {
            return Err(fail(format!("bad host pattern '{glob}'")));
        }
        Ok(EgressPattern {
            host: HostPattern::Glob(glob.to_ascii_lowercase()),
            port,
        })
    }
}

impl fmt::Display for EgressPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            HostPattern::Exact(Host::Ip(IpAddr::V6(v6))) => write!(f, "[{v6}]:{}", self.port),
            HostPattern::Exact(host) => write!(f, "{host}:{}", self.port),
            HostPattern::Glob(glob) => write!(f, "{glob}:{}", self.port),
        }
    }
}

impl EgressPattern {
    /// Whether the pattern names `target`: the name the client asked for, or for an IP
    /// literal the address.
    pub fn matches(&self, target: &Target) -> bool {
        if self.port != target.port {
            return false;
        }
        match &self.host {
            HostPattern::Exact(host) => *host == target.host,
            HostPattern::Glob(glob) => {
                glob_match(glob.as_bytes(), target.host.to_string().as_bytes())
            }
        }
    }

    /// True for a pattern without `*`: only such a pattern opens the runtime's own
    /// addresses.
    pub fn is_exact(&self) -> bool {
        matches!(self.host, HostPattern::Exact(_))
    }
}

/// Parses a comma-separated list, skipping empty items.
pub fn parse_list(text: &str) -> Result<Vec<EgressPattern>, PatternError> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect()
}

#[derive(Clone, Copy, PartialEq)]
enum Tok {
    Byte(u8),
    /// Exactly one byte.
    One,
    /// Zero or more bytes.
    Star,
}

/// `*` matches one or more bytes; everything else matches itself. Each `*` is one
/// mandatory byte followed by the classic zero-or-more wildcard, matched with a single
/// backtrack point (linear in practice, never exponential).
fn glob_match(glob: &[u8], text: &[u8]) -> bool {
    let tokens: Vec<Tok> = glob
        .iter()
        .flat_map(|&c| match c {
            b'*' => vec![Tok::One, Tok::Star],
            c => vec![Tok::Byte(c)],
        })
        .collect();
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match tokens.get(p) {
            Some(Tok::Star) => {
                star = Some((p, t));
                p += 1;
            }
            Some(Tok::One) => (p, t) = (p + 1, t + 1),
            Some(Tok::Byte(c)) if *c == text[t] => (p, t) = (p + 1, t + 1),
            _ => match star {
                Some((sp, st)) => {
                    (p, t) = (sp + 1, st + 1);
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    tokens[p..].iter().all(|tok| *tok == Tok::Star)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(text: &str) -> Target {
        parse_authority(text, None).unwrap()
    }

    fn pattern(text: &str) -> EgressPattern {
        text.parse().unwrap()
    }

    #[test]
    fn exact_patterns_match_names_and_addresses() {
        assert!(pattern("API.example.com:443").matches(&target("api.example.com:443")));
        assert!(!pattern("api.example.com:443").matches(&target("api.example.com:80")));
        assert!(pattern("127.0.0.1:9000").matches(&target("[::ffff:127.0.0.1]:9000")));
        assert!(pattern("[::1]:9000").matches(&target("[0:0::1]:9000")));
        assert!(!pattern("127.0.0.1:9000").matches(&target("localhost:9000")));
    }

    #[test]
    fn globs_match_one_or_more_characters() {
        let p = pattern("*.openai.com:443");
        assert!(p.matches(&target("api.openai.com:443")));
        assert!(p.matches(&target("a.b.openai.com:443")));
        assert!(!p.matches(&target("openai.com:443")));
        assert!(!p.matches(&target("evilopenai.com:443")));
        assert!(!p.matches(&target("api.openai.com:80")));
        assert!(pattern("*:443").matches(&target("[::1]:443")));
        assert!(pattern("10.0.0.*:80").matches(&target("10.0.0.7:80")));
        assert!(!pattern("*:1").is_exact());
        assert!(pattern("a*b*c.com:1").matches(&target("axxbyyc.com:1")));
        assert!(!pattern("a*b.com:1").matches(&target("ab.com:1")));
    }

    #[test]
    fn refuses_bad_patterns() {
        for bad in [
            "example.com",
            "*.example.com",
            "*.x.com:0",
            "a b:80",
            "*:http",
            "[::1:80",
        ] {
            assert!(bad.parse::<EgressPattern>().is_err(), "{bad}");
        }
        let e = "nope".parse::<EgressPattern>().unwrap_err();
        assert!(e.to_string().contains("'nope'"), "{e}");
    }

    #[test]
    fn lists_split_on_commas_and_display_round_trips() {
        let list = parse_list(" *.openai.com:443, 127.0.0.1:9000 ,,[::1]:80").unwrap();
        let shown: Vec<String> = list.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["*.openai.com:443", "127.0.0.1:9000", "[::1]:80"]);
        assert!(parse_list("a.com:1,bad").is_err());
    }
}
