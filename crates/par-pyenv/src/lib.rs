//! Python virtual environments for packages, built with the `uv` binary.
//!
//! One immutable environment exists per (interpreter, dependency set). It is built in a
//! temporary directory beside its final place and renamed into place when complete, so a
//! half-built environment is never used; a file lock keeps concurrent runtimes sharing a
//! cache directory from building the same one twice, and an in-process map does the same
//! for concurrent loads. Environments are reused across restarts.

mod error;
mod key;
mod manager;
mod uv;

pub use error::EnvError;
pub use key::env_key;
pub use manager::{EnvManager, PythonEnv};
