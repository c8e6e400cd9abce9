//! Reading `agent.yaml` bytes into [`RawManifest`] under a strict resource budget.
//!
//! A manifest comes from a package anyone may have built, so parsing is treated as hostile
//! input handling: the size is checked before the parser sees a byte, and serde-saphyr's
//! budget caps alias expansion, nesting depth and node count so that an alias bomb or a
//! 100,000-deep nesting fails in microseconds instead of exhausting memory or stack.

use std::collections::BTreeMap;

use serde::de::IgnoredAny;
use serde_saphyr::{Budget, Options};

use crate::error::ManifestError;
use crate::model::Manifest;
use crate::raw::{RawManifest, TOP_LEVEL_KEYS};
use crate::validate::validate;

/// Resource limits for parsing one `agent.yaml`.
///
/// The defaults are far above any real manifest (the kit's own are under 1 KiB and nest
/// four levels deep) and far below what would hurt the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseLimits {
    /// Documents larger than this are refused before parsing.
    pub max_bytes: usize,
    /// Deepest nesting of mappings and sequences.
    pub max_depth: usize,
    /// Most `*alias` references in the document.
    pub max_aliases: usize,
    /// Most parser events that alias expansion may replay, in total: the alias-bomb cap.
    pub max_alias_replay_events: usize,
    /// Most nodes (scalars, mappings, sequences) in the document.
    pub max_nodes: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self {
            max_bytes: 256 * 1024,
            max_depth: 32,
            max_aliases: 1_000,
            max_alias_replay_events: 10_000,
            max_nodes: 100_000,
        }
    }
}

/// Parses and validates an `agent.yaml` document.
pub fn parse_manifest(bytes: &[u8], limits: &ParseLimits) -> Result<Manifest, ManifestError> {
    let text = checked_text(bytes, limits)?;
    check_top_level_keys(text, limits)?;
    let raw: RawManifest = deserialize(text, limits)?;
    validate(raw)
}

/// Size first, then encoding: neither needs the parser.
fn checked_text<'a>(bytes: &'a [u8], limits: &ParseLimits) -> Result<&'a str, ManifestError> {
    if bytes.len() > limits.max_bytes {
        return Err(ManifestError::TooLarge {
            size: bytes.len(),
            max: limits.max_bytes,
        });
    }
    std::str::from_utf8(bytes).map_err(|e| ManifestError::NotUtf8 {
        valid_up_to: e.valid_up_to(),
    })
}

/// The kit rejects unknown top-level keys, and so do we: a misspelt `entrypiont` must not
/// silently produce a package without an invoke surface. This is a separate pass because
/// the typed pass keeps scalars as text, which a catch-all `flatten` field would defeat.
fn check_top_level_keys(text: &str, limits: &ParseLimits) -> Result<(), ManifestError> {
    let keys: BTreeMap<String, IgnoredAny> = deserialize(text, limits)?;
    let unknown: Vec<_> = keys
        .keys()
        .filter(|k| !TOP_LEVEL_KEYS.contains(&k.as_str()))
        .map(|k| unknown_key_problem(k))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(ManifestError::Invalid { problems: unknown })
}

fn unknown_key_problem(key: &str) -> crate::FieldProblem {
    crate::FieldProblem::new(
        key,
        format!(
            "is not a known top-level field (known: {})",
            TOP_LEVEL_KEYS.join(", ")
        ),
    )
}

/// One budgeted deserialization, with errors mapped to name the offending field.
fn deserialize<T: serde::de::DeserializeOwned>(
    text: &str,
    limits: &ParseLimits,
) -> Result<T, ManifestError> {
    // The closure must hand serde-saphyr its own error type (so it stops and reports at
    // once), so the field path travels out beside it.
    let mut failed_at = None;
    let outcome =
        serde_saphyr::with_deserializer_from_str_with_options(text, yaml_options(limits), |de| {
            serde_path_to_error::deserialize(de).map_err(|e| {
                failed_at = Some(e.path().to_string());
                e.into_inner()
            })
        });
    outcome.map_err(|e| classify(&e, failed_at))
}

fn yaml_options(limits: &ParseLimits) -> Options {
    let mut budget = Budget::default();
    budget.max_depth = limits.max_depth;
    // The scanner looks ahead through flow collections before the budget sees their events,
    // so flow nesting needs its own cap at the same depth.
    budget.flow_nesting_limit = limits.max_depth;
    budget.max_aliases = limits.max_aliases;
    budget.max_anchors = limits.max_aliases;
    budget.max_nodes = limits.max_nodes;
    budget.max_events = limits.max_nodes.saturating_mul(4);
    budget.max_total_scalar_bytes = limits.max_bytes;
    budget.max_recorded_anchor_events = limits.max_alias_replay_events;

    let mut options = Options::default();
    options.budget = Some(budget);
    options.alias_limits.max_total_replayed_events = limits.max_alias_replay_events;
    options.alias_limits.max_replay_stack_depth = limits.max_depth;
    // PyYAML's safe_load, which the kit uses, refuses tags it does not know (such as
    // `!!python/object`); so do we, rather than silently reading the bare value.
    options.reject_unsupported_tags = true;
    // Multi-line source snippets make poor one-line errors in logs and `par inspect`.
    options.with_snippet = false;
    options
}

/// Budget breaches are hostile or runaway documents; a type or value error inside a field
/// is the author's mistake in that field; anything else is broken YAML.
fn classify(err: &serde_saphyr::Error, path: Option<String>) -> ManifestError {
    use serde_saphyr::Error as E;
    let path = path.unwrap_or_else(|| ".".to_owned());
    let cause = root_cause(err);
    match cause {
        _ if is_budget_breach(cause) => ManifestError::Budget(err.to_string()),
        E::DuplicateMappingKey { key, location } => duplicate_key(&path, key.as_deref(), location),
        E::MultipleDocuments { location, .. } => ManifestError::Yaml(format!(
            "the file must hold exactly one YAML document (another starts at line {})",
            location.line()
        )),
        E::NullIntoString { .. } => {
            ManifestError::field(path, "is empty (null); write \"\" for an empty string")
        }
        E::Unexpected { .. } | E::SerdeInvalidType { .. } if path == "." => {
            ManifestError::Yaml(format!("the document must be a mapping of fields: {err}"))
        }
        _ if path == "." => ManifestError::Yaml(err.to_string()),
        _ if path.ends_with('?') => {
            ManifestError::Yaml(format!("mapping keys must be plain strings: {err}"))
        }
        _ if is_value_error(cause) => {
            ManifestError::field(path, format!("has the wrong type or value: {err}"))
        }
        _ => ManifestError::Yaml(err.to_string()),
    }
}

/// YAML requires unique keys; PyYAML lets the last one win silently. PAR refuses, so the
/// value a reviewer reads is the value that runs.
fn duplicate_key(
    path: &str,
    key: Option<&str>,
    location: &serde_saphyr::Location,
) -> ManifestError {
    let parent = path.trim_end_matches('?').trim_end_matches('.');
    let key = key.unwrap_or("?");
    let field = if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    };
    let message = format!(
        "is given more than once (again at line {})",
        location.line()
    );
    ManifestError::field(field, message)
}

/// Errors met while replaying an alias arrive wrapped with the alias's locations.
fn root_cause(mut err: &serde_saphyr::Error) -> &serde_saphyr::Error {
    use serde_saphyr::Error as E;
    while let E::AliasError { error, .. } | E::WithSnippet { error, .. } = err {
        err = error;
    }
    err
}

fn is_budget_breach(err: &serde_saphyr::Error) -> bool {
    use serde_saphyr::Error as E;
    matches!(
        err,
        E::Budget { .. }
            | E::AliasReplayLimitExceeded { .. }
            | E::AliasExpansionLimitExceeded { .. }
            | E::AliasReplayStackDepthExceeded { .. }
            | E::AliasReplayCounterOverflow { .. }
    )
}

/// Errors about one value's type or spelling, as opposed to the document's syntax.
fn is_value_error(err: &serde_saphyr::Error) -> bool {
    use serde_saphyr::Error as E;
    matches!(
        err,
        E::Message { .. }
            | E::Unexpected { .. }
            | E::SerdeInvalidType { .. }
            | E::SerdeInvalidValue { .. }
            | E::SerdeInvalidLength { .. }
            | E::SerdeUnknownVariant { .. }
            | E::SerdeMissingField { .. }
            | E::NullIntoString { .. }
            | E::InvalidScalar { .. }
            | E::InvalidBooleanStrict { .. }
            | E::DuplicateMappingKey { .. }
            | E::TaggedScalarCannotDeserializeIntoString { .. }
            | E::UnsupportedTag { .. }
            | E::NonFiniteFloat { .. }
            | E::QuotingRequired { .. }
    )
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    /// Generous for a debug build on a slow CI machine; the real cost is microseconds.
    const QUICK: Duration = Duration::from_secs(2);

    fn refused_quickly(text: &str) -> ManifestError {
        let started = Instant::now();
        let err = parse_manifest(text.as_bytes(), &ParseLimits::default()).unwrap_err();
        assert!(started.elapsed() < QUICK, "took {:?}", started.elapsed());
        err
    }

    /// The classic: nine levels of nine aliases, a billion "lol"s once expanded.
    fn billion_laughs(indent: &str) -> String {
        let mut doc = format!("{indent}l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for level in 1..10 {
            let prev = format!("*l{}", level - 1);
            let refs = [prev.as_str(); 9].join(", ");
            doc.push_str(&format!("{indent}l{level}: &l{level} [{refs}]\n"));
        }
        doc
    }

    #[test]
    fn billion_laughs_at_top_level_is_refused() {
        let err = refused_quickly(&billion_laughs(""));
        assert!(matches!(err, ManifestError::Budget(_)), "{err}");
        assert!(err
            .to_string()
            .starts_with("agent.yaml: document exceeds the YAML parse budget"));
    }

    #[test]
    fn billion_laughs_inside_a_known_section_is_refused() {
        let text = format!(
            "name: x\nmetadata:\n  version: '1'\n{}",
            billion_laughs("  ")
        );
        let err = refused_quickly(&text);
        assert!(matches!(err, ManifestError::Budget(_)), "{err}");
    }

    #[test]
    fn deep_flow_nesting_is_refused() {
        let depth = 100_000;
        let text = format!("name: {}{}\n", "[".repeat(depth), "]".repeat(depth));
        let err = refused_quickly(&text);
        // Caught by the scanner's flow limit, which reports it as a syntax error.
        assert!(
            err.to_string().contains("recursion limit exceeded"),
            "{err}"
        );
    }

    #[test]
    fn deep_flow_mapping_nesting_is_refused() {
        let depth = 50_000;
        let text = format!("metadata: {}x{}\n", "{a: ".repeat(depth), "}".repeat(depth));
        let err = refused_quickly(&text);
        assert!(matches!(err, ManifestError::Budget(_)), "{err}");
    }

    #[test]
    fn deep_block_nesting_is_refused() {
        let text = format!("metadata:\n  {}x\n", "- ".repeat(100_000));
        let err = refused_quickly(&text);
        assert!(matches!(err, ManifestError::Budget(_)), "{err}");
    }

    #[test]
    fn oversized_documents_are_refused_before_parsing() {
        let limits = ParseLimits::default();
        let text = format!("name: x\n#{}\n", "x".repeat(limits.max_bytes));
        let err = refused_quickly(&text);
        assert!(
            matches!(err, ManifestError::TooLarge { max, .. } if max == 256 * 1024),
            "{err}"
        );
    }

    #[test]
    fn limits_are_configurable() {
        let limits = ParseLimits {
            max_bytes: 10,
            ..ParseLimits::default()
        };
        let err = parse_manifest(b"name: abcdefgh\n", &limits).unwrap_err();
        assert_eq!(
            err.to_string(),
            "agent.yaml: document is 15 bytes, more than the limit of 10 bytes"
        );
    }

    #[test]
    fn modest_anchor_use_is_fine() {
        let text = "\
name: anchors
display_name: A
description: d
author: a
license: MIT
entrypoint: src.main:handler
capabilities: &caps [one, two]
metadata:
  version: '1.0'
  tags: *caps
";
        let m = parse_manifest(text.as_bytes(), &ParseLimits::default()).unwrap();
        assert_eq!(m.tags, ["one", "two"]);
    }
}
