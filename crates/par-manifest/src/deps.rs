//! Finding a package's Python requirements without running any of its code.
//!
//! The kits record dependencies in three places: `requirements.txt` (kit 0.4 always writes
//! one), `pyproject.toml` `[project].dependencies` (pixell-sdk packages that have one), and
//! `agent.yaml` `dependencies`. A package's `setup.py` is never consulted: the kit generates
//! it and it can be invalid Python, and executing it would run package code at install time.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ManifestError;
use crate::model::Manifest;
use crate::requirement::check_requirement;

/// Which file the requirements came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DependencySource {
    RequirementsTxt,
    Pyproject,
    Manifest,
    /// The package declares no dependencies anywhere.
    None,
}

impl fmt::Display for DependencySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::RequirementsTxt => "requirements.txt",
            Self::Pyproject => "pyproject.toml",
            Self::Manifest => "agent.yaml dependencies",
            Self::None => "none",
        })
    }
}

/// The requirement strings to install, in file order, and where they came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dependencies {
    pub source: DependencySource,
    pub requirements: Vec<String>,
}

/// Requirement strings for the package's environment, from the first source present:
/// 1. `requirements.txt` (even when empty: an empty file means "no dependencies"),
/// 2. `pyproject.toml` `[project].dependencies`,
/// 3. the manifest's `dependencies`.
///
/// The caller passes the file contents it found (`None` when absent), so this stays pure.
/// Every requirement must pass the same rules (see `requirement.rs`): no pip options, local
/// paths, non-HTTPS URLs or `${VAR}` references.
pub fn resolve_dependencies(
    requirements_txt: Option<&str>,
    pyproject_toml: Option<&str>,
    manifest: &Manifest,
) -> Result<Dependencies, ManifestError> {
    if let Some(text) = requirements_txt {
        return Ok(found(
            DependencySource::RequirementsTxt,
            parse_requirements_txt(text)?,
        ));
    }
    if let Some(requirements) = pyproject_toml
        .map(pyproject_dependencies)
        .transpose()?
        .flatten()
    {
        return Ok(found(DependencySource::Pyproject, requirements));
    }
    if !manifest.dependencies.is_empty() {
        // Already checked by `parse_manifest`.
        return Ok(found(
            DependencySource::Manifest,
            manifest.dependencies.clone(),
        ));
    }
    Ok(found(DependencySource::None, Vec::new()))
}

fn found(source: DependencySource, requirements: Vec<String>) -> Dependencies {
    Dependencies {
        source,
        requirements,
    }
}

/// Reads `requirements.txt` as pip does for the parts PAR allows: `\` continuations are
/// joined, `#` comments (at line start or after whitespace) dropped, blank lines skipped.
pub(crate) fn parse_requirements_txt(text: &str) -> Result<Vec<String>, ManifestError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut requirements = Vec::new();
    for (line, logical) in logical_lines(text) {
        let spec = strip_comment(&logical).trim();
        if spec.is_empty() {
            continue;
        }
        let requirement =
            check_requirement(spec).map_err(|reason| ManifestError::RequirementLine {
                file: "requirements.txt",
                line,
                text: spec.to_owned(),
                reason,
            })?;
        requirements.push(requirement);
    }
    Ok(requirements)
}

/// Joins lines ending in `\` with the next one; yields the 1-based number of each logical
/// line's first physical line, so errors point where the author looks.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, physical) in text.lines().enumerate() {
        let (start, mut joined) = pending.take().unwrap_or((i + 1, String::new()));
        match physical.strip_suffix('\\') {
            Some(head) => {
                joined.push_str(head);
                pending = Some((start, joined));
            }
            None => {
                joined.push_str(physical);
                out.push((start, joined));
            }
        }
    }
    out.extend(pending);
    out
}

/// pip's comment rule: `#` at the start of the line or preceded by whitespace. A `#` inside
/// a URL (`...whl#sha256=...`) is not a comment.
fn strip_comment(line: &str) -> &str {
    let mut previous_is_space = true;
    for (i, c) in line.char_indices() {
        if c == '#' && previous_is_space {
            return &line[..i];
        }
        previous_is_space = c.is_whitespace();
    }
    line
}

#[derive(Deserialize)]
struct Pyproject {
    project: Option<Project>,
}

#[derive(Deserialize)]
struct Project {
    dependencies: Option<Vec<String>>,
    #[serde(default)]
    dynamic: Vec<String>,
}

/// `Some` when `[project].dependencies` exists; `None` lets the manifest decide.
fn pyproject_dependencies(text: &str) -> Result<Option<Vec<String>>, ManifestError> {
    let parsed: Pyproject = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
    let Some(project) = parsed.project else {
        return Ok(None);
    };
    match project.dependencies {
        Some(deps) => check_pyproject_list(deps).map(Some),
        None if project.dynamic.iter().any(|d| d == "dependencies") => Err(ManifestError::Pyproject(
            "field 'project.dynamic' lists \"dependencies\", which only a build backend can compute; PAR never runs one, so list them in 'project.dependencies'".into(),
        )),
        None => Ok(None),
    }
}

/// One line of text with the position, rather than toml's multi-line source snippet.
fn toml_error(text: &str, err: &toml::de::Error) -> ManifestError {
    let message = err.message();
    match err.span() {
        Some(span) => {
            let before = &text.as_bytes()[..span.start.min(text.len())];
            let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
            ManifestError::Pyproject(format!("line {line}: {message}"))
        }
        None => ManifestError::Pyproject(message.to_owned()),
    }
}

fn check_pyproject_list(deps: Vec<String>) -> Result<Vec<String>, ManifestError> {
    deps.iter()
        .enumerate()
        .map(|(i, dep)| {
            check_requirement(dep).map_err(|reason| {
                ManifestError::Pyproject(format!(
                    "field 'project.dependencies[{i}]': requirement {dep:?} refused: {reason}"
                ))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_manifest, ParseLimits};

    /// `requirements.txt` exactly as kit 0.4.12 generates it from the init template.
    const KIT_04_REQUIREMENTS: &str = "fastapi>=0.112.0\nuvicorn>=0.30.0\nwatchdog>=4.0.0\n";

    const PYPROJECT: &str = r#"
[project]
name = "sdk-server"
version = "2.1.0"
dependencies = ["pixell-sdk>=0.5", "httpx>=0.27; python_version >= '3.10'"]

[project.optional-dependencies]
dev = ["pytest"]
"#;

    fn manifest(deps: &[&str]) -> Manifest {
        let list: String = deps.iter().map(|d| format!("  - {d:?}\n")).collect();
        let text = format!(
            "name: m\ndisplay_name: M\ndescription: d\nauthor: a\nlicense: MIT\n\
             entrypoint: src.main:handler\nmetadata:\n  version: '1'\ndependencies:\n{list}"
        );
        let text = text.replace("dependencies:\n\n", "");
        parse_manifest(text.as_bytes(), &ParseLimits::default()).unwrap()
    }

    fn resolve(req: Option<&str>, py: Option<&str>, deps: &[&str]) -> Dependencies {
        resolve_dependencies(req, py, &manifest(deps)).unwrap()
    }

    #[test]
    fn requirements_txt_wins() {
        let d = resolve(Some(KIT_04_REQUIREMENTS), Some(PYPROJECT), &["other>=1"]);
        assert_eq!(d.source, DependencySource::RequirementsTxt);
        assert_eq!(
            d.requirements,
            ["fastapi>=0.112.0", "uvicorn>=0.30.0", "watchdog>=4.0.0"]
        );
    }

    #[test]
    fn empty_requirements_txt_still_wins() {
        let d = resolve(Some("# nothing\n\n"), Some(PYPROJECT), &["other>=1"]);
        assert_eq!(d.source, DependencySource::RequirementsTxt);
        assert!(d.requirements.is_empty());
    }

    #[test]
    fn pyproject_comes_second() {
        let d = resolve(None, Some(PYPROJECT), &["other>=1"]);
        assert_eq!(d.source, DependencySource::Pyproject);
        assert_eq!(
            d.requirements,
            ["pixell-sdk>=0.5", "httpx>=0.27; python_version >= '3.10'"]
        );
    }

    #[test]
    fn pyproject_without_dependencies_falls_through_to_the_manifest() {
        let d = resolve(
            None,
            Some("[tool.black]\nline-length = 100\n"),
            &["other>=1"],
        );
        assert_eq!(d.source, DependencySource::Manifest);
        assert_eq!(d.requirements, ["other>=1"]);
        let d = resolve(None, Some("[project]\nname = \"x\"\n"), &["other>=1"]);
        assert_eq!(d.source, DependencySource::Manifest);
    }

    #[test]
    fn nothing_declared_means_no_source() {
        let d = resolve(None, None, &[]);
        assert_eq!(d.source, DependencySource::None);
        assert!(d.requirements.is_empty());
        assert_eq!(d.source.to_string(), "none");
    }

    #[test]
    fn requirements_comments_blank_lines_and_whitespace() {
        let text = "\u{feff}# top comment\n\n  requests>=2.31  # trailing comment\n\
                    pkg @ https://example.com/p-1.0.whl#sha256=abc\r\n\tnumpy==1.26.4\n";
        let d = resolve(Some(text), None, &[]);
        assert_eq!(
            d.requirements,
            [
                "requests>=2.31",
                "pkg @ https://example.com/p-1.0.whl#sha256=abc",
                "numpy==1.26.4"
            ]
        );
    }

    #[test]
    fn requirements_continuations_and_hashes() {
        let text =
            "flask==3.0.0 \\\n    --hash=sha256:aaaa \\\n    --hash=sha256:bbbb\nrich==13.7.0\n";
        let d = resolve(Some(text), None, &[]);
        assert_eq!(
            d.requirements,
            [
                "flask==3.0.0     --hash=sha256:aaaa     --hash=sha256:bbbb",
                "rich==13.7.0"
            ]
        );
    }

    #[test]
    fn refused_requirement_lines_name_the_file_and_line() {
        let cases = [
            ("-e .", "pip options"),
            ("-r base.txt", "pip options"),
            ("--index-url https://evil.example/simple", "pip options"),
            (
                "--extra-index-url https://evil.example/simple",
                "pip options",
            ),
            ("--find-links ./wheels", "pip options"),
            (".", "local paths"),
            ("./libs/mylib", "local paths"),
            ("/opt/pkg", "local paths"),
            ("file:///opt/pkg", "local paths"),
            ("mylib @ file:///opt/pkg", "https://"),
            ("libs/mylib", "not a requirement"),
        ];
        for (line, reason) in cases {
            let text = format!("requests==2.31.0\n# comment\n{line}\n");
            let err = resolve_dependencies(Some(&text), None, &manifest(&[])).unwrap_err();
            let message = err.to_string();
            assert!(
                message.starts_with(&format!(
                    "requirements.txt line 3: requirement {line:?} refused"
                )),
                "{message}"
            );
            assert!(message.contains(reason), "{line}: {message}");
        }
    }

    #[test]
    fn refused_pyproject_dependency_names_the_field() {
        let text = "[project]\ndependencies = [\"ok>=1\", \"mine @ file:///src\"]\n";
        let err = resolve_dependencies(None, Some(text), &manifest(&[])).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "pyproject.toml: field 'project.dependencies[1]': requirement \"mine @ file:///src\" refused"
            ),
            "{err}"
        );
    }

    #[test]
    fn dynamic_pyproject_dependencies_are_refused() {
        let text = "[project]\nname = \"x\"\ndynamic = [\"dependencies\"]\n";
        let err = resolve_dependencies(None, Some(text), &manifest(&["a>=1"])).unwrap_err();
        assert!(err.to_string().contains("'project.dynamic'"), "{err}");
    }

    #[test]
    fn malformed_pyproject_is_reported() {
        let err = resolve_dependencies(None, Some("[project\n"), &manifest(&[])).unwrap_err();
        assert!(err.to_string().starts_with("pyproject.toml: "), "{err}");
        let err = resolve_dependencies(
            None,
            Some("[project]\ndependencies = \"requests\"\n"),
            &manifest(&[]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn deeply_nested_pyproject_does_not_crash() {
        let depth = 100_000;
        let text = format!("x = {}{}\n", "[".repeat(depth), "]".repeat(depth));
        assert!(resolve_dependencies(None, Some(&text), &manifest(&[])).is_err());
    }
}
