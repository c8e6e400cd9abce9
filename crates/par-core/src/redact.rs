//! Secrets never reach a log line: values from packages' `.env` and `environment`
//! (registered at load), credentials that look like bearer tokens, JWTs, AWS keys and
//! presigned-URL signatures, and operator-configured patterns are replaced by
//! `[REDACTED]` in every line the runtime writes, worker output included.

use std::borrow::Cow;
use std::sync::{Arc, RwLock};

use regex::Regex;

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

struct Inner {
    patterns: Vec<Regex>,
    secrets: Vec<String>,
}

impl Redactor {
    /// Built-in patterns plus `extra` (operator patterns); a bad pattern is an error
    /// naming it.
    pub fn new(extra: &[String]) -> Result<Redactor, String> {
        let mut patterns = Vec::new();
        for text in BUILT_IN
            .iter()
            .copied()
            .chain(extra.iter().map(String::as_str))
        {
            patterns
                .push(Regex::new(text).map_err(|e| format!("redaction pattern '{text}': {e}"))?);
        }
        Ok(Redactor {
            inner: Arc::new(RwLock::new(Inner {
                patterns,
                secrets: Vec::new(),
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
            // Longest first, so a secret containing another is masked whole.
            inner.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    pub fn redact<'a>(&self, line: &'a str) -> Cow<'a, str> {
        let inner = self.inner.read().expect("redactor poisoned");
        let mut out = Cow::Borrowed(line);
        for secret in &inner.secrets {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), MASK));
            }
        }
        for pattern in &inner.patterns {
            if pattern.is_match(&out) {
                out = Cow::Owned(pattern.replace_all(&out, mask_keeping_name).into_owned());
            }
        }
        out
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
    fn bad_patterns_are_named() {
        let err = Redactor::new(&["(".to_string()]).err().unwrap();
        assert!(err.contains("'('"), "{err}");
    }

    #[test]
    fn clean_lines_are_not_copied() {
        let r = Redactor::new(&[]).unwrap();
        assert!(matches!(r.redact("package ready"), Cow::Borrowed(_)));
    }
}
