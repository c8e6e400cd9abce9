//! Whole-manifest tests: real builder output, then one test per schema rule.

use crate::*;

const KIT_04_INIT: &str = include_str!("../testdata/kit-0.4.12-init.agent.yaml");
const KIT_03_SUB_AGENTS: &str = include_str!("../testdata/kit-0.3.5-sub-agents.agent.yaml");
const SDK_054_FULL: &str = include_str!("../testdata/sdk-0.5.4-full.agent.yaml");
const SDK_054_HTTP_ONLY: &str = include_str!("../testdata/sdk-0.5.4-http-only.agent.yaml");

/// A small valid manifest; tests edit it line by line.
const MINIMAL: &str = "\
name: kit-minimal
display_name: Kit Minimal
description: Echoes its input
author: PAR Tests
license: MIT
entrypoint: src.main:handler
metadata:
  version: 1.0.0
";

fn parse(text: &str) -> Result<Manifest, ManifestError> {
    parse_manifest(text.as_bytes(), &ParseLimits::default())
}

fn error_of(text: &str) -> String {
    parse(text)
        .expect_err("manifest should be refused")
        .to_string()
}

/// MINIMAL without the line that starts with `prefix`.
fn without(prefix: &str) -> String {
    MINIMAL
        .lines()
        .filter(|l| !l.starts_with(prefix))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn with(extra: &str) -> String {
    format!("{MINIMAL}{extra}")
}

#[test]
fn kit_0_4_12_init_output() {
    let m = parse(KIT_04_INIT).unwrap();
    assert_eq!(m.format_version, "1.0");
    assert_eq!(m.name, "k4");
    assert_eq!(m.display_name, "K4");
    assert_eq!(m.agent_version, "0.1.0");
    assert_eq!(
        m.entrypoint.as_ref().unwrap().to_string(),
        "src.main:handler"
    );
    assert_eq!(m.runtime, "python3.11");
    assert!(m.environment.is_empty());
    assert_eq!(
        m.dependencies,
        ["fastapi>=0.112.0", "uvicorn>=0.30.0", "watchdog>=4.0.0"]
    );
    assert_eq!(m.a2a_service.as_deref(), Some("src.a2a.server:serve"));
    assert_eq!(m.rest_entry.unwrap().to_string(), "src.rest.index:mount");
    assert_eq!(m.ui_path.as_deref(), Some("ui"));
    assert!(m.http_server.is_none());
    assert!(m.sub_agents.is_empty());
}

#[test]
fn kit_0_4_12_surfaces_exclude_grpc_a2a() {
    let m = parse(KIT_04_INIT).unwrap();
    // a2a.service is a gRPC server PAR does not start, so it is not an a2a surface.
    assert_eq!(m.surfaces(), ["invoke", "rest", "ui"]);
}

#[test]
fn kit_0_3_5_manifest_with_sub_agents() {
    let m = parse(KIT_03_SUB_AGENTS).unwrap();
    assert_eq!(m.format_version, "1.0");
    assert_eq!(m.name, "kit-three");
    assert_eq!(m.agent_version, "1.2.0");
    assert_eq!(m.capabilities, ["summarize"]);
    assert_eq!(m.environment["LOG_LEVEL"], "info");
    assert_eq!(m.tags, ["text"]);
    assert_eq!(m.surfaces(), ["invoke"]);
    let [summarizer, indexer] = &m.sub_agents[..] else {
        panic!("two sub-agents expected: {:?}", m.sub_agents);
    };
    assert_eq!(summarizer.name, "summarizer");
    assert_eq!(summarizer.description, "Summarises text");
    assert_eq!(summarizer.endpoint.as_deref(), Some("/summarize"));
    assert_eq!(summarizer.capabilities, ["summarize"]);
    assert!(summarizer.public);
    assert_eq!(indexer.name, "internal-indexer");
    assert!(!indexer.public);
}

#[test]
fn sdk_0_5_4_reserialised_manifest() {
    let m = parse(SDK_054_FULL).unwrap();
    // The sdk copies metadata.version into the top-level `version`.
    assert_eq!(m.format_version, "1.0");
    assert_eq!(m.agent_version, "0.2.0");
    assert_eq!(m.name, "sdk-demo");
    assert_eq!(m.environment["PORT"], "8080");
    assert_eq!(m.http_server.as_ref().unwrap().to_string(), "src.app:app");
    assert_eq!(m.a2a_service.as_deref(), Some("src.app:app"));
    // `rest.entry: mount` names a function in the entrypoint's module.
    assert_eq!(m.rest_entry.as_ref().unwrap().to_string(), "src.main:mount");
    assert_eq!(m.tags, ["demo", "test"]);
    assert!(m.sub_agents.is_empty(), "the sdk drops metadata.sub_agents");
    assert_eq!(m.surfaces(), ["invoke", "rest", "a2a", "ui"]);
}

#[test]
fn sdk_0_5_4_http_server_only() {
    let m = parse(SDK_054_HTTP_ONLY).unwrap();
    assert_eq!(m.format_version, "1.0");
    assert_eq!(m.agent_version, "2.1.0");
    assert!(m.entrypoint.is_none());
    assert_eq!(m.http_server.as_ref().unwrap().to_string(), "app:app");
    assert_eq!(m.surfaces(), ["a2a"]);
}

#[test]
fn manifest_serialises_to_json() {
    let m = parse(KIT_03_SUB_AGENTS).unwrap();
    let json = serde_json::to_value(&m).unwrap();
    assert_eq!(json["name"], "kit-three");
    assert_eq!(json["entrypoint"]["module"], "src.main");
    assert_eq!(json["sub_agents"][1]["public"], false);
}

#[test]
fn minimal_defaults() {
    let m = parse(MINIMAL).unwrap();
    assert_eq!(m.format_version, "1.0");
    assert_eq!(m.runtime, "python3.11");
    assert!(m.capabilities.is_empty() && m.dependencies.is_empty() && m.tags.is_empty());
    assert!(m.input_schema.is_none() && m.role_required.is_none());
}

#[test]
fn each_required_field_is_named_when_missing() {
    for field in ["name", "display_name", "description", "author", "license"] {
        let err = error_of(&without(&format!("{field}:")));
        assert_eq!(err, format!("agent.yaml: field '{field}' is required"));
    }
}

#[test]
fn missing_metadata_version_is_named() {
    let text = with("").replace("  version: 1.0.0\n", "  tags: [x]\n");
    assert_eq!(
        error_of(&text),
        "agent.yaml: field 'metadata.version' is required"
    );
}

#[test]
fn missing_metadata_section_names_metadata_version() {
    let text = without("metadata:").replace("  version: 1.0.0\n", "");
    assert_eq!(
        error_of(&text),
        "agent.yaml: field 'metadata.version' is required"
    );
}

#[test]
fn missing_entrypoint_without_surfaces_is_named() {
    let err = error_of(&without("entrypoint:"));
    assert!(
        err.contains("field 'entrypoint' is required unless"),
        "{err}"
    );
}

#[test]
fn entrypoint_is_optional_with_any_surface() {
    for surface in [
        "rest:\n  entry: src.rest:mount\n",
        "a2a:\n  service: src.a2a:serve\n",
        "ui:\n  path: ui\n",
        "http_server: src.app:app\n",
    ] {
        let text = format!("{}{surface}", without("entrypoint:"));
        let m = parse(&text).unwrap_or_else(|e| panic!("{surface}: {e}"));
        assert!(m.entrypoint.is_none());
    }
}

#[test]
fn all_missing_fields_are_reported_together() {
    let err = parse("metadata: {}\nentrypoint: a:b\n").unwrap_err();
    let fields: Vec<&str> = err.problems().iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "name",
            "metadata.version",
            "display_name",
            "description",
            "author",
            "license"
        ]
    );
}

#[test]
fn bad_name_is_named_with_the_rule_and_value() {
    let err = error_of(&MINIMAL.replace("name: kit-minimal", "name: Foo"));
    assert_eq!(
        err,
        "agent.yaml: field 'name' must match ^[a-z][a-z0-9-]*$ (got \"Foo\")"
    );
}

#[test]
fn bad_entrypoint_is_named() {
    for bad in [
        "src.main",
        "src/main.py:handler",
        "src.main:handler:x",
        "'src.main: h'",
    ] {
        let err = error_of(&MINIMAL.replace("src.main:handler", bad));
        assert!(
            err.starts_with("agent.yaml: field 'entrypoint' must be \"module.path:function\""),
            "{bad}: {err}"
        );
    }
}

#[test]
fn unknown_top_level_key_is_refused() {
    let err = error_of(&with("entrypiont: src.main:other\n"));
    assert!(
        err.starts_with("agent.yaml: field 'entrypiont' is not a known top-level field"),
        "{err}"
    );
}

#[test]
fn sdk_informational_sections_are_accepted() {
    let text = with(
        "permissions:\n  required: [user.profile]\ndata_access:\n  oauth_providers: [google]\n\
         plan_mode:\n  phases: [preview]\ntranslation:\n  supported_languages: [en]\n\
         mcp:\n  enabled: false\nui_spec_version: '1.0'\nrequired_ui_capabilities: [forms]\n",
    );
    parse(&text).unwrap();
}

#[test]
fn unknown_nested_keys_are_kept_out_of_the_way() {
    let text = MINIMAL.replace(
        "metadata:\n",
        "metadata:\n  homepage: https://x.example\n  future_field: {a: 1}\n",
    );
    parse(&text).unwrap();
}

#[test]
fn environment_scalars_become_strings() {
    let m = parse(&with(
        "environment:\n  PORT: 8080\n  DEBUG: true\n  RATIO: 0.50\n  NAME: plain\n",
    ))
    .unwrap();
    assert_eq!(m.environment["PORT"], "8080");
    assert_eq!(m.environment["DEBUG"], "true");
    assert_eq!(m.environment["RATIO"], "0.50", "source text is kept");
    assert_eq!(m.environment["NAME"], "plain");
}

#[test]
fn environment_null_value_is_named() {
    let err = error_of(&with("environment:\n  EMPTY:\n"));
    assert!(
        err.starts_with("agent.yaml: field 'environment.EMPTY' is empty"),
        "{err}"
    );
}

#[test]
fn numeric_versions_keep_their_source_text() {
    let m = parse(&MINIMAL.replace("version: 1.0.0", "version: 1.10")).unwrap();
    assert_eq!(m.agent_version, "1.10");
    let m = parse(&with("version: 1.0\n")).unwrap();
    assert_eq!(m.format_version, "1.0");
    let m = parse(&with("version: 1\n")).unwrap();
    assert_eq!(m.format_version, "1");
}

#[test]
fn unknown_format_major_is_named() {
    let err = error_of(&with("version: '2.0'\n"));
    assert!(
        err.starts_with("agent.yaml: field 'version' must be a 1.x"),
        "{err}"
    );
}

#[test]
fn unsafe_agent_version_is_refused() {
    let err = error_of(&MINIMAL.replace("version: 1.0.0", "version: ../../x"));
    assert!(
        err.starts_with("agent.yaml: field 'metadata.version' must match"),
        "{err}"
    );
}

#[test]
fn bad_runtime_is_named() {
    let err = error_of(&with("runtime: python2.7\n"));
    assert!(
        err.starts_with("agent.yaml: field 'runtime' must be one of"),
        "{err}"
    );
}

#[test]
fn wrong_type_is_named_with_its_path() {
    let err = error_of(&with("capabilities: summarize\n"));
    assert!(
        err.starts_with("agent.yaml: field 'capabilities' has the wrong type"),
        "{err}"
    );
    let err = error_of(&MINIMAL.replace("  version: 1.0.0\n", "  version: [1]\n"));
    assert!(
        err.starts_with("agent.yaml: field 'metadata.version' has the wrong type"),
        "{err}"
    );
}

#[test]
fn duplicate_keys_are_refused() {
    let err = error_of(&with("name: other\n"));
    assert!(
        err.starts_with("agent.yaml: field 'name' is given more than once"),
        "{err}"
    );
}

#[test]
fn not_a_mapping_is_invalid_yaml() {
    let err = error_of("- a\n- b\n");
    assert!(
        err.starts_with("agent.yaml: invalid YAML: the document must be a mapping"),
        "{err}"
    );
    let err = error_of("name: [unclosed\n");
    assert!(err.starts_with("agent.yaml: invalid YAML:"), "{err}");
}

#[test]
fn several_documents_are_refused() {
    let err = error_of(&format!("{MINIMAL}---\nname: other\n"));
    assert!(err.contains("exactly one YAML document"), "{err}");
}

#[test]
fn non_utf8_is_refused() {
    let err = parse_manifest(b"name: \xff\n", &ParseLimits::default()).unwrap_err();
    assert!(
        matches!(err, ManifestError::NotUtf8 { valid_up_to: 6 }),
        "{err}"
    );
}

#[test]
/// The kit's own sub-agent model defaults `public` to false; PAR follows it, so an
/// unmarked sub-agent is never exposed by accident.
fn sub_agent_public_defaults_to_false_like_the_kit() {
    let m = parse(&MINIMAL.replace(
        "metadata:\n",
        "metadata:\n  sub_agents:\n    - name: a\n    - name: b\n      public: false\n    - name: c\n      public: true\n",
    ))
    .unwrap();
    let public: Vec<bool> = m.sub_agents.iter().map(|s| s.public).collect();
    assert_eq!(public, [false, false, true]);
    assert_eq!(m.sub_agents[0].description, "");
    assert!(m.sub_agents[0].endpoint.is_none());
}

#[test]
fn sub_agent_extensions_are_read() {
    let m = parse(&MINIMAL.replace(
        "metadata:\n",
        "metadata:\n  input_schema: schemas/in.json\n  role_required: analyst\n  sub_agents:\n    - name: a\n      schema: ./schemas/a.json\n      role_required: ops\n",
    ))
    .unwrap();
    assert_eq!(m.input_schema.as_deref(), Some("schemas/in.json"));
    assert_eq!(m.role_required.as_deref(), Some("analyst"));
    assert_eq!(m.sub_agents[0].schema.as_deref(), Some("schemas/a.json"));
    assert_eq!(m.sub_agents[0].role_required.as_deref(), Some("ops"));
}

#[test]
fn sub_agent_problems_name_the_entry() {
    let sub =
        |yaml: &str| MINIMAL.replace("metadata:\n", &format!("metadata:\n  sub_agents:\n{yaml}"));
    let err = error_of(&sub("    - description: no name\n"));
    assert_eq!(
        err,
        "agent.yaml: field 'metadata.sub_agents[0].name' is required"
    );
    let err = error_of(&sub("    - name: ok\n    - name: has/slash\n"));
    assert!(
        err.starts_with("agent.yaml: field 'metadata.sub_agents[1].name' must match"),
        "{err}"
    );
    let err = error_of(&sub("    - name: a\n    - name: a\n"));
    assert!(
        err.starts_with("agent.yaml: field 'metadata.sub_agents[1].name' duplicates"),
        "{err}"
    );
    let err = error_of(&sub("    - name: kit-minimal\n"));
    assert!(
        err.contains("duplicates the agent id \"kit-minimal\""),
        "{err}"
    );
    let err = error_of(&sub("    - name: a\n      public: maybe\n"));
    assert!(
        err.starts_with("agent.yaml: field 'metadata.sub_agents[0].public' has the wrong type"),
        "{err}"
    );
    let err = error_of(&sub("    - name: a\n      schema: /etc/passwd\n"));
    assert!(
        err.starts_with(
            "agent.yaml: field 'metadata.sub_agents[0].schema' must be a relative path"
        ),
        "{err}"
    );
}

#[test]
fn sub_agents_need_an_entrypoint() {
    let text = format!(
        "{}ui:\n  path: ui\n",
        without("entrypoint:").replace("metadata:\n", "metadata:\n  sub_agents:\n    - name: a\n")
    );
    let err = error_of(&text);
    assert!(
        err.starts_with("agent.yaml: field 'metadata.sub_agents' needs 'entrypoint'"),
        "{err}"
    );
}

#[test]
fn ui_path_must_stay_inside_the_package() {
    for bad in ["/var/www", "../outside", "ui/../../x", ".", "C:/ui"] {
        let err = error_of(&with(&format!("ui:\n  path: '{bad}'\n")));
        assert!(
            err.starts_with("agent.yaml: field 'ui.path' must be a relative path"),
            "{bad}: {err}"
        );
    }
    let m = parse(&with("ui:\n  path: ./dist/ui/\n")).unwrap();
    assert_eq!(m.ui_path.as_deref(), Some("dist/ui"));
}

#[test]
fn surface_sections_need_their_key() {
    assert_eq!(
        error_of(&with("rest: {}\n")),
        "agent.yaml: field 'rest.entry' is required when 'rest' is set"
    );
    assert_eq!(
        error_of(&with("ui: {}\n")),
        "agent.yaml: field 'ui.path' is required when 'ui' is set"
    );
}

#[test]
fn rest_entry_function_name_needs_an_entrypoint() {
    let text = format!("{}rest:\n  entry: mount\n", without("entrypoint:"));
    let err = error_of(&text);
    assert!(
        err.starts_with(
            "agent.yaml: field 'rest.entry' must be \"module.path:function\", or a function name"
        ),
        "{err}"
    );
}

#[test]
fn top_level_http_server_wins_over_a2a_http_server() {
    let m = parse(&with(
        "http_server: main:app\na2a:\n  http_server: other:app\n",
    ))
    .unwrap();
    assert_eq!(m.http_server.unwrap().to_string(), "main:app");
    let m = parse(&with("a2a:\n  http_server: other:app\n")).unwrap();
    assert_eq!(m.http_server.unwrap().to_string(), "other:app");
    let err = error_of(&with("http_server: main.py\n"));
    assert!(
        err.starts_with("agent.yaml: field 'http_server' must be"),
        "{err}"
    );
}

#[test]
fn a2a_service_follows_the_kit_format() {
    let err = error_of(&with("a2a:\n  service: serve\n"));
    assert!(
        err.starts_with("agent.yaml: field 'a2a.service' must be"),
        "{err}"
    );
}

#[test]
fn manifest_dependencies_are_checked() {
    let err = error_of(&with("dependencies:\n  - requests>=2\n  - -e .\n"));
    assert!(
        err.starts_with("agent.yaml: field 'dependencies[1]' \"-e .\" refused: pip options"),
        "{err}"
    );
    let m = parse(&with("dependencies:\n  - ' requests>=2 '\n")).unwrap();
    assert_eq!(m.dependencies, ["requests>=2"]);
}

#[test]
fn yaml_1_1_booleans_are_read_like_pyyaml() {
    let m = parse(&MINIMAL.replace(
        "metadata:\n",
        "metadata:\n  sub_agents:\n    - name: a\n      public: no\n    - name: b\n      public: yes\n",
    ))
    .unwrap();
    assert!(!m.sub_agents[0].public);
    assert!(m.sub_agents[1].public);
}

#[test]
fn unknown_tags_are_refused() {
    let err = error_of(&MINIMAL.replace(
        "author: PAR Tests",
        "author: !!python/object/apply:os.system [echo hi]",
    ));
    assert!(
        err.contains("author") || err.contains("invalid YAML"),
        "{err}"
    );
    let err = error_of(&MINIMAL.replace("license: MIT", "license: !custom MIT"));
    assert!(err.contains("unsupported tag `!custom` at line 5"), "{err}");
}

#[test]
fn quoted_scalars_are_strings_for_string_fields() {
    let m = parse(&MINIMAL.replace("version: 1.0.0", "version: \"1.0\"")).unwrap();
    assert_eq!(m.agent_version, "1.0");
    let m = parse(&MINIMAL.replace("license: MIT", "license: !!str 007")).unwrap();
    assert_eq!(m.license, "007");
}
