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
pub(crate) struct Schemas {
    by_agent: HashMap<Option<String>, jsonschema::Validator>,
    /// The schemas as declared, for documents that describe the agents (OpenAPI).
    declared: HashMap<Option<String>, serde_json::Value>,
}

impl Schemas {
    pub(crate) fn load(root: &Path, manifest: &Manifest) -> Result<Schemas, String> {
        let mut schemas = Schemas::default();
        if let Some(path) = &manifest.input_schema {
            schemas.add(None, root, path)?;
        }
        for sub in &manifest.sub_agents {
            if let Some(path) = &sub.schema {
                schemas.add(Some(sub.name.clone()), root, path)?;
            }
        }
        Ok(schemas)
    }

    fn add(&mut self, agent: Option<String>, root: &Path, path: &str) -> Result<(), String> {
        let (validator, declared) = compile(root, path)?;
        self.by_agent.insert(agent.clone(), validator);
        self.declared.insert(agent, declared);
        Ok(())
    }

    /// The schema a call of the main agent (`None`) or a sub-agent is checked against.
    pub(crate) fn declared(&self, sub_agent: Option<&str>) -> Option<&serde_json::Value> {
        let own = self.declared.get(&sub_agent.map(str::to_string));
        own.or_else(|| self.declared.get(&None))
    }

    /// The declared schema document that applies to `sub_agent` (or the main agent); MCP
    /// lists it as the tool's `inputSchema`.
    pub(crate) fn document(&self, sub_agent: Option<&str>) -> Option<&serde_json::Value> {
        self.declared(sub_agent)
    }

    /// Checks `body` for the main agent or a sub-agent (which falls back to the
    /// package's schema when it has none of its own).
    pub(crate) fn check(&self, sub_agent: Option<&str>, body: &[u8]) -> Result<(), InvokeError> {
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

fn compile(
    root: &Path,
    relative: &str,
) -> Result<(jsonschema::Validator, serde_json::Value), String> {
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
    let validator =
        jsonschema::validator_for(&schema).map_err(|e| format!("schema {relative}: {e}"))?;
    Ok((validator, schema))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OBJECT_WITH_TEXT: &str =
        r#"{"type":"object","required":["text"],"properties":{"text":{"type":"string"}}}"#;
    const OBJECT_WITH_N: &str =
        r#"{"type":"object","required":["n"],"properties":{"n":{"type":"integer"}}}"#;

    fn manifest(extra_metadata: &str) -> Manifest {
        let yaml = format!(
            "name: a\ndisplay_name: A\ndescription: d\nauthor: t\nlicense: MIT\n\
             entrypoint: src.main:handler\nmetadata:\n  version: 1.0.0\n{extra_metadata}"
        );
        par_manifest::parse_manifest(yaml.as_bytes(), &par_manifest::ParseLimits::default())
            .unwrap()
    }

    /// A package folder with these files, and schemas loaded for `extra_metadata`.
    fn load(files: &[(&str, &str)], extra_metadata: &str) -> Result<Schemas, String> {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        Schemas::load(dir.path(), &manifest(extra_metadata))
    }

    const WITH_SUBS: &str = "  input_schema: schemas/main.json\n  sub_agents:\n    \
        - name: own\n      schema: schemas/own.json\n    - name: plain\n";

    fn schemas_with_subs() -> Schemas {
        load(
            &[
                ("schemas/main.json", OBJECT_WITH_TEXT),
                ("schemas/own.json", OBJECT_WITH_N),
            ],
            WITH_SUBS,
        )
        .unwrap()
    }

    #[test]
    fn without_a_schema_any_body_passes() {
        let schemas = load(&[], "").unwrap();
        assert!(schemas.check(None, br#"{"anything":1}"#).is_ok());
        assert!(schemas.check(Some("sub"), b"not even json").is_ok());
    }

    #[test]
    fn a_matching_body_passes_and_a_mismatch_is_invalid_input_naming_the_field() {
        let schemas = schemas_with_subs();
        assert!(schemas.check(None, br#"{"text":"hi"}"#).is_ok());
        let err = schemas.check(None, br#"{"text":5}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidInput);
        assert!(
            err.message.starts_with("input does not match the schema: "),
            "{}",
            err.message
        );
        assert!(err.message.contains("/text"), "{}", err.message);
        let missing = schemas.check(None, b"{}").unwrap_err();
        assert!(
            missing.message.contains("/: "),
            "root pointer: {}",
            missing.message
        );
    }

    #[test]
    fn a_body_that_is_not_json_is_a_bad_request_when_a_schema_applies() {
        let err = schemas_with_subs().check(None, b"{").unwrap_err();
        assert_eq!(err.code, ErrorCode::BadRequest);
    }

    #[test]
    fn a_sub_agent_uses_its_own_schema_and_not_the_packages() {
        let schemas = schemas_with_subs();
        assert!(schemas.check(Some("own"), br#"{"n":1}"#).is_ok());
        let err = schemas.check(Some("own"), br#"{"text":"hi"}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidInput);
    }

    #[test]
    fn a_sub_agent_without_a_schema_falls_back_to_the_packages() {
        let schemas = schemas_with_subs();
        assert!(schemas.check(Some("plain"), br#"{"text":"hi"}"#).is_ok());
        let err = schemas.check(Some("plain"), br#"{"n":1}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidInput);
    }

    #[test]
    fn past_twenty_violations_the_rest_are_counted() {
        let properties: Vec<String> = (0..25)
            .map(|i| format!(r#""p{i}":{{"type":"string"}}"#))
            .collect();
        let schema = format!(
            r#"{{"type":"object","properties":{{{}}}}}"#,
            properties.join(",")
        );
        let schemas = load(&[("s.json", &schema)], "  input_schema: s.json\n").unwrap();
        let body: Vec<String> = (0..25).map(|i| format!(r#""p{i}":1"#)).collect();
        let err = schemas
            .check(None, format!("{{{}}}", body.join(",")).as_bytes())
            .unwrap_err();
        assert!(err.message.ends_with("; and 5 more"), "{}", err.message);
        assert_eq!(err.message.matches("; ").count(), 20, "{}", err.message);
    }

    #[test]
    fn a_bad_schema_file_fails_the_load_naming_the_file() {
        let missing = load(&[], "  input_schema: schemas/none.json\n")
            .err()
            .unwrap();
        assert!(
            missing.starts_with("schema schemas/none.json: "),
            "{missing}"
        );
        let not_json = load(&[("s.json", "{")], "  input_schema: s.json\n")
            .err()
            .unwrap();
        assert!(not_json.contains("s.json: not JSON"), "{not_json}");
        let not_a_schema = load(
            &[("s.json", r#"{"type":"nonsense"}"#)],
            "  input_schema: s.json\n",
        )
        .err()
        .unwrap();
        assert!(
            not_a_schema.starts_with("schema s.json: "),
            "{not_a_schema}"
        );
    }

    #[test]
    fn a_schema_file_over_the_size_limit_is_refused() {
        let huge = format!(
            r#"{{"description":"{}"}}"#,
            "x".repeat(MAX_SCHEMA_BYTES as usize)
        );
        let err = load(&[("s.json", &huge)], "  input_schema: s.json\n")
            .err()
            .unwrap();
        assert_eq!(
            err,
            format!("schema s.json is larger than {MAX_SCHEMA_BYTES} bytes")
        );
    }
}
