//! The runtime core: turning sources into mounted packages (verify, extract, parse,
//! environment, workers), the table that routes agent ids to packages and versions, and
//! invocation with the contract's error codes. No HTTP here: `par-http` maps these types
//! onto routes and status codes.

mod config;
mod envvars;
mod error;
mod gate;
mod invoke;
mod loader;
mod memory;
mod package;
mod reports;
mod lifecycle;
mod pool;
mod runtime;
mod source;
mod table;
mod version;
mod webhook;

pub use config::RuntimeConfig;
pub use lifecycle::{JobState, LoadJob, LoadRequest};
pub use pool::PoolSettings;
pub use webhook::WebhookConfig;
pub use error::{ErrorCode, InvokeError, LoadError, LoadPhase};
pub use invoke::{ActiveCall, InvokeOutput, StreamEvent};
pub use package::{Package, PackageReport, PackageState};
pub use runtime::Runtime;
pub use table::{AgentInfo, Target};
