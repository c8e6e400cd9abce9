//! The registry index document (`{"version": 1, "packages": [...]}`): strict validation
//! with errors that point at the offending entry, and resolution of relative URLs
//! against the index's own location (for `s3://` indexes too).

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{IndexError, SourceError};
use crate::source::{is_sha256_hex, parse_location, SignatureRef, Source, SourceKind};

const MAX_NAME_LEN: usize = 128;
const MAX_VERSION_LEN: usize = 128;

/// A validated index with every location absolute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryIndex {
    pub version: u32,
    pub packages: Vec<IndexEntry>,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    pub name: String,
    pub version: String,
    /// Absolute: a URL, `s3://bucket/key`, or (only for a local index) a path.
    pub url: String,
    /// Lowercase hex.
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

#[derive(Deserialize)]
struct RawIndex {
    version: u64,
    packages: Vec<RawEntry>,
}

#[derive(Deserialize)]
struct RawEntry {
    name: Option<String>,
    version: Option<String>,
    url: Option<String>,
    sha256: Option<String>,
    signature: Option<String>,
}

impl RegistryIndex {
    /// Parses and validates an index document fetched from `base`.
    pub fn parse(bytes: &[u8], base: &SourceKind) -> Result<Self, IndexError> {
        let raw: RawIndex =
            serde_json::from_slice(bytes).map_err(|e| IndexError::Json(e.to_string()))?;
        if raw.version != 1 {
            return Err(IndexError::Version(raw.version));
        }
        let mut seen = HashSet::new();
        let mut packages = Vec::with_capacity(raw.packages.len());
        for (position, raw_entry) in raw.packages.into_iter().enumerate() {
            let entry = validate(raw_entry, base).map_err(|(name, problem)| IndexError::Entry {
                position,
                name,
                problem,
            })?;
            if !seen.insert((entry.name.clone(), entry.version.clone())) {
                return Err(IndexError::Duplicate {
                    name: entry.name,
                    version: entry.version,
                });
            }
            packages.push(entry);
        }
        Ok(Self {
            version: 1,
            packages,
        })
    }
}

type EntryProblem = (Option<String>, String);

fn validate(raw: RawEntry, base: &SourceKind) -> Result<IndexEntry, EntryProblem> {
    let name = raw.name.ok_or((None, "missing `name`".to_owned()))?;
    let problem = |text: String| (Some(name.clone()), text);
    if !valid_name(&name) {
        return Err(problem(format!(
            "invalid name {name:?} (lowercase letters, digits and '-', starting with a letter)"
        )));
    }
    let version = raw
        .version
        .ok_or_else(|| problem("missing `version`".into()))?;
    if !valid_version(&version) {
        return Err(problem(format!("invalid version {version:?}")));
    }
    let sha256 = raw
        .sha256
        .ok_or_else(|| problem("missing `sha256`".into()))?;
    if !is_sha256_hex(&sha256) {
        return Err(problem(format!(
            "`sha256` must be 64 hex digits, got {sha256:?}"
        )));
    }
    let url = raw.url.ok_or_else(|| problem("missing `url`".into()))?;
    let url = resolve(base, &url).map_err(|e| problem(format!("`url`: {e}")))?;
    let signature = match raw.signature {
        Some(sig) => Some(resolve(base, &sig).map_err(|e| problem(format!("`signature`: {e}")))?),
        None => None,
    };
    Ok(IndexEntry {
        name,
        version,
        url,
        sha256: sha256.to_ascii_lowercase(),
        signature,
    })
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= MAX_NAME_LEN
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn valid_version(version: &str) -> bool {
    !version.is_empty()
        && version.len() <= MAX_VERSION_LEN
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '_' | '~'))
}

/// Resolves an entry's location against the index's location.
pub(crate) fn resolve(base: &SourceKind, reference: &str) -> Result<String, String> {
    if reference.trim().is_empty() {
        return Err("empty location".into());
    }
    if reference.contains("://") {
        return match parse_location(reference).map_err(|e| e.to_string())? {
            SourceKind::Local(_) => Err("not a supported URL".into()),
            _ => Ok(reference.to_owned()),
        };
    }
    match base {
        SourceKind::Http(url) => {
            let joined = url.join(reference).map_err(|e| e.to_string())?;
            match joined.scheme() {
                "http" | "https" => Ok(joined.to_string()),
                other => Err(format!(
                    "resolves to a {other}: location, which a remote index may not name"
                )),
            }
        }
        SourceKind::S3 { bucket, key } => {
            let key = resolve_key(key, reference)?;
            Ok(format!("s3://{bucket}/{key}"))
        }
        SourceKind::Local(index_path) => Ok(resolve_path(index_path, reference)),
    }
}

/// `dir/of/key` + `../x` → `dir/x`; a leading `/` starts from the bucket root.
fn resolve_key(base_key: &str, reference: &str) -> Result<String, String> {
    let mut segments: Vec<&str> = match reference.strip_prefix('/') {
        Some(_) => Vec::new(),
        None => {
            let mut dir: Vec<&str> = base_key.split('/').collect();
            dir.pop();
            dir
        }
    };
    for segment in reference.trim_start_matches('/').split('/') {
        match segment {
            "." | "" => {}
            ".." => {
                segments
                    .pop()
                    .ok_or_else(|| format!("{reference:?} climbs above the bucket root"))?;
            }
            other => segments.push(other),
        }
    }
    if segments.is_empty() {
        return Err(format!("{reference:?} names no object"));
    }
    Ok(segments.join("/"))
}

fn resolve_path(index_path: &Path, reference: &str) -> String {
    let dir = index_path.parent().unwrap_or(Path::new(""));
    dir.join(reference).display().to_string()
}

impl IndexEntry {
    /// The source to fetch this entry from: digest and signature location included, and
    /// the package named in its display so errors say which package failed.
    pub fn to_source(&self) -> Result<Source, SourceError> {
        let kind = parse_location(&self.url)?;
        let signature = match &self.signature {
            Some(sig) => Some(SignatureRef::new(parse_location(sig)?)),
            None => None,
        };
        Ok(Source {
            display: format!("{} {} ({})", self.name, self.version, kind.display()),
            kind,
            expected_sha256: Some(self.sha256.clone()),
            signature,
        })
    }
}

impl std::fmt::Debug for IndexEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |loc: &str| parse_location(loc).map(|k| k.display()).unwrap_or_default();
        f.debug_struct("IndexEntry")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("url", &shown(&self.url))
            .field("sha256", &self.sha256)
            .field("signature", &self.signature.as_deref().map(shown))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn doc(entries: &str) -> String {
        format!(r#"{{"version": 1, "packages": [{entries}]}}"#)
    }

    fn entry(name: &str, url: &str) -> String {
        format!(
            r#"{{"name": "{name}", "version": "1.0.0", "url": "{url}", "sha256": "{HEX}", "signature": "{url}.sig"}}"#
        )
    }

    fn https_base() -> SourceKind {
        parse_location("https://reg.example.com/v1/index.json").unwrap()
    }

    #[test]
    fn resolves_relative_urls_against_an_https_index() {
        let index = RegistryIndex::parse(
            doc(&entry("kit", "pkgs/kit.apkg")).as_bytes(),
            &https_base(),
        )
        .unwrap();
        let e = &index.packages[0];
        assert_eq!(e.url, "https://reg.example.com/v1/pkgs/kit.apkg");
        assert_eq!(
            e.signature.as_deref(),
            Some("https://reg.example.com/v1/pkgs/kit.apkg.sig")
        );
        let source = e.to_source().unwrap();
        assert_eq!(source.expected_sha256.as_deref(), Some(HEX));
        assert!(source.display.starts_with("kit 1.0.0 ("));
    }

    #[test]
    fn resolves_relative_keys_against_an_s3_index() {
        let base = parse_location("s3://bucket/reg/v1/index.json").unwrap();
        assert_eq!(
            resolve(&base, "kit.apkg").unwrap(),
            "s3://bucket/reg/v1/kit.apkg"
        );
        assert_eq!(
            resolve(&base, "../kit.apkg").unwrap(),
            "s3://bucket/reg/kit.apkg"
        );
        assert_eq!(resolve(&base, "/top.apkg").unwrap(), "s3://bucket/top.apkg");
        assert_eq!(
            resolve(&base, "https://x.example/a.apkg").unwrap(),
            "https://x.example/a.apkg"
        );
        assert!(resolve(&base, "../../../x").is_err());
    }

    #[test]
    fn local_index_resolves_next_to_itself() {
        let base = SourceKind::Local("/srv/reg/index.json".into());
        assert_eq!(resolve(&base, "kit.apkg").unwrap(), "/srv/reg/kit.apkg");
    }

    #[test]
    fn remote_index_cannot_name_local_files() {
        assert!(resolve(&https_base(), "file:///etc/passwd").is_err());
        assert!(resolve(&https_base(), "file:/etc/passwd").is_err());
    }

    #[test]
    fn malformed_documents_are_refused_with_the_reason() {
        let base = https_base();
        let cases = [
            ("{not json", "JSON"),
            (r#"{"version": 2, "packages": []}"#, "version 2"),
            (
                &doc(r#"{"name": "kit", "version": "1", "sha256": "abc", "url": "k.apkg"}"#),
                "sha256",
            ),
            (
                &doc(&format!(
                    r#"{{"name": "kit", "version": "1", "sha256": "{HEX}"}}"#
                )),
                "missing `url`",
            ),
            (
                &doc(&format!(
                    r#"{{"name": "Kit", "version": "1", "sha256": "{HEX}", "url": "k"}}"#
                )),
                "invalid name",
            ),
            (
                &doc(&format!("{},{}", entry("kit", "a"), entry("kit", "b"))),
                "listed twice",
            ),
        ];
        for (text, expected) in cases {
            let error = RegistryIndex::parse(text.as_bytes(), &base)
                .unwrap_err()
                .to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
