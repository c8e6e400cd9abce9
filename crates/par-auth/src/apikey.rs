//! Static API keys, configured as SHA-256 digests and matched in constant time.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::caller::{AuthMethod, Caller};
use crate::config::ApiKeyConfig;
use crate::error::{AuthConfigError, AuthError};

pub(crate) struct ApiKeys {
    entries: Vec<Entry>,
}

struct Entry {
    name: String,
    digest: [u8; 32],
    roles: Vec<String>,
}

impl ApiKeys {
    pub(crate) fn new(config: &ApiKeyConfig) -> Result<ApiKeys, AuthConfigError> {
        let mut problems = Vec::new();
        let mut entries: Vec<Entry> = Vec::new();
        for (i, k) in config.keys.iter().enumerate() {
            let name = k.name.trim();
            let label = if name.is_empty() {
                format!("#{}", i + 1)
            } else {
                format!("{name:?}")
            };
            if name.is_empty() {
                problems.push(format!("API key {label}: name is empty"));
            }
            let Some(digest) = parse_digest(&k.sha256) else {
                problems.push(format!("API key {label}: sha256 must be 64 hex digits"));
                continue;
            };
            if entries.iter().any(|e| e.name == name) {
                problems.push(format!("API key {label}: name used twice"));
            }
            if entries.iter().any(|e| e.digest == digest) {
                problems.push(format!("API key {label}: same key as another entry"));
            }
            entries.push(Entry {
                name: name.to_string(),
                digest,
                roles: k.roles.clone(),
            });
        }
        if !problems.is_empty() {
            return Err(AuthConfigError::Invalid(problems));
        }
        Ok(ApiKeys { entries })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The caller for `key`, comparing its digest with every entry (no early exit), so the
    /// time taken says nothing about which entry, if any, came close.
    pub(crate) fn verify(&self, key: &str) -> Result<Caller, AuthError> {
        let presented: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let mut found = None;
        for entry in &self.entries {
            if bool::from(entry.digest.ct_eq(&presented)) {
                found = Some(entry);
            }
        }
        let entry = found.ok_or(AuthError::BadApiKey)?;
        Ok(Caller {
            subject: format!("api-key:{}", entry.name),
            client_id: None,
            tenant: None,
            roles: entry.roles.clone(),
            scopes: Vec::new(),
            via: AuthMethod::ApiKey {
                name: entry.name.clone(),
            },
        })
    }
}

fn parse_digest(text: &str) -> Option<[u8; 32]> {
    let bytes = hex::decode(text.trim()).ok()?;
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ApiKeyEntry;

    fn entry(name: &str, key: &str, roles: &[&str]) -> ApiKeyEntry {
        ApiKeyEntry {
            name: name.into(),
            sha256: hex::encode(Sha256::digest(key.as_bytes())),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        }
    }

    #[test]
    fn matches_by_digest() {
        let keys = ApiKeys::new(&ApiKeyConfig {
            keys: vec![
                entry("ci", "k1-secret", &["ops"]),
                entry("batch", "k2-secret", &[]),
            ],
        })
        .unwrap();
        let c = keys.verify("k1-secret").unwrap();
        assert_eq!(c.subject, "api-key:ci");
        assert_eq!(c.roles, ["ops"]);
        assert_eq!(c.via, AuthMethod::ApiKey { name: "ci".into() });
        assert_eq!(keys.verify("k2-secret").unwrap().subject, "api-key:batch");
        assert_eq!(keys.verify("k1-secreT"), Err(AuthError::BadApiKey));
        assert_eq!(keys.verify(""), Err(AuthError::BadApiKey));
    }

    #[test]
    fn uppercase_hex_is_accepted() {
        let mut e = entry("ci", "abc", &[]);
        e.sha256 = e.sha256.to_uppercase();
        let keys = ApiKeys::new(&ApiKeyConfig { keys: vec![e] }).unwrap();
        assert!(keys.verify("abc").is_ok());
    }

    #[test]
    fn bad_config_is_reported_together() {
        let mut short = entry("a", "x", &[]);
        short.sha256.truncate(10);
        let err = ApiKeys::new(&ApiKeyConfig {
            keys: vec![
                short,
                entry("", "y", &[]),
                entry("b", "z", &[]),
                entry("b", "z", &[]),
            ],
        })
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("64 hex"), "{err}");
        assert!(err.contains("name is empty"), "{err}");
        assert!(err.contains("name used twice"), "{err}");
        assert!(err.contains("same key"), "{err}");
    }
}
