//! Input schemas a package declares (`metadata.input_schema`, `sub_agents[].schema`):
//! compiled at load, checked on every call before any Python runs.

use std::collections::HashMap;
use std::path::Path;

use par_manifest::Manifest;

use crate::error::{ErrorCode, InvokeError};

/// Largest schema file read from a package.
const MAX_SCHEMA_BYTES: u64 = 1024 * 1024;
/// Violations listed in one error; the rest are counted.
const MAX_LISTED: usize = 20;

/// Compiled schemas by sub-agent name (`None` is the package's own).
#[derive(Default)]
pub struct Schemas {
    by_agent: HashMap<Option<String>, jsonschema::Validator>,
}

impl Schemas {
    pub fn load(root: &Path, manifest: &Manifest) -> Result<Schemas, String> {
        let mut by_agent = HashMap::new();
        if let Some(path) = &manifest.input_schema {
            by_agent.insert(None, compile(root, path)?);
        }
        for sub in &manifest.sub_agents {
            if let Some(path) = &sub.schema {
                by_agent.insert(Some(sub.name.clone()), compile(root, path)?);
            }
        }
        Ok(Schemas { by_agent })
    }

    /// Checks `body` for the main agent or a sub-agent (which falls back to the
    /// package's schema when it has none of its own).
    pub fn check(&self, sub_agent: Option<&str>, body: &[u8]) -> Result<(), InvokeError> {
        let own = self.by_agent.get(&sub_agent.map(str::to_string));
        let Some(validator) = own.or_else(|| self.by_agent.get(&None)) else {
            return Ok(());
        };
        let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
            InvokeError::new(
                ErrorCode::BadRequest,
                format!("body is not valid JSON: {e}"),
            )
        })?;
        let problems: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| format!("{}: {}", pointer_or_root(&e.instance_path().to_string()), e))
            .collect();
        if problems.is_empty() {
            return Ok(());
        }
        let mut listed = problems
            .iter()
            .take(MAX_LISTED)
            .cloned()
            .collect::<Vec<_>>()
            .join("; ");
        if problems.len() > MAX_LISTED {
            listed.push_str(&format!("; and {} more", problems.len() - MAX_LISTED));
        }
        Err(InvokeError::new(
            ErrorCode::InvalidInput,
            format!("input does not match the schema: {listed}"),
        ))
    }
}

fn pointer_or_root(pointer: &str) -> &str {
    if pointer.is_empty() {
        "/"
    } else {
        pointer
    }
}

fn compile(root: &Path, relative: &str) -> Result<jsonschema::Validator, String> {
    use std::io::Read;
    let path = root.join(relative);
    let file = fs_err::File::open(&path).map_err(|e| format!("schema {relative}: {e}"))?;
    let mut text = String::new();
    file.take(MAX_SCHEMA_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("schema {relative}: {e}"))?;
    if text.len() as u64 > MAX_SCHEMA_BYTES {
        return Err(format!(
            "schema {relative} is larger than {MAX_SCHEMA_BYTES} bytes"
        ));
    }
    let schema: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("schema {relative}: not JSON: {e}"))?;
    jsonschema::validator_for(&schema).map_err(|e| format!("schema {relative}: {e}"))
}
