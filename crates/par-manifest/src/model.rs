//! The validated manifest: what the rest of PAR reads instead of raw YAML.
//!
//! Every field here has passed the checks in `validate.rs`; code holding a [`Manifest`] never
//! re-checks names, paths or entry points.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

/// A validated `agent.yaml`.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    /// Top-level `version`: the manifest format version (always a `1.x`), not the agent's.
    pub format_version: String,
    /// Package name, `^[a-z][a-z0-9-]*$`; also the id of the package's main agent.
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub author: String,
    pub license: String,
    /// `metadata.version`: the agent's own version, part of its identity.
    pub agent_version: String,
    /// The invoke handler; absent for packages that only offer REST, A2A or UI.
    pub entrypoint: Option<EntryPoint>,
    pub runtime: String,
    pub capabilities: Vec<String>,
    pub environment: BTreeMap<String, String>,
    pub dependencies: Vec<String>,
    /// `metadata.sub_agents`: further agent ids served by the same entrypoint.
    pub sub_agents: Vec<SubAgent>,
    /// `rest.entry`: a `mount(app)` function.
    pub rest_entry: Option<EntryPoint>,
    /// `a2a.service` (or pixell-sdk `a2a.entry`); informational, PAR does not start it.
    pub a2a_service: Option<String>,
    /// pixell-sdk `http_server` (or `a2a.http_server`): an ASGI app served as is.
    pub http_server: Option<EntryPoint>,
    /// `ui.path`: a relative directory inside the package.
    pub ui_path: Option<String>,
    /// `metadata.input_schema`: a relative path to a JSON Schema inside the package.
    pub input_schema: Option<String>,
    /// `metadata.role_required`: the role a caller needs to invoke the main agent.
    pub role_required: Option<String>,
    pub tags: Vec<String>,
}

impl Manifest {
    /// The surfaces this package offers, in the fixed order invoke, rest, a2a, ui.
    pub fn surfaces(&self) -> Vec<&'static str> {
        let offered = [
            ("invoke", self.entrypoint.is_some()),
            ("rest", self.rest_entry.is_some()),
            ("a2a", self.http_server.is_some()),
            ("ui", self.ui_path.is_some()),
        ];
        offered
            .into_iter()
            .filter(|(_, on)| *on)
            .map(|(surface, _)| surface)
            .collect()
    }
}

/// A Python `module.path:attr` reference, checked to be importable-looking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryPoint {
    /// Dotted Python identifiers, e.g. `src.main`.
    pub module: String,
    /// One Python identifier, e.g. `handler`.
    pub attr: String,
}

impl EntryPoint {
    /// Parses `module.path:attr`; `None` unless both halves are plain identifiers.
    ///
    /// Identifiers are ASCII-only on purpose: the module path becomes a file path inside the
    /// package, and ASCII keeps that mapping free of normalisation surprises.
    pub fn parse(text: &str) -> Option<Self> {
        let (module, attr) = text.split_once(':')?;
        let module_ok = module.split('.').all(is_identifier);
        if !module_ok || !is_identifier(attr) {
            return None;
        }
        Some(Self {
            module: module.to_owned(),
            attr: attr.to_owned(),
        })
    }
}

impl fmt::Display for EntryPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.module, self.attr)
    }
}

/// One entry of `metadata.sub_agents`.
#[derive(Debug, Clone, Serialize)]
pub struct SubAgent {
    /// The sub-agent's id; also the `action` its requests carry.
    pub name: String,
    pub description: String,
    pub endpoint: Option<String>,
    pub capabilities: Vec<String>,
    /// Whether the sub-agent is routable over HTTP (default `false`, as in the kit).
    pub public: bool,
    /// A relative path to a JSON Schema for the sub-agent's input.
    pub schema: Option<String>,
    pub role_required: Option<String>,
}

/// `[A-Za-z_][A-Za-z0-9_]*`, not a Python keyword check: importing tells the truth later.
pub(crate) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_point_parses_dotted_module_and_attr() {
        let ep = EntryPoint::parse("src.agents.main:handle_request").unwrap();
        assert_eq!(ep.module, "src.agents.main");
        assert_eq!(ep.attr, "handle_request");
        assert_eq!(ep.to_string(), "src.agents.main:handle_request");
    }

    #[test]
    fn entry_point_refuses_malformed_text() {
        for bad in [
            "src.main",
            "src.main:",
            ":handler",
            "src..main:handler",
            "src/main.py:handler",
            "src.main:handler:x",
            "src.main:a.b",
            "1src:handler",
            "src.main: handler",
            "src-x.main:handler",
        ] {
            assert!(EntryPoint::parse(bad).is_none(), "{bad} should be refused");
        }
    }

    #[test]
    fn identifiers_are_ascii_python_names() {
        assert!(is_identifier("_private9"));
        assert!(!is_identifier(""));
        assert!(!is_identifier("9lives"));
        assert!(!is_identifier("naïve"));
    }
}
