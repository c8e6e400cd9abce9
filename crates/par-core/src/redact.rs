//! Secrets never reach a log line: values from packages' `.env` and `environment`
//! (registered at load), credentials that look like bearer tokens, JWTs, AWS keys and
//! presigned-URL signatures, and operator-configured patterns are replaced by
//! `[REDACTED]` in every line the runtime writes, worker output included.

use std::borrow::Cow;
use std::sync::{Arc, RwLock};

use regex::{Regex, RegexSet};

pub const MASK: &str = "[REDACTED]";

/// Shorter values are too likely to be ordinary words ("yes", "8080") to mask.
const MIN_SECRET_LEN: usize = 8;

/// Built-in patterns for credentials whatever their source.
const BUILT_IN: &[&str] = &[
    r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}",
    r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*",
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    r"(?i)(x-amz-signature|x-amz-credential|x-amz-security-token|signature)=[^&\s\x22']+",
    r"(?i)(authorization|cookie|set-cookie|x-api-key)\s*[:=]\s*[^\s,;\x22']+",
    r"(?i)(aws_secret_access_key|secret_access_key|password|passwd|api_key|apikey|token)\x22?\s*[:=]\s*\x22?[^\s,;\x22']{6,}",
];

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Redactor")
    }
}

#[derive(Clone)]
pub struct Redactor {
    inner: Arc<RwLock<Inner>>,
}

/// Every line is checked, so the common case (nothing to mask) must be one cheap pass:
/// one set match for all patterns and one automaton for all secrets.
struct Inner {
    patterns: Vec<Regex>,
    /// The same patterns as one set: which of them match, in a single scan.
    any_pattern: RegexSet,
    secrets: Vec<String>,
    /// The secrets as one alternation of literals, longest first (so a secret containing
    /// another is masked whole); `None` until a secret is registered.
    any_secret: Option<Regex>,
}

impl Redactor {
    /// Built-in patterns plus `extra` (operator patterns); a bad pattern is an error
    /// naming it.
    pub fn new(extra: &[String]) -> Result<Redactor, String> {
        let texts: Vec<&str> = BUILT_IN
            .iter()
            .copied()
            .chain(extra.iter().map(String::as_str))
            .collect();
        let mut patterns = Vec::new();
        for text in &texts {
            patterns
                .push(Regex::new(text).map_err(|e| format!("redaction pattern '{text}': {e}"))?);
        }
        let any_pattern = RegexSet::new(&texts).map_err(|e| format!("redaction patterns: {e}"))?;
        Ok(Redactor {
            inner: Arc::new(RwLock::new(Inner {
                patterns,
                any_pattern,
                secrets: Vec::new(),
                any_secret: None,
            })),
        })
    }

    /// Masks `value` from now on (a package's `.env` or `environment` value).
    pub fn add_secret(&self, value: &str) {
        let value = value.trim();
        if value.len() < MIN_SECRET_LEN {
            return;
        }
        let mut inner = self.inner.write().expect("redactor poisoned");
        if !inner.secrets.iter().any(|s| s == value) {
            inner.secrets.push(value.to_string());
            inner.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
            inner.any_secret = literal_alternation(&inner.secrets);
        }
    }

    pub fn redact<'a>(&self, line: &'a str) -> Cow<'a, str> {
        let inner = self.inner.read().expect("redactor poisoned");
        let mut out = Cow::Borrowed(line);
        if let Some(secrets) = &inner.any_secret {
            if secrets.is_match(line) {
                out = Cow::Owned(secrets.replace_all(line, MASK).into_owned());
            }
        }
        let matched = inner.any_pattern.matches(&out);
        for index in matched.iter() {
            let replaced = inner.patterns[index].replace_all(&out, mask_keeping_name);
            if let Cow::Owned(text) = replaced {
                out = Cow::Owned(text);
            }
        }
        out
    }
}

/// One regex matching any of `literals` (escaped), preferring earlier ones at a position.
fn literal_alternation(literals: &[String]) -> Option<Regex> {
    if literals.is_empty() {
        return None;
    }
    let alternation: Vec<String> = literals.iter().map(|s| regex::escape(s)).collect();
    // Literal alternations compile to a multi-pattern searcher; the size limit only guards
    // against absurd numbers of secrets, which then stay unmasked by this path and logged.
    match regex::RegexBuilder::new(&alternation.join("|"))
        .size_limit(64 << 20)
        .build()
    {
        Ok(regex) => Some(regex),
        Err(e) => {
            tracing::error!(error = %e, "too many secrets to mask; masking by pattern only");
            None
        }
    }
}

/// Keeps `name=` / `name: ` (useful for reading the log) and masks the value.
fn mask_keeping_name(caps: &regex::Captures<'_>) -> String {
    let all = caps.get(0).map_or("", |m| m.as_str());
    match caps.get(1) {
        Some(name) => {
            let rest = &all[name.end() - caps.get(0).map_or(0, |m| m.start())..];
            let sep: String = rest
                .chars()
                .take_while(|c| matches!(c, ':' | '=' | ' ' | '"'))
                .collect();
            format!("{}{sep}{MASK}", name.as_str())
        }
        None if all.to_ascii_lowercase().starts_with("bearer") => format!("Bearer {MASK}"),
        None => MASK.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_registered_secrets_and_credential_shapes() {
        let r = Redactor::new(&["corp-[0-9]{4}".to_string()]).unwrap();
        r.add_secret("planted-dotenv-secret");
        r.add_secret("short");
        let line = "x planted-dotenv-secret y short Authorization: Bearer abcdefghijk \
                    eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl \
                    https://b.s3/k?X-Amz-Signature=deadbeef&X-Amz-Date=1 AKIAABCDEFGHIJKLMNOP corp-1234";
        let out = r.redact(line);
        for leaked in [
            "planted-dotenv-secret",
            "abcdefghijk",
            "eyJhbGciOiJSUzI1NiJ9",
            "deadbeef",
            "AKIAABCDEFGHIJKLMNOP",
            "corp-1234",
        ] {
            assert!(!out.contains(leaked), "{leaked} leaked: {out}");
        }
        assert!(out.contains("short"), "short values are left alone: {out}");
        assert!(out.contains("X-Amz-Signature=[REDACTED]"), "{out}");
        assert!(out.contains("X-Amz-Date=1"), "{out}");
    }

    #[test]
    fn overlapping_secrets_are_masked_whole_and_patterns_still_apply() {
        let r = Redactor::new(&[]).unwrap();
        r.add_secret("abcdefgh");
        r.add_secret("abcdefgh-longer-one");
        r.add_secret("with.dots+and*stars");
        let out =
            r.redact("a abcdefgh-longer-one b abcdefgh c with.dots+and*stars password=hunter22");
        assert_eq!(
            out,
            "a [REDACTED] b [REDACTED] c [REDACTED] password=[REDACTED]"
        );
        assert!(
            r.redact("withXdots+and*stars").contains("withXdots"),
            "literal, not regex"
        );
    }

    #[test]
    fn bad_patterns_are_named() {
        let err = Redactor::new(&["(".to_string()]).err().unwrap();
        assert!(err.contains("'('"), "{err}");
    }

    #[test]
    fn clean_lines_are_not_copied() {
        let r = Redactor::new(&[]).unwrap();
        assert!(matches!(r.redact("package ready"), Cow::Borrowed(_)));
    }

    #[test]
    fn secrets_are_trimmed_and_registered_once() {
        let r = Redactor::new(&[]).unwrap();
        r.add_secret("  padded-secret-value \n");
        r.add_secret("padded-secret-value");
        assert_eq!(r.redact("v=padded-secret-value."), "v=[REDACTED].");
        assert_eq!(r.inner.read().unwrap().secrets.len(), 1);
    }

    #[test]
    fn clones_share_the_secrets_registered_later() {
        let r = Redactor::new(&[]).unwrap();
        let clone = r.clone();
        r.add_secret("registered-after-clone");
        assert_eq!(clone.redact("x registered-after-clone"), "x [REDACTED]");
    }

    #[test]
    fn header_names_are_kept_and_their_values_masked() {
        let r = Redactor::new(&[]).unwrap();
        assert_eq!(r.redact("cookie: sid=abc123"), "cookie: [REDACTED]");
        assert_eq!(r.redact("BEARER abcdefghijkl"), "Bearer [REDACTED]");
    }
}
