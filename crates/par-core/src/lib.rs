//! The runtime core: turning sources into mounted packages (verify, extract, parse,
//! environment, workers), the table that routes agent ids to packages and versions, and
//! invocation with the contract's error codes. No HTTP here: `par-http` maps these types
//! onto routes and status codes.

mod calling;
mod config;
mod convergence;
pub mod defaults;
mod envvars;
mod error;
mod fetching;
mod gate;
mod idle;
mod invoke;
mod jobs;
mod lifecycle;
mod loader;
mod log_budgets;
mod memory;
mod metering;
mod outcall;
mod package;
mod pool;
pub mod redact;
mod registry;
mod reports;
mod routing;
mod runtime;
pub mod sandbox;
mod schema;
mod source;
pub mod source_policy;
mod surface;
mod table;
pub mod trace;
mod version;
mod webhook;

pub use config::RuntimeConfig;
pub use convergence::RegistrySettings;
pub use error::{ErrorCode, InvokeError, LoadError, LoadPhase};
pub use idle::AppVisit;
pub use invoke::{dispatched_action, json_array, ActiveCall, CallMeta, InvokeOutput, StreamEvent};
pub use jobs::{JobState, LoadJob, LoadRequest};
pub use metering::{CallRecord, CallerIdentity, Metering};
pub use package::{Package, PackageReport, PackageState};
pub use pool::{PoolSettings, Scaling};
pub use routing::MountOptions;
pub use runtime::{Runtime, RuntimeBuilder};
pub use source_policy::SourcePolicy;
pub use table::{AgentInfo, Target};
pub use webhook::WebhookConfig;
