//! `par-manifest` owns what PAR reads from a package before running anything in it: the
//! `agent.yaml` manifest (parsed under a size and YAML budget, then validated against the
//! Pixell Agent Kit's schema plus PAR's own safety rules), the package's `.env` file (read
//! the way the kit's dev server reads it), and the package's Python requirements (found in
//! `requirements.txt`, `pyproject.toml` or the manifest, with install-redirecting lines
//! refused). It is pure and synchronous: callers hand it bytes and text, it hands back
//! validated values or a [`ManifestError`] that names the offending field or line.
//!
//! Accepted manifests are those of pixell-kit 0.3 and 0.4 and pixell-sdk 0.5. Decisions
//! where PAR differs from, or chooses between, the builders:
//!
//! * Unknown top-level keys are refused, as the kit refuses them; pixell-sdk's additions
//!   (`http_server`, `permissions`, `data_access`, `plan_mode`, `translation`) are known.
//!   Nested sections ignore unknown keys, as in the kit.
//! * Scalars read into text fields keep their source text: `version: 1.10` is `"1.10"` and
//!   `PORT: 8080` in `environment` is `"8080"` (the kit would refuse both as non-strings).
//! * A top-level `version` equal to `metadata.version` is pixell-sdk's copy of the agent
//!   version and reads as format `1.0`; any other value must be `1` or `1.x`.
//! * `entrypoint` may be omitted when `a2a`, `rest`, `ui` or `http_server` is set (the sdk
//!   itself does not count `http_server`); `rest.entry` may be a bare function name in the
//!   entrypoint's module, as pixell-sdk allows.
//! * Sub-agents are public unless `public: false`; their names are URL-safe ids, unique
//!   across the package, including the package's own name when it has an entrypoint.
//! * Duplicate YAML keys and unknown YAML tags are refused (PyYAML keeps the last key).
//! * Paths (`ui.path`, schemas) must stay inside the package; the agent version must be
//!   safe in file names.
//!
//! ```
//! use par_manifest::{parse_manifest, ParseLimits};
//!
//! let yaml = b"name: echo\ndisplay_name: Echo\ndescription: d\nauthor: a\nlicense: MIT\n\
//!              entrypoint: src.main:handler\nmetadata:\n  version: 1.0.0\n";
//! let manifest = parse_manifest(yaml, &ParseLimits::default()).unwrap();
//! assert_eq!(manifest.entrypoint.unwrap().to_string(), "src.main:handler");
//! assert_eq!(manifest.agent_version, "1.0.0");
//! ```

mod deps;
mod dotenv;
mod error;
mod model;
mod parse;
mod raw;
mod requirement;
mod rules;
mod validate;

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod tests;

pub use deps::{resolve_dependencies, Dependencies, DependencySource};
pub use dotenv::parse_dotenv;
pub use error::{FieldProblem, ManifestError};
pub use model::{EntryPoint, Manifest, SubAgent};
pub use parse::{parse_manifest, ParseLimits};
