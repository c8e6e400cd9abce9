//! The one error type of this crate.
//!
//! Every message says which file it is about and, for validation failures, which field
//! (`metadata.version`, `sub_agents[1].name`, ...) or line, so a package author can fix the
//! package without reading PAR's source.

use std::fmt;

/// One problem with one field of `agent.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// Dotted path of the field, e.g. `metadata.sub_agents[0].name`.
    pub field: String,
    /// What is wrong, phrased to follow "field 'X' ", e.g. `is required`.
    pub message: String,
}

impl FieldProblem {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field '{}' {}", self.field, self.message)
    }
}

/// Everything that can go wrong while reading a package's manifest or dependency files.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Refused before parsing, so a huge document costs nothing.
    #[error("agent.yaml: document is {size} bytes, more than the limit of {max} bytes")]
    TooLarge { size: usize, max: usize },

    #[error("agent.yaml: document is not valid UTF-8 (byte {valid_up_to})")]
    NotUtf8 { valid_up_to: usize },

    /// The YAML parser's budget (aliases, depth, node count) was exceeded: a hostile or
    /// runaway document, never a real manifest.
    #[error("agent.yaml: document exceeds the YAML parse budget: {0}")]
    Budget(String),

    /// Malformed YAML, or a document that is not a mapping.
    #[error("agent.yaml: invalid YAML: {0}")]
    Yaml(String),

    /// The document parsed but breaks the schema; there is at least one problem.
    #[error("{}", join_problems(.problems))]
    Invalid { problems: Vec<FieldProblem> },

    /// A dependency line that could change how or from where packages are installed.
    #[error("{file} line {line}: requirement {text:?} refused: {reason}")]
    RequirementLine {
        file: &'static str,
        line: usize,
        text: String,
        reason: String,
    },

    /// `pyproject.toml` could not be read as TOML or has a badly shaped field.
    #[error("pyproject.toml: {0}")]
    Pyproject(String),
}

impl ManifestError {
    pub(crate) fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            problems: vec![FieldProblem::new(field, message)],
        }
    }

    /// The field problems of an [`ManifestError::Invalid`] error; empty for other kinds.
    pub fn problems(&self) -> &[FieldProblem] {
        match self {
            Self::Invalid { problems } => problems,
            _ => &[],
        }
    }
}

fn join_problems(problems: &[FieldProblem]) -> String {
    let parts: Vec<String> = problems
        .iter()
        .map(|p| format!("agent.yaml: {p}"))
        .collect();
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_lists_every_problem_with_its_field() {
        let err = ManifestError::Invalid {
            problems: vec![
                FieldProblem::new("author", "is required"),
                FieldProblem::new("license", "is required"),
            ],
        };
        assert_eq!(
            err.to_string(),
            "agent.yaml: field 'author' is required; agent.yaml: field 'license' is required"
        );
        assert_eq!(err.problems().len(), 2);
    }

    #[test]
    fn requirement_line_names_file_line_and_text() {
        let err = ManifestError::RequirementLine {
            file: "requirements.txt",
            line: 3,
            text: "-e .".into(),
            reason: "pip options are not allowed".into(),
        };
        assert_eq!(
            err.to_string(),
            "requirements.txt line 3: requirement \"-e .\" refused: pip options are not allowed"
        );
    }
}
