//! Turning a [`RawManifest`] into a [`Manifest`], applying the kit's schema and PAR's rules.
//!
//! Problems are collected rather than returned one by one, so an author sees every broken
//! field of a manifest in a single `par inspect`.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{FieldProblem, ManifestError};
use crate::model::{is_identifier, EntryPoint, Manifest, SubAgent};
use crate::raw::{RawA2a, RawManifest, RawMetadata, RawSubAgent};
use crate::requirement::check_requirement;
use crate::rules;

const ENTRYPOINT_FORMAT: &str = "must be \"module.path:function\"";

pub(crate) fn validate(raw: RawManifest) -> Result<Manifest, ManifestError> {
    let mut check = Checker::default();
    let manifest = check.manifest(raw);
    if check.problems.is_empty() {
        return Ok(manifest);
    }
    Err(ManifestError::Invalid {
        problems: check.problems,
    })
}

#[derive(Default)]
struct Checker {
    problems: Vec<FieldProblem>,
}

impl Checker {
    fn problem(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.problems.push(FieldProblem::new(field, message));
    }

    /// Records a failed rule for `field`; the value is kept either way, as the manifest is
    /// discarded when any problem was recorded.
    fn rule(&mut self, field: &str, outcome: Result<(), String>) {
        if let Err(message) = outcome {
            self.problem(field, message);
        }
    }

    fn required(&mut self, field: &str, value: Option<String>) -> String {
        value.unwrap_or_else(|| {
            self.problem(field, "is required");
            String::new()
        })
    }

    fn manifest(&mut self, raw: RawManifest) -> Manifest {
        let metadata = raw.metadata.unwrap_or_default();
        let declares_surface = raw.a2a.is_some()
            || raw.rest.is_some()
            || raw.ui.is_some()
            || raw.http_server.is_some();
        if raw.entrypoint.is_none() && !declares_surface {
            self.problem(
                "entrypoint",
                "is required unless a2a, rest, ui or http_server is set",
            );
        }
        let name = self.checked("name", raw.name, rules::package_name);
        let agent_version = self.checked(
            "metadata.version",
            metadata.version.clone(),
            rules::agent_version,
        );
        let format_version = self.format_version(raw.version, &metadata);
        let entrypoint = self.entry_point("entrypoint", raw.entrypoint.as_deref());
        let sub_agents = self.sub_agents(metadata.sub_agents, &name, raw.entrypoint.is_some());
        Manifest {
            format_version,
            name,
            display_name: self.required("display_name", raw.display_name),
            description: self.required("description", raw.description),
            author: self.required("author", raw.author),
            license: self.required("license", raw.license),
            agent_version,
            rest_entry: self.rest_entry(raw.rest.map(|r| r.entry), entrypoint.as_ref()),
            entrypoint,
            runtime: self.runtime(raw.runtime),
            capabilities: raw.capabilities.unwrap_or_default(),
            environment: self.environment(raw.environment.unwrap_or_default()),
            dependencies: self.dependencies(raw.dependencies.unwrap_or_default()),
            sub_agents,
            a2a_service: self.a2a_service(raw.a2a.as_ref()),
            http_server: self.http_server(raw.http_server, raw.a2a.as_ref()),
            ui_path: self.ui_path(raw.ui.map(|u| u.path)),
            input_schema: self.package_path("metadata.input_schema", metadata.input_schema),
            role_required: self.role("metadata.role_required", metadata.role_required),
            tags: metadata.tags.unwrap_or_default(),
        }
    }

    /// A required field that must also pass `rule`.
    fn checked(
        &mut self,
        field: &str,
        raw: Option<String>,
        rule: fn(&str) -> Result<(), String>,
    ) -> String {
        match raw {
            Some(value) => {
                self.rule(field, rule(&value));
                value
            }
            None => self.required(field, None),
        }
    }

    fn format_version(&mut self, raw: Option<String>, metadata: &RawMetadata) -> String {
        let outcome = rules::format_version(raw.as_deref(), metadata.version.as_deref());
        outcome.unwrap_or_else(|message| {
            self.problem("version", message);
            String::new()
        })
    }

    fn runtime(&mut self, raw: Option<String>) -> String {
        let runtime = raw.unwrap_or_else(|| "python3.11".to_owned());
        self.rule("runtime", rules::runtime(&runtime));
        runtime
    }

    fn entry_point(&mut self, field: &str, raw: Option<&str>) -> Option<EntryPoint> {
        let text = raw?;
        let parsed = EntryPoint::parse(text);
        if parsed.is_none() {
            self.problem(field, format!("{ENTRYPOINT_FORMAT} (got {text:?})"));
        }
        parsed
    }

    /// pixell-sdk lets `rest.entry` be a bare function name in the entrypoint's module.
    fn rest_entry(
        &mut self,
        raw: Option<Option<String>>,
        entrypoint: Option<&EntryPoint>,
    ) -> Option<EntryPoint> {
        let text = match raw? {
            Some(text) => text,
            None => {
                self.problem("rest.entry", "is required when 'rest' is set");
                return None;
            }
        };
        if text.contains(':') || !is_identifier(&text) {
            return self.entry_point("rest.entry", Some(&text));
        }
        let Some(module) = entrypoint.map(|e| e.module.clone()) else {
            let message = format!(
                "{ENTRYPOINT_FORMAT}, or a function name when 'entrypoint' is set (got {text:?})"
            );
            self.problem("rest.entry", message);
            return None;
        };
        Some(EntryPoint { module, attr: text })
    }

    /// The top-level field is pixell-sdk's primary spelling, so it wins over `a2a.http_server`.
    fn http_server(&mut self, top: Option<String>, a2a: Option<&RawA2a>) -> Option<EntryPoint> {
        if top.is_some() {
            return self.entry_point("http_server", top.as_deref());
        }
        let nested = a2a.and_then(|a| a.http_server.as_deref());
        self.entry_point("a2a.http_server", nested)
    }

    /// Informational only, so it is held to the kit's own looser rule: contains a colon.
    fn a2a_service(&mut self, a2a: Option<&RawA2a>) -> Option<String> {
        let a2a = a2a?;
        for (field, value) in [("a2a.service", &a2a.service), ("a2a.entry", &a2a.entry)] {
            if value.as_deref().is_some_and(|v| !v.contains(':')) {
                self.problem(
                    field,
                    format!(
                        "{ENTRYPOINT_FORMAT} (got {:?})",
                        value.as_deref().unwrap_or_default()
                    ),
                );
            }
        }
        a2a.service.clone().or_else(|| a2a.entry.clone())
    }

    fn ui_path(&mut self, raw: Option<Option<String>>) -> Option<String> {
        match raw? {
            Some(path) => self.package_path("ui.path", Some(path)),
            None => {
                self.problem("ui.path", "is required when 'ui' is set");
                None
            }
        }
    }

    fn package_path(&mut self, field: &str, raw: Option<String>) -> Option<String> {
        match rules::relative_path(&raw?) {
            Ok(path) => Some(path),
            Err(message) => {
                self.problem(field, message);
                None
            }
        }
    }

    fn role(&mut self, field: &str, raw: Option<String>) -> Option<String> {
        let role = raw?;
        if role.trim().is_empty() {
            self.problem(field, "must not be empty");
        }
        Some(role)
    }

    fn environment(&mut self, env: BTreeMap<String, String>) -> BTreeMap<String, String> {
        for (key, value) in &env {
            if let Err(message) = rules::environment_entry(key, value) {
                self.problem(format!("environment.{key}"), message);
            }
        }
        env
    }

    fn dependencies(&mut self, deps: Vec<String>) -> Vec<String> {
        let mut accepted = Vec::with_capacity(deps.len());
        for (i, dep) in deps.iter().enumerate() {
            match check_requirement(dep) {
                Ok(dep) => accepted.push(dep),
                Err(reason) => self.problem(
                    format!("dependencies[{i}]"),
                    format!("{dep:?} refused: {reason}"),
                ),
            }
        }
        accepted
    }

    fn sub_agents(
        &mut self,
        raw: Option<Vec<RawSubAgent>>,
        package: &str,
        has_entrypoint: bool,
    ) -> Vec<SubAgent> {
        let raw = raw.unwrap_or_default();
        if !raw.is_empty() && !has_entrypoint {
            self.problem(
                "metadata.sub_agents",
                "needs 'entrypoint': sub-agents are served by the entrypoint",
            );
        }
        let agents: Vec<SubAgent> = raw
            .into_iter()
            .enumerate()
            .map(|(i, sub)| self.sub_agent(i, sub))
            .collect();
        self.unique_ids(&agents, package, has_entrypoint);
        agents
    }

    fn sub_agent(&mut self, index: usize, raw: RawSubAgent) -> SubAgent {
        let field = |name: &str| format!("metadata.sub_agents[{index}].{name}");
        let name = self.checked(&field("name"), raw.name, rules::agent_id);
        SubAgent {
            name,
            description: raw.description.unwrap_or_default(),
            endpoint: raw.endpoint,
            capabilities: raw.capabilities.unwrap_or_default(),
            // The kit's SubAgent model defaults to private; so do we.
            public: raw.public.unwrap_or(false),
            schema: self.package_path(&field("schema"), raw.schema),
            role_required: self.role(&field("role_required"), raw.role_required),
        }
    }

    /// Agent ids share one namespace with the package's main agent.
    fn unique_ids(&mut self, agents: &[SubAgent], package: &str, has_entrypoint: bool) {
        let mut seen = BTreeSet::new();
        if has_entrypoint {
            seen.insert(package);
        }
        for (i, agent) in agents.iter().enumerate() {
            if !agent.name.is_empty() && !seen.insert(agent.name.as_str()) {
                let message = format!(
                    "duplicates the agent id {:?} (the package's main agent or an earlier sub-agent)",
                    agent.name
                );
                self.problem(format!("metadata.sub_agents[{i}].name"), message);
            }
        }
    }
}
