//! `agent.yaml` exactly as written, before any rule is applied.
//!
//! Every field is optional here so that a missing field becomes our own "is required" message
//! naming it, rather than serde's generic one. Nested sections ignore unknown keys, as the kit
//! does; top-level keys are checked against [`TOP_LEVEL_KEYS`] before this is deserialized.
//!
//! Scalars deserialized into `String` keep their source text (serde-saphyr's default), so
//! `version: 1.10` reads as `"1.10"`, not as a float.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Top-level keys PAR accepts: kit 0.4's schema plus pixell-sdk 0.5's additions
/// (`http_server`, `permissions`, `data_access`, `plan_mode`, `translation`).
pub(crate) const TOP_LEVEL_KEYS: &[&str] = &[
    "version",
    "name",
    "display_name",
    "description",
    "author",
    "license",
    "entrypoint",
    "capabilities",
    "runtime",
    "environment",
    "dependencies",
    "mcp",
    "metadata",
    "a2a",
    "rest",
    "ui",
    "ui_spec_version",
    "required_ui_capabilities",
    "http_server",
    "permissions",
    "data_access",
    "plan_mode",
    "translation",
];

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawManifest {
    pub version: Option<String>,
    pub name: Option<String>,
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub author: Option<String>,
    pub license: Option<String>,
    pub entrypoint: Option<String>,
    pub capabilities: Option<Vec<String>>,
    pub runtime: Option<String>,
    pub environment: Option<BTreeMap<String, String>>,
    pub dependencies: Option<Vec<String>>,
    pub metadata: Option<RawMetadata>,
    pub a2a: Option<RawA2a>,
    pub rest: Option<RawRest>,
    pub ui: Option<RawUi>,
    pub http_server: Option<String>,
    // Informational sections: typed loosely so their shape is still checked to be YAML
    // collections, but PAR does not act on them.
    pub mcp: Option<serde::de::IgnoredAny>,
    pub required_ui_capabilities: Option<Vec<String>>,
    pub ui_spec_version: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawMetadata {
    pub version: Option<String>,
    pub tags: Option<Vec<String>>,
    pub sub_agents: Option<Vec<RawSubAgent>>,
    pub input_schema: Option<String>,
    pub role_required: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawSubAgent {
    pub name: Option<String>,
    pub description: Option<String>,
    pub endpoint: Option<String>,
    pub capabilities: Option<Vec<String>>,
    pub public: Option<bool>,
    pub schema: Option<String>,
    pub role_required: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawA2a {
    /// kit 0.4 spelling.
    pub service: Option<String>,
    /// pixell-sdk spelling of the same thing.
    pub entry: Option<String>,
    /// pixell-sdk: an ASGI app serving JSON-RPC.
    pub http_server: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawRest {
    pub entry: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawUi {
    pub path: Option<String>,
}
